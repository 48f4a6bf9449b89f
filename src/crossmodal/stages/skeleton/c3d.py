"""Stage ``c3d_skeleton``: C3D early fusion on the stacked modalities, same patients and folds
as the classifiers (the first ``c3d.n_repeats`` repeats).

Writes under ``out``: ``oof.csv``, ``metrics.csv`` (``classify.ci`` patient-bootstrap
intervals), ``training.csv`` (grid, models, seconds) and ``channels.npz`` (the middle slice
of every channel for one positive and one negative patient, for the page's figure); the DVC
metrics JSON at ``metrics`` (when given: ``dvc.yaml`` passes it).

The sanity gate (``c3d.gate``, :mod:`crossmodal.learn.early_fusion`): before C3D may be
C6's comparator it must find lesion presence from the PET channel alone on the patients who
have PET, on the same folds (``c3d.gate.epochs`` epochs, the C3D repeats). The cheap
early-fusion comparator (joint channel histogram + logistic regression) is cross-validated
on all channels and patients and gated the same way. Also written: ``gate.csv`` (one row
per model), ``sanity_oof.csv``, ``fallback_oof.csv`` and ``fallback_metrics.csv``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crossmodal.learn.classify import boot_options
from crossmodal.io.case import load_cases
from crossmodal.learn.c3d import c3d_cross_validated
from crossmodal.learn.c3d_volumes import c3d_volumes
from crossmodal.learn.c3d_volumes import channel_preview
from crossmodal.learn.classify import cross_validated_scores
from crossmodal.learn.classify import feature_set_folds
from crossmodal.learn.early_fusion import histogram_model
from crossmodal.learn.early_fusion import joint_histogram
from crossmodal.learn.early_fusion import sanity_gate
from crossmodal.learn.features import modality_mask
from crossmodal.learn.metrics import metrics_with_ci
from crossmodal.learn.metrics_json import write_dvc_metrics
from crossmodal.learn.patients import modality_names
from crossmodal.parallel import compute_setting
from crossmodal.parallel import resolve_jobs
from crossmodal.reproducible import training_threads

FALLBACK = "early_fusion_histogram"  # the cheap early-fusion comparator's model name


def run(params: dict[str, Any], *, ingest_dir: str | Path, features_dir: str | Path,
        out: str | Path, metrics: str | Path | None = None) -> dict[str, pd.DataFrame]:
    """C3D cross-validated on the classifiers' patients and folds (see module doc)."""
    cfg, clf = params["c3d"], params["classify"]
    features_dir, out = Path(features_dir), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = modality_names(params["cohort"]["skeleton"])
    table = pd.read_csv(features_dir / "features.csv", index_col="case_id")
    folds = pd.read_csv(features_dir / "folds.csv")
    folds = folds[folds["repeat"] < int(cfg["n_repeats"])]
    by_id = {c.case_id: c for c in load_cases(ingest_dir)}
    missing = sorted(set(table.index) - set(by_id))
    if missing:
        raise ValueError(f"{len(missing)} feature patients are not in the ingested cohort: "
                         f"{missing[:3]}")
    start = time.perf_counter()
    volumes = c3d_volumes([by_id[c] for c in table.index], cfg, names=names)
    prep_seconds = time.perf_counter() - start
    start = time.perf_counter()
    n_models = int(folds.groupby(["repeat", "fold"]).ngroups)
    side_by_side = fold_training(params, n_models)
    oof = c3d_cross_validated(volumes, table["y"].to_numpy(), folds.assign(
        case_id=table.index.to_numpy()[folds["index"].to_numpy()]), seed=int(cfg["seed"]),
        device=cfg.get("device"), **side_by_side, **dict(cfg["train"]))
    train_seconds = time.perf_counter() - start
    scores = metrics_with_ci(oof, n_boot=int(clf["n_boot"]), seed=int(clf["boot_seed"]),
                             threshold=float(clf["threshold"]),
                             alpha=round(1 - float(clf["ci"]), 12)).reset_index()
    scores = scores.assign(classifier="c3d", feature_set="stacked volumes", n=len(table),
                           n_pos=int(table["y"].sum()))
    timing = pd.DataFrame([{"patients": len(table), "channels": volumes.shape[1],
                            "grid (z, y, x)": "x".join(map(str, volumes.shape[2:])),
                            "models": n_models, "models_at_once": side_by_side["jobs"],
                            "threads": side_by_side["threads"],
                            "volume_seconds": round(prep_seconds, 1),
                            "train_seconds": round(train_seconds, 1)}])
    np.savez_compressed(out / "channels.npz", names=np.asarray(list(names.values())),
                        **channel_preview(volumes, table))
    boot = boot_options(clf)
    start = time.perf_counter()
    gate = early_fusion_gate(volumes, table, folds, cfg, names, boot, side_by_side)
    timing["gate_seconds"] = round(time.perf_counter() - start, 1)
    fallback = cross_validated_scores(
        joint_histogram(volumes, bins=int(cfg["gate"]["fallback"]["bins"])), table["y"].to_numpy(),
        classifier=histogram_model(C=float(cfg["gate"]["fallback"]["C"]), seed=int(cfg["seed"])),
        folds=folds, case_ids=table.index.to_numpy())
    fallback_scores = metrics_with_ci(fallback, **boot).reset_index().assign(
        classifier=FALLBACK, feature_set="joint channel histogram", n=len(table),
        n_pos=int(table["y"].sum()))
    tables = {"oof": oof, "metrics": scores, "training": timing, "gate": gate["gate"],
              "sanity_oof": gate["sanity_oof"], "fallback_oof": fallback,
              "fallback_metrics": fallback_scores}
    for key, t in tables.items():
        t.to_csv(out / f"{key}.csv", index=False)
    write_dvc_metrics({"metrics": pd.concat([scores, fallback_scores])}, metrics)
    print(scores[["metric", "estimate", "ci_low", "ci_high"]].to_string(index=False))
    print(gate["gate"].to_string(index=False))
    return tables


