"""End to end: the quick profile through `crossmodal data`, `dvc repro` and the book build,
in a temporary copy of the repository; a second copy runs its per-patient work on Dask
workers and must give identical data, metrics and tables; a stage killed part-way reruns
to identical outputs."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from book_browser import broken_images
from book_browser import broken_links
from book_browser import browser_missing
from book_browser import console_errors
from book_browser import read_book
from book_browser import uncaptioned_images
from book_browser import uncaptioned_tables
from book_browser import unfilled_glue
from conftest import REPO
from phi_scan import assert_no_identifier
from phi_scan import header_identifiers

pytestmark = pytest.mark.slow


def run(cmd: list[str], cwd: Path, env: dict) -> None:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


def environment(work: Path) -> dict:
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
           "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(work / ".yolo")}
    env.pop("MPLBACKEND", None)
    return env


# The stages the Dask run reproduces: each does its per-patient work through
# `patient_workers` (phantoms come from `crossmodal data`). The others that do are left out
# because they add no map of their own and cost the most: real_anatomy_pelvis and
# real_delineations_lung run ingestion and align_fuse's map (run here) on other cohorts, the
# lung study's stages run the pelvic study's code on another cohort, and the evaluate stages
# would need the detectors trained first. No other stage touches the backend itself
# (real_anatomy_skeleton reaches it only through ingestion's map, run here).
DASK_STAGES = ("ingest_pelvis", "align_fuse_pelvis", "data_card_pelvis", "datasets_pelvis",
               "ingest_skeleton", "data_card_skeleton", "datasets_skeleton")
DASK_LEFT_OUT = ("real_anatomy_pelvis", "real_delineations_lung", "evaluate_pelvis", "ingest_lung",
                 "align_fuse_lung", "data_card_lung", "datasets_lung", "evaluate_lung")


def quick_run(work: Path, backend: str = "processes", stages: tuple[str, ...] = ()) -> Path:
    """A copy of the repository at ``work`` on the quick profile with ``compute.backend``,
    through `crossmodal data` and `dvc repro` (of ``stages`` and what they need, or all)."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.split()
    for rel in listed:
        if (REPO / rel).is_file():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, work / rel)
    params = work / "params.yaml"
    text, profiles = re.subn(r"\nprofile: default\b", "\nprofile: quick", params.read_text(), count=1)
    text, backends = re.subn(r"\n  backend: processes\b", f"\n  backend: {backend}", text, count=1)
    assert profiles == backends == 1, "params.yaml no longer has the `profile:` and `compute.backend:` lines"
    params.write_text(text)
    env = environment(work)
    run(["git", "init", "-q"], work, env)
    run(["git", "add", "-A"], work, env)
    run(["git", "-c", "user.name=ci", "-c", "user.email=ci@localhost", "commit", "-qm", "copy"], work, env)
    run(["crossmodal", "data"], work, env)
    run(["dvc", "repro", *stages], work, env)
    return work


@pytest.fixture(scope="module")
def quick_repro(tmp_path_factory) -> Path:
    work = quick_run(tmp_path_factory.mktemp("repro") / "repo")
    run(["crossmodal", "book"], work, environment(work))  # as `make book` builds it
    return work


@pytest.fixture(scope="module")
def quick_repro_on_dask(tmp_path_factory) -> Path:
    return quick_run(tmp_path_factory.mktemp("repro_dask") / "repo", backend="dask", stages=DASK_STAGES)


# A run's wall times, and files that hold them or a run's own timestamps, differ between
# runs by nature; everything else must be byte-identical.
TIME_KEY = re.compile(r"seconds|(^|_)time($|_)|duration|timestamp", re.IGNORECASE)
NOT_COMPARED = {".ipynb", ".log", ".pt", ".lock"}


def _without_times(value):
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if not TIME_KEY.search(str(k))}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


