"""3-D lesion-level FROC: lesion sensitivity against false-positive findings per patient.

Definitions
-----------
A *lesion* is the set of ground-truth boxes sharing ``(patient, lesion_id)`` (boxes on
several slices; ``lesion_id`` -1 makes a box its own lesion). At confidence ``t`` it is
*found* when any detection with ``score >= t`` hits any of its boxes: class-agnostic,
with the rule of :func:`~crossmodal.detect.metrics.lesion_sensitivity` (``"iou"``: IoU
``>= iou`` with the box on that slice; ``"center"``: the detection's centre inside it).

A detection that hits no box is a false positive. False positives are counted as 3-D
*findings*, as a reader scrolling through the volume would see them: the detections kept
at ``t`` that hit no lesion, joined per patient when they lie on the same or adjacent
slices (``|dz| <= 1``, from the ``z`` column of ``gt.images``) and their boxes overlap
(IoU > 0). The findings are formed among the detections kept at each threshold, so a
confident false positive is never merged with another one through detections below the
threshold. (A lower threshold can therefore join two findings into one: the FP count is
not always monotone in ``t``.) Without ``z`` every false-positive detection is a finding
of its own.

Bootstrap
---------
Hits and findings are computed once; ``patient_weights`` ((B, P) multiplicities, columns
in :attr:`~crossmodal.detect.matching.GroundTruth.patients` order) then weight the per-patient counts of found lesions,
lesions, findings and patients, so B resamples cost B rows of one matrix product. A
patient drawn twice counts its lesions, its findings and itself twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import minimum_spanning_tree

from crossmodal.detect.matching import GroundTruth
from crossmodal.detect.matching import box_hits
from crossmodal.detect.matching import box_iou
from crossmodal.detect.matching import detection_arrays
from crossmodal.detect.matching import group_by_image_class
from crossmodal.detect.matching import lesion_codes
from crossmodal.detect.matching import weights_matrix

__all__ = ["FrocCurve", "fp_at_sensitivity", "froc", "sensitivity_at_fp"]

FP_RATES = (0.5, 1.0, 2.0, 4.0)  # FP per patient at which FROC sensitivity is usually read


@dataclass(frozen=True)
class FrocCurve:
    """Operating points of a detector, one per distinct detection score.

    Attributes
    ----------
    thresholds : (T,) array
        Distinct detection scores, descending; point ``k`` keeps ``score >= thresholds[k]``.
    sensitivity : (T,) or (B, T) array
        Share of 3-D lesions found (NaN without lesions); (B, T) with 2-D weights.
    fp_per_patient : (T,) or (B, T) array
        False-positive findings per patient.
    n_lesions : float or (B,) array
        Lesions counted (weighted).
    max_fp_per_patient : float
        The curve stops at the first threshold where every row exceeds this many FP per
        patient (``inf``: not cut, every score is a threshold).
    """

    thresholds: np.ndarray
    sensitivity: np.ndarray
    fp_per_patient: np.ndarray
    n_lesions: float | np.ndarray
    max_fp_per_patient: float


def froc(
    gt: GroundTruth,
    preds: pd.DataFrame,
    *,
    lesion_hit: str = "iou",
    iou: float = 0.5,
    patient_weights: np.ndarray | None = None,
    max_fp_per_patient: float | None = 8.0,
    lesion_classes: Sequence[int] | None = None,
) -> FrocCurve:
    """3-D lesion-level FROC curve (see the module docstring for the definitions).

    Parameters
    ----------
    gt : GroundTruth
        ``gt.images`` should carry ``z`` (slice index) to join false positives across
        slices; without it each false-positive detection is its own finding.
    preds : DataFrame
        Prediction table (:func:`~crossmodal.detect.matching.predictions`); classes are
        ignored.
    lesion_hit : {'iou', 'center'}
    iou : float
        IoU for ``lesion_hit='iou'``.
    patient_weights : (B, P) or (P,) array, optional
        Patient multiplicities; 2-D gives (B, T) curves.
    max_fp_per_patient : float or None
        Stop the curve once every row exceeds this FP rate (default 8, twice the largest
        rate usually read). The findings are then formed among the top detections only,
        which keeps thousands of low-score detections per slice cheap. ``None``: the
        whole curve.
    lesion_classes : sequence of int, optional
        Count the sensitivity over the lesions of these classes only (e.g. the primary
        lesion); a detection that hits a lesion of any class is still no false positive.

    Returns
    -------
    FrocCurve
    """
    if lesion_hit not in ("iou", "center"):
        raise ValueError(f"unknown lesion_hit rule {lesion_hit!r}")
    d = detection_arrays(gt, preds, None)
    w, scalar = weights_matrix(patient_weights, len(d["patients"]))
    lesion_score, lesion_patient, is_fp = _lesion_scores(gt, d, lesion_hit, iou, lesion_classes)
    z = gt.images["z"].to_numpy(int)[d["pimg"]] if "z" in gt.images else None
    fp = np.flatnonzero(is_fp)
    fp = fp[np.argsort(-d["score"][fp], kind="mergesort")]
    n_patients = len(d["patients"])
    n_top = len(fp) if max_fp_per_patient is None else int(4 * max_fp_per_patient * n_patients) + 1
    while True:
        # Exact for thresholds >= floor: the findings there involve top detections only.
        floor = d["score"][fp[n_top - 1]] if n_top < len(fp) else -np.inf
        top = fp[d["score"][fp] >= floor]
        thresholds = np.unique(d["score"][d["score"] >= floor])[::-1]
        found = _cumulative_counts(
            thresholds, lesion_score, lesion_patient, np.ones(len(lesion_score)), n_patients
        )
        f_score, f_patient, f_delta = _finding_events(
            d["score"][top], d["image_patient"][d["pimg"][top]], d["pbox"][top],
            None if z is None else z[top],
        )
        findings = _cumulative_counts(thresholds, f_score, f_patient, f_delta, n_patients)
        n_lesions = w @ np.bincount(lesion_patient, minlength=n_patients).astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            sensitivity = (w @ found) / n_lesions[:, None]
        fp_rate = (w @ findings) / w.sum(axis=1)[:, None]
        cut = _first_over(fp_rate, max_fp_per_patient)
        if cut is not None or n_top >= len(fp):
            break
        n_top *= 4
    end = len(thresholds) if cut is None else cut + 1
    curve = (thresholds[:end], sensitivity[:, :end], fp_rate[:, :end])
    return FrocCurve(
        thresholds=curve[0],
        sensitivity=curve[1][0] if scalar else curve[1],
        fp_per_patient=curve[2][0] if scalar else curve[2],
        n_lesions=float(n_lesions[0]) if scalar else n_lesions,
        max_fp_per_patient=np.inf if cut is None else float(max_fp_per_patient),
    )


def _first_over(fp_rate: np.ndarray, limit: float | None) -> int | None:
    """First column where every row's FP rate exceeds ``limit`` (None if none)."""
    if limit is None or fp_rate.shape[1] == 0:
        return None
    over = (fp_rate > limit).all(axis=0)
    return int(np.argmax(over)) if over.any() else None


