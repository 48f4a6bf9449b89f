"""Stage ``features_skeleton``: confidence-bin features per patient and the folds shared by
the classifiers and C3D.

Reads ``series.csv`` of ``datasets_skeleton`` and ``detections.csv`` of ``train_skeleton``;
``features`` (``conf``, ``high``, ``n_bins``, ``normalise``, ``presence_flags``),
``classify.cv`` (the folds are drawn once here, so the classifiers and C3D see the same
splits) and ``cohort.skeleton`` (modality names). Writes under ``out``: ``features.csv``
(index ``case_id``; bins, flags, ``y``), ``detections_featurised.csv`` (the detections that
were counted) and ``folds.csv``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from crossmodal.learn.classify import fold_assignments
from crossmodal.learn.features import confidence_bins
from crossmodal.learn.features import patient_feature_table
from crossmodal.learn.patients import modality_names


def run(params: dict[str, Any], *, datasets_dir: str | Path, runs_dir: str | Path,
        out: str | Path) -> dict[str, pd.DataFrame]:
    """Features of every scored patient and the shared CV folds (see module doc)."""
    cfg, cv = params["features"], params["classify"]["cv"]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = list(modality_names(params["cohort"]["skeleton"]).values())
    detections = pd.read_csv(Path(runs_dir) / "detections.csv")
    series = pd.read_csv(Path(datasets_dir) / "series.csv")
    counted = detections[detections["score"] >= float(cfg["conf"])]
    edges = confidence_bins(low=float(cfg["conf"]), high=float(cfg["high"]),
                            n_bins=int(cfg["n_bins"]))
    table = patient_feature_table(counted, series, modalities=names, normalise=cfg["normalise"],
                                  presence_flags=bool(cfg["presence_flags"]), edges=edges)
    table["y"] = series.groupby("case_id")["y"].first().reindex(table.index).astype(int)
    folds = fold_assignments(table["y"], n_splits=int(cv["n_splits"]),
                             n_repeats=int(cv["n_repeats"]), seed=int(cv["seed"]))
    table.to_csv(out / "features.csv")
    counted.to_csv(out / "detections_featurised.csv", index=False)
    folds.to_csv(out / "folds.csv", index=False)
    print(f"{len(table)} patients, {len(counted)} detections counted")
    return {"features": table, "folds": folds, "detections": counted}
