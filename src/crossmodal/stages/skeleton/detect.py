"""Stage ``detect_skeleton``: per-modality detectors under the leakage rule; detections on
every scored slice; AP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crossmodal.detect.env import configure_ultralytics
from crossmodal.io.case import load_cases
from crossmodal.part2 import run_detect


def run(params: dict[str, Any], *, ingest_dir: str | Path, out: str | Path):
    configure_ultralytics()
    tables = run_detect(load_cases(ingest_dir), out, params["part2_detect"],
                        cohort_cfg=params["cohort"]["skeleton"], feature_conf=params["features"]["conf"],
                        progress=True)
    print(tables["ap"][["modality", "patients", "ap50", "ap50_ci_low", "ap50_ci_high"]].to_string(index=False))
    return tables