def comparable_content(path: Path, root: Path) -> bytes:
    """The file's bytes, with the repository's own path and, in tables and records, the
    wall-time columns and keys taken out."""
    data = path.read_bytes()
    if path.suffix not in (".csv", ".json", ".yaml", ".txt"):
        return data
    text = data.decode().replace(str(root), "<repo>")
    if path.suffix == ".json":
        return json.dumps(_without_times(json.loads(text)), sort_keys=True).encode()
    if path.suffix == ".csv" and text.strip():
        from io import StringIO

        table = pd.read_csv(StringIO(text), dtype=str, keep_default_na=False)
        return table.drop(columns=[c for c in table.columns if TIME_KEY.search(c)]).to_csv(index=False).encode()
    return text.encode()


def compared_files(root: Path, folders: list[str]) -> dict[str, bytes]:
    return {str(path.relative_to(root)): comparable_content(path, root)
            for folder in folders for path in sorted((root / folder).rglob("*"))
            if path.is_file() and path.suffix not in NOT_COMPARED}


def kill_part_way(cmd: list[str], cwd: Path, env: dict, watched: Path, timeout: float = 600) -> None:
    """Start ``cmd`` and kill its whole process group as soon as it has written a file
    under ``watched``."""
    started = time.time()
    process = subprocess.Popen(cmd, cwd=cwd, env=env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not any(p.is_file() and p.stat().st_mtime > started for p in watched.rglob("*")):
        assert process.poll() is None, f"{' '.join(cmd)} ended before it could be killed"
        assert time.time() - started < timeout, f"{' '.join(cmd)} wrote nothing under {watched}"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def test_a_run_changes_no_tracked_file_but_the_data_and_lock_records(quick_repro):
    # Everything a run writes is ignored or is one of DVC's two records (here they change
    # because the quick profile's cohort is not the committed default one).
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=quick_repro,
                            capture_output=True, text=True, check=True).stdout
    assert {line[3:] for line in status.splitlines()} <= {"data.dvc", "dvc.lock"}


def test_part1_step_outputs_exist(quick_repro):
    align = quick_repro / "results" / "pelvis" / "align_fuse"
    lesions = pd.read_csv(align / "lesions.csv")
    assert lesions["case_id"].nunique() == 6 and (lesions["lesion_suvmax"] > 2).all()
    assert len(list((align / "figures" / "montage").glob("*.npz"))) == 2
    assert (quick_repro / "data.dvc").exists()
    subprocess.run([Path(sys.executable).parent / "dvc", "status"], cwd=quick_repro, check=True,
                   capture_output=True)


def test_real_delineations_go_through_part1_unchanged_and_the_checks_page_says_what_ran(quick_repro):
    lesions = pd.read_csv(quick_repro / "results" / "lung" / "real_delineations" / "real_lesions.csv")
    assert sorted(lesions["case"]) == ["lung1", "lung2"]
    assert set(lesions["ct"]) == {"real"} and set(lesions["lesion"]) == {"real delineation"}
    assert (lesions["extent_px"] > 0).all() and (lesions["error_after_mm"] < lesions["error_before_mm"]).all()
    html = quick_repro / "book" / "_build" / "html" / "executed"
    assert "real tumour delineations, simulated PET" in (html / "lung" / "01_real_delineations.html").read_text()
    checks = (html / "book" / "real_data_checks.html").read_text()
    # the copy has no ../shared/data beside it: the page says the check was skipped, and why
    assert "Skipped" in checks or "tumour boxes" in checks


def test_locked_test_cohort_shares_no_patient_or_seed_with_training(quick_repro):
    from crossmodal.params import load_params

    results = quick_repro / "results" / "pelvis"
    dev = pd.read_csv(results / "ingest" / "cases.csv")
    test = pd.read_csv(results / "ingest_test" / "cases.csv")
    assert set(dev["patient"]).isdisjoint(test["patient"])
    split = pd.read_csv(results / "datasets" / "split.csv")
    assert set(split.loc[split.split == "test", "case_id"]) == set(test["case_id"])
    assert set(split.loc[split.split != "test", "case_id"]) == set(dev["case_id"])
    params = load_params(quick_repro / "params.yaml")
    assert params["phantom"]["pelvis_test"]["seed"] != params["phantom"]["pelvis"]["seed"]
    metrics = pd.read_csv(results / "evaluation" / "metrics.csv")
    assert (metrics["test_patients"] == len(test)).all()
    card = pd.read_csv(results / "data_card" / "oracle.csv")
    assert len(card) and (quick_repro / "book" / "_build" / "html" / "executed" / "pelvis" / "03_data_card.html").exists()


