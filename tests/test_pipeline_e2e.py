"""End to end: the quick profile through `crossmodal data`, `dvc repro` and the book build,
in a temporary copy of the repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO
from test_privacy import assert_no_identifier
from test_privacy import header_identifiers

pytestmark = pytest.mark.slow


def run(cmd: list[str], cwd: Path, env: dict) -> None:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


@pytest.fixture(scope="module")
def quick_repro(tmp_path_factory) -> Path:
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.split()
    work = tmp_path_factory.mktemp("repro") / "repo"
    for rel in listed:
        if (REPO / rel).is_file():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, work / rel)
    params = work / "params.yaml"
    params.write_text(params.read_text().replace("\nprofile: default", "\nprofile: quick", 1))
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
           "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(work / ".yolo")}
    env.pop("MPLBACKEND", None)
    run(["git", "init", "-q"], work, env)
    run(["crossmodal", "data"], work, env)
    run(["dvc", "repro"], work, env)
    run(["jb", "build", "book", "--config", "_config.yml", "--toc", str(work / "book" / "_toc.yml"),
         "--path-output", "book", "--warningiserror", "--nitpick", "--keep-going"], work, env)
    return work


def test_chapter_tables_and_figures_exist(quick_repro):
    cohort = quick_repro / "results" / "pelvis" / "cohort"
    table = pd.read_csv(cohort / "cohort_table.csv")
    assert len(table) == 6 and (table["lesion_slices"] > 0).all() and (table["lesion_suvmax"] > 2).all()
    assert (cohort / "montage.png").stat().st_size > 20_000
    assert (cohort / "phantom_card.csv").exists()
    assert (quick_repro / "data.dvc").exists()
    subprocess.run([Path(sys.executable).parent / "dvc", "status"], cwd=quick_repro, check=True,
                   capture_output=True)


def test_book_renders_the_cohort_chapter_with_figures(quick_repro):
    html = (quick_repro / "book" / "_build" / "html" / "executed" / "01_cohort.html").read_text()
    assert "Simulated data" in html and "Phantom card" in html
    assert html.count("<img") >= 1
    assert "lesion_suvmax" in html
    intro = (quick_repro / "book" / "_build" / "html" / "intro.html").read_text()
    assert "simulated" in intro and "C7" in intro


def test_no_identifier_in_anything_the_pipeline_wrote(quick_repro):
    ids = header_identifiers(quick_repro / "data" / "pelvis-phantom")
    assert ids
    assert assert_no_identifier(quick_repro / "results", ids) > 10
    assert assert_no_identifier(quick_repro / "book" / "_build" / "html", ids) > 5


def test_detection_chapter_claims_and_dvc_metrics(quick_repro):
    evaluation = quick_repro / "results" / "pelvis" / "evaluation"
    claims = pd.read_csv(evaluation / "claims.csv")
    assert {"C1", "C2", "C3", "C4"} <= set(claims["claim"])
    assert set(claims["verdict"]) <= {"supported", "contradicted", "inconclusive", "not measurable"}
    metrics = pd.read_csv(evaluation / "metrics.csv")
    assert metrics["AP50"].between(0, 1).all() and (metrics["AP50_lo"] <= metrics["AP50_hi"]).all()
    shown = subprocess.run([Path(sys.executable).parent / "dvc", "metrics", "show", "--json"], cwd=quick_repro,
                           capture_output=True, text=True, check=True).stdout
    assert "adaptive_region/AP50" in shown
    html = (quick_repro / "book" / "_build" / "html" / "executed" / "03_detection.html").read_text()
    assert "Claimed vs reproduced" in html and html.count("<img") >= 2
