"""Detection metrics with patient-level bootstrap confidence intervals.

The inputs (:class:`~crossmodal.detect.matching.GroundTruth`, the prediction table and
the COCO matching) live in :mod:`crossmodal.detect.matching`; they are re-exported here.
AP is the COCO 101-point interpolated average precision per class, averaged over classes
that have ground truth; ``ap50`` uses IoU 0.5 and ``ap50_95`` the mean over
0.50:0.05:0.95.

Bootstrap
---------
Every metric accepts ``patient_weights``: a ``(B, P)`` array of how many times each
patient (columns in :attr:`~crossmodal.detect.matching.GroundTruth.patients` order) is drawn in each of ``B``
resamples. Drawing a patient ``k`` times is the same as counting its slices ``k`` times,
so the metrics are computed for all resamples at once from the one matching (matrix
products over patients), which makes ``B = 1000`` cost about as much as one
evaluation. For AP this is exact: duplicated detections have equal scores and sit in
one run of true or false positives, which leaves the interpolated precision unchanged.
The resamples themselves come from :mod:`crossmodal.stats.bootstrap`.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from crossmodal.detect.matching import BOX_COLUMNS
from crossmodal.detect.matching import COCO_IOU_THRESHOLDS
from crossmodal.detect.matching import COCO_RECALL_THRESHOLDS
from crossmodal.detect.matching import GroundTruth
from crossmodal.detect.matching import Matching
from crossmodal.detect.matching import box_hits
from crossmodal.detect.matching import detection_arrays
from crossmodal.detect.matching import ground_truth
from crossmodal.detect.matching import group_by_image_class
from crossmodal.detect.matching import lesion_codes
from crossmodal.detect.matching import match_detections
from crossmodal.detect.matching import predictions
from crossmodal.detect.matching import weighted_result
from crossmodal.detect.matching import weights_matrix
from crossmodal.stats.bootstrap import paired_bootstrap_difference as _paired_difference
from crossmodal.stats.bootstrap import patient_resamples
from crossmodal.stats.bootstrap import percentile_ci
from crossmodal.stats.bootstrap import resample_counts

__all__ = [
    "PRCurve",
    "ap50",
    "ap50_95",
    "ap50_per_class",
    "average_precision",
    "choose_operating_confidence",
    "false_positives_per_slice",
    "lesion_sensitivity",
    "paired_bootstrap_difference",
    "patient_bootstrap",
    "pr_curve",
    "precision_recall_at",
    "resample_patients",
]
# The inputs of every metric, re-exported so that callers need one module.
__all__ += ["BOX_COLUMNS", "COCO_IOU_THRESHOLDS", "COCO_RECALL_THRESHOLDS", "GroundTruth",
            "Matching", "ground_truth", "match_detections", "predictions"]


# --------------------------------------------------------------------------- AP


def _ap_weighted(
    tp: np.ndarray, patient: np.ndarray, n_gt: np.ndarray, w: np.ndarray
) -> np.ndarray:
    """COCO interpolated AP for each row of patient weights ``w``; NaN where no GT."""
    n_patients = len(n_gt)
    npig = w @ n_gt
    tp_pos = np.flatnonzero(tp)
    ap = np.zeros(len(w))
    if len(tp_pos):
        k = len(tp_pos)
        # Precision can only peak right after a true positive, so the 101-point
        # interpolated AP needs the counts at the TP ranks only: per patient, TPs up to
        # and including TP k, and FPs ranked above it.
        tp_pat = patient[tp_pos]
        t_counts = np.zeros((n_patients, k))
        t_counts[tp_pat, np.arange(k)] = 1.0
        t_counts = np.cumsum(t_counts, axis=1)
        f_counts = np.zeros((n_patients, k))
        fp_pos = np.flatnonzero(~tp)
        fp_pat = patient[fp_pos]
        for p in np.unique(fp_pat):
            f_counts[p] = np.searchsorted(fp_pos[fp_pat == p], tp_pos)
        cum_tp = w @ t_counts
        cum_fp = w @ f_counts
        with np.errstate(divide="ignore", invalid="ignore"):
            recall = np.where(npig[:, None] > 0, cum_tp / npig[:, None], 0.0)
            precision = np.where(cum_tp > 0, cum_tp / (cum_tp + cum_fp), 0.0)
        envelope = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
        # Recall thresholds r in (recall_{k-1}, recall_k] read the envelope at TP k.
        n_below = np.searchsorted(COCO_RECALL_THRESHOLDS, recall.ravel(), side="right")
        n_below = n_below.reshape(recall.shape)
        covered = np.diff(n_below, axis=1, prepend=0)
        ap = (envelope * covered).sum(axis=1) / len(COCO_RECALL_THRESHOLDS)
    return np.where(npig > 0, ap, np.nan)


def _mean_over_classes(per_class_values: list[np.ndarray]) -> np.ndarray:
    stacked = np.vstack(per_class_values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN column: no GT in resample
        return np.nanmean(stacked, axis=0)


def average_precision(
    gt: GroundTruth,
    preds: pd.DataFrame,
    *,
    iou_threshold: float | Sequence[float] = 0.5,
    class_ids: Sequence[int] | None = None,
    max_dets: int | None = 100,
    patient_weights: np.ndarray | None = None,
):
    """COCO average precision (101-point interpolation), mean over classes.

    Parameters
    ----------
    gt : GroundTruth
    preds : DataFrame
    iou_threshold : float or sequence of float
        A sequence gives the mean over thresholds (COCO AP@[.5:.95] for
        :data:`~crossmodal.detect.matching.COCO_IOU_THRESHOLDS`).
    class_ids : sequence of int, optional
        Classes to average; default all classes with ground truth.
    max_dets : int or None
        Per image and class (COCO default 100).
    patient_weights : (B, P) or (P,) array, optional
        Patient multiplicities (see module docstring).

    Returns
    -------
    float, or (B,) array with 2-D ``patient_weights``
        NaN when there is no ground-truth box (COCO reports -1).
    """
    thresholds = np.atleast_1d(np.asarray(iou_threshold, dtype=float))
    matching = match_detections(gt, preds, iou_thresholds=thresholds, max_dets=max_dets)
    return _ap_from_matching(matching, class_ids=class_ids, patient_weights=patient_weights)


def _ap_from_matching(matching: Matching, *, class_ids=None, patient_weights=None):
    w, scalar = weights_matrix(patient_weights, len(matching.patients))
    classes = [c for c, m in matching.per_class.items() if m.n_gt.sum() > 0]
    if class_ids is not None:
        classes = [int(c) for c in class_ids]
    per_threshold = []
    for t_i in range(len(matching.iou_thresholds)):
        per_class = []
        for c in classes:
            m = matching.per_class.get(c)
            if m is None:
                per_class.append(np.full(len(w), np.nan))
                continue
            per_class.append(_ap_weighted(m.tp[t_i], m.patient, m.n_gt, w))
        per_threshold.append(
            _mean_over_classes(per_class) if per_class else np.full(len(w), np.nan)
        )
    values = np.mean(np.vstack(per_threshold), axis=0)
    return weighted_result(values, scalar)


def ap50(gt: GroundTruth, preds: pd.DataFrame, *, max_dets: int | None = 100, patient_weights=None):
    """COCO AP at IoU 0.5 (see :func:`average_precision`)."""
    return average_precision(
        gt, preds, iou_threshold=0.5, max_dets=max_dets, patient_weights=patient_weights
    )


def ap50_per_class(
    gt: GroundTruth,
    preds: pd.DataFrame,
    *,
    class_ids: Sequence[int] | None = None,
    max_dets: int | None = 100,
    patient_weights=None,
) -> dict:
    """COCO AP at IoU 0.5 of each class on its own.

    Parameters
    ----------
    class_ids : sequence of int, optional
        Default every class in the ground truth or the predictions.

    Returns
    -------
    dict
        ``class_id ->`` AP50 (float, or (B,) array with 2-D ``patient_weights``); NaN
        for a class without ground-truth boxes.
    """
    matching = match_detections(gt, preds, iou_thresholds=[0.5], max_dets=max_dets)
    if class_ids is None:
        class_ids = sorted(set(matching.per_class) | set(gt.boxes["class_id"].astype(int)))
    return {
        int(c): _ap_from_matching(matching, class_ids=[c], patient_weights=patient_weights)
        for c in class_ids
    }


def ap50_95(
    gt: GroundTruth, preds: pd.DataFrame, *, max_dets: int | None = 100, patient_weights=None
):
    """COCO AP averaged over IoU 0.50:0.05:0.95 (see :func:`average_precision`)."""
    return average_precision(
        gt,
        preds,
        iou_threshold=COCO_IOU_THRESHOLDS,
        max_dets=max_dets,
        patient_weights=patient_weights,
    )


# ------------------------------------------------------------------- PR curve, operating point


class PRCurve(NamedTuple):
    """Precision-recall curve.

    ``score``, ``precision``, ``recall``: one entry per distinct score, decreasing score
    (the operating point "keep detections with score >= score[i]").
    ``recall_thresholds`` and ``precision_interpolated``: COCO's 101-point curve, whose
    mean is the AP.
    """

    score: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    recall_thresholds: np.ndarray
    precision_interpolated: np.ndarray


def _pooled(matching: Matching, t_i: int, class_ids=None):
    classes = list(matching.per_class) if class_ids is None else [int(c) for c in class_ids]
    parts = [matching.per_class[c] for c in classes if c in matching.per_class]
    if not parts:
        return np.zeros(0), np.zeros(0, int), np.zeros(0, bool), np.zeros(len(matching.patients))
    scores = np.concatenate([m.scores for m in parts])
    patient = np.concatenate([m.patient for m in parts])
    tp = np.concatenate([m.tp[t_i] for m in parts])
    n_gt = np.sum([m.n_gt for m in parts], axis=0)
    order = np.argsort(-scores, kind="mergesort")
    return scores[order], patient[order], tp[order], n_gt


def pr_curve(
    gt: GroundTruth,
    preds: pd.DataFrame,
    *,
    iou_threshold: float = 0.5,
    class_ids: Sequence[int] | None = None,
    max_dets: int | None = 100,
) -> PRCurve:
    """Precision and recall as the confidence threshold decreases.

    With several classes the counts are pooled over ``class_ids`` (default all; the
    matching is still per class).
    """
    matching = match_detections(gt, preds, iou_thresholds=[iou_threshold], max_dets=max_dets)
    scores, _, tp, n_gt = _pooled(matching, 0, class_ids)
    total = n_gt.sum()
    cum_tp = np.cumsum(tp)
    cum_fp = np.cumsum(~tp)
    last = np.r_[scores[1:] != scores[:-1], True] if len(scores) else np.zeros(0, bool)
    precision = np.where(cum_tp + cum_fp > 0, cum_tp / np.maximum(cum_tp + cum_fp, 1), 0.0)
    recall = cum_tp / total if total > 0 else np.zeros(len(cum_tp))
    interp = np.zeros(len(COCO_RECALL_THRESHOLDS))
    if len(scores) and total > 0:
        envelope = np.maximum.accumulate(precision[::-1])[::-1]
        idx = np.searchsorted(recall, COCO_RECALL_THRESHOLDS, side="left")
        ok = idx < len(recall)
        interp[ok] = envelope[idx[ok]]
    return PRCurve(
        scores[last], precision[last], recall[last], COCO_RECALL_THRESHOLDS.copy(), interp
    )


def _counts_at(matching: Matching, conf: float, w: np.ndarray, t_i: int = 0):
    """Weighted TP, FP and GT counts of detections with score >= conf."""
    n_patients = len(matching.patients)
    scores, patient, tp, n_gt = _pooled(matching, t_i)
    keep = scores >= conf
    tp_p = np.bincount(patient[keep & tp], minlength=n_patients).astype(float)
    fp_p = np.bincount(patient[keep & ~tp], minlength=n_patients).astype(float)
    return w @ tp_p, w @ fp_p, w @ n_gt


def precision_recall_at(
    gt: GroundTruth,
    preds: pd.DataFrame,
    conf: float,
    *,
    iou_threshold: float = 0.5,
    max_dets: int | None = 100,
    patient_weights=None,
):
    """Precision and recall of the detections with ``score >= conf``.

    Returns
    -------
    (precision, recall)
        Floats, or (B,) arrays with 2-D ``patient_weights``. Precision is NaN when
        there is no detection, recall is NaN without GT.
    """
    matching = match_detections(gt, preds, iou_thresholds=[iou_threshold], max_dets=max_dets)
    w, scalar = weights_matrix(patient_weights, len(matching.patients))
    tp, fp, n_gt = _counts_at(matching, conf, w)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), np.nan)
        recall = np.where(n_gt > 0, tp / n_gt, np.nan)
    return weighted_result(precision, scalar), weighted_result(recall, scalar)


def false_positives_per_slice(
    gt: GroundTruth,
    preds: pd.DataFrame,
    conf: float,
    *,
    iou_threshold: float = 0.5,
    max_dets: int | None = 100,
    patient_weights=None,
):
    """Unmatched detections with ``score >= conf`` per evaluated slice (all slices)."""
    matching = match_detections(gt, preds, iou_thresholds=[iou_threshold], max_dets=max_dets)
    w, scalar = weights_matrix(patient_weights, len(matching.patients))
    _, fp, _ = _counts_at(matching, conf, w)
    n_images = w @ matching.images_per_patient
    with np.errstate(divide="ignore", invalid="ignore"):
        return weighted_result(np.where(n_images > 0, fp / n_images, np.nan), scalar)


def choose_operating_confidence(
    val_gt: GroundTruth,
    val_preds: pd.DataFrame,
    *,
    rule: str = "max_f1",
    target: float | None = None,
    iou_threshold: float = 0.5,
    max_dets: int | None = 100,
) -> float:
    """Pick the confidence threshold on validation data.

    Parameters
    ----------
    rule : {'max_f1', 'min_recall', 'min_precision'}
        ``max_f1``: the score maximising F1 (highest score on ties).
        ``min_recall``: the highest score whose recall is at least ``target``.
        ``min_precision``: the lowest score whose precision is at least ``target``
        (most recall at that precision).
    target : float
        For the ``min_*`` rules.

    Returns
    -------
    float
        Detections with ``score >=`` this value are kept. 1.0 when there is no
        detection or no threshold satisfies the rule.
    """
    curve = pr_curve(val_gt, val_preds, iou_threshold=iou_threshold, max_dets=max_dets)
    if len(curve.score) == 0:
        return 1.0
    if rule == "max_f1":
        with np.errstate(divide="ignore", invalid="ignore"):
            f1 = np.where(
                curve.precision + curve.recall > 0,
                2 * curve.precision * curve.recall / (curve.precision + curve.recall),
                0.0,
            )
        return float(curve.score[int(np.argmax(f1))])
    if target is None:
        raise ValueError(f"rule {rule!r} needs a target")
    if rule == "min_recall":
        ok = np.flatnonzero(curve.recall >= target)
        return float(curve.score[ok[0]]) if len(ok) else 1.0
    if rule == "min_precision":
        ok = np.flatnonzero(curve.precision >= target)
        return float(curve.score[ok[-1]]) if len(ok) else 1.0
    raise ValueError(f"unknown rule {rule!r}")


# --------------------------------------------------------------------------- lesion level


def lesion_sensitivity(
    gt: GroundTruth,
    preds: pd.DataFrame,
    conf: float,
    *,
    rule: str = "iou",
    iou_threshold: float = 0.5,
    patient_weights=None,
):
    """Fraction of 3-D lesions hit on at least one of their slices.

    A lesion is the set of GT boxes sharing ``(patient_id, lesion_id)``; ``lesion_id``
    -1 makes a box its own lesion. A box is *hit* by any detection of its class on its
    slice with ``score >= conf`` and

    - ``rule='iou'``: IoU >= ``iou_threshold`` with the box, or
    - ``rule='center'``: the detection's centre inside the box.

    Hits are not one-to-one (one detection may hit two boxes), unlike the AP matching:
    the question is whether the reader is pointed at the lesion.

    Returns
    -------
    float, or (B,) array with 2-D ``patient_weights``; NaN without lesions.
    """
    if rule not in ("iou", "center"):
        raise ValueError(f"unknown rule {rule!r}")
    d = detection_arrays(gt, preds, None)
    w, scalar = weights_matrix(patient_weights, len(d["patients"]))
    keep = d["score"] >= conf
    det_groups = group_by_image_class(d["pimg"][keep], d["pcls"][keep])
    pbox = d["pbox"][keep]
    hit = np.zeros(len(d["gbox"]), dtype=bool)
    for key, gidx in group_by_image_class(d["gimg"], d["gcls"]).items():
        didx = det_groups.get(key)
        if didx is not None:
            hits = box_hits(pbox[didx], d["gbox"][gidx], rule=rule, iou_threshold=iou_threshold)
            hit[gidx] = hits.any(axis=0)
    patient = d["image_patient"][d["gimg"]]
    lesion, lesion_patient = lesion_codes(patient, gt.boxes["lesion_id"].to_numpy())
    lesion_hit = np.zeros(len(lesion_patient), dtype=bool)
    np.logical_or.at(lesion_hit, lesion, hit)
    n_patients = len(d["patients"])
    found = np.bincount(lesion_patient, weights=lesion_hit.astype(float), minlength=n_patients)
    total = np.bincount(lesion_patient, minlength=n_patients).astype(float)
    num, den = w @ found, w @ total
    with np.errstate(divide="ignore", invalid="ignore"):
        return weighted_result(np.where(den > 0, num / den, np.nan), scalar)


# --------------------------------------------------------------------------- bootstrap


def _accepts_weights(metric_fn: Callable) -> bool:
    try:
        params = inspect.signature(metric_fn).parameters
    except (TypeError, ValueError):
        return False
    return "patient_weights" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def resample_patients(gt: GroundTruth, preds: pd.DataFrame, counts: np.ndarray):
    """Materialise one patient resample (``counts`` per patient, ``gt.patients`` order).

    Copies get new image and patient ids ``(id, copy)``; used for metrics that do not
    take ``patient_weights``.
    """
    images, boxes, dets = [], [], []
    by_patient = dict(tuple(gt.images.groupby("patient_id", sort=False)))
    for patient, count in zip(gt.patients, np.asarray(counts, int)):
        if count == 0:
            continue
        ids = by_patient[patient]["image_id"]
        b = gt.boxes[gt.boxes["image_id"].isin(ids)]
        p = preds[preds["image_id"].isin(ids)]
        for k in range(count):
            images.append(  # keeps any further column, e.g. the slice index z
                by_patient[patient].assign(
                    image_id=[(i, k) for i in ids], patient_id=[(patient, k)] * len(ids)
                )
            )
            boxes.append(b.assign(image_id=[(i, k) for i in b["image_id"]]))
            dets.append(p.assign(image_id=[(i, k) for i in p["image_id"]]))
    new_gt = GroundTruth(
        images=pd.concat(images, ignore_index=True), boxes=pd.concat(boxes, ignore_index=True)
    )
    return new_gt, pd.concat(dets, ignore_index=True)


def _evaluate_boot(metric_fn, gt, preds, weights):
    if _accepts_weights(metric_fn):
        values = metric_fn(gt, preds, patient_weights=weights)
    else:
        values = [metric_fn(*resample_patients(gt, preds, row)) for row in weights]
    return _as_array(values)


def _as_array(values) -> np.ndarray:
    if isinstance(values, tuple):  # e.g. (precision, recall)
        return np.stack([np.asarray(v, float) for v in values], axis=-1)
    return np.asarray(values, dtype=float)


def _statistic(metric_fn: Callable, gt: GroundTruth, preds: pd.DataFrame) -> Callable:
    """``metric_fn`` as a statistic of patient resample indices (None: original data)."""
    n_patients = len(gt.patients)

    def statistic(indices):
        if indices is None:
            return _as_array(metric_fn(gt, preds))
        return _evaluate_boot(metric_fn, gt, preds, resample_counts(indices, n_patients))

    return statistic


def patient_bootstrap(
    metric_fn: Callable,
    gt: GroundTruth,
    preds: pd.DataFrame,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
):
    """Percentile bootstrap CI of a metric, resampling patients with replacement.

    Parameters
    ----------
    metric_fn : callable
        ``metric_fn(gt, preds)`` -> float (or tuple of floats). If it accepts
        ``patient_weights`` (all metrics here do; bind options with
        :func:`functools.partial`) all resamples are evaluated in one call; otherwise
        each resample is materialised (slow).
    n_boot : int
        Number of resamples B.
    seed : int
        Resample seed (:func:`crossmodal.stats.bootstrap.patient_resamples`); the same
        seed draws the same patients for every metric.
    ci : float
        Central coverage of the interval.

    Returns
    -------
    (estimate, lo, hi)
        ``estimate`` on the original data; ``lo, hi`` percentiles of the resampled
        values (NaN resamples, e.g. without any GT box, are skipped).
    """
    statistic = _statistic(metric_fn, gt, preds)
    estimate = statistic(None)
    lo, hi = percentile_ci(statistic(patient_resamples(len(gt.patients), n_boot, seed)), ci)
    return _scalar_or_array(estimate), lo, hi


def _scalar_or_array(x):
    x = np.asarray(x, dtype=float)
    return float(x) if x.ndim == 0 else x


def paired_bootstrap_difference(
    metric_fn: Callable,
    gt: GroundTruth,
    preds_a: pd.DataFrame,
    preds_b: pd.DataFrame,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
):
    """Paired bootstrap CI of ``metric(A) - metric(B)`` on the same patients.

    Both prediction sets are evaluated on the *same* patient resamples
    (:func:`crossmodal.stats.bootstrap.paired_bootstrap_difference`), so the
    patient-to-patient variation common to A and B cancels.

    Returns
    -------
    (difference, lo, hi)
    """
    result = _paired_difference(
        _statistic(metric_fn, gt, preds_a),
        _statistic(metric_fn, gt, preds_b),
        len(gt.patients),
        n_boot=n_boot,
        seed=seed,
        ci=ci,
    )
    return result.difference, result.low, result.high
