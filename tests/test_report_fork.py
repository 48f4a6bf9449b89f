"""The "Fork this study" page quotes params.yaml and dvc.yaml as they are: each excerpt
parses to the very entry the run loads, and the stage table lists the study's stages."""

from __future__ import annotations

import pytest
import yaml
from conftest import REPO

from crossmodal.report.fork import params_excerpt
from crossmodal.report.fork import params_excerpts_markdown
from crossmodal.report.fork import study_stages


@pytest.mark.parametrize("key", ["studies.lung", "cohort.lung", "phantom.lung", "real_data.totalsegmentator_chest",
                                 "studies.pelvis", "phantom.pelvis_test"])
def test_an_excerpt_is_the_entry_as_written(key):
    text = params_excerpt(REPO / "params.yaml", key)
    section, entry = key.split(".", 1)
    whole = yaml.safe_load((REPO / "params.yaml").read_text())
    assert yaml.safe_load(text) == {section: {entry: whole[section][entry]}}
    assert text.splitlines()[0] == f"{section}:"


def test_an_excerpt_keeps_the_comments_above_its_entry_and_refuses_an_unknown_key(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("a:\n  x: 1\n  # about y\n  # more\n  y:\n    z: 2\n\n    w: [3]\n\n  v: 4\nb:\n  y: 5\n")
    assert params_excerpt(path, "a.y") == "a:\n  # about y\n  # more\n  y:\n    z: 2\n\n    w: [3]"
    assert params_excerpt(path, "b.y") == "b:\n  y: 5"
    with pytest.raises(KeyError, match="no entry 'a.q'"):
        params_excerpt(path, "a.q")
    with pytest.raises(KeyError, match="no section 'c'"):
        params_excerpt(path, "c.y")
    assert params_excerpts_markdown(path, ["a.x", "b.y"]) == "```yaml\na:\n  x: 1\n```\n\n```yaml\nb:\n  y: 5\n```"


def test_the_study_stage_table_lists_the_part1_stages_of_a_study():
    table = study_stages(REPO / "dvc.yaml", "lung")
    steps = ["ingest", "align_fuse", "data_card", "datasets", "train", "evaluate", "claims"]
    assert list(table["stage"]) == [f"{step}_lung" for step in steps]
    assert all(nb.startswith("notebooks/pelvis/") for nb in table["notebook"])  # the pelvic study's notebooks
    assert list(study_stages(REPO / "dvc.yaml", "pelvis")["stage"]) == [f"{step}_pelvis" for step in steps] + [
        "real_anatomy_pelvis"]