def fold_training(params: dict[str, Any], n_models: int) -> dict[str, int]:
    """How C3D's folds train: ``reproducibility.training_threads`` threads each (so the
    weights do not depend on the machine), as many side by side as the cores hold
    (``compute.detector_runs``)."""
    threads = training_threads(params.get("reproducibility", {}))
    return {"threads": threads,
            "jobs": resolve_jobs(compute_setting(params, "detector_runs"), n_models, threads_per_job=threads)}


def early_fusion_gate(volumes: np.ndarray, table: pd.DataFrame, folds: pd.DataFrame,
                      cfg: dict[str, Any], names: dict[str, str], boot: dict[str, Any],
                      side_by_side: dict[str, int] | None = None) -> dict[str, pd.DataFrame]:
    """Sanity gate of C3D and of the cheap comparator (see module doc): each trained on the
    gate modality's channel alone, on its patients, on the shared folds restricted to them."""
    spec = cfg["gate"]
    name = names[spec["modality"]]
    has = modality_mask(table, name).to_numpy()
    ids, y = table.index.to_numpy()[has], table["y"].to_numpy()[has]
    channel = volumes[has][:, [list(names).index(spec["modality"])]]
    sub_folds = feature_set_folds(folds, ids)
    task = f"lesion presence from {name} alone, patients with {name}"
    oofs = {"c3d": c3d_cross_validated(channel, y, sub_folds, seed=int(cfg["seed"]),
                                       device=cfg.get("device"), **(side_by_side or {}),
                                       **{**dict(cfg["train"]), "epochs": int(spec["epochs"])}),
            FALLBACK: cross_validated_scores(
                joint_histogram(channel, bins=int(spec["fallback"]["bins"])), y,
                classifier=histogram_model(C=float(spec["fallback"]["C"]), seed=int(cfg["seed"])),
                folds=sub_folds, case_ids=ids)}
    rows = [sanity_gate(model, metrics_with_ci(oof, **boot).loc["auc"],
                        threshold=float(spec["sanity_auc_ci_low"]), task=task, patients=len(ids))
            for model, oof in oofs.items()]
    return {"gate": pd.DataFrame(rows),
            "sanity_oof": pd.concat([o.assign(model=m) for m, o in oofs.items()], ignore_index=True)}
