"""The command line holds no policy: it names bad usage and hands params and paths to the
stage, so the CLI, a notebook and a direct call write the same outputs."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from conftest import REPO
from crossmodal.cli import app
from crossmodal.params import load_params

runner = CliRunner()


def params_for(cohort: Path, tmp_path: Path) -> Path:
    """A copy of params.yaml whose pelvic cohort is ``cohort`` (a DICOM tree)."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["profile"] = "quick"
    raw["cohort"]["pelvis"]["root"] = str(cohort)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def same_tree(a: Path, b: Path) -> list[str]:
    """Relative paths whose presence or bytes differ between two folders."""
    files_a = {p.relative_to(a) for p in a.rglob("*") if p.is_file()}
    files_b = {p.relative_to(b) for p in b.rglob("*") if p.is_file()}
    differ = sorted(str(p) for p in files_a ^ files_b)
    return differ + sorted(str(p) for p in files_a & files_b
                           if not filecmp.cmp(a / p, b / p, shallow=False))


def test_unknown_stage_is_named():
    result = runner.invoke(app, ["stage", "pelvis.no_such_step"])
    assert result.exit_code != 0
    assert "pelvis.no_such_step" in result.output


def test_argument_that_is_not_key_value_is_named():
    result = runner.invoke(app, ["stage", "ingest", "results/somewhere"])
    assert result.exit_code != 0
    assert "results/somewhere" in result.output


def test_cli_stage_writes_what_the_stage_function_writes(pelvis_cohort, tmp_path):
    from crossmodal.stages import ingest

    params_path = params_for(pelvis_cohort, tmp_path)
    result = runner.invoke(app, ["stage", "ingest", "cohort=pelvis", f"out={tmp_path / 'cli'}",
                                 "--params", str(params_path)])
    assert result.exit_code == 0, result.output
    ingest.run(load_params(params_path), cohort="pelvis", out=tmp_path / "direct")
    assert (tmp_path / "cli" / "cases.csv").exists()
    assert same_tree(tmp_path / "cli", tmp_path / "direct") == []


def test_misspelt_option_stops_the_command_naming_it(tmp_path):
    text = (REPO / "params.yaml").read_text().replace("  n_boot: 1000", "  n_bootstrap: 1000", 1)
    assert "n_bootstrap" in text
    (tmp_path / "params.yaml").write_text(text)
    result = runner.invoke(app, ["stage", "ingest", "cohort=pelvis", f"out={tmp_path / 'x'}",
                                 "--params", str(tmp_path / "params.yaml")])
    assert result.exit_code == 2
    assert "n_bootstrap" in result.output and not (tmp_path / "x").exists()


@pytest.mark.slow
def test_notebook_and_cli_write_identical_outputs(pelvis_cohort, tmp_path):
    # The DVC stage runs the notebook; a headless or GPU run calls the CLI: same files.
    params_path = params_for(pelvis_cohort, tmp_path)
    result = runner.invoke(app, ["stage", "ingest", "cohort=pelvis", f"out={tmp_path / 'cli'}",
                                 "--params", str(params_path)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["notebook", str(REPO / "notebooks" / "pelvis" / "01_ingest.py"),
                                 str(tmp_path / "page.ipynb"), "-p", "cohort=pelvis",
                                 "-p", f"out={tmp_path / 'notebook'}", "--params", str(params_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "page.ipynb").stat().st_size > 10_000
    assert same_tree(tmp_path / "cli", tmp_path / "notebook") == []
    # the page keeps no clock readings, so the same inputs give the same page
    page = (tmp_path / "page.ipynb").read_text()
    assert '"start_time"' not in page and '"duration"' not in page


def test_every_part1_stage_command_runs_without_its_notebook_for_its_study():
    """benchmarks/bench_part1_pipeline.py --direct turns each notebook command of its stages
    into ``crossmodal stage``: the study becomes ``--study`` and every other parameter a
    keyword the stage's ``run`` takes (a GPU box without the notebook stack runs these)."""
    import importlib
    import inspect
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from bench_part1_pipeline import steps
    finally:
        sys.path.pop(0)
    for study in yaml.safe_load((REPO / "params.yaml").read_text())["studies"]:
        params = load_params(REPO / "params.yaml", "default", study=study)
        for name, command in steps(REPO, direct=True, study=study)[1:]:
            argv = command[command.index("stage"):]
            assert f"--study={study}" in argv, name
            values = dict(a.split("=", 1) for a in argv[2:] if not a.startswith("--"))
            run = importlib.import_module(f"crossmodal.stages.{argv[1]}").run
            inspect.signature(run).bind(params, **values)  # TypeError: a parameter the stage does not take
