"""Stage ``classify_skeleton``: classifiers x feature sets (CT, MRI, PET, fused): out-of-fold
scores, metrics, comparisons, DeLong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crossmodal.part2 import run_classify
from crossmodal.part2 import write_dvc_metrics


def run(params: dict[str, Any], *, features_dir: str | Path, out: str | Path, metrics: str | Path,
        plots: str | Path):
    tables = run_classify(features_dir, out, params["classify"], cohort_cfg=params["cohort"]["skeleton"],
                          progress=True)
    write_dvc_metrics(tables, metrics, plots)
    return tables
