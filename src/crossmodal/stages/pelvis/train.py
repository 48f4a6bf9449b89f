"""Stage ``train_pelvis``: train every (detector, input, seed) run; store val/test detections."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crossmodal.detect.env import configure_ultralytics
from crossmodal.parallel import compute_setting
from crossmodal.part1_detect import train_and_predict


def run(params: dict[str, Any], *, datasets_dir: str | Path, out: str | Path):
    configure_ultralytics()
    return train_and_predict(datasets_dir, out, params["detect"], progress=True,
                             runs_at_once=compute_setting(params, "detector_runs"))
