"""Part 1 detection stages without training: datasets shared split, evaluation of known
predictions, and the claims verdicts computed from them."""

from __future__ import annotations

import copy
import json
import os

import numpy as np
import pandas as pd
import pytest

from conftest import REPO
from crossmodal.detect.export import read_split
from crossmodal.params import load_params
from crossmodal.stages.pelvis import planned_runs
from crossmodal.stages.pelvis import run_dir
from crossmodal.stages.pelvis.claims import claims_table
from crossmodal.stages.pelvis.claims import resolved_analysis
from crossmodal.stages.pelvis.datasets import export_datasets
from crossmodal.stages.pelvis.evaluate import evaluate_runs


@pytest.fixture(scope="module")
def detect_setup(part1_stage, tmp_path_factory):
    _, align_dir, align_cfg, _ = part1_stage
    cfg = copy.deepcopy(load_params(REPO / "params.yaml", "quick")["detect"])
    cfg["inputs"] = list(align_cfg["inputs"])  # adaptive_region, adaptive_no_crop, pet_only, dwt
    cfg["detectors"] = [{"name": "fake", "inputs": "all"}]
    cfg["reference"] = None  # the non-learned reference has its own test below
    claims = cfg["analysis"]["claims"]
    claims["C1"]["references"], claims["C2"]["references"], claims["C3"]["references"] = ["pet_only"], ["dwt"], ["pet_only"]
    cfg["analysis"]["matched_sensitivity"] = 0.5
    cfg["analysis"]["controls"] = {}
    cfg["evaluate"].update(class_names=["cervical_tumour", "lymph_node"], matched_sensitivity=0.5,
                           primary_class="cervical_tumour")
    cfg["split"]["fractions"] = [0.34, 0.33, 0.33]
    out = tmp_path_factory.mktemp("datasets")
    split = export_datasets(align_dir, out, cfg, class_names=["cervical_tumour", "lymph_node"])
    return cfg, out, split


def test_every_input_shares_one_patient_split(detect_setup):
    cfg, out, split = detect_setup
    assert split["patient"].is_unique and set(split["split"]) == {"train", "val", "test"}
    for name in cfg["inputs"]:
        for s in ("train", "val", "test"):
            cases = {i["case_id"] for i in read_split(out / name, s)}
            assert cases == set(split.loc[split.split == s, "case_id"])


def test_coco_json_holds_the_yolo_boxes(detect_setup):
    cfg, out, _ = detect_setup
    coco = json.loads((out / "adaptive_region" / "coco_test.json").read_text())
    items = read_split(out / "adaptive_region", "test")
    assert len(coco["images"]) == len(items)
    yolo = sorted(tuple(np.round(b, 1)) for i in items for b in i["boxes"])
    theirs = sorted(tuple(np.round([x, y, x + w, y + h], 1)) for x, y, w, h in (a["bbox"] for a in coco["annotations"]))
    assert yolo == theirs and len(yolo) > 0


def write_predictions(cfg, datasets, runs, kind_of):
    for run in planned_runs(cfg):
        folder = run_dir(runs, run)
        folder.mkdir(parents=True)
        for split in ("val", "test"):
            rows = []
            for item in read_split(datasets / run["input"], split):
                kind = kind_of[run["input"]]
                if kind in ("perfect", "noisy"):
                    for b, c in zip(item["boxes"], item["classes"]):
                        rows.append((item["image_id"], *b, 0.9, int(c)))
                if kind == "noisy":  # a confident false positive on every slice
                    rows.append((item["image_id"], 1.0, 1.0, 6.0, 6.0, 0.95, 0))
            pd.DataFrame(rows, columns=["image_id", "x0", "y0", "x1", "y1", "score", "class_id"]).to_csv(
                folder / f"predictions_{split}.csv", index=False)