def test_book_has_one_page_per_part1_step_with_figures(quick_repro):
    pages = quick_repro / "book" / "_build" / "html" / "executed" / "pelvis"
    ingest = (pages / "01_ingest.html").read_text()
    assert "Simulated data" in ingest and "Phantom card" in ingest
    align = (pages / "02_align_fuse.html").read_text()
    assert align.count("<img") >= 1 and "lesion_suvmax" in align
    for step in ("04_datasets", "05_train", "06_evaluate", "07_claims"):
        assert (pages / f"{step}.html").exists(), step
    intro = (quick_repro / "book" / "_build" / "html" / "intro.html").read_text()
    assert "simulated" in intro and "C7" in intro
    landing = (quick_repro / "book" / "_build" / "html" / "executed" / "book" / "00_results.html").read_text()
    assert "partly simulated data" in landing and "real CT" in landing and "Results at a glance" in landing and "C7" in landing


def test_no_identifier_in_anything_the_pipeline_wrote(quick_repro):
    ids = header_identifiers(quick_repro / "data")  # every input tree: both parts, locked test cohorts included
    assert ids
    scanned = assert_no_identifier(quick_repro / "results", ids)
    assert all(scanned[kind] for kind in ("name", "csv", "json", "yaml", "nifti", "png", "zip")), scanned
    scanned = assert_no_identifier(quick_repro / "book", ids)  # executed notebooks and the built book
    assert all(scanned[kind] for kind in ("name", "ipynb", "html", "png", "embedded image")), scanned


def test_part1_claims_and_dvc_metrics(quick_repro):
    root = quick_repro / "results" / "pelvis"
    claims = pd.read_csv(root / "claims" / "claims.csv")
    assert {"C1", "C2", "C3", "C4"} <= set(claims["claim"])
    assert set(claims["verdict"]) <= {"supported", "contradicted", "mixed", "inconclusive", "not measurable"}
    metrics = pd.read_csv(root / "evaluation" / "metrics.csv")
    assert metrics["AP50"].between(0, 1).all() and (metrics["AP50_ci_low"] <= metrics["AP50_ci_high"]).all()
    dvc = Path(sys.executable).parent / "dvc"
    headline = subprocess.run([dvc, "metrics", "show", "--json"], cwd=quick_repro, capture_output=True, text=True,
                              check=True).stdout
    assert all(f'"C{k}"' in headline for k in range(1, 5)) and "adaptive_region/AP50" not in headline
    detail = subprocess.run([dvc, "metrics", "show", "--json", "results/pelvis/metrics/evaluate.json"],
                            cwd=quick_repro, capture_output=True, text=True, check=True).stdout
    assert "adaptive_region/AP50" in detail
    pages = quick_repro / "book" / "_build" / "html" / "executed" / "pelvis"
    assert "Claimed vs reproduced" in (pages / "07_claims.html").read_text()
    assert (pages / "06_evaluate.html").read_text().count("<img") >= 2


