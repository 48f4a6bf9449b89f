"""Stage ``evaluate_pelvis``: AP, FP per slice, lesion sensitivity with patient-bootstrap CIs;
paired differences; claims C1-C4."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crossmodal.part1_detect import evaluate_runs


def run(params: dict[str, Any], *, datasets_dir: str | Path, runs_dir: str | Path, out: str | Path):
    tables = evaluate_runs(datasets_dir, runs_dir, out, params["detect"])
    print(tables["claims"].to_string(index=False))
    return tables
