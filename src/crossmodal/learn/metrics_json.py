"""Metrics JSON of the Part 2 classifiers and C3D (``dvc metrics show <file>``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["json_number", "write_dvc_metrics", "write_json"]


def json_number(value) -> float | None:
    """A rounded float, or None where JSON has no number (NaN, inf)."""
    value = float(value)
    return round(value, 4) if np.isfinite(value) else None


def write_json(data: Mapping[str, Any], path: str | Path) -> None:
    """``data`` as indented JSON with sorted keys (DVC metrics files), parents created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=True))


def write_dvc_metrics(tables: Mapping[str, pd.DataFrame], metrics_json: str | Path | None, *,
                      prefix: str = "") -> dict:
    """Metrics JSON: estimates per model and feature set, and the mean fused-minus-single
    differences. A ``None`` path writes nothing; the summary is returned either way."""
    metrics = tables["metrics"]
    out: dict[str, Any] = {}
    for (clf, fs), group in metrics.groupby(["classifier", "feature_set"], sort=False):
        values = group.set_index("metric")["estimate"]
        out.setdefault(f"{prefix}{fs}", {})[clf] = {k: json_number(v) for k, v in values.items()}
    comparisons = tables.get("comparisons")
    if comparisons is not None and len(comparisons):
        mean = comparisons[comparisons["classifier"] == "mean over classifiers"]
        for single, group in mean.groupby("single", sort=False):
            values = group.set_index("metric")["estimate"]
            out.setdefault("fused_minus_single", {})[single] = {
                k: json_number(values[k]) for k in ("accuracy", "auc", "pr_auc") if k in values}
    if metrics_json is not None:
        write_json(out, metrics_json)
    return out