def test_evaluation_and_claims_on_known_predictions(detect_setup, tmp_path):
    cfg, datasets, _ = detect_setup
    runs = tmp_path / "runs"
    write_predictions(cfg, datasets, runs, {"adaptive_region": "perfect", "adaptive_no_crop": "perfect",
                                            "pet_only": "noisy", "dwt": "none"})
    tables = evaluate_runs(datasets, runs, tmp_path / "eval", cfg, metrics_json=tmp_path / "metrics" / "evaluate.json")
    m = tables["metrics"].set_index("input")
    assert m.loc["adaptive_region", "AP50"] == pytest.approx(1.0)
    assert m.loc["dwt", "AP50"] == 0.0
    assert m.loc["adaptive_region", "FP_per_slice"] == 0.0 and m.loc["pet_only", "FP_per_slice"] > 0.5
    assert m.loc["adaptive_region", "lesion_sensitivity"] == pytest.approx(1.0)
    assert m.loc["adaptive_region", "sens_at_1fp"] == pytest.approx(1.0)
    assert m.loc["adaptive_region", "fp_per_patient_at_sens"] == 0.0 and m.loc["pet_only", "fp_per_patient_at_sens"] > 0
    claims = claims_table(tables["metrics"], tables["differences"], proposed=cfg["proposed"],
                          analysis=resolved_analysis(_params(cfg))).set_index("claim")
    assert claims.loc["C2", "ours"] == pytest.approx(1.0)
    assert claims.loc["C3", "ours"] < 0
    assert claims.loc["C2", "thesis"] == pytest.approx(0.089)
    assert "C4" in claims.index
    flat = json.loads((tmp_path / "metrics" / "evaluate.json").read_text())
    assert flat["fake/adaptive_region/AP50"] == pytest.approx(1.0)
    # Scored side by side on two processes: the same tables, byte for byte.
    evaluate_runs(datasets, runs, tmp_path / "eval2", cfg, workers=2)
    assert all((tmp_path / "eval2" / f.name).read_bytes() == f.read_bytes() for f in (tmp_path / "eval").glob("*.csv"))


def test_the_non_learned_reference_runs_and_is_evaluated_like_a_run(detect_setup, tmp_path):
    from crossmodal.stages.pelvis.train import reference_rule
    from crossmodal.stages.pelvis.train import train_and_predict

    cfg, datasets, _ = detect_setup
    params = load_params(REPO / "params.yaml", "quick")
    rule = reference_rule(params)
    only_reference = {**cfg, "detectors": [], "reference": rule}
    table = train_and_predict(datasets, tmp_path / "runs", only_reference)
    assert list(table["detector"]) == ["suv_threshold"] and (table["epochs_trained"] == 0).all()
    folder = tmp_path / "runs" / "suv_threshold" / rule["input"] / "seed0"
    predictions = pd.read_csv(folder / "predictions_test.csv")
    assert len(predictions) and predictions["score"].between(0, 1).all()
    evaluated = evaluate_runs(datasets, tmp_path / "runs", tmp_path / "eval", {**only_reference, "inputs": cfg["inputs"]})
    row = evaluated["metrics"].iloc[0]
    assert row["detector"] == "suv_threshold" and 0 <= row["AP50"] <= 1


def _params(detect_cfg: dict) -> dict:
    return {"detect": detect_cfg, "cohort": {"pelvis": {"label_names": {1: "cervical_tumour", 2: "lymph_node"}}},
            "study": {"name": "pelvis", "cohort": "pelvis"}}


def test_ci_cells_for_book_tables():
    from crossmodal.report.common import format_ci

    assert format_ci(0.5, 0.25, 0.75) == "0.50 [0.25, 0.75]"
    assert format_ci(0.1, -0.05, 0.2, digits=3, signed=True) == "+0.100 [-0.050, +0.200]"
    assert format_ci(0.1, np.nan, np.nan, digits=1) == "0.1"
    assert format_ci(np.nan, 0.0, 1.0) == "—"


