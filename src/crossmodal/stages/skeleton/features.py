"""Stage ``features_skeleton``: confidence-bin features per patient and the folds shared by
the classifiers and C3D."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crossmodal.part2 import run_features


def run(params: dict[str, Any], *, detect_dir: str | Path, out: str | Path):
    tables = run_features(detect_dir, out, params["features"], cv=params["classify"]["cv"],
                          cohort_cfg=params["cohort"]["skeleton"])
    print(f"{len(tables['features'])} patients, {len(tables['detections'])} detections counted")
    return tables