def test_the_lung_study_runs_part1_unchanged_and_is_tested_on_the_real_delineations_only(quick_repro):
    from crossmodal.params import load_params

    root = quick_repro / "results" / "lung"
    dev = pd.read_csv(root / "ingest" / "cases.csv")
    test = pd.read_csv(root / "ingest_test" / "cases.csv")
    params = load_params(quick_repro / "params.yaml", study="lung")
    assert len(dev) == params["phantom"]["lung"]["n_patients"] and len(test) == 2
    # the test patients are the real scans (the same pseudonyms as on the real-delineations page)
    real = pd.read_csv(root / "real_delineations" / "real_lesions.csv")
    assert set(test["case_id"]) == set(real["case_id"])
    split = pd.read_csv(root / "datasets" / "split.csv")
    assert set(split.loc[split.split == "test", "case_id"]) == set(test["case_id"])
    assert set(split.loc[split.split != "test", "case_id"]) == set(dev["case_id"])
    # inserted tumours only in the development cohort, real delineations only in the test one
    for tree, kind in ((params["cohort"]["lung"]["root"], "simulated, inserted"),
                       (params["cohort"]["lung"]["test_root"], "real delineation")):
        truths = [json.loads(p.read_text()) for p in (quick_repro / tree / "truth").glob("*.json")]
        assert truths and {t["real_anatomy"]["lesions"] for t in truths} == {kind}, tree
    claims = pd.read_csv(root / "claims" / "claims.csv")
    assert {"C1", "C2", "C3"} <= set(claims["claim"]) and (claims["test_patients"] == 2).all()
    assert set(claims.loc[claims["claim"] == "C1", "metric"]) == {"AP50_lung_tumour"}
    pages = quick_repro / "book" / "_build" / "html" / "executed"
    card = (pages / "lung" / "03_data_card.html").read_text()
    assert "Real CT, simulated PET" in card and "tbl-phenomena-lung" in card and "data_card_lung" in card
    assert "data_card_pelvis" not in card and "results/pelvis" not in card
    for step in ("01_ingest", "02_align_fuse", "04_datasets", "05_train", "06_evaluate", "07_claims"):
        assert (pages / "lung" / f"{step}.html").exists(), step
    assert "Simulated data" in (pages / "pelvis" / "03_data_card.html").read_text()
    assert "ingest_lung" in (pages / "book" / "fork.html").read_text()


# ----------------------------------------------------------------------------- Part 2


def test_part2_no_patient_scored_by_a_detector_that_trained_on_it(quick_repro):
    """The leakage rule, checked on what the stage wrote: every detector's exported
    train/val patients (its dataset index) against the patients it scored."""
    from crossmodal.detect.export import read_index

    datasets = quick_repro / "results" / "skeleton" / "datasets"
    series = pd.read_csv(datasets / "series.csv")
    features = pd.read_csv(quick_repro / "results" / "skeleton" / "features" / "features.csv",
                           index_col="case_id")
    checked = 0
    for dataset in sorted(p for p in datasets.glob("*/*") if p.is_dir()):
        modality, detector = dataset.parent.name, dataset.name
        index = pd.DataFrame(read_index(dataset))
        seen = set(index.loc[index["split"].isin(["train", "val"]), "case_id"])
        scored = set(series.loc[(series["modality"] == modality) & (series["detector"] == detector), "case_id"])
        assert scored == set(index.loc[index["split"] == "test", "case_id"])
        assert not seen & scored, f"{modality}/{detector} scored patients it trained on"
        checked += 1
    assert checked == 3 * len(set(series["detector"]))
    # every classified patient's every series was scored by exactly one detector
    assert not series.duplicated(["case_id", "modality"]).any()
    assert set(series["case_id"]) == set(features.index)


def test_part2_on_a_real_skeleton_scores_new_patients_with_the_phantoms_models_only(quick_repro):
    root = quick_repro / "results" / "skeleton"
    real = root / "real_anatomy"
    phantom = set(pd.read_csv(root / "ingest" / "cases.csv")["patient"])
    hybrid = pd.read_csv(real / "ingest" / "cases.csv")
    assert len(hybrid) == 4 and phantom.isdisjoint(hybrid["patient"])
    findings = pd.read_csv(real / "findings.csv")
    assert (findings["kind"] == "metastasis").any() and set(findings["kind"]) <= {"metastasis", "mimic"}
    ap = pd.read_csv(real / "ap.csv")
    assert set(ap["modality"]) <= {"CT", "MRI", "PET"} and ap["ap50"].between(0, 1).all()
    scores = pd.read_csv(real / "scores.csv")
    assert set(scores.loc[scores["feature_set"] == "fused", "case_id"]) == set(hybrid["case_id"])
    chosen = pd.read_csv(root / "classify" / "nested_choices.csv")
    assert pd.read_csv(real / "classifier.csv")["classifier"].iloc[0] in set(chosen["chosen"])
    page = (quick_repro / "book" / "_build" / "html" / "executed" / "skeleton" / "09_real_anatomy.html").read_text()
    assert "Real CT, simulated MR and PET, inserted findings" in page and page.count("<img") >= 1


