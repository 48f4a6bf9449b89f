"""Detector slices of one imaging series (Part 2): channels, body crop, letterbox, boxes.

Every slice of a series is cropped to the series' body box, so the same field of view is
magnified to the detector's input size for each of its slices; lesion boxes are the 2-D
cross-sections of each 3-D lesion, widened where YOLO would get no training signal.
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Mapping
from typing import Any

import numpy as np
import SimpleITK as sitk

from crossmodal.detect.dataset import SliceRecord
from crossmodal.detect.dataset import boxes_from_mask
from crossmodal.detect.dataset import label_lesions_3d
from crossmodal.detect.dataset import sample_slices
from crossmodal.imaging.channels import body_box
from crossmodal.imaging.channels import channel_stack
from crossmodal.imaging.preprocess import letterbox
from crossmodal.io.case import Case

__all__ = ["detector_slices", "series_arrays", "series_slices", "training_slices", "widen_boxes"]


def series_arrays(case: Case, code: str) -> tuple[np.ndarray, np.ndarray]:
    """``(image, label)`` arrays (Z, H, W) of one modality; an all-zero label when none."""
    image = sitk.GetArrayFromImage(case.images[code])
    label = case.labels.get(code)
    lab = sitk.GetArrayFromImage(label) if label is not None else np.zeros(image.shape, np.uint8)
    return image, lab


def widen_boxes(boxes: np.ndarray, *, min_size: float, limit: int) -> np.ndarray:
    """Grow boxes narrower (or lower) than ``min_size`` to that size about their centre.

    YOLO's finest feature map has a stride of 8 pixels and its task-aligned assigner only
    learns from anchors inside a box, so a lesion a few pixels wide gives it (almost) no
    training signal; the widened box marks "a lesion is here" instead. Boxes are shifted
    back inside ``[0, limit]`` where widening crosses the border.
    """
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4).copy()
    if not len(boxes) or min_size <= 0:
        return boxes
    size = min(float(min_size), float(limit))
    for lo, hi in ((0, 2), (1, 3)):
        width = boxes[:, hi] - boxes[:, lo]
        grow = np.maximum(size - width, 0.0) / 2.0
        boxes[:, lo] -= grow
        boxes[:, hi] += grow
        shift = np.clip(-boxes[:, lo], 0, None) - np.clip(boxes[:, hi] - limit, 0, None)
        shift = np.where(grow > 0, shift, 0.0)  # only widened boxes move
        boxes[:, lo] += shift
        boxes[:, hi] += shift
    return boxes


def series_slices(case: Case, code: str, spec: Mapping[str, Any], *, imgsz: int,
                  zs: list[int] | None = None, min_box_pixels: int = 1,
                  min_box_size: float = 0.0) -> Iterator[SliceRecord]:
    """Letterboxed detector slices of one series with their lesion boxes.

    Each slice is cropped to the series' body box (:func:`~crossmodal.imaging.channels.body_box`
    with ``spec["body_threshold"]`` and ``spec["margin"]``, when given), so the same field of
    view is magnified to ``imgsz`` for every slice of the series. Boxes are the 2-D
    connected components of each 3-D lesion (ids from
    :func:`~crossmodal.detect.dataset.label_lesions_3d`) with at least ``min_box_pixels``
    pixels in the native slice, mapped to letterbox pixels and widened to at least
    ``min_box_size`` pixels there (:func:`widen_boxes`).
    """
    image, lab = series_arrays(case, code)
    channels = channel_stack(image, spec)
    crop = None
    if spec.get("body_threshold") is not None:
        crop = body_box(channels, threshold=float(spec["body_threshold"]),
                        margin=int(spec.get("margin", 2)))
    lesions = label_lesions_3d(lab > 0)
    for z in range(len(image)) if zs is None else zs:
        resized, info = letterbox(channels[z], size=int(imgsz), box=crop)
        boxes, ids = boxes_from_mask(lesions[z], min_pixels=int(min_box_pixels), return_labels=True)
        mapped = info.boxes_to_letterbox(np.asarray(boxes, float)) if boxes else np.zeros((0, 4))
        mapped = widen_boxes(mapped, min_size=min_box_size, limit=int(imgsz))
        yield SliceRecord(case_id=case.case_id, z=int(z), image=resized, boxes=mapped,
                          lesion_ids=ids)


def training_slices(cases: Mapping[str, Case], code: str, split: Mapping[str, str], *,
                    negatives_per_positive: float, seed: int) -> dict[str, list[int]]:
    """Slices of a detector's train and val patients, each split on its own: every lesion
    slice plus ``negatives_per_positive`` lesion-free slices per lesion slice, drawn from
    all of that split's patients (at least one slice per split). ``{case_id: [z, ...]}``."""
    chosen: dict[str, list[int]] = {}
    for role in ("train", "val"):
        lesion, other = [], []
        for case_id in sorted(c for c, r in split.items() if r == role):
            _, lab = series_arrays(cases[case_id], code)
            has = lab.reshape(len(lab), -1).any(axis=1)
            lesion += [(case_id, int(z)) for z in np.flatnonzero(has)]
            other += [(case_id, int(z)) for z in np.flatnonzero(~has)]
        picked = sample_slices(lesion, other, negatives_per_positive=negatives_per_positive,
                               seed=seed)
        if not picked and other:  # lesion-free patients only: keep one slice so the split exists
            picked = [other[int(np.random.default_rng(seed).integers(len(other)))]]
        for case_id, z in picked:
            chosen.setdefault(case_id, []).append(z)
    return chosen


def detector_slices(cases: Mapping[str, Case], code: str, split: Mapping[str, str],
                    spec: Mapping[str, Any], *, imgsz: int, negatives_per_positive: float,
                    seed: int, min_box_pixels: int = 1, min_box_size: float = 0.0
                    ) -> Iterator[SliceRecord]:
    """Every slice of scored (``test``) patients and the :func:`training_slices` of the
    others, as :func:`series_slices` records, patients in sorted order."""
    chosen = training_slices(cases, code, split, negatives_per_positive=negatives_per_positive,
                             seed=seed)
    for case_id, role in sorted(split.items()):
        zs = None if role == "test" else chosen.get(case_id, [])
        if zs == []:
            continue
        yield from series_slices(cases[case_id], code, spec, imgsz=imgsz, zs=zs,
                                 min_box_pixels=min_box_pixels, min_box_size=min_box_size)