def _lesion_scores(gt: GroundTruth, d: dict, rule: str, iou: float, lesion_classes=None):
    """Per lesion the highest score of a detection hitting it (-inf: never hit), the
    lesion's patient index, and per detection whether it hits no box at all; only the
    lesions of ``lesion_classes`` (all if None) are returned."""
    n_det = len(d["score"])
    hits_box = np.zeros(n_det, dtype=bool)
    box_score = np.full(len(d["gbox"]), -np.inf)
    det_groups = group_by_image_class(d["pimg"], np.zeros(n_det, int))
    for key, gidx in group_by_image_class(d["gimg"], np.zeros(len(d["gimg"]), int)).items():
        didx = det_groups.get(key)
        if didx is None:
            continue
        hit = box_hits(d["pbox"][didx], d["gbox"][gidx], rule=rule, iou_threshold=iou)
        hits_box[didx] = hit.any(axis=1)
        box_score[gidx] = np.where(hit, d["score"][didx][:, None], -np.inf).max(axis=0)
    box_patient = d["image_patient"][d["gimg"]]
    code, lesion_patient = lesion_codes(box_patient, gt.boxes["lesion_id"].to_numpy())
    lesion_score = np.full(len(lesion_patient), -np.inf)
    np.maximum.at(lesion_score, code, box_score)
    if lesion_classes is None:
        return lesion_score, lesion_patient, ~hits_box
    wanted = np.zeros(len(lesion_patient), dtype=bool)
    np.logical_or.at(wanted, code, np.isin(gt.boxes["class_id"].to_numpy(), list(lesion_classes)))
    return lesion_score[wanted], lesion_patient[wanted], ~hits_box


def _cumulative_counts(thresholds, score, patient, delta, n_patients: int) -> np.ndarray:
    """(P, T): per patient, the sum of ``delta`` over events with ``score >= thresholds[k]``."""
    # thresholds descend: an event counts from the first threshold at or below its score.
    position = np.searchsorted(-thresholds, -np.asarray(score, float), side="left")
    counts = np.zeros((n_patients, len(thresholds) + 1))
    np.add.at(counts, (np.asarray(patient, int), position), delta)
    return np.cumsum(counts, axis=1)[:, :-1]


