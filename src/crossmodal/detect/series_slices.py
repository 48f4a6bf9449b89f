"""Detector slices of one imaging series (Part 2): channels, body crop, letterbox, boxes, tiles.

Every slice of a series is cropped to the series' body box (the couch left out where the
channel spec says ``body_component: largest``) and letterboxed to the detector's slice
size, so the same field of view is magnified alike for each of its slices. Lesion boxes
are the 2-D cross-sections of each 3-D lesion, never widened: the slice size is chosen so
that the smallest lesion is large enough to learn. Training sees square tiles cut from
those slices at the same magnification (a tile per lesion box, placed at random around
it, and one random tile per sampled lesion-free slice); scored series are detected whole.
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

__all__ = ["crop_tile", "detector_slices", "series_arrays", "series_slices", "tile_origin",
           "training_slices", "training_tiles"]

#: A box cut by a tile border stays a box when at least this share of its area is inside.
TILE_BOX_MIN_INSIDE = 0.5


def series_arrays(case: Case, code: str) -> tuple[np.ndarray, np.ndarray]:
    """``(image, label)`` arrays (Z, H, W) of one modality; an all-zero label when none."""
    image = sitk.GetArrayFromImage(case.images[code])
    label = case.labels.get(code)
    lab = sitk.GetArrayFromImage(label) if label is not None else np.zeros(image.shape, np.uint8)
    return image, lab


def series_slices(case: Case, code: str, spec: Mapping[str, Any], *,
                  size: int | tuple[int, int], zs: list[int] | None = None,
                  min_box_pixels: int = 1) -> Iterator[SliceRecord]:
    """Letterboxed detector slices of one series with their lesion boxes.

    Each slice is cropped to the series' body box (:func:`~crossmodal.imaging.channels.body_box`
    with ``spec["body_threshold"]``, ``spec["margin"]`` and ``spec["body_component"]``, when
    given), so the same field of view is magnified to ``size`` (an int: a square; else
    ``(height, width)``) for every slice of the series. Boxes are the 2-D connected
    components of each 3-D lesion (ids from :func:`~crossmodal.detect.dataset.label_lesions_3d`)
    with at least ``min_box_pixels`` pixels in the native slice, in letterbox pixels. Each
    record's ``extra["mm_per_px"]`` is the in-plane size of one detector pixel.
    """
    image, lab = series_arrays(case, code)
    channels = channel_stack(image, spec)
    crop = None
    if spec.get("body_threshold") is not None:
        crop = body_box(channels, threshold=float(spec["body_threshold"]),
                        margin=int(spec.get("margin", 2)),
                        component=str(spec.get("body_component", "all")))
    spacing_x = float(case.images[code].GetSpacing()[0])
    lesions = label_lesions_3d(lab > 0)
    for z in range(len(image)) if zs is None else zs:
        resized, info = letterbox(channels[z], size=size, box=crop)
        boxes, ids = boxes_from_mask(lesions[z], min_pixels=int(min_box_pixels), return_labels=True)
        mapped = info.boxes_to_letterbox(np.asarray(boxes, float)) if boxes else np.zeros((0, 4))
        yield SliceRecord(case_id=case.case_id, z=int(z), image=resized, boxes=mapped,
                          lesion_ids=ids, extra={"mm_per_px": spacing_x / info.scale_x,
                                                 "content": (info.pad_y, info.pad_x,
                                                             *info.resized_shape)})


def tile_origin(shape: tuple[int, int], tile: int, rng: np.random.Generator, *,
                box: np.ndarray | None = None,
                region: tuple[int, int, int, int] | None = None) -> tuple[int, int]:
    """Top-left ``(y, x)`` of a ``tile``-pixel square inside an image of ``shape``.

    With ``box`` (x0, y0, x1, y1) the tile holds the whole box at a uniformly drawn place
    (centred on it when the box is the larger); otherwise its centre is uniform over
    ``region`` (pad_y, pad_x, height, width: the letterbox's content), so lesion-free tiles
    show the body, not the padding.
    """
    height, width = shape
    origin = []
    for axis, limit in ((1, height), (0, width)):  # y from box[1]/box[3], x from box[0]/box[2]
        if box is not None:  # whole-pixel origins that keep the box's edges inside
            lo_edge, hi_edge = float(box[axis]), float(box[axis + 2])
            low, high = int(np.ceil(hi_edge - tile)), int(np.floor(lo_edge))
            if low > high:  # box larger than the tile: centre it
                low = high = int(np.floor((lo_edge + hi_edge - tile) / 2.0))
        else:
            start, extent = (region[0], region[2]) if axis == 1 else (region[1], region[3])
            low, high = int(np.floor(start - tile / 2.0)), int(np.floor(start + extent - tile / 2.0))
        value = int(rng.integers(low, high + 1)) if high > low else low
        origin.append(int(np.clip(value, 0, max(limit - tile, 0))))
    return origin[0], origin[1]


def crop_tile(record: SliceRecord, y0: int, x0: int, tile: int, *, index: int,
              anchor: int | None = None) -> SliceRecord:
    """The ``tile``-pixel square of ``record`` at ``(y0, x0)``: boxes moved into it and cut
    at its border; a box keeps its place when at least :data:`TILE_BOX_MIN_INSIDE` of its
    area is inside (a lesion mostly outside is left unlabelled rather than half-marked), and
    the box the tile was placed on (``anchor``) always does."""
    image = record.image[y0:y0 + tile, x0:x0 + tile]
    boxes = np.asarray(record.boxes, float).reshape(-1, 4) - [x0, y0, x0, y0]
    cut = np.clip(boxes, 0, tile)
    area = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    inside = np.prod(np.clip(cut[:, 2:] - cut[:, :2], 0, None), axis=1)
    keep = inside >= TILE_BOX_MIN_INSIDE * np.maximum(area, 1e-9)
    if anchor is not None:
        keep[anchor] = True
    return SliceRecord(case_id=record.case_id, z=record.z, image=image, boxes=cut[keep],
                       lesion_ids=record.lesion_array()[keep],
                       extra={**record.extra, "tile": int(index)})


def training_tiles(records, tile: int, rng: np.random.Generator) -> Iterator[SliceRecord]:
    """One :func:`crop_tile` per lesion box of each record (the box inside, placed at
    random) and one random body tile per lesion-free record."""
    for record in records:
        boxes = np.asarray(record.boxes, float).reshape(-1, 4)
        shape = record.image.shape[:2]
        if len(boxes):
            for k, box in enumerate(boxes):
                y0, x0 = tile_origin(shape, tile, rng, box=box)
                yield crop_tile(record, y0, x0, tile, index=k, anchor=k)
        else:
            y0, x0 = tile_origin(shape, tile, rng, region=record.extra["content"])
            yield crop_tile(record, y0, x0, tile, index=0)


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
                    spec: Mapping[str, Any], *, size: int | tuple[int, int], tile_size: int,
                    negatives_per_positive: float, seed: int, min_box_pixels: int = 1
                    ) -> Iterator[SliceRecord]:
    """Every slice of scored (``test``) patients whole, and :func:`training_tiles` of the
    :func:`training_slices` of the others, as :func:`series_slices` records, patients in
    sorted order. Tiles are drawn from one generator seeded by ``seed``, in that order."""
    chosen = training_slices(cases, code, split, negatives_per_positive=negatives_per_positive,
                             seed=seed)
    rng = np.random.default_rng([int(seed), 7])
    for case_id, role in sorted(split.items()):
        zs = None if role == "test" else chosen.get(case_id, [])
        if zs == []:
            continue
        records = series_slices(cases[case_id], code, spec, size=size, zs=zs,
                                min_box_pixels=min_box_pixels)
        yield from records if role == "test" else training_tiles(records, int(tile_size), rng)