@pytest.mark.slow
def test_detector_runs_train_side_by_side(detect_setup, tmp_path):
    from crossmodal.detect.env import configure_ultralytics
    from crossmodal.stages.pelvis.train import train_and_predict

    configure_ultralytics(os.environ.get("YOLO_CONFIG_DIR") or tmp_path / "yolo")  # one folder per session
    cfg, datasets, _ = detect_setup
    cfg = copy.deepcopy(cfg)
    cfg["detectors"] = [{"name": "yolov8", "inputs": ["adaptive_region", "pet_only"]}]
    cfg["train"].update(epochs=1, imgsz=64, batch=4, device="cpu")
    runs = train_and_predict(datasets, tmp_path / "runs", cfg, runs_at_once=2)
    assert set(runs["input"]) == {"adaptive_region", "pet_only"} and (runs["runs_at_once"] == 2).all()
    for run in planned_runs(cfg):
        folder = run_dir(tmp_path / "runs", run)
        record = json.loads((folder / "detector.json").read_text())
        assert (record["name"], record["seed"], len(record["history"])) == ("yolov8", run["seed"], 1)
        # nothing the pipeline would store twice: no dataset view, no duplicate checkpoints
        assert not (folder / "dataset").exists() and not (folder / "ultralytics" / "weights").exists()
        assert record["data_yaml"] == str((datasets / run["input"] / "data.yaml").absolute())
        for split in ("val", "test"):
            predicted = pd.read_csv(folder / f"predictions_{split}.csv")
            assert list(predicted.columns) == ["image_id", "x0", "y0", "x1", "y1", "score", "class_id"]
            known = {item["image_id"] for item in read_split(datasets / run["input"], split)}
            assert set(predicted["image_id"]) <= known
    # Prediction ran as its own task in a worker; again here, from the stored weights: the same bytes.
    import crossmodal.stages.pelvis.train as stage

    trained = runs.iloc[-1].to_dict()
    folder = run_dir(tmp_path / "runs", trained)
    written = {split: (folder / f"predictions_{split}.csv").read_bytes() for split in ("val", "test")}
    again = stage.predict_run({k: v for k, v in trained.items() if k != "predict_seconds"}, datasets,
                              tmp_path / "runs", cfg)
    assert again["predict_seconds"] > 0
    assert all((folder / f"predictions_{split}.csv").read_bytes() == written[split] for split in written)


def test_runs_train_on_their_worker_s_device(detect_setup, tmp_path, monkeypatch):
    import crossmodal.detect.train
    import crossmodal.stages.pelvis.train as stage
    from crossmodal.parallel import DEVICE_VARIABLE

    cfg = {**copy.deepcopy(detect_setup[0]), "devices": [1]}
    cfg["detectors"] = [{"name": "yolov8", "inputs": ["adaptive_region", "pet_only"]}]
    train_run = stage.train_run
    monkeypatch.setattr(stage, "train_run", lambda run, **_: {**run, "device": os.environ.get(DEVICE_VARIABLE)})
    monkeypatch.setattr(stage, "predict_run",
                        lambda trained, **_: {**trained, "predict_device": os.environ.get(DEVICE_VARIABLE)})
    (tmp_path / "runs").mkdir()
    runs = stage.train_and_predict(detect_setup[1], tmp_path / "runs", cfg, runs_at_once=1)
    assert list(runs["device"]) == list(runs["predict_device"]) == ["cuda:1", "cuda:1"]

    class Trained(Exception):
        pass

    def train_detector(*_, device, **__):
        raise Trained(device)

    monkeypatch.setattr(crossmodal.detect.train, "train_detector", train_detector)
    monkeypatch.setenv(DEVICE_VARIABLE, "cuda:3")
    with pytest.raises(Trained, match="cuda:3"):  # the worker's device wins over detect.train.device
        train_run(runs.iloc[0].to_dict(), detect_setup[1], tmp_path / "runs", cfg)


