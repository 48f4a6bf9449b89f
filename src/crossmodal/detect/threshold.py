"""A non-learned reference detector: an SUV threshold with a CT water-density veto.

What a reader of PET/CT does first, as a rule: every connected region hotter than an SUV
threshold is a candidate, scored by its SUVmax, unless CT shows it is water (urine in the
bladder or a ureter). It learns nothing, so a trained detector that does not beat it has
not learnt more than the threshold; and it shows how much of the task the PET intensity
alone already solves. It reads the detector images of an input whose first two channels
are CT and PET (the proposed ``[CT, PET, F]`` or a ``[CT, PET, X]`` control), undoing
their windows: channel 0 is CT in ``ct_window`` HU, channel 1 is PET SUV clipped at
``suv_max``, both scaled to [0, 255].
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

__all__ = ["predict_suv_threshold", "suv_threshold_detections"]


def suv_threshold_detections(image, *, ct_window, suv_max: float, suv_threshold: float,
                             water_hu=(-20.0, 25.0), min_pixels: int = 4) -> np.ndarray:
    """Detections of one ``(H, W, C)`` detector image (uint8, channel 0 CT, channel 1 PET).

    Parameters
    ----------
    image : ndarray
        ``(H, W, C)`` uint8 image with C >= 2.
    ct_window : (float, float)
        The HU window ``[low, high]`` of channel 0.
    suv_max : float
        The SUV at which channel 1 saturates.
    suv_threshold : float
        Candidates are the 8-connected regions at or above this SUV.
    water_hu : (float, float)
        A candidate whose mean CT value lies in this HU range is water (urine) and dropped.
    min_pixels : int
        Smaller regions are noise and dropped.

    Returns
    -------
    ndarray
        ``(n, 6)``: ``x0, y0, x1, y1`` (pixel edges), score (SUVmax / ``suv_max``, in
        [0, 1]) and class 0, highest score first.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] < 2:
        raise ValueError(f"need an (H, W, C>=2) image with CT and PET channels, got shape {image.shape}")
    low, high = ct_window
    hu = low + image[..., 0].astype(np.float32) / 255.0 * (high - low)
    suv = image[..., 1].astype(np.float32) / 255.0 * suv_max
    regions, n = ndimage.label(suv >= suv_threshold, structure=np.ones((3, 3), bool))
    found = []
    for index, where in enumerate(ndimage.find_objects(regions), start=1):
        inside = regions[where] == index
        if inside.sum() < min_pixels or water_hu[0] <= hu[where][inside].mean() <= water_hu[1]:
            continue
        ys, xs = where
        found.append([xs.start, ys.start, xs.stop, ys.stop, suv[where][inside].max() / suv_max, 0.0])
    found.sort(key=lambda row: -row[4])
    return np.asarray(found, np.float32).reshape(-1, 6)


def predict_suv_threshold(image_paths: Sequence[str | os.PathLike], **rule) -> list[np.ndarray]:
    """:func:`suv_threshold_detections` of every image file (as ``detect.train.predict``
    returns them for a trained detector)."""
    from pathlib import Path

    from crossmodal.detect.fasterrcnn import read_image  # (H, W, C) float in [0, 1]

    return [suv_threshold_detections(np.round(read_image(Path(p)) * 255).astype(np.uint8), **rule)
            for p in image_paths]
