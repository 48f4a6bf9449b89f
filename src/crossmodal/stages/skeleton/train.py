"""Stage ``train_skeleton``: train every (modality, detector) of ``datasets_skeleton`` and
detect on every slice of its scored series.

Detectors train on ``part2_detect.tile_size`` tiles and detect on whole slices
(``part2_detect.slice_size``) at the same magnification. Fold d0's learning-curve runs
(``learning_curve.csv``: nested shares of its training patients) train beside them and
detect on the same scored slices. Runs train side by side (``compute.detector_runs``,
``'auto'``: as many as the cores hold), as Part 1's runs do, each on
``reproducibility.training_threads`` threads and seeded on its own (``detectors.csv``), so
its weights do not depend on the machine (:mod:`crossmodal.reproducible`). Writes
under ``out``::

    <MOD>/d<k>/        weights.pt, detector.json (ultralytics' run files beside them);
                       learning_curve_<pct>/ the same for each share
    detections.csv     every detection scoring >= predict.ap_conf on every scored slice
                       (letterbox pixels): modality, detector, case_id, z, image_id, x0, y0,
                       x1, y1, score, class_id
    learning_curve_detections.csv   the same for the learning-curve runs, plus ``fraction``
    training.csv       per run: fraction of the training patients (1 for the detectors),
                       patients, tiles, boxes, selected epoch, seconds
"""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crossmodal.detect.env import configure_ultralytics
from crossmodal.detect.env import output_to
from crossmodal.detect.export import read_split
from crossmodal.parallel import compute_setting
from crossmodal.parallel import map_jobs
from crossmodal.parallel import resolve_jobs
from crossmodal.parallel import DEVICE_VARIABLE
from crossmodal.reproducible import cpu_kernels_in_use
from crossmodal.reproducible import threads_for_training
from crossmodal.reproducible import training_threads

DETECTION_COLUMNS = ["modality", "detector", "case_id", "z", "image_id", "x0", "y0", "x1", "y1",
                     "score", "class_id"]
TRAINING_COLUMNS = ["modality", "detector", "train_patients", "val_patients", "scored_patients",
                    "train_slices", "train_boxes", "scored_slices"]


def trainer_options(train: dict[str, Any], det_dir: Path) -> dict[str, Any]:
    """Trainer keyword options. Ultralytics' augmentation ``scale`` shares its name with
    :func:`~crossmodal.detect.train.train_detector`'s model ``scale``, so it travels in an
    ultralytics ``cfg`` file instead (keyword arguments still take precedence over it)."""
    options = dict(train.get("options") or {})
    if "scale" in options:
        import yaml

        det_dir.mkdir(parents=True, exist_ok=True)
        path = det_dir / "augment.yaml"
        path.write_text(yaml.safe_dump({"scale": float(options.pop("scale"))}))
        options["cfg"] = str(path.absolute())
    return options


def train_and_predict_detector(plan: dict[str, Any], *, datasets_dir: Path, out: Path,
                               cfg: dict[str, Any], threads: int | None = None) -> dict[str, Any]:
    """Train one detector (when its training slices hold a lesion) and detect on its
    scored slices; a detector with nothing to learn finds nothing. ``threads``: the CPU
    threads it uses (``reproducibility.training_threads``; default: this process's share)."""
    with threads_for_training(threads):
        return _train_and_predict_detector(plan, datasets_dir=datasets_dir, out=out, cfg=cfg)