def test_part2_missing_modalities_are_zero_rows_with_a_zero_flag(quick_repro):
    root = quick_repro / "results" / "skeleton"
    features = pd.read_csv(root / "features" / "features.csv", index_col="case_id")
    cohort = pd.read_csv(root / "datasets" / "cohort_series.csv")
    has = cohort.pivot_table(index="case_id", columns="modality", values="n_slices", aggfunc="size",
                             fill_value=0).reindex(features.index, fill_value=0)
    assert (has.sum(axis=1) < 3).any(), "the quick cohort should have patients without a modality"
    for modality in ("CT", "MRI", "PET"):
        present = has.get(modality, 0) > 0
        assert (features[f"has_{modality}"] == present.astype(int)).all()
        bins = features[[f"{modality}_b{k}" for k in range(8)]]
        assert (bins[~present] == 0).all().all()
    assert features.shape[1] == 24 + 3 + 1  # bins, flags, label


def test_part2_claims_and_dvc_outputs(quick_repro):
    import json

    root = quick_repro / "results" / "skeleton"
    claims = pd.read_csv(root / "claims" / "claims.csv")
    assert {"C5", "C6", "C7"} == set(claims["claim"])
    assert set(claims["verdict"]) | set(claims["claim verdict"]) <= {
        "supported", "contradicted", "mixed", "inconclusive", "not measurable",
        "comparator not measurable"}
    # a row is a verdict only where its comparator passed its gate
    gated = claims["gate"] != "passed"
    assert (claims.loc[gated, "verdict"] == "comparator not measurable").all()
    assert (claims.loc[gated, "p_value"] == 1.0).all()
    metrics = pd.read_csv(root / "classify" / "metrics.csv")
    assert metrics["classifier"].nunique() >= 8 and set(metrics["feature_set"]) >= {"fused"}
    assert set(pd.read_csv(root / "c3d" / "metrics.csv")["metric"]) >= {"accuracy", "auc"}
    saved = json.loads((root / "metrics" / "claims.json").read_text())
    assert set(saved) == {"C5", "C6", "C7"} and set(saved.values()) <= set(claims["claim verdict"])
    dvc = Path(sys.executable).parent / "dvc"
    shown = subprocess.run([dvc, "metrics", "show", "--json"], cwd=quick_repro, capture_output=True, text=True,
                           check=True).stdout
    assert all(f'"C{k}"' in shown for k in range(1, 8)) and "fused_minus_single" not in shown  # the headline only
    table = subprocess.run([dvc, "metrics", "show"], cwd=quick_repro, capture_output=True, text=True, check=True).stdout
    assert max(map(len, table.splitlines())) <= 300  # readable in a terminal
    detail = subprocess.run([dvc, "metrics", "show", "results/skeleton/metrics/classify.json"], cwd=quick_repro,
                            capture_output=True, text=True, check=True).stdout
    assert "fused_minus_single" in detail  # any stage's detail, on demand
    pages = quick_repro / "book" / "_build" / "html" / "executed" / "skeleton"
    html = (pages / "08_claims.html").read_text()
    assert "Simulated data" in html and "Claimed versus reproduced" in html
    images = sum((pages / f"{page}.html").read_text().count("<img")
                 for page in ("05_features", "06_classify", "07_c3d"))
    assert images >= 4


@pytest.fixture(scope="module")
def book_in_browser(quick_repro) -> dict[str, dict]:
    """Every page of the quick run's book as headless Chromium saw it (tests/book_browser.py)."""
    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    return read_book(quick_repro / "book" / "_build" / "html")


def test_book_pages_load_in_a_browser_without_console_errors(book_in_browser):
    assert {"index.html", "executed/book/00_results.html", "executed/book/reproduce.html", "api.html",
            "executed/pelvis/07_claims.html", "executed/skeleton/08_claims.html"} <= set(book_in_browser)
    assert console_errors(book_in_browser) == []