def _finding_events(score, patient, box, z):
    """Events whose running sum over descending thresholds counts the findings.

    The findings at ``t`` are the connected components of the false-positive detections
    with ``score >= t`` (edges: same patient, ``|dz| <= 1``, IoU > 0). An edge is present
    from ``min(score_i, score_j)`` down. Components = nodes - edges of a maximum spanning
    forest, whose edges present at ``t`` span the graph at ``t`` (Kruskal), so each
    detection is +1 at its score and each forest edge -1 at its weight.
    """
    ones = np.ones(len(score))
    if z is None or len(score) < 2:
        return score, patient, ones
    first, second = _overlap_edges(patient, z, box)
    if len(first) == 0:
        return score, patient, ones
    weight = np.minimum(score[first], score[second])
    levels = np.unique(weight)
    # Integer ranks (1 = highest weight) keep the spanning forest exact; 0 means "no edge".
    rank = len(levels) - np.searchsorted(levels, weight)
    graph = coo_matrix((rank.astype(float), (first, second)), shape=(len(score),) * 2)
    forest = minimum_spanning_tree(graph.tocsr()).tocoo()
    edge_weight = levels[len(levels) - forest.data.astype(int)]
    return (
        np.r_[score, edge_weight],
        np.r_[patient, patient[forest.row]],
        np.r_[ones, -np.ones(len(edge_weight))],
    )


def _overlap_edges(patient, z, box) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``i < j`` of detections of one patient on the same or adjacent slices whose
    boxes overlap (IoU > 0); each pair once."""
    groups = {
        key: np.asarray(idx)
        for key, idx in pd.DataFrame({"p": patient, "z": z}).groupby(["p", "z"]).indices.items()
    }
    first, second = [], []
    for (p, zz), idx in groups.items():
        same = np.triu(box_iou(box[idx], box[idx]) > 0, k=1)
        i, j = np.nonzero(same)
        first.append(idx[i])
        second.append(idx[j])
        above = groups.get((p, zz + 1))
        if above is not None:
            i, j = np.nonzero(box_iou(box[idx], box[above]) > 0)
            first.append(idx[i])
            second.append(above[j])
    if not first:
        return np.zeros(0, int), np.zeros(0, int)
    a, b = np.concatenate(first), np.concatenate(second)
    return np.minimum(a, b), np.maximum(a, b)


def sensitivity_at_fp(curve: FrocCurve, fp_rates: Sequence[float] = FP_RATES) -> np.ndarray:
    """Sensitivity at given FP-per-patient rates (standard FROC step reading).

    At each rate, the sensitivity of the lowest threshold (the most detections kept)
    whose FP per patient is at most the rate; 0 when even the highest threshold has
    more (no detection kept: no lesion found).

    Returns
    -------
    (R,) array, or (B, R) for a curve computed with 2-D weights; NaN without lesions.
    """
    rates = np.asarray(fp_rates, dtype=float).reshape(-1)
    if np.any(rates > curve.max_fp_per_patient):
        raise ValueError(
            f"the curve stops at {curve.max_fp_per_patient} FP per patient; "
            "compute it with a larger max_fp_per_patient"
        )
    sens = np.atleast_2d(curve.sensitivity)
    fp = np.atleast_2d(curve.fp_per_patient)
    # Sensitivity never drops as the threshold falls, so the max over the admissible
    # thresholds is the sensitivity at the lowest one.
    out = np.column_stack(
        [np.where(fp <= r, sens, 0.0).max(axis=1, initial=0.0) for r in rates]
    ).reshape(len(sens), len(rates))
    out[np.atleast_1d(curve.n_lesions) == 0] = np.nan
    return out[0] if np.ndim(curve.sensitivity) == 1 else out


def fp_at_sensitivity(curve: FrocCurve, sensitivity: float | Sequence[float]):
    """FP findings per patient at the highest threshold whose sensitivity reaches a level.

    Reading two detectors at the same sensitivity gives "FP at matched sensitivity".

    Parameters
    ----------
    sensitivity : float or sequence of float

    Returns
    -------
    float for one level and a 1-D curve; (R,) for several levels; (B,) or (B, R) for a
    curve computed with 2-D weights. NaN where the level is never reached (within
    ``curve.max_fp_per_patient`` when the curve was cut).
    """
    levels = np.asarray(sensitivity, dtype=float)
    sens = np.atleast_2d(curve.sensitivity)
    fp = np.atleast_2d(curve.fp_per_patient)
    out = np.full((len(sens), levels.size), np.nan)
    for r, level in enumerate(levels.reshape(-1) if sens.shape[1] else []):
        reached = sens >= level - 1e-12  # tolerate rounding of a level computed elsewhere
        first = np.argmax(reached, axis=1)
        ok = reached.any(axis=1)
        out[ok, r] = fp[ok, first[ok]]
    if levels.ndim == 0:
        out = out[:, 0]
    if np.ndim(curve.sensitivity) == 1:
        return float(out[0]) if levels.ndim == 0 else out[0]
    return out
