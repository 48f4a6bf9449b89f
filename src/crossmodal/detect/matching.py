"""Detection ground truth, predictions and COCO matching: the input of every metric.

Data
----
Ground truth is a :class:`GroundTruth`: an ``images`` table (``image_id``,
``patient_id``, optionally ``z``, the slice index in the patient's volume; *every*
evaluated slice, including slices without lesions, which carry the false positives) and
a ``boxes`` table (``image_id, x0, y0, x1, y1, class_id,
lesion_id``). Predictions are one table (``image_id, x0, y0, x1, y1, score,
class_id``); :func:`predictions` builds it from the per-image arrays that
:func:`crossmodal.detect.train.predict` returns. Boxes are pixel-edge
``(x0, y0, x1, y1)`` (width ``x1 - x0``, no ``+1``), as in pycocotools.

Matching (COCO)
---------------
Per image and class, detections are taken in decreasing score (the top ``max_dets``),
and each is matched to the unmatched ground-truth box of highest IoU if that IoU is at
least the threshold; otherwise it is a false positive. Greedy matching processes
detections by decreasing score, so the matches of the detections above any confidence
are the same as if the lower ones did not exist: the counts at an operating confidence
come from the same matching.

Patient weights
---------------
Metrics take ``patient_weights``, a ``(B, P)`` array of patient multiplicities (columns
in :attr:`GroundTruth.patients` order); :func:`weights_matrix` normalises them.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "BOX_COLUMNS",
    "COCO_IOU_THRESHOLDS",
    "COCO_RECALL_THRESHOLDS",
    "GroundTruth",
    "Matching",
    "box_hits",
    "box_iou",
    "detection_arrays",
    "ground_truth",
    "group_by_image_class",
    "lesion_codes",
    "match_detections",
    "predictions",
    "weighted_result",
    "weights_matrix",
]

#: COCO's IoU thresholds 0.50:0.05:0.95, built exactly as pycocotools' Params.setDetParams,
#: so the floating-point thresholds (e.g. 0.6000000000000001) agree bit for bit.
COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
COCO_RECALL_THRESHOLDS = np.linspace(
    0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True
)

BOX_COLUMNS = ["x0", "y0", "x1", "y1"]


# --------------------------------------------------------------------------- tidy data


@dataclass(frozen=True)
class GroundTruth:
    """Ground-truth slices and boxes.

    Attributes
    ----------
    images : DataFrame
        ``image_id`` (unique), ``patient_id``: every evaluated slice; optionally ``z``,
        the integer slice index within the patient's volume (3-D FROC uses it to join
        false positives on adjacent slices).
    boxes : DataFrame
        ``image_id, x0, y0, x1, y1, class_id, lesion_id``. ``lesion_id`` identifies a
        3-D lesion within its patient; ``-1`` makes the box a lesion of its own.
    """

    images: pd.DataFrame
    boxes: pd.DataFrame

    def __post_init__(self):
        if not {"image_id", "patient_id"} <= set(self.images.columns):
            raise ValueError("images needs columns image_id, patient_id")
        if self.images["image_id"].duplicated().any():
            raise ValueError("image_id must be unique")
        if "z" in self.images and not pd.api.types.is_integer_dtype(self.images["z"]):
            raise ValueError("z must be integer slice indices")
        missing = {"image_id", *BOX_COLUMNS} - set(self.boxes.columns)
        if missing:
            raise ValueError(f"boxes lacks columns {sorted(missing)}")
        unknown = ~self.boxes["image_id"].isin(self.images["image_id"])
        if unknown.any():
            raise ValueError(f"{int(unknown.sum())} boxes refer to images not in the images table")
        boxes = self.boxes.copy()
        if "class_id" not in boxes:
            boxes["class_id"] = 0
        if "lesion_id" not in boxes:
            boxes["lesion_id"] = -1
        object.__setattr__(self, "boxes", boxes.reset_index(drop=True))
        object.__setattr__(self, "images", self.images.reset_index(drop=True))

    @property
    def patients(self) -> np.ndarray:
        """Sorted unique patient ids: the column order of ``patient_weights``."""
        ids = sorted(pd.unique(self.images["patient_id"]))
        out = np.empty(len(ids), dtype=object)  # element-wise: ids may be tuples
        out[:] = ids
        return out


def ground_truth(
    image_ids: Sequence,
    patient_ids: Sequence,
    boxes: Sequence,
    *,
    classes: Sequence | None = None,
    lesion_ids: Sequence | None = None,
    z: Sequence[int] | None = None,
) -> GroundTruth:
    """Build a :class:`GroundTruth` from per-image lists.

    Parameters
    ----------
    image_ids, patient_ids : sequence, length n_images
    boxes : sequence of (k_i, 4) arrays
        Pixel-edge boxes per image (``k_i`` may be 0).
    classes, lesion_ids : sequence of (k_i,) arrays, optional
        Default class 0 and lesion id -1 (each box its own lesion).
    z : sequence of int, length n_images, optional
        Slice index of each image within its patient's volume.
    """
    if not len(image_ids) == len(patient_ids) == len(boxes):
        raise ValueError("image_ids, patient_ids and boxes must have equal length")
    rows = []
    for i, image_id in enumerate(image_ids):
        b = np.asarray(boxes[i], dtype=float).reshape(-1, 4)
        c = np.zeros(len(b), int) if classes is None else np.asarray(classes[i], int).reshape(-1)
        lid = np.full(len(b), -1) if lesion_ids is None else np.asarray(lesion_ids[i]).reshape(-1)
        for j in range(len(b)):
            rows.append((image_id, *b[j], int(c[j]), lid[j]))
    table = pd.DataFrame(rows, columns=["image_id", *BOX_COLUMNS, "class_id", "lesion_id"])
    images = pd.DataFrame({"image_id": list(image_ids), "patient_id": list(patient_ids)})
    if z is not None:
        if len(z) != len(image_ids):
            raise ValueError("z needs one slice index per image")
        images["z"] = np.asarray(z, dtype=int)
    return GroundTruth(images=images, boxes=table)


def predictions(image_ids: Sequence, detections: Sequence[np.ndarray]) -> pd.DataFrame:
    """Prediction table from per-image ``(n, 6)`` arrays ``x0, y0, x1, y1, score, class``.

    ``(n, 5)`` arrays (no class column) get class 0.
    """
    if len(image_ids) != len(detections):
        raise ValueError("one detection array per image id is needed")
    parts = []
    for image_id, det in zip(image_ids, detections):
        det = np.asarray(det, dtype=float)
        det = det.reshape(-1, det.shape[-1] if det.size else 6)
        if det.shape[1] == 5:
            det = np.column_stack([det, np.zeros(len(det))])
        frame = pd.DataFrame(det[:, :6], columns=[*BOX_COLUMNS, "score", "class_id"])
        frame.insert(0, "image_id", [image_id] * len(det))
        parts.append(frame)
    if not parts:
        return pd.DataFrame(columns=["image_id", *BOX_COLUMNS, "score", "class_id"])
    table = pd.concat(parts, ignore_index=True)
    table["class_id"] = table["class_id"].astype(int)
    return table


# --------------------------------------------------------------------------- matching


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of pixel-edge boxes (as pycocotools' ``maskUtils.iou`` on xywh)."""
    ix = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    iy = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(ix, 0, None) * np.clip(iy, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def box_hits(det: np.ndarray, box: np.ndarray, *, rule: str = "iou", iou_threshold: float = 0.5):
    """Which detections hit which ground-truth boxes: ``(n_det, n_box)`` bool.

    ``rule='iou'``: IoU >= ``iou_threshold``; ``rule='center'``: the detection's centre
    lies inside the box (half-open, ``x0 <= cx < x1``).
    """
    if rule == "iou":
        return box_iou(det, box) >= iou_threshold
    if rule != "center":
        raise ValueError(f"unknown rule {rule!r}")
    cx = (det[:, 0] + det[:, 2]) / 2
    cy = (det[:, 1] + det[:, 3]) / 2
    return (
        (cx[:, None] >= box[None, :, 0])
        & (cx[:, None] < box[None, :, 2])
        & (cy[:, None] >= box[None, :, 1])
        & (cy[:, None] < box[None, :, 3])
    )


def _unknown_lesion(lesion_id) -> bool:
    if lesion_id is None:
        return True
    if isinstance(lesion_id, (int, float, np.integer, np.floating)):
        return bool(np.isnan(lesion_id)) or lesion_id == -1
    return False


def lesion_codes(box_patient: np.ndarray, lesion_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Number the 3-D lesions: boxes sharing ``(patient, lesion_id)`` are one lesion.

    A lesion id of -1 (or NaN, None) makes the box a lesion of its own.

    Returns
    -------
    (code, lesion_patient)
        ``code[i]``: lesion number (0..L-1) of box ``i``; ``lesion_patient[l]``: the
        patient index of lesion ``l``.
    """
    keys = pd.Series(
        [
            (p, "box", i) if _unknown_lesion(lid) else (p, "lesion", lid)
            for i, (p, lid) in enumerate(zip(box_patient, lesion_ids))
        ],
        dtype=object,
    )
    code = pd.factorize(keys)[0] if len(keys) else np.zeros(0, dtype=int)
    lesion_patient = np.zeros(code.max() + 1 if len(code) else 0, dtype=int)
    lesion_patient[code] = np.asarray(box_patient, dtype=int)
    return code, lesion_patient


@dataclass
class _ClassMatch:
    scores: np.ndarray  # (n,) detections in COCO accumulation order (score descending)
    patient: np.ndarray  # (n,) patient index of each detection
    tp: np.ndarray  # (T, n) bool, true positive at each IoU threshold
    n_gt: np.ndarray  # (P,) ground-truth boxes per patient


@dataclass
class Matching:
    """Result of :func:`match_detections`; input of every metric.

    Attributes
    ----------
    iou_thresholds : (T,) array
    per_class : dict
        ``class_id ->`` matched detections (scores, patient index, TP flags, GT counts).
    images_per_patient : (P,) array
    patients : (P,) array
        Patient ids (column order of ``patient_weights``).
    """

    iou_thresholds: np.ndarray
    per_class: dict
    images_per_patient: np.ndarray
    patients: np.ndarray


def detection_arrays(gt: GroundTruth, preds: pd.DataFrame, max_dets: int | None):
    """Ground truth and predictions as index arrays (patient, image, class, box, score).

    Detections are in COCO order (image, class, score descending) and cut to the top
    ``max_dets`` per image and class (``None``: all).
    """
    patients = gt.patients
    patient_index = {p: i for i, p in enumerate(patients)}
    image_index = {im: i for i, im in enumerate(gt.images["image_id"])}
    image_patient = np.array([patient_index[p] for p in gt.images["patient_id"]], dtype=int)
    known = preds["image_id"].isin(list(image_index)) if len(preds) else np.zeros(0, bool)
    if len(preds) and not known.all():
        warnings.warn(
            f"{int((~known).sum())} predictions are on images not in the ground truth; ignored",
            stacklevel=3,
        )
        preds = preds[known]
    pimg = np.array([image_index[i] for i in preds["image_id"]], dtype=int)
    pcls = preds["class_id"].to_numpy(int) if "class_id" in preds else np.zeros(len(preds), int)
    score = preds["score"].to_numpy(float)
    pbox = preds[BOX_COLUMNS].to_numpy(float).reshape(-1, 4)
    # COCO order: images in table order, then score descending (stable) within image and class.
    order = np.lexsort((-score, pcls, pimg))
    pimg, pcls, score, pbox = pimg[order], pcls[order], score[order], pbox[order]
    if max_dets is not None and len(order):
        group_start = np.r_[True, (np.diff(pimg) != 0) | (np.diff(pcls) != 0)]
        start_idx = np.maximum.accumulate(np.where(group_start, np.arange(len(pimg)), 0))
        keep = (np.arange(len(pimg)) - start_idx) < max_dets
        pimg, pcls, score, pbox = pimg[keep], pcls[keep], score[keep], pbox[keep]
    gimg = np.array([image_index[i] for i in gt.boxes["image_id"]], dtype=int)
    gcls = gt.boxes["class_id"].to_numpy(int)
    gbox = gt.boxes[BOX_COLUMNS].to_numpy(float).reshape(-1, 4)
    return dict(
        patients=patients,
        image_patient=image_patient,
        pimg=pimg,
        pcls=pcls,
        score=score,
        pbox=pbox,
        gimg=gimg,
        gcls=gcls,
        gbox=gbox,
    )


def group_by_image_class(keys_img: np.ndarray, keys_cls: np.ndarray) -> dict:
    """``(image index, class) -> row indices`` of the given boxes or detections."""
    if len(keys_img) == 0:
        return {}
    frame = pd.DataFrame({"i": keys_img, "c": keys_cls})
    return {k: np.asarray(v) for k, v in frame.groupby(["i", "c"], sort=False).indices.items()}


def match_detections(
    gt: GroundTruth,
    preds: pd.DataFrame,
    *,
    iou_thresholds: Sequence[float] = COCO_IOU_THRESHOLDS,
    max_dets: int | None = 100,
) -> Matching:
    """Greedy COCO matching of predictions to ground truth at several IoU thresholds.

    Parameters
    ----------
    gt : GroundTruth
    preds : DataFrame
        See :func:`predictions`. Rows on images not in ``gt`` are ignored (warning).
    iou_thresholds : sequence of float
    max_dets : int or None
        Keep the top ``max_dets`` detections per image and class (COCO: 100); ``None``
        keeps all.

    Returns
    -------
    Matching

    Notes
    -----
    As pycocotools: a detection goes to the unmatched GT box with the highest IoU
    ``>= t`` (ties: the later box); crowd and area-range ignores are not used.
    """
    d = detection_arrays(gt, preds, max_dets)
    thresholds = np.asarray(iou_thresholds, dtype=float)
    n_det = len(d["score"])
    tp = np.zeros((len(thresholds), n_det), dtype=bool)
    det_groups = group_by_image_class(d["pimg"], d["pcls"])
    gt_groups = group_by_image_class(d["gimg"], d["gcls"])
    lowest = min(thresholds.min(), 1 - 1e-10) if len(thresholds) else 1.0
    for key, gidx in gt_groups.items():
        didx = det_groups.get(key)
        if didx is None:
            continue
        ious = box_iou(d["pbox"][didx], d["gbox"][gidx])
        # Detections overlapping nothing enough are false positives at every threshold.
        candidates = np.flatnonzero(ious.max(axis=1) >= lowest)
        if len(candidates) == 0:
            continue
        for t_i, t in enumerate(thresholds):
            thr = min(t, 1 - 1e-10)
            taken = np.zeros(len(gidx), dtype=bool)
            for j in candidates:  # score order within the group
                ok = (~taken) & (ious[j] >= thr)
                if not ok.any():
                    continue
                row = np.where(ok, ious[j], -1.0)
                m = len(row) - 1 - int(np.argmax(row[::-1]))  # last of the ties, as COCO
                taken[m] = True
                tp[t_i, didx[j]] = True
    n_patients = len(d["patients"])
    per_class = {}
    for c in np.union1d(np.unique(d["gcls"]), np.unique(d["pcls"])).astype(int):
        sel = np.flatnonzero(d["pcls"] == c)
        order = sel[np.argsort(-d["score"][sel], kind="mergesort")]
        g_pat = d["image_patient"][d["gimg"][d["gcls"] == c]]
        per_class[int(c)] = _ClassMatch(
            scores=d["score"][order],
            patient=d["image_patient"][d["pimg"][order]],
            tp=tp[:, order],
            n_gt=np.bincount(g_pat, minlength=n_patients).astype(float),
        )
    return Matching(
        iou_thresholds=thresholds,
        per_class=per_class,
        images_per_patient=np.bincount(d["image_patient"], minlength=n_patients).astype(float),
        patients=d["patients"],
    )


# --------------------------------------------------------------------------- weights


def weights_matrix(patient_weights, n_patients: int) -> tuple[np.ndarray, bool]:
    """(B, P) float weights and whether the caller asked for a scalar."""
    if patient_weights is None:
        return np.ones((1, n_patients)), True
    w = np.asarray(patient_weights, dtype=float)
    scalar = w.ndim == 1
    w = np.atleast_2d(w)
    if w.shape[1] != n_patients:
        raise ValueError(
            f"patient_weights has {w.shape[1]} columns, ground truth {n_patients} patients"
        )
    return w, scalar


def weighted_result(values: np.ndarray, scalar: bool):
    """One float when the caller gave no (or 1-D) weights, else the (B,) values."""
    return float(values[0]) if scalar else values
