"""Stage ``c3d_skeleton``: C3D early fusion on the stacked modalities, same patients and folds
as the classifiers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crossmodal.io.case import load_cases
from crossmodal.part2 import run_c3d
from crossmodal.part2 import write_dvc_metrics


def run(params: dict[str, Any], *, ingest_dir: str | Path, features_dir: str | Path, out: str | Path,
        metrics: str | Path):
    clf = params["classify"]
    tables = run_c3d(load_cases(ingest_dir), features_dir, out, params["c3d"],
                     cohort_cfg=params["cohort"]["skeleton"], n_boot=clf["n_boot"],
                     boot_seed=clf["boot_seed"], threshold=clf["threshold"])
    write_dvc_metrics(tables, metrics)
    print(tables["metrics"][["metric", "estimate", "ci_low", "ci_high"]].to_string(index=False))
    return tables