def test_export_does_not_depend_on_the_number_of_processes(detect_setup, part1_stage, tmp_path):
    cfg, serial_out, _ = detect_setup
    _, align_dir, _, _ = part1_stage
    export_datasets(align_dir, tmp_path, cfg, class_names=["cervical_tumour", "lymph_node"], jobs=2)

    def files(root):
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
                if p.is_file() and p.suffix != ".yaml"}  # data.yaml names its own folder

    serial, parallel = files(serial_out), files(tmp_path)
    assert serial.keys() == parallel.keys() and len(serial) > 10
    assert all(serial[k] == parallel[k] for k in serial)


def test_every_learned_run_trains_on_the_params_threads_whatever_the_cores():
    from crossmodal.stages.pelvis.train import with_threads

    runs = [{"detector": "yolov8", "input": f"in{k}", "seed": 0} for k in range(5)]
    runs.append({"detector": "suv_threshold", "input": "in0", "seed": 0})
    planned = with_threads(runs, 2, reference="suv_threshold")
    assert planned[0]["detector"] == "suv_threshold" and planned[0]["threads"] == 1  # the reference first
    assert [r["threads"] for r in planned[1:]] == [2] * 5  # the fifth run too: no idle-core bonus
    assert [r["input"] for r in planned[1:]] == [f"in{k}" for k in range(5)]
    assert "threads" not in runs[0]  # the plan itself is not changed


def test_runs_summary_sentence():
    from crossmodal.report.detection import runs_summary

    runs = pd.DataFrame({"detector": ["yolov8", "yolov8", "fasterrcnn"], "epochs_trained": [30, 28, 30],
                         "device": ["cuda"] * 3, "runs_at_once": [3] * 3, "train_seconds": [60.0, 60.0, 120.0],
                         "stage_seconds": [130.0] * 3})
    assert runs_summary(runs) == ("3 detector runs (2 detectors) of 28-30 epochs on cuda, 3 at a time: "
                                  "4.0 min of training summed over runs, 2.2 min for the whole stage.")
    breakdown = runs.assign(load_seconds=[5.0, 5.0, 10.0], step_seconds=[40.0, 40.0, 80.0],
                            val_seconds=[10.0, 10.0, 20.0], predict_seconds=[5.0, 5.0, 10.0])
    assert runs_summary(breakdown).endswith(
        "stage. Of the learned runs' time: 8 % waiting for data, 67 % training steps, "
        "17 % validation and checkpoints, 8 % predicting the validation and test slices.")


def test_claims_stage_reads_the_evaluation_and_writes_dvc_metrics(detect_setup, tmp_path):
    from crossmodal.stages.pelvis import claims as claims_stage

    cfg, datasets, split = detect_setup
    runs = tmp_path / "runs"
    write_predictions(cfg, datasets, runs, {"adaptive_region": "perfect", "adaptive_no_crop": "perfect",
                                            "pet_only": "noisy", "dwt": "none"})
    tables = evaluate_runs(datasets, runs, tmp_path / "eval", cfg)
    params = _params(cfg)
    claims = claims_stage.run(params, eval_dir=tmp_path / "eval", out=tmp_path / "claims",
                              metrics=tmp_path / "metrics" / "claims.json")
    expected = claims_table(pd.read_csv(tmp_path / "eval" / "metrics.csv"),
                            pd.read_csv(tmp_path / "eval" / "differences.csv"), proposed=cfg["proposed"],
                            analysis=resolved_analysis(params))
    pd.testing.assert_frame_equal(claims, expected)
    assert (tmp_path / "claims" / "claims.csv").read_text() == expected.to_csv(index=False)
    headline = json.loads((tmp_path / "metrics" / "claims.json").read_text())
    assert headline["C2"] == claims.set_index("claim").loc["C2", "verdict"] and set(headline) == set(claims["claim"])
    assert (tables["metrics"]["test_patients"] == int((split["split"] == "test").sum())).all()


