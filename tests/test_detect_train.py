"""Detector training smoke tests: every family trains from scratch and predicts, offline.

Tiny on purpose (64-px slices, one epoch): they check the plumbing (files, shapes,
coordinates, determinism, no network, no cache files in the export), not accuracy.
"""

from __future__ import annotations

import json
import os
import socket

import numpy as np
import pytest

from crossmodal.detect.dataset import SliceRecord
from crossmodal.detect.dataset import patient_split
from crossmodal.detect.export import export_yolo
from crossmodal.detect.export import read_split

pytestmark = pytest.mark.slow

SIZE = 64


def _synthetic_records(n_cases=6, per_case=2, seed=0):
    """Bright squares on noise, one or two per slice, plus one empty slice."""
    rng = np.random.default_rng(seed)
    records = []
    for c in range(n_cases):
        for z in range(per_case):
            image = rng.uniform(0.0, 0.3, size=(SIZE, SIZE, 3))
            boxes = []
            n = 0 if (c, z) == (0, 0) else int(rng.integers(1, 3))
            for _ in range(n):
                s = int(rng.integers(8, 16))
                x, y = (int(v) for v in rng.integers(0, SIZE - s, size=2))
                image[y : y + s, x : x + s] = rng.uniform(0.8, 1.0)
                boxes.append((x, y, x + s, y + s))
            records.append(SliceRecord(case_id=f"c{c}", z=z, image=image, boxes=boxes))
    return records


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("det")
    records = _synthetic_records()
    split = patient_split(
        [r.case_id for r in records], [0] * len(records), fractions=(0.5, 0.25, 0.25), seed=0
    )
    data_yaml = export_yolo(records, root / "export", split_of=split)
    return data_yaml


@pytest.fixture(scope="module")
def yolo_config(tmp_path_factory):
    from crossmodal.detect.env import configure_ultralytics

    return configure_ultralytics(tmp_path_factory.mktemp("yolo_cfg"))