def test_book_images_load_and_sit_in_figures_or_output_cells(book_in_browser):
    assert sum(len(record["images"]) for record in book_in_browser.values()) >= 6
    assert broken_images(book_in_browser) == []


def test_book_images_have_captions(book_in_browser):
    assert uncaptioned_images(book_in_browser) == []


def test_book_tables_have_captions_builders_and_data(book_in_browser):
    tables = [t for record in book_in_browser.values() for t in record["tables"] if t["output"]]
    assert len(tables) >= 30
    assert "tbl-glance" in {t["id"] for t in book_in_browser["executed/book/00_results.html"]["tables"]}
    assert uncaptioned_tables(book_in_browser) == []


def test_book_glued_values_are_filled(book_in_browser):
    assert len(book_in_browser["executed/book/00_results.html"]["pasted"]) >= 8  # the profile and C1-C7
    assert unfilled_glue(book_in_browser) == []


def test_book_internal_links_resolve(book_in_browser, quick_repro):
    assert sum(len(record["links"]) for record in book_in_browser.values()) > 100
    assert broken_links(book_in_browser, quick_repro / "book" / "_build" / "html") == []


def test_the_dask_run_covers_every_stage_that_uses_the_backend():
    # Stage <step>_<cohort> runs crossmodal.stages.<cohort>.<step> or crossmodal.stages.<step>;
    # a Part 1 stage <step>_<study> (-p study=<study>) runs crossmodal.stages.pelvis.<step>.
    stages = REPO / "src" / "crossmodal" / "stages"
    users = set()
    for stage, spec in yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"].items():
        step, cohort = stage.rsplit("_", 1)
        part1 = [stages / "pelvis" / f"{step}.py"] if f"-p study={cohort}" in spec["cmd"] else []
        module = next(p for p in (stages / cohort / f"{step}.py", *part1, stages / f"{step}.py") if p.is_file())
        if "patient_workers(" in module.read_text():
            users.add(stage)
    assert users == set(DASK_STAGES) | set(DASK_LEFT_OUT)


def test_a_second_run_on_dask_workers_gives_identical_data_metrics_and_tables(quick_repro, quick_repro_on_dask):
    second = compared_files(quick_repro_on_dask, ["data", "results"])
    first = compared_files(quick_repro, ["data", "results"])
    assert len(second) > 500 and any(name.endswith(".dcm") for name in second)
    for stage in DASK_STAGES:  # each stage's outputs are there to compare
        assert any(f"/{stage.rsplit('_', 1)[1]}/{stage.rsplit('_', 1)[0]}/" in f"/{name}" for name in second), stage
    assert set(second) <= set(first), set(second) - set(first)
    differing = sorted(name for name in second if first[name] != second[name])
    assert not differing, f"{len(differing)} files differ between the two runs: {differing[:20]}"


def test_a_stage_killed_part_way_reruns_to_identical_outputs(quick_repro):
    # Last in this module: it re-runs a stage of the shared run (to identical outputs).
    outputs = quick_repro / "results" / "pelvis" / "align_fuse"
    before = compared_files(quick_repro, ["results/pelvis/align_fuse"])
    env = environment(quick_repro)
    kill_part_way(["dvc", "repro", "--force", "--single-item", "align_fuse_pelvis"], quick_repro, env, outputs)
    assert compared_files(quick_repro, ["results/pelvis/align_fuse"]) != before  # it was cut short
    killed = time.time()
    # --no-run-cache: the stage must run again, not be restored from DVC's run cache
    run(["dvc", "repro", "--no-run-cache"], quick_repro, env)
    assert (outputs / "lesions.csv").stat().st_mtime > killed
    assert compared_files(quick_repro, ["results/pelvis/align_fuse"]) == before
    status = subprocess.run(["dvc", "status", "--json"], cwd=quick_repro, env=env, capture_output=True,
                            text=True, check=True).stdout
    assert json.loads(status) == {}, status
