"""Stage ``train_pelvis``: train every (detector, input, seed) run; store val/test detections.

Outputs under ``out``: ``<detector>/<input>/seed<seed>/`` (the trainer's record
``detector.json`` and weights, ``predictions_val.csv``, ``predictions_test.csv``) and
``runs.csv`` (one row per run: epochs, seconds, where they went (waiting for data, training
steps, validation, prediction), device, runs at once, stage seconds).
"""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path
from typing import Any

import pandas as pd

from crossmodal.detect.export import read_split
from crossmodal.detect.env import configure_ultralytics
from crossmodal.detect.env import output_to
from crossmodal.detect.matching import predictions
from crossmodal.parallel import DEVICE_VARIABLE
from crossmodal.parallel import compute_setting
from crossmodal.parallel import map_jobs
from crossmodal.parallel import resolve_jobs
from crossmodal.reproducible import cpu_kernels_in_use
from crossmodal.reproducible import threads_for_training
from crossmodal.reproducible import training_threads
from crossmodal.stages.pelvis import planned_runs
from crossmodal.stages.pelvis import run_dir


def run(params: dict[str, Any], *, datasets_dir: str | Path, out: str | Path) -> pd.DataFrame:
    """Train the runs of ``detect.detectors`` (params ``detect``), side by side as
    ``compute.detector_runs`` allows."""
    configure_ultralytics()
    return train_and_predict(datasets_dir, out, training_config(params), progress=True,
                             runs_at_once=compute_setting(params, "detector_runs"))


def training_config(params: dict[str, Any]) -> dict[str, Any]:
    """What training and prediction need of the params (``detect``, devices, threads)."""
    return {"detectors": params["detect"]["detectors"], "inputs": params["detect"]["inputs"],
            "seeds": params["detect"]["seeds"], "train": params["detect"]["train"],
            "predict": params["detect"]["predict"], "reference": reference_rule(params),
            "devices": params.get("compute", {}).get("devices"),
            "threads": training_threads(params.get("reproducibility", {}))}


def train_and_predict(datasets_dir: str | Path, out_dir: str | Path, cfg: dict[str, Any], *,
                      progress: bool = False, runs_at_once: int | str = 1) -> pd.DataFrame:
    """Train every planned run from scratch and store its val/test detections.

    Every learned run trains on ``cfg['threads']`` CPU threads (``reproducibility.
    training_threads``, default 1) whatever the machine: on the CPU a run's weights depend
    on its thread count (float sums run in another order), so a fixed count lets another
    machine reproduce them. ``runs_at_once`` runs train side by side in their own
    processes (``'auto'``: as many as the cores hold at that thread count). Small
    detectors use a second thread poorly: on 2 cores, two one-thread YOLOv8n runs side by
    side trained 19 % faster than one after the other on two threads; with a GPU each run
    still loads and augments its images on the CPU. Each run is seeded on its own.
    """
    datasets_dir, out = Path(datasets_dir), Path(out_dir)
    # Two tasks per run, training then prediction, so the prediction of the first runs
    # overlaps the training of the last instead of a core idling in the last round.
    return map_planned_runs(functools.partial(train_run, datasets_dir=datasets_dir, out=out, cfg=cfg), cfg, out,
                            runs_at_once=runs_at_once, progress=progress,
                            then=functools.partial(predict_run, datasets_dir=datasets_dir, out=out, cfg=cfg))


def map_planned_runs(function, cfg: dict[str, Any], out: Path, *, runs_at_once: int | str = 1,
                     progress: bool = False, then=None) -> pd.DataFrame:
    """``function(run)`` (then ``then``) for every planned run, each on its ``threads``, side
    by side as ``runs_at_once`` allows, a worker's device each; the rows, with the runs at
    once and the wall time of the whole map, written to ``out/runs.csv``."""
    threads = int(cfg.get("threads", 1))
    runs = with_threads(planned_runs(cfg), threads, reference=(cfg.get("reference") or {}).get("name"))
    at_once = resolve_jobs(runs_at_once, len(runs), threads_per_job=threads)
    start = time.perf_counter()
    rows = map_jobs(function, runs, jobs=at_once, progress=progress, desc=f"detector runs ({at_once} at once)",
                    unit="run", worker_devices=cfg.get("devices"), then=then)
    table = pd.DataFrame(rows).assign(runs_at_once=at_once, stage_seconds=time.perf_counter() - start)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "runs.csv", index=False)
    return table


def with_threads(runs: list[dict[str, Any]], threads: int, *, reference: str | None = None
                 ) -> list[dict[str, Any]]:
    """Each run with the CPU ``threads`` it trains on, the non-learned reference first (on
    one thread: it trains nothing). The count comes from the params, never from the
    machine's cores or from which run finished first, so the weights do not either."""
    learned = [dict(r, threads=threads) for r in runs if r["detector"] != reference]
    return [dict(r, threads=1) for r in runs if r["detector"] == reference] + learned


