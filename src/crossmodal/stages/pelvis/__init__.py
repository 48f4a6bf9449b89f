"""Part 1 (PET/CT lesion detection, claims C1-C4): one module per DVC stage.

    ingest (stages.ingest) -> align_fuse -> datasets -> train -> evaluate -> claims

The detector run plan is shared by the datasets, train and evaluate stages, so it lives
here: every (detector, input, seed) of ``detect.detectors`` is one run, trained from
scratch in ``<runs>/<detector>/<input>/seed<seed>/``. So does the reader of the align_fuse
stage's per-case fused slices, which the datasets stage and the tests read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crossmodal.detect.matching import predictions


def planned_runs(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """Every (detector, input, seed) of ``detect.detectors`` (inputs: a list or "all"), and
    the non-learned reference of ``detect.reference`` (one run, seed 0) where one is set."""
    runs = []
    for spec in cfg["detectors"]:
        inputs = cfg["inputs"] if spec["inputs"] == "all" else spec["inputs"]
        for name in inputs:
            for seed in cfg["seeds"]:
                runs.append({"detector": spec["name"], "input": name, "seed": int(seed)})
    if cfg.get("reference"):
        runs.append({"detector": cfg["reference"]["name"], "input": cfg["reference"]["input"], "seed": 0})
    return runs


def used_inputs(cfg: dict[str, Any]) -> list[str]:
    """The inputs some planned run trains on, in plan order (datasets are written for these)."""
    return list(dict.fromkeys(r["input"] for r in planned_runs(cfg)))


def run_dir(root: Path, run: dict[str, Any]) -> Path:
    """The folder of one run under the train stage's output."""
    return Path(root) / run["detector"] / run["input"] / f"seed{run['seed']}"


def read_predictions(path: Path) -> pd.DataFrame:
    """One run's ``predictions_<split>.csv`` (an empty table keeps its columns)."""
    table = pd.read_csv(path)
    return table if len(table) else predictions([], [])


def load_fused(path: str | Path) -> dict[str, np.ndarray]:
    """Read one ``fused/<input>/<case>.npz`` artifact of the align_fuse stage: ``images``
    (n, S, S, 3) uint8, ``z`` (n,), ``boxes`` (m, 4) letterbox pixels, ``box_slice``,
    ``box_class`` and ``box_lesion`` (m,)."""
    with np.load(path) as data:
        return {k: data[k] for k in data.files}
