"""Modality volumes as detector channels: intensity windows ``[low, high]`` -> [0, 1].

CT is in HU, PET in SUV; MR has no absolute unit, so a series is first divided by its own
high percentile. Used by Part 2's detector slices and its C3D volumes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import ndimage

from crossmodal.imaging.preprocess import window_ct

__all__ = ["body_box", "channel_stack", "normalise_volume"]


def channel_stack(volume: np.ndarray, spec: Mapping[str, Any]) -> np.ndarray:
    """A modality volume as detector channels in [0, 1].

    Parameters
    ----------
    volume : ndarray, shape (Z, H, W)
        CT in HU, MR in scanner units, PET in SUV.
    spec : mapping
        ``windows``: list of ``[low, high]`` intensity windows, one channel each (the
        detector reads 3); ``scale``: ``"none"`` or ``"percentile"`` (divide by the
        series' ``percentile``-th intensity first, for MR which has no absolute unit).

    Returns
    -------
    ndarray, shape (Z, H, W, len(windows)), float32
    """
    volume = np.asarray(volume, dtype=np.float32)
    if spec.get("scale", "none") == "percentile":
        ref = float(np.percentile(volume, float(spec.get("percentile", 99.0))))
        volume = volume / (ref if ref > 0 else 1.0)
    channels = []
    for low, high in spec["windows"]:
        channels.append(window_ct(volume, window=(low, high)))
    return np.stack(channels, axis=-1)


def normalise_volume(volume: np.ndarray, spec: Mapping[str, Any]) -> np.ndarray:
    """One channel in ~[0, 1]: the first window of :func:`channel_stack`'s ``spec``."""
    return channel_stack(volume, {**spec, "windows": [spec["windows"][0]]})[..., 0]


def body_box(channels: np.ndarray, *, threshold: float, margin: int,
             component: str = "all") -> tuple[int, int, int, int]:
    """``(y0, y1, x0, x1)`` around the body: what is brighter than ``threshold`` in channel 0
    of any slice, plus ``margin`` pixels; the whole slice when nothing is that bright.

    ``component="all"`` keeps every bright region (on CT the couch too, which spans the
    field of view and so defeats the crop); ``"largest"`` keeps the largest connected
    region of the slices' union only: a couch or a cable separated from the body by air
    is left out. A one-pixel opening first breaks a thin partial-volume bridge.
    """
    mask = channels[..., 0].max(axis=0) > threshold
    if component == "largest" and mask.any():
        opened = ndimage.binary_opening(mask, structure=np.ones((3, 3), bool))
        regions, n = ndimage.label(opened if opened.any() else mask)
        if n > 1:
            sizes = np.bincount(regions.ravel())[1:]
            mask = regions == 1 + int(np.argmax(sizes))
        elif n == 1:
            mask = regions == 1
    elif component not in ("all", "largest"):
        raise ValueError(f"body component must be 'all' or 'largest', not {component!r}")
    if not mask.any():
        return 0, channels.shape[1], 0, channels.shape[2]
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    return (max(int(rows[0]) - margin, 0), min(int(rows[-1]) + 1 + margin, h),
            max(int(cols[0]) - margin, 0), min(int(cols[-1]) + 1 + margin, w))
