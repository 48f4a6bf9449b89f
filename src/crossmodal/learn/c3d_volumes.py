"""C3D input: every patient's modalities stacked as channels on one grid (Part 2)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from crossmodal.imaging.channels import normalise_volume
from crossmodal.imaging.grid import common_grid
from crossmodal.imaging.grid import resample_on_grid
from crossmodal.io.case import Case
from crossmodal.learn.c3d import stack_modalities

__all__ = ["c3d_volumes", "channel_preview"]


def c3d_volumes(cases: list[Case], cfg: Mapping[str, Any], *,
                names: Mapping[str, str]) -> np.ndarray:
    """Every patient's modalities stacked as channels on one grid, each in ~[0, 1].

    The grid of a patient is :func:`~crossmodal.imaging.grid.common_grid` of its first
    present modality in ``cfg["reference"]`` order, at ``cfg["grid_size"]`` voxels; every
    modality (``names``: DICOM code -> display name) is resampled onto it through patient
    coordinates (linear, Gaussian anti-aliasing when coarser), normalised with
    ``cfg["channels"][code]`` (:func:`~crossmodal.imaging.channels.normalise_volume`),
    and a missing modality is a channel of zeros.

    Returns
    -------
    ndarray, shape (n_cases, len(names), D, H, W), float32
    """
    out = []
    for case in cases:
        ref_code = next(c for c in cfg["reference"] if c in case.images)
        grid = common_grid(case.images[ref_code], cfg["grid_size"])
        arrays = {}
        for code, name in names.items():
            if code not in case.images:
                continue
            spec = cfg["channels"][code]
            raw = resample_on_grid(case.images[code], grid, fill=float(spec.get("fill", 0.0)),
                                   antialias=bool(cfg.get("antialias", True)))
            arrays[name] = normalise_volume(raw, spec)
        out.append(stack_modalities(arrays, modalities=list(names.values())))
    return np.stack(out)


def channel_preview(volumes: np.ndarray, table: pd.DataFrame) -> dict[str, np.ndarray]:
    """Middle slice of every channel for one positive and one negative patient (the first
    with the most modalities: it shows the stacking best).

    Returns ``{"labels": (k,), "rows": (k,), "slices": (k, channels, H, W)}``, k <= 2.
    """
    labels, rows = [], []
    for label in (1, 0):
        candidates = np.flatnonzero(table["y"].to_numpy() == label)
        if len(candidates):
            peak = volumes[candidates].reshape(len(candidates), volumes.shape[1], -1).max(axis=2)
            present = (peak > 0).sum(axis=1)
            labels.append(label)
            rows.append(int(candidates[int(np.argmax(present))]))
    z = volumes.shape[2] // 2
    slices = volumes[rows, :, z] if rows else np.zeros((0, *volumes.shape[1:2], *volumes.shape[3:]))
    return {"labels": np.asarray(labels, int), "rows": np.asarray(rows, int),
            "slices": np.asarray(slices, np.float32)}