def test_cli_stage_writes_what_the_stage_function_writes(part1_stage, tmp_path):
    """``crossmodal stage pelvis.datasets ...`` and ``datasets.run(params, ...)``: same files."""
    import yaml
    from typer.testing import CliRunner

    from crossmodal.cli import app
    from crossmodal.stages.pelvis import datasets

    _, align_dir, align_cfg, _ = part1_stage
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["profile"] = "default"
    raw["detect"]["detectors"] = [{"name": "yolov8", "inputs": list(align_cfg["inputs"])}]
    raw["compute"]["jobs"] = 1
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(raw))  # keys sorted: "lung" is now the first study
    result = CliRunner().invoke(app, ["stage", "pelvis.datasets", f"align_dir={align_dir}",
                                      f"out={tmp_path / 'cli'}", "--params", str(params_file), "--study", "pelvis"])
    assert result.exit_code == 0, result.output
    datasets.run(load_params(params_file, study="pelvis"), align_dir=align_dir, out=tmp_path / "function")
    refused = CliRunner().invoke(app, ["stage", "pelvis.datasets", "--params", str(params_file), "--study", "liver"])
    assert refused.exit_code == 2 and "study 'liver' is not defined under 'studies'" in refused.output

    def files(root):
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
                if p.is_file() and p.suffix != ".yaml"}  # data.yaml names its own folder

    by_cli, by_function = files(tmp_path / "cli"), files(tmp_path / "function")
    assert by_cli.keys() == by_function.keys() and {"split.csv", "hot_negatives.csv"} <= by_cli.keys()
    assert {f"{name}/coco_test.json" for name in align_cfg["inputs"]} <= by_cli.keys()
    assert all(by_cli[k] == by_function[k] for k in by_cli)


def test_a_test_only_cohort_is_exported_whole_and_kept_apart_from_development(detect_setup, part1_stage, tmp_path):
    from crossmodal.stages.pelvis.datasets import export_test_datasets

    cfg, _, _ = detect_setup
    _, align_dir, _, _ = part1_stage
    with pytest.raises(ValueError, match="shares patients or cases with the development cohort"):
        export_test_datasets(align_dir, tmp_path / "refused", cfg, class_names=["cervical_tumour", "lymph_node"],
                             dev_align_dir=align_dir)
    dev = tmp_path / "other_dev"
    dev.mkdir()
    slices = pd.read_csv(align_dir / "slices.csv")
    slices.assign(patient="dev-" + slices["patient"], case_id="dev-" + slices["case_id"]).to_csv(
        dev / "slices.csv", index=False)
    split = export_test_datasets(align_dir, tmp_path / "test_only", cfg, class_names=["cervical_tumour", "lymph_node"],
                                 dev_align_dir=dev)
    assert set(split["split"]) == {"test"} and set(split["case_id"]) == set(slices["case_id"])
    for name in cfg["inputs"]:
        assert {i["case_id"] for i in read_split(tmp_path / "test_only" / name, "test")} == set(slices["case_id"])
        assert not read_split(tmp_path / "test_only" / name, "train") and not read_split(tmp_path / "test_only" / name, "val")


def test_operating_confidences_can_come_from_another_cohort_s_validation_patients(detect_setup, tmp_path):
    cfg, datasets, _ = detect_setup
    kinds = {"adaptive_region": "perfect", "adaptive_no_crop": "perfect", "pet_only": "perfect", "dwt": "perfect"}
    write_predictions(cfg, datasets, tmp_path / "tested", kinds)
    write_predictions(cfg, datasets, tmp_path / "phantom", kinds)
    for path in (tmp_path / "phantom").rglob("predictions_val.csv"):  # the other cohort's runs score lower
        pd.read_csv(path).assign(score=0.4).to_csv(path, index=False)
    own = evaluate_runs(datasets, tmp_path / "tested", tmp_path / "own", cfg)["metrics"]
    other = evaluate_runs(datasets, tmp_path / "tested", tmp_path / "other", cfg,
                          validation_from=(datasets, tmp_path / "phantom"))["metrics"]
    assert (own["conf"] == 0.9).all() and (other["conf"] == 0.4).all()
    assert np.allclose(own["AP50"], other["AP50"])  # AP does not depend on the operating point