@pytest.fixture
def no_network(monkeypatch):
    """Record (and refuse) every DNS lookup and connection attempt."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


def _check_predictions(detections, n_images):
    assert len(detections) == n_images
    for det in detections:
        assert det.ndim == 2 and det.shape[1] == 6
        assert np.all(np.isfinite(det))
        if len(det):
            assert np.all((det[:, 4] >= 0.001) & (det[:, 4] <= 1))
            assert np.all(np.diff(det[:, 4]) <= 0)  # sorted by score
            assert np.all(det[:, 5] == 0)
            assert np.all(det[:, 2] >= det[:, 0]) and np.all(det[:, 3] >= det[:, 1])
            assert det[:, :4].min() >= -1 and det[:, :4].max() <= SIZE + 1


@pytest.mark.parametrize("name", ["yolov8", "yolov5u", "yolo11", "fasterrcnn"])
def test_detector_trains_and_predicts(name, dataset, yolo_config, tmp_path, no_network):
    from crossmodal.detect import metrics as ev
    from crossmodal.detect.train import load_detector
    from crossmodal.detect.train import predict
    from crossmodal.detect.train import train_detector

    det = train_detector(
        name,
        dataset,
        tmp_path / name,
        epochs=1,
        imgsz=SIZE,
        batch=4,
        seed=0,
        config_dir=yolo_config.parent,
    )
    assert det.weights.is_file() and det.weights.stat().st_size > 0
    record = json.loads((tmp_path / name / "detector.json").read_text())
    assert record["name"] == name and record["seed"] == 0 and record["imgsz"] == SIZE
    assert record["device"] in ("cpu", "cuda") and record["class_names"] == ["lesion"]
    assert len(record["history"]) == 1
    if record["family"] == "ultralytics":  # where the epoch's time went (EpochClock)
        epoch = record["history"][0]
        assert epoch["load_seconds"] > 0 and epoch["step_seconds"] > 0 and epoch["val_seconds"] > 0
        assert epoch["load_seconds"] + epoch["step_seconds"] <= epoch["train_seconds"] + 1e-6
        assert epoch["train_seconds"] + epoch["val_seconds"] <= record["train_seconds"]
    # the export folder stays untouched: ultralytics' label caches go to the mirror
    assert not list(dataset.parent.rglob("*.cache"))
    test_rows = read_split(dataset.parent, "test")
    paths = [r["image_path"] for r in test_rows]
    detections = predict(det, paths)
    _check_predictions(detections, len(paths))
    # reloading from disk gives the same predictions
    again = predict(load_detector(tmp_path / name), paths)
    for a, b in zip(detections, again):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)
    # the predictions plug straight into the metrics
    gt = ev.ground_truth(
        [r["image_id"] for r in test_rows],
        [r["case_id"] for r in test_rows],
        [r["boxes"] for r in test_rows],
    )
    ap = ev.ap50(gt, ev.predictions([r["image_id"] for r in test_rows], detections))
    assert 0.0 <= ap <= 1.0
    assert no_network == []


@pytest.mark.parametrize("name", ["yolov8", "fasterrcnn"])
def test_training_is_deterministic(name, dataset, yolo_config, tmp_path):
    import torch

    from crossmodal.detect.train import train_detector

    runs = [
        train_detector(
            name,
            dataset,
            tmp_path / f"run{i}",
            epochs=1,
            imgsz=SIZE,
            batch=4,
            seed=7,
            config_dir=yolo_config.parent,
        )
        for i in range(2)
    ]

    def state(det):
        ckpt = torch.load(det.weights, map_location="cpu", weights_only=False)
        model = ckpt["model"]
        return model if isinstance(model, dict) else model.float().state_dict()

    a, b = state(runs[0]), state(runs[1])
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_unknown_detector_and_options(dataset, tmp_path):
    from crossmodal.detect.train import DETECTORS
    from crossmodal.detect.train import train_detector

    assert {"yolov5u", "yolov8", "yolo11", "fasterrcnn"} <= set(DETECTORS)
    assert DETECTORS["yolov5u"].config() == "yolov5n.yaml"
    with pytest.raises(KeyError):
        train_detector("yolov99", dataset, tmp_path, epochs=1, imgsz=SIZE, batch=2, seed=0)
    with pytest.raises(TypeError):
        train_detector(
            "fasterrcnn", dataset, tmp_path, epochs=1, imgsz=SIZE, batch=2, seed=0, mosaic=1.0
        )


@pytest.mark.parametrize(
    ("name", "option"),
    [("fasterrcnn", "mosaic"), ("fasterrcnn", "lr_0"), ("yolov8", "mosaik"), ("rtdetr", "lr_0")],
)
def test_trainers_reject_unknown_options_naming_option_and_detector(
    name, option, dataset, yolo_config, tmp_path
):
    from crossmodal.detect.train import UnknownOptionError
    from crossmodal.detect.train import train_detector

    with pytest.raises(ValueError, match=rf"detector '{name}' has no option '{option}'") as err:
        train_detector(name, dataset, tmp_path / "run", epochs=1, imgsz=SIZE, batch=2, seed=0,
                       config_dir=yolo_config.parent, **{option: 1.0})
    assert isinstance(err.value, UnknownOptionError)
    assert not (tmp_path / "run").exists()  # rejected before anything is written


def test_detector_options_come_from_each_family(yolo_config):
    from crossmodal.detect.train import FASTERRCNN_DEFAULTS
    from crossmodal.detect.train import check_options
    from crossmodal.detect.train import detector_options

    yolo = detector_options("yolov8", config_dir=yolo_config.parent)
    # ultralytics' own training keys, including ones this project never sets
    assert {"lr0", "mosaic", "hsv_h", "patience", "close_mosaic"} <= set(yolo)
    assert "anchor_sizes" not in yolo
    assert set(detector_options("fasterrcnn")) == set(FASTERRCNN_DEFAULTS)
    assert "mosaic" not in detector_options("fasterrcnn")
    check_options("yolov8", {"mosaic": 0.0, "lr0": 0.01}, config_dir=yolo_config.parent)
    check_options("fasterrcnn", {"anchor_sizes": ((8,),), "time": 0.1})
    with pytest.raises(KeyError):
        detector_options("yolov99")


def test_configure_ultralytics_is_offline_and_idempotent(yolo_config):
    import os

    from crossmodal.detect.env import configure_ultralytics

    assert os.environ["YOLO_OFFLINE"] == "1"
    assert (yolo_config / "Arial.ttf").stat().st_size > 0
    assert (yolo_config / "Arial.Unicode.ttf").is_file()
    assert configure_ultralytics() == yolo_config  # a second call changes nothing


def test_fasterrcnn_time_budget_stops_training(dataset, tmp_path):
    from crossmodal.detect.train import train_detector

    # 50 epochs asked, but a budget far below one epoch: re-planned to the single epoch run
    det = train_detector("fasterrcnn", dataset, tmp_path / "budget", epochs=50, imgsz=SIZE, batch=4,
                         seed=0, time=1e-7, val=False)
    assert [row["epoch"] for row in det.record["history"]] == [1]
    assert det.weights.is_file()


def test_output_to_sends_every_write_to_the_log_and_restores(tmp_path, capfd):
    from crossmodal.detect.env import output_to

    with output_to(tmp_path / "run.log"):
        print("from python")
        os.write(1, b"from fd 1\n")
        os.write(2, b"from fd 2\n")
    print("after")
    log = (tmp_path / "run.log").read_text()
    assert "from python" in log and "from fd 1" in log and "from fd 2" in log
    captured = capfd.readouterr()
    assert "after" in captured.out and "from fd" not in captured.out + captured.err