def reference_rule(params: dict[str, Any]) -> dict[str, Any] | None:
    """``detect.reference`` with the windows of the images it reads (``align_fuse.enhance``)."""
    reference = params["detect"].get("reference")
    if not reference:
        return None
    enhance = params["align_fuse"]["enhance"]
    return {**reference, "ct_window": list(enhance["ct_window"]), "suv_max": float(enhance["suv_max"])}


def predict_reference(run: dict[str, Any], datasets_dir: Path, out: Path, rule: dict[str, Any], *,
                      splits: tuple[str, ...] = ("val", "test")) -> dict[str, Any]:
    """The non-learned reference's detections on ``splits`` (nothing is trained)."""
    from crossmodal.detect.threshold import predict_suv_threshold

    folder = run_dir(out, run)
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for split in splits:
        items = read_split(datasets_dir / run["input"], split)
        detections = predict_suv_threshold([i["image_path"] for i in items], ct_window=rule["ct_window"],
                                           suv_max=rule["suv_max"], suv_threshold=rule["suv_threshold"],
                                           water_hu=rule["water_hu"], min_pixels=rule["min_pixels"])
        predictions([i["image_id"] for i in items], detections).to_csv(folder / f"predictions_{split}.csv", index=False)
    return {**run, "epochs_trained": 0, "train_seconds": time.perf_counter() - start, "device": "cpu"}


def train_run(run: dict[str, Any], datasets_dir: Path, out: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    """Train one (detector, input, seed) run from scratch on its ``threads`` (default: this
    process's share); the non-learned reference detects at once (it trains nothing)."""
    if cfg.get("reference") and run["detector"] == cfg["reference"]["name"]:
        return predict_reference(run, datasets_dir, out, cfg["reference"])
    from crossmodal.detect.train import tidy_run_folder
    from crossmodal.detect.train import train_detector

    folder = run_dir(out, run)
    train = cfg["train"]
    options = dict(train.get("options", {}).get(run["detector"], {}))
    with threads_for_training(run.get("threads")), output_to(folder.parent / f"{folder.name}.log"):
        detector = train_detector(run["detector"], datasets_dir / run["input"] / "data.yaml", folder,
                                  epochs=int(train["epochs"]), imgsz=int(train["imgsz"]),
                                  batch=int(train["batch"]), seed=run["seed"],
                                  device=os.environ.get(DEVICE_VARIABLE) or train.get("device"),
                                  **options)
        tidy_run_folder(folder)
    history = detector.record.get("history", [])
    return {**run, "epochs_trained": len(history), "train_seconds": detector.record.get("train_seconds"),
            **time_breakdown(history), "device": detector.record.get("device"), "cpu_kernels": cpu_kernels_in_use()}


def predict_run(trained: dict[str, Any], datasets_dir: Path, out: Path, cfg: dict[str, Any], *,
                weights_dir: Path | None = None, splits: tuple[str, ...] = ("val", "test")) -> dict[str, Any]:
    """Write a trained run's detections on ``splits`` of its input under ``out`` (on the run's
    ``threads``, as in training), with the weights under ``weights_dir`` (default ``out``);
    return its record with the prediction time. The reference's are written already."""
    if cfg.get("reference") and trained["detector"] == cfg["reference"]["name"]:
        return trained
    from crossmodal.detect.train import load_detector
    from crossmodal.detect.train import predict

    folder = run_dir(out, trained)
    folder.mkdir(parents=True, exist_ok=True)
    detector = load_detector(run_dir(weights_dir or out, trained))
    start = time.perf_counter()
    with threads_for_training(trained.get("threads")), output_to(folder.parent / f"{folder.name}.log"):
        for split in splits:
            items = read_split(datasets_dir / trained["input"], split)
            detections = predict(detector, [i["image_path"] for i in items], conf=float(cfg["predict"]["conf"]),
                                 max_det=int(cfg["predict"].get("max_det", 300)),
                                 device=os.environ.get(DEVICE_VARIABLE) or cfg["train"].get("device"))
            predictions([i["image_id"] for i in items], detections).to_csv(folder / f"predictions_{split}.csv",
                                                                           index=False)
    return {**trained, "predict_seconds": time.perf_counter() - start}


def time_breakdown(history: list[dict]) -> dict[str, float]:
    """A run's training time by where it went, summed over its epochs (the trainer's
    per-epoch clock): waiting for data, training steps, validation with checkpointing."""
    return {key: float(sum(epoch.get(key, 0.0) for epoch in history))
            for key in ("load_seconds", "step_seconds", "val_seconds")}
