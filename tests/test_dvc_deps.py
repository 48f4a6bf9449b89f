"""``dvc.yaml`` cannot miss a rerun: every stage depends on all the code its command can
import and the params it reads, and on nothing else (see ``dvc_deps.py``)."""

from __future__ import annotations

import pytest

from dvc_deps import EVERY_STAGE
from dvc_deps import REPO
from dvc_deps import _related
from dvc_deps import dvc_stages
from dvc_deps import listed_params
from dvc_deps import module_file
from dvc_deps import params_read
from dvc_deps import reachable_modules
from dvc_deps import relative
from dvc_deps import stage_entry

PROFILE_PARAMS = {"profile", "profiles.${profile}"}
CODE_ROOTS = ("src/", "notebooks/")


def _covers(dep: str, path: str) -> bool:
    return path == dep or path.startswith(dep.rstrip("/") + "/")


def code_dep_problems(stage: dict) -> list[str]:
    """Files the command can run that no dep covers, and code deps it never runs."""
    modules, files = stage_entry(stage["cmd"])
    reached = {relative(module_file(m)) for m in reachable_modules(modules)} | {relative(f) for f in files}
    deps = [d for d in stage.get("deps", []) if d.startswith(CODE_ROOTS)]
    problems = [f"runs {path} but no dep covers it" for path in sorted(reached)
                if not any(_covers(d, path) for d in deps)]
    problems += [f"lists {dep} but runs nothing in it" for dep in deps
                 if not any(_covers(dep, path) for path in reached)]
    return problems


def params_problems(stage: dict) -> list[str]:
    """Params the command reads that no listed param covers, and listed params it never reads."""
    listed = listed_params(stage) - PROFILE_PARAMS
    read = (params_read(stage["cmd"]) | EVERY_STAGE) - {"profile"}
    problems = [f"reads {key} but does not list it (or a section holding it)" for key in sorted(read)
                if not any(key == p or key.startswith(p + ".") for p in listed)]
    problems += [f"lists {p} but never reads it" for p in sorted(listed)
                 if not any(_related(p, key) for key in read)]
    return problems


STAGES = dvc_stages()


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_depends_on_exactly_the_code_it_can_run(name):
    assert code_dep_problems(STAGES[name]) == []


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_lists_exactly_the_params_it_reads(name):
    assert params_problems(STAGES[name]) == []


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_follows_the_selected_profile_only(name):
    # Editing a profile that is not selected reruns nothing; the selected one reruns all.
    listed = listed_params(STAGES[name])
    assert PROFILE_PARAMS <= listed
    assert "profiles" not in listed


def test_deleting_any_one_code_dep_is_caught():
    for name, stage in STAGES.items():
        for dep in [d for d in stage["deps"] if d.startswith(CODE_ROOTS)]:
            trimmed = {**stage, "deps": [d for d in stage["deps"] if d != dep]}
            assert code_dep_problems(trimmed), f"{name}: removing {dep} went unnoticed"


def test_an_import_added_to_a_stage_module_is_caught(monkeypatch):
    import dvc_deps

    stage = STAGES["datasets_pelvis"]
    assert not code_dep_problems(stage)
    module = "crossmodal.stages.pelvis.datasets"
    assert module in reachable_modules(stage_entry(stage["cmd"])[0])
    real = dvc_deps._module_imports

    def with_one_more_import(name):
        extra = {"crossmodal.learn.c3d"} if name == module else set()
        return frozenset(real(name) | extra)

    monkeypatch.setattr(dvc_deps, "_module_imports", with_one_more_import)
    assert any("learn/c3d.py" in p for p in code_dep_problems(stage))


def test_every_stage_command_is_a_crossmodal_entry_point():
    for name, stage in STAGES.items():
        words = stage["cmd"].split()
        assert words[:2] in (["crossmodal", "stage"], ["crossmodal", "notebook"]), name
        if words[1] == "notebook":
            assert (REPO / words[2]).is_file(), f"{name}: {words[2]} is missing"


def test_a_part1_stage_reads_its_studys_sections_and_cohort():
    # -p study=NAME: the stage follows studies.NAME (whose sections replace detect, ...) and
    # the cohort entry that study names, read through study_cohort(params)[...].
    stage = STAGES["datasets_pelvis"]
    assert "-p study=pelvis" in " ".join(stage["cmd"].split())
    read = params_read(stage["cmd"])
    assert {"studies.pelvis", "cohort.pelvis.label_names"} <= read
    assert not any(key.startswith("study.") or "<" in key for key in read)
    assert "studies.pelvis" not in params_read(STAGES["ingest_skeleton"]["cmd"])   # Part 2 reads no study section
