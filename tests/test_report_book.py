"""The book's own pages (``crossmodal.report.book``): the landing page's results at a glance
from hand-made claims tables, and the Reproduce page's profile, packages, machine, stage
wall times and dvc.lock hashes from small hand-made files and dicts."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from conftest import REPO

from crossmodal.cli import record_wall_time
from crossmodal.execute import execute_notebook
from crossmodal.report.book import claim_summary
from crossmodal.report.book import data_hash
from crossmodal.report.book import duration_cell
from crossmodal.report.book import glance_table
from crossmodal.report.book import machine
from crossmodal.report.book import package_versions
from crossmodal.report.book import profile_settings
from crossmodal.report.book import read_claims
from crossmodal.report.table import markdown_rows
from crossmodal.report.book import read_timings
from crossmodal.report.book import run_table
from crossmodal.report.book import stage_hashes
from crossmodal.report.book import stage_times
from crossmodal.report.book import wall_time_sentence

NAN = float("nan")
EVIDENCE = {"pelvis": "[C1–C4](pelvis)", "skeleton": "[C5–C7](skeleton)"}

# ----------------------------------------------------------------------------- results at a glance


def pelvis_claims() -> pd.DataFrame:
    """C1 on two detectors that disagree, C3 without a thesis number, C4 measured."""
    rows = [
        ("C1", "yolov8", "mean AP +6.06 %", "proposed - pet_only", "AP50", 0.0606, 0.041, 0.012, 0.07,
         "passed", "supported"),
        ("C1", "yolo11", "mean AP +6.06 %", "proposed - ct_only", "AP50", 0.0606, -0.05, -0.09, -0.01,
         "passed", "contradicted"),
        ("C3", "yolov8", "fewer false positives", "proposed - pet_only", "fp", NAN, -0.2, -0.5, 0.1,
         "passed", "inconclusive"),
        ("C4", "all", "consistent across detectors", "C1 and C2 supported for every detector", NAN,
         NAN, 0.5, NAN, NAN, NAN, "inconclusive"),
    ]
    return pd.DataFrame(rows, columns=["claim", "detector", "says", "comparison", "metric", "thesis",
                                       "ours", "ci_low", "ci_high", "gate", "verdict"])


def skeleton_claims() -> pd.DataFrame:
    """C5 against CT (measured) and PET (its detector failed the gate: comparator not measurable)."""
    rows = [
        ("C5", "fused beats each single modality", "CT", "auc", 0.085, 0.12, 0.03, 0.21, "passed",
         "supported"),
        ("C5", "fused beats each single modality", "PET", "auc", 0.085, -0.2, -0.4, 0.01,
         "failed: PET detector AP50 CI low", "comparator not measurable"),
    ]
    frame = pd.DataFrame(rows, columns=["claim", "says", "comparator", "metric", "thesis", "ours",
                                        "ci_low", "ci_high", "gate", "verdict"])
    frame["claim verdict"] = "supported"  # the stage's rule: the gated row does not count
    return frame


@pytest.fixture()
def claims(tmp_path) -> pd.DataFrame:
    for part, frame in (("pelvis", pelvis_claims()), ("skeleton", skeleton_claims())):
        (tmp_path / part).mkdir()
        frame.to_csv(tmp_path / part / "claims.csv", index=False)
    return read_claims(tmp_path / "pelvis", tmp_path / "skeleton")


def test_the_glance_table_shows_each_primary_comparison_with_ci_verdict_and_evidence(claims):
    table = glance_table(claims, EVIDENCE)
    assert list(table.columns) == ["claim", "thesis says", "compared", "thesis value",
                                   "ours [95 % CI]", "verdict", "evidence"]
    assert list(table["claim"]) == ["C1", "C1", "C3", "C4", "C5", "C5"]
    assert list(table["ours [95 % CI]"]) == ["+0.041 [+0.012, +0.070]", "-0.050 [-0.090, -0.010]",
                                             "-0.200 [-0.500, +0.100]", "50% of C1/C2 rows supported",
                                             "+0.120 [+0.030, +0.210]", "—"]
    assert list(table["thesis value"]) == ["+0.0606", "+0.0606", "—", "—", "+0.085", "+0.085"]
    assert table["verdict"].iloc[-1] == "comparator not measurable (PET detector AP50 CI low)"
    assert table["verdict"].iloc[0] == "supported"
    assert list(table["thesis says"])[:2] == ["mean AP +6.06 %", ""]  # a claim's statement once
    assert table["compared"].iloc[0] == "proposed - pet_only on AP50 (yolov8)"
    assert table["compared"].iloc[3] == "C1 and C2 supported for every detector"
    assert table["compared"].iloc[-1] == "fused - PET on auc"
    assert list(table["evidence"]) == [EVIDENCE["pelvis"]] * 4 + [EVIDENCE["skeleton"]] * 2


def test_each_claim_is_summarised_for_prose_with_its_overall_verdict(claims):
    summary = claim_summary(claims)
    assert list(summary) == ["C1", "C2", "C3", "C4", "C5", "C6", "C7"]
    assert summary["C1"] == {"verdict": "mixed", "thesis": "+0.0606",
                             "ours": "+0.041 [+0.012, +0.070] (yolov8); -0.050 [-0.090, -0.010] (yolo11)"}
    assert summary["C3"] == {"verdict": "inconclusive", "ours": "-0.200 [-0.500, +0.100]", "thesis": "—"}
    assert summary["C5"]["verdict"] == "supported"
    assert summary["C5"]["ours"] == "+0.120 [+0.030, +0.210] (CT); — (PET)"
    assert summary["C2"] == summary["C6"] == {"verdict": "—", "ours": "—", "thesis": "—"}


def test_a_claim_with_only_unmeasurable_rows_has_no_estimate(claims):
    only_gated = claims[claims["verdict"] == "comparator not measurable"].assign(
        claim_verdict="comparator not measurable")
    assert claim_summary(only_gated, ["C5"])["C5"] == {
        "verdict": "comparator not measurable", "ours": "—", "thesis": "+0.085"}


def test_markdown_table_has_no_index_and_escapes_cell_pipes():
    frame = pd.DataFrame({"claim": ["C1"], "evidence": ["[a|b](x.ipynb)"]}, index=[7])
    assert markdown_rows(frame) == [
        "| claim | evidence |", "|---|---|", "| C1 | [a\\|b](x.ipynb) |"]


def test_the_landing_notebook_glues_the_table_and_every_claim(tmp_path):
    for part, frame in (("pelvis", pelvis_claims()), ("skeleton", skeleton_claims())):
        (tmp_path / part).mkdir()
        frame.to_csv(tmp_path / part / "claims.csv", index=False)
    output = tmp_path / "00_results.ipynb"
    execute_notebook(REPO / "notebooks" / "book" / "00_results.py", output,
                     {"params_path": str(REPO / "params.yaml"), "pelvis_claims": str(tmp_path / "pelvis"),
                      "skeleton_claims": str(tmp_path / "skeleton")})
    glued = {o["metadata"]["scrapbook"]["name"]: o["data"]
             for cell in nbformat.read(output, as_version=4).cells if cell.cell_type == "code"
             for o in cell.get("outputs", []) if "scrapbook" in o.get("metadata", {})}
    names = {f"C{i}_{key}" for i in range(1, 8) for key in ("verdict", "ours", "thesis")}
    assert names | {"profile", "glance_table"} == set(glued)
    assert glued["C1_verdict"]["application/papermill.record/text/plain"] == "'mixed'"
    table = glued["glance_table"]["application/papermill.record/text/markdown"]
    assert "| C5 |  | fused - PET on auc | +0.085 | — | comparator not measurable" in table
    # every key the page's prose pastes is glued
    prose = (REPO / "notebooks" / "book" / "00_results.py").read_text()
    assert set(re.findall(r"\{glue:text\}`([^`]+)`", prose)) <= set(glued)


# ----------------------------------------------------------------------------- reproduce this book

DVC_YAML = {"stages": {
    "ingest_pelvis": {"cmd": "crossmodal notebook a.py book/executed/pelvis/01_ingest.ipynb",
                      "outs": ["book/executed/pelvis/01_ingest.ipynb", "results/pelvis/ingest"]},
    "train_pelvis": {"cmd": "crossmodal notebook b.py book/executed/pelvis/05_train.ipynb",
                     "outs": [{"book/executed/pelvis/05_train.ipynb": {"cache": True}}, "results/runs"]},
    "claims_pelvis": {"cmd": "crossmodal notebook c.py book/executed/pelvis/07_claims.ipynb",
                      "outs": ["results/pelvis/claims", "book/executed/pelvis/07_claims.ipynb"]},
}}


def test_stage_times_map_each_record_to_the_stage_that_writes_its_notebook(tmp_path):
    # the records as `crossmodal notebook` writes them (its own function)
    record_wall_time(Path("a.py"), Path("book/executed/pelvis/05_train.ipynb"), 3725.04, "quick",
                     timings_dir=tmp_path)
    record_wall_time(Path("c.py"), Path("book/executed/pelvis/07_claims.ipynb"), 12.4, "quick",
                     timings_dir=tmp_path)
    record_wall_time(Path("x.py"), Path("book/executed/book/00_results.ipynb"), 2.0, "quick",
                     timings_dir=tmp_path)  # a book page, no stage: left out
    times = stage_times(DVC_YAML, read_timings(tmp_path))
    assert list(times["stage"]) == ["ingest_pelvis", "train_pelvis", "claims_pelvis"]
    assert pd.isna(times["seconds"].iloc[0]) and pd.isna(times["profile"].iloc[0])  # not recorded
    assert list(times["seconds"].iloc[1:]) == [3725.0, 12.4]
    assert list(times["profile"].iloc[1:]) == ["quick", "quick"]
    assert times["finished"].iloc[2].endswith("+00:00")
    assert [duration_cell(s) for s in times["seconds"]] == ["not recorded", "1 h 02 min", "12 s"]
    assert wall_time_sentence(times).startswith("The 2 recorded stages took **1 h 02 min**")
    assert "1 stage(s) have no record" in wall_time_sentence(times)
    assert read_timings(tmp_path / "absent") == {}


def test_duration_cells_and_the_sentence_without_any_record():
    assert [duration_cell(s) for s in (None, NAN, 0.4, 59.6, 61, 3599, 7260)] == [
        "not recorded", "not recorded", "0 s", "1 min 00 s", "1 min 01 s", "59 min 59 s", "2 h 01 min"]
    none = stage_times(DVC_YAML, {})
    assert wall_time_sentence(none).startswith("No stage of this run recorded its wall time (3 stages)")


DVC_LOCK = {"schema": "2.0", "stages": {
    "ingest_pelvis": {
        "deps": [{"path": "data/pelvis-phantom", "md5": "aa.dir"}, {"path": "src/x.py", "md5": "bb"}],
        "params": {"params.yaml": {"profile": "default"}},
        "outs": [{"path": "results/pelvis/ingest", "md5": "cc.dir"}]},
    "train_pelvis": {"deps": [{"path": "results/pelvis/ingest", "md5": "cc.dir"}], "outs": []},
}}


def test_stage_hashes_are_short_order_free_and_change_with_any_md5():
    hashes = stage_hashes(DVC_LOCK).set_index("stage")
    assert list(hashes.index) == ["ingest_pelvis", "train_pelvis"]
    assert hashes.loc["ingest_pelvis", "deps"] == 2 and hashes.loc["ingest_pelvis", "outs"] == 1
    assert len(hashes.loc["ingest_pelvis", "deps hash"]) == 10
    assert hashes.loc["train_pelvis", "outs hash"] == "—"
    reordered = json.loads(json.dumps(DVC_LOCK))
    reordered["stages"]["ingest_pelvis"]["deps"].reverse()
    assert stage_hashes(reordered).equals(stage_hashes(DVC_LOCK))
    changed = json.loads(json.dumps(DVC_LOCK))
    changed["stages"]["ingest_pelvis"]["deps"][1]["md5"] = "bc"  # one source file edited
    after = stage_hashes(changed).set_index("stage")
    assert after.loc["ingest_pelvis", "deps hash"] != hashes.loc["ingest_pelvis", "deps hash"]
    assert after.loc["ingest_pelvis", "outs hash"] == hashes.loc["ingest_pelvis", "outs hash"]
    other_params = json.loads(json.dumps(DVC_LOCK))
    other_params["stages"]["ingest_pelvis"]["params"]["params.yaml"]["profile"] = "quick"
    assert (stage_hashes(other_params)["params hash"].iloc[0] != hashes["params hash"].iloc[0])


def test_the_run_table_puts_times_beside_hashes_with_dashes_for_a_stage_not_locked(tmp_path):
    record_wall_time(Path("a.py"), Path("book/executed/pelvis/01_ingest.ipynb"), 42.0, "default",
                     timings_dir=tmp_path)
    table = run_table(stage_times(DVC_YAML, read_timings(tmp_path)), stage_hashes(DVC_LOCK))
    hashes = stage_hashes(DVC_LOCK).set_index("stage")
    assert list(table.index) == ["ingest_pelvis", "train_pelvis", "claims_pelvis"]
    assert table.loc["ingest_pelvis", "wall time"] == "42 s"
    assert re.fullmatch(r"20\d\d-\d\d-\d\d \d\d:\d\d", table.loc["ingest_pelvis", "finished (UTC)"])
    assert table.loc["ingest_pelvis", "profile"] == "default"
    assert table.loc["ingest_pelvis", "deps"] == f"2 ({hashes.loc['ingest_pelvis', 'deps hash']})"
    assert table.loc["train_pelvis", "outs"] == "0 (—)"
    assert list(table.loc["claims_pelvis"]) == ["not recorded", "—", "—", "—", "—", "—"]


def test_data_hash_reads_data_dvc():
    record = data_hash({"outs": [{"md5": "dd.dir", "size": 631446596, "nfiles": 17451, "path": "data"}],
                        "meta": {"phantom": {"pelvis": "f3f1"}}})
    assert record == {"path": "data", "md5": "dd.dir", "files": "17451", "size": "631 MB",
                      "phantom fingerprint: pelvis": "f3f1"}


def test_profile_settings_flatten_the_overrides_of_the_profile_in_use():
    params = {"profile": "quick", "profiles": {
        "default": {}, "quick": {"detect": {"seeds": [0], "train": {"epochs": 5}}, "c3d": {"device": None}}}}
    quick = profile_settings(params, "quick")
    assert quick.to_dict("records") == [{"setting": "detect.seeds", "value": "[0]"},
                                        {"setting": "detect.train.epochs", "value": "5"},
                                        {"setting": "c3d.device", "value": "null"}]
    assert profile_settings(params, "default").empty
    with pytest.raises(KeyError, match="full"):
        profile_settings(params, "full")


def test_package_versions_read_the_pins_and_the_installed_versions(tmp_path):
    pandas_version = importlib.metadata.version("pandas")
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n'
        f'dependencies = ["pandas=={pandas_version}", "pydantic>=2,<3", "no-such-package-zz==1.0"]\n'
        '[project.optional-dependencies]\ntest = ["pytest[testing]==9.2.0"]\n')
    versions = package_versions(tmp_path / "pyproject.toml").set_index("package")
    assert list(versions.index) == ["pandas", "pydantic", "no-such-package-zz", "pytest"]
    assert versions.loc["pandas", "installed"] == pandas_version
    assert versions.loc["pandas", "pinned"] == f"=={pandas_version}"
    assert versions.loc["pydantic", "pinned"] == ">=2,<3"
    assert versions.loc["no-such-package-zz", "installed"] == "not installed"
    assert versions.loc["pytest", "group"] == "extra: test"
    assert versions.loc["pytest", "pinned"] == "==9.2.0"


def test_machine_names_cores_and_says_cpu_only_without_cuda(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    info = machine()
    assert set(info) == {"Python", "operating system", "CPU cores", "GPU (torch.cuda)"}
    assert info["GPU (torch.cuda)"] == "none: CPU only"
    assert info["CPU cores"].startswith(f"{os.cpu_count()} (")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i: f"GPU {i}")
    assert machine()["GPU (torch.cuda)"] == "GPU 0, GPU 1"


def test_the_reproduce_page_reads_its_yaml_files_by_path(tmp_path):
    import yaml

    from crossmodal.report.book import profile_sentence

    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(DVC_LOCK, sort_keys=False))
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(DVC_YAML, sort_keys=False))
    assert stage_hashes(tmp_path / "dvc.lock").equals(stage_hashes(DVC_LOCK))
    assert stage_times(tmp_path / "dvc.yaml", {}).equals(stage_times(DVC_YAML, {}))
    params = {"profiles": {"default": {}, "quick": {"phantom": {"pelvis": {"n_patients": 6}}}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    quick = profile_settings(tmp_path / "params.yaml", "quick")
    assert quick.to_dict("records") == [{"setting": "phantom.pelvis.n_patients", "value": "6"}]
    assert profile_sentence("quick", quick) == "This run used profile **quick**, which sets:"
    assert "overrides nothing" in profile_sentence("default", profile_settings(params, "default"))
