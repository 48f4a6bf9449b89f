"""Stage ``evaluate_skeleton``: detector AP per modality with patient-bootstrap CIs.

AP50, AP50-95 and lesion sensitivity on every slice of every scored series, pooled over a
modality's detectors, with ``part2_detect.ci`` patient-bootstrap intervals
(``part2_detect.n_boot`` resamples); lesion sensitivity (a detection centred in one of a
metastasis's boxes: a centre-hit rule, looser than AP's IoU 0.5) and FP per slice at the
feature threshold ``features.conf``. The learning curve scores fold d0's patients with the
detectors trained on shares of its training patients and with d0 itself (share 1). Writes
``ap.csv`` (per modality), ``ap_folds.csv`` (per detector, no CI) and ``learning_curve.csv``
(per modality and share) under ``out``.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from crossmodal.detect import metrics as ev
from crossmodal.detect.export import dataset_ground_truth


def detection_metrics(gt: ev.GroundTruth, preds: pd.DataFrame, *, conf: float, n_boot: int,
                      seed: int, ci: float, lesion_hit: str) -> dict[str, Any]:
    """AP50, AP50-95 and lesion sensitivity at ``conf`` (a lesion is hit by the
    ``lesion_hit`` rule of :func:`~crossmodal.detect.metrics.lesion_sensitivity`) with
    patient-bootstrap CIs."""
    out: dict[str, Any] = {"patients": len(gt.patients), "slices": len(gt.images),
                           "lesion_boxes": len(gt.boxes)}
    metrics = {"ap50": ev.ap50, "ap50_95": ev.ap50_95,
               "lesion_sensitivity": partial(ev.lesion_sensitivity, conf=conf, rule=lesion_hit)}
    for name, fn in metrics.items():
        estimate, lo, hi = ev.patient_bootstrap(fn, gt, preds, n_boot=n_boot, seed=seed, ci=ci)
        out.update({name: estimate, f"{name}_ci_low": lo, f"{name}_ci_high": hi})
    out["fp_per_slice"] = float(ev.false_positives_per_slice(gt, preds, conf))
    return out


def predictions_of(detections: pd.DataFrame, modality: str,
                   detector: str | None = None) -> pd.DataFrame:
    """One modality's (and detector's) detections as a :mod:`crossmodal.detect.metrics` table."""
    keep = detections["modality"] == modality
    if detector is not None:
        keep &= detections["detector"] == detector
    frame = detections.loc[keep, ["image_id", "x0", "y0", "x1", "y1", "score", "class_id"]]
    frame = frame.reset_index(drop=True)
    frame["class_id"] = frame["class_id"].astype(int)
    return frame


def learning_curve(datasets_dir: Path, runs_dir: Path, detections: pd.DataFrame,
                   boot: dict[str, Any]) -> pd.DataFrame:
    """Detection metrics of fold d0's scored patients per modality and share of d0's
    training patients (share 1: d0 itself)."""
    training = pd.read_csv(runs_dir / "training.csv")
    curve_file = runs_dir / "learning_curve_detections.csv"
    if not curve_file.exists():
        return pd.DataFrame()
    curve = pd.read_csv(curve_file)
    rows = []
    for run_row in training[training["detector"] == "d0"].itertuples():
        if run_row.fraction == 1.0:
            preds = predictions_of(detections, run_row.modality, "d0")
        else:
            preds = predictions_of(curve[curve["fraction"] == run_row.fraction],
                                   run_row.modality, "d0")
        gt = dataset_ground_truth([datasets_dir / run_row.modality / "d0"], "test")
        rows.append({"modality": run_row.modality, "fraction": run_row.fraction,
                     "train_patients": run_row.train_patients,
                     "train_tiles": run_row.train_slices,
                     **detection_metrics(gt, preds, **boot)})
    return pd.DataFrame(rows).sort_values(["modality", "fraction"], ignore_index=True)


def run(params: dict[str, Any], *, datasets_dir: str | Path, runs_dir: str | Path,
        out: str | Path) -> dict[str, pd.DataFrame]:
    """Per-detector and pooled per-modality detection metrics (see module doc)."""
    cfg = params["part2_detect"]
    datasets_dir, out = Path(datasets_dir), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    detectors = pd.read_csv(datasets_dir / "detectors.csv")
    detections = pd.read_csv(Path(runs_dir) / "detections.csv")
    per_detector, dirs = [], {}
    scored = detectors.loc[detectors["scored_slices"] > 0, ["modality", "detector"]]
    for name, detector in scored.to_numpy():
        dirs.setdefault(name, []).append(datasets_dir / name / detector)
        gt = dataset_ground_truth([datasets_dir / name / detector], "test")
        preds = predictions_of(detections, name, detector)
        per_detector.append({"modality": name, "detector": detector, "patients": len(gt.patients),
                             "ap50": float(ev.ap50(gt, preds)),
                             "ap50_95": float(ev.ap50_95(gt, preds))})
    boot = {"conf": float(params["features"]["conf"]), "n_boot": int(cfg["n_boot"]),
            "seed": int(cfg["seed"]), "ci": float(cfg["ci"]), "lesion_hit": cfg["lesion_hit"]}
    pooled = [{"modality": name, **detection_metrics(dataset_ground_truth(found, "test"),
                                                     predictions_of(detections, name), **boot)}
              for name, found in dirs.items()]
    tables = {"ap": pd.DataFrame(pooled), "ap_folds": pd.DataFrame(per_detector),
              "learning_curve": learning_curve(datasets_dir, Path(runs_dir), detections, boot)}
    for key, table in tables.items():
        table.to_csv(out / f"{key}.csv", index=False)
    return tables
