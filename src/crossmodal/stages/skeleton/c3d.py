"""Stage ``c3d_skeleton``: C3D early fusion on the stacked modalities, same patients and folds
as the classifiers (the first ``c3d.n_repeats`` repeats).

Writes under ``out``: ``oof.csv``, ``metrics.csv`` (``classify.ci`` patient-bootstrap
intervals), ``training.csv`` (grid, models, seconds) and ``channels.npz`` (the middle slice
of every channel for one positive and one negative patient, for the page's figure); the DVC
metrics JSON at ``metrics`` (when given: ``dvc.yaml`` passes it).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crossmodal.io.case import load_cases
from crossmodal.learn.c3d import c3d_cross_validated
from crossmodal.learn.c3d_volumes import c3d_volumes
from crossmodal.learn.c3d_volumes import channel_preview
from crossmodal.learn.metrics import metrics_with_ci
from crossmodal.learn.metrics_json import write_dvc_metrics
from crossmodal.learn.patients import modality_names


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
    oof = c3d_cross_validated(volumes, table["y"].to_numpy(), folds.assign(
        case_id=table.index.to_numpy()[folds["index"].to_numpy()]), seed=int(cfg["seed"]),
        device=cfg.get("device"), **dict(cfg["train"]))
    train_seconds = time.perf_counter() - start
    scores = metrics_with_ci(oof, n_boot=int(clf["n_boot"]), seed=int(clf["boot_seed"]),
                             threshold=float(clf["threshold"]),
                             alpha=round(1 - float(clf["ci"]), 12)).reset_index()
    scores = scores.assign(classifier="c3d", feature_set="stacked volumes", n=len(table),
                           n_pos=int(table["y"].sum()))
    timing = pd.DataFrame([{"patients": len(table), "channels": volumes.shape[1],
                            "grid (z, y, x)": "x".join(map(str, volumes.shape[2:])),
                            "models": int(folds.groupby(["repeat", "fold"]).ngroups),
                            "volume_seconds": round(prep_seconds, 1),
                            "train_seconds": round(train_seconds, 1)}])
    np.savez_compressed(out / "channels.npz", names=np.asarray(list(names.values())),
                        **channel_preview(volumes, table))
    tables = {"oof": oof, "metrics": scores, "training": timing}
    for key, t in tables.items():
        t.to_csv(out / f"{key}.csv", index=False)
    write_dvc_metrics(tables, metrics)
    print(scores[["metric", "estimate", "ci_low", "ci_high"]].to_string(index=False))
    return tables