def _train_and_predict_detector(plan: dict[str, Any], *, datasets_dir: Path, out: Path,
                                cfg: dict[str, Any]) -> dict[str, Any]:
    from crossmodal.detect.train import predict
    from crossmodal.detect.train import tidy_run_folder
    from crossmodal.detect.train import train_detector

    name, detector, train, pred = plan["modality"], plan["detector"], cfg["train"], cfg["predict"]
    device = os.environ.get(DEVICE_VARIABLE) or cfg.get("device")  # the worker's own GPU, if given
    data = plan.get("data", "data.yaml")
    dataset, det_dir = datasets_dir / name / detector, out / name / detector
    if data != "data.yaml":  # a learning-curve run: its own folder inside the detector's
        det_dir = det_dir / Path(data).stem
    test_rows = read_split(dataset, "test")
    start = time.perf_counter()
    seconds = 0.0
    if plan["trainable"]:
        with output_to(det_dir.parent / f"{det_dir.name}.log"):
            model = train_detector(cfg["detector"], dataset / data, det_dir,
                                   epochs=int(train["epochs"]), imgsz=int(cfg["tile_size"]),
                                   batch=int(train["batch"]), seed=int(plan["seed"]),
                                   device=device, workers=int(train.get("workers", 0)),
                                   scale=cfg.get("scale"), **trainer_options(train, det_dir))
            tidy_run_folder(det_dir)
            seconds = time.perf_counter() - start
            start = time.perf_counter()
            detections = predict(model, [r["image_path"] for r in test_rows],
                                 conf=float(pred["ap_conf"]), batch=int(pred["batch"]),
                                 max_det=int(pred["max_det"]), iou=float(pred["iou"]),
                                 device=device, imgsz=list(cfg["slice_size"]))
    else:
        detections = [np.zeros((0, 6)) for _ in test_rows]
    selected = model.record.get("selected") if plan["trainable"] else "not trained: no lesion"
    row = {"fraction": float(plan.get("fraction", 1.0)),
           **{k: plan.get(k, 0) for k in TRAINING_COLUMNS}, "epochs": int(train["epochs"]),
           "selected": selected, "train_seconds": round(seconds, 1),
           "predict_seconds": round(time.perf_counter() - start, 1), "cpu_kernels": cpu_kernels_in_use()}
    found = [(name, detector, r["case_id"], r["z"], r["image_id"], x0, y0, x1, y1, score, int(cls))
             for r, det in zip(test_rows, detections) for x0, y0, x1, y1, score, cls in det]
    return {"training": row, "detections": found}


def run(params: dict[str, Any], *, datasets_dir: str | Path,
        out: str | Path) -> dict[str, pd.DataFrame]:
    """Train and predict every detector of ``<datasets_dir>/detectors.csv`` (see module doc)."""
    configure_ultralytics()
    cfg = params["part2_detect"]
    datasets_dir, out = Path(datasets_dir), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plans = pd.read_csv(datasets_dir / "detectors.csv").to_dict("records")
    curve_file = datasets_dir / "learning_curve.csv"
    # a share's scored side is its detector's: its row leaves those counts at 0
    curve = pd.read_csv(curve_file).to_dict("records") if curve_file.exists() else []
    plans += curve  # the smaller runs last: they fill the cores as the detectors finish
    threads = training_threads(params.get("reproducibility", {}))
    at_once = resolve_jobs(compute_setting(params, "detector_runs"), len(plans), threads_per_job=threads)
    start = time.perf_counter()
    one = functools.partial(train_and_predict_detector, datasets_dir=datasets_dir, out=out, cfg=cfg,
                            threads=threads)
    results = map_jobs(one, plans, jobs=at_once, progress=True,
                       desc=f"part 2 detectors ({at_once} at once)", unit="detector",
                       worker_devices=params.get("compute", {}).get("devices"))
    training = pd.DataFrame([r["training"] for r in results]).assign(
        runs_at_once=at_once, stage_seconds=round(time.perf_counter() - start, 1))
    found = pd.DataFrame([(*d, r["training"]["fraction"]) for r in results
                          for d in r["detections"]], columns=[*DETECTION_COLUMNS, "fraction"])
    main = found["fraction"] == 1.0
    detections = found[main].drop(columns="fraction").reset_index(drop=True)
    curve_detections = found[~main].reset_index(drop=True)
    training.to_csv(out / "training.csv", index=False)
    detections.to_csv(out / "detections.csv", index=False)
    curve_detections.to_csv(out / "learning_curve_detections.csv", index=False)
    return {"training": training, "detections": detections,
            "learning_curve_detections": curve_detections}
