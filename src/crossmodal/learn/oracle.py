"""The data card's oracle: per-candidate PET and CT features, and a lesion-vs-mimic classifier.

A *candidate* is a ground-truth region of one patient on the CT grid: a lesion (a 3-D
component of the label) or a mimic (a structure that is hot on PET but no lesion, e.g.
the bladder or a focus of ureteric or bowel uptake). The oracle asks how well a simple
classifier separates lesions from mimics from PET-only, CT-only and PET+CT features of
these regions, before any detector is trained: a reference for what fusing the two
modalities can add on a cohort (a reference, not a ceiling: a richer model may find more).

* :func:`candidate_voxels` crops one candidate and the shell of tissue around it;
  :func:`candidate_features` measures it (the names of :data:`FEATURES`);
  :func:`in_plane_extent` gives its size as a detector sees it.
* :func:`grouped_folds` draws patient-grouped, label-stratified folds;
  :func:`out_of_fold_scores` fits a standardised logistic regression per fold.
* :func:`weighted_auc` and :func:`weighted_average_precision` take one row of candidate
  weights per patient-bootstrap resample; :func:`oracle_table` puts the pieces together
  with :mod:`crossmodal.stats.bootstrap`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage

from crossmodal.stats.bootstrap import paired_bootstrap_difference
from crossmodal.stats.bootstrap import patient_resamples
from crossmodal.stats.bootstrap import percentile_ci
from crossmodal.stats.bootstrap import resample_counts

__all__ = [
    "FEATURES",
    "CandidateVoxels",
    "candidate_features",
    "candidate_voxels",
    "grouped_folds",
    "in_plane_extent",
    "oracle_table",
    "out_of_fold_scores",
    "weighted_auc",
    "weighted_average_precision",
]


@dataclass
class CandidateVoxels:
    """One candidate cropped to its bounding box plus the shell around it."""

    mask: np.ndarray  # (z, y, x) bool: the candidate
    shell: np.ndarray  # (z, y, x) bool: tissue within ``shell_mm`` of it, itself excluded
    hu: np.ndarray  # CT (HU) on the same crop
    suv: np.ndarray  # PET (SUV) resampled onto the CT grid, same crop
    spacing_mm: tuple[float, float, float]  # (z, y, x)
    top_voxels: int = 10  # SUV "peak": mean of this many hottest voxels
    fat_hu: tuple[float, float] = (-150.0, -50.0)  # HU range counted as fat in the shell


def candidate_voxels(mask: np.ndarray, hu: np.ndarray, suv: np.ndarray, spacing_mm, *,
                     shell_mm: float, top_voxels: int = 10,
                     fat_hu: tuple[float, float] = (-150.0, -50.0)) -> CandidateVoxels:
    """Crop a candidate ``mask`` (z, y, x; CT grid) and the images to its bounding box grown
    by ``shell_mm``; the shell is every voxel within ``shell_mm`` (Euclidean, in mm) of
    the mask and outside it. ``spacing_mm`` is (z, y, x)."""
    spacing = np.asarray(spacing_mm, float)
    where = np.argwhere(mask)
    if len(where) == 0:
        raise ValueError("empty candidate mask")
    margin = np.ceil(shell_mm / spacing).astype(int) + 1
    low = np.maximum(where.min(axis=0) - margin, 0)
    high = np.minimum(where.max(axis=0) + margin + 1, mask.shape)
    crop = tuple(slice(lo, hi) for lo, hi in zip(low, high))
    inner = np.asarray(mask[crop], bool)
    distance = ndimage.distance_transform_edt(~inner, sampling=spacing)
    return CandidateVoxels(inner, (distance <= shell_mm) & ~inner, np.asarray(hu[crop], float),
                           np.asarray(suv[crop], float), tuple(float(s) for s in spacing),
                           int(top_voxels), (float(fat_hu[0]), float(fat_hu[1])))


def _shell_mean(c: CandidateVoxels, image: np.ndarray) -> float:
    return float(image[c.shell].mean()) if c.shell.any() else float("nan")


def _elongation(c: CandidateVoxels) -> float:
    """Ratio of the largest to the smallest principal axis (1 for a sphere), from the
    covariance of voxel centres in mm; each voxel's own extent (s^2 / 12 per axis) is added
    so that a one-voxel-thick candidate stays finite."""
    points = np.argwhere(c.mask) * np.asarray(c.spacing_mm)
    covariance = np.cov(points.T) if len(points) > 1 else np.zeros((3, 3))
    covariance = covariance + np.diag(np.asarray(c.spacing_mm) ** 2 / 12.0)
    eigen = np.linalg.eigvalsh(covariance)
    return float(np.sqrt(eigen[-1] / eigen[0]))


def _top_mean(c: CandidateVoxels) -> float:
    values = np.sort(c.suv[c.mask])
    return float(values[-c.top_voxels:].mean())


def _fat_fraction(c: CandidateVoxels) -> float:
    if not c.shell.any():
        return float("nan")
    shell = c.hu[c.shell]
    return float(((shell >= c.fat_hu[0]) & (shell <= c.fat_hu[1])).mean())


#: Every feature the oracle may use: name -> function of one candidate. Which ones form the
#: PET-only and CT-only sets is a parameter (``data_card.features``).
FEATURES: dict[str, Callable[[CandidateVoxels], float]] = {
    "suv_max": lambda c: float(c.suv[c.mask].max()),
    "suv_mean": lambda c: float(c.suv[c.mask].mean()),
    "suv_top_mean": _top_mean,
    "suv_contrast": lambda c: float(c.suv[c.mask].mean()) - _shell_mean(c, c.suv),
    "hu_mean": lambda c: float(c.hu[c.mask].mean()),
    "hu_sd": lambda c: float(c.hu[c.mask].std()),
    "hu_p10": lambda c: float(np.percentile(c.hu[c.mask], 10)),
    "hu_p90": lambda c: float(np.percentile(c.hu[c.mask], 90)),
    "shell_fat_fraction": _fat_fraction,
    "elongation": _elongation,
    "volume_ml": lambda c: float(c.mask.sum() * np.prod(c.spacing_mm) / 1000.0),
}


def candidate_features(candidate: CandidateVoxels, names) -> dict[str, float]:
    """The features ``names`` (keys of :data:`FEATURES`) of one candidate."""
    unknown = sorted(set(names) - set(FEATURES))
    if unknown:
        raise ValueError(f"unknown candidate features {unknown}; known: {sorted(FEATURES)}")
    return {name: FEATURES[name](candidate) for name in names}


def in_plane_extent(mask: np.ndarray, spacing_mm) -> tuple[int, float]:
    """Size of a candidate in its largest slice (most voxels): the larger side of that
    slice's bounding box, in CT pixels and in mm. ``spacing_mm`` is (z, y, x)."""
    z = int(np.argmax(mask.reshape(len(mask), -1).sum(axis=1)))
    ys, xs = np.nonzero(mask[z])
    height, width = int(np.ptp(ys)) + 1, int(np.ptp(xs)) + 1
    return max(height, width), float(max(height * spacing_mm[1], width * spacing_mm[2]))


# ----------------------------------------------------------------------------- the classifier


def grouped_folds(y, groups, *, n_splits: int, n_repeats: int = 1, seed: int = 0) -> np.ndarray:
    """Fold of each candidate, one row per repeat: stratified by ``y`` and grouped by
    patient (``groups``), so that no patient is in the training and the test part of a
    fold. ``n_splits`` is lowered to the number of patients when there are fewer."""
    from sklearn.model_selection import StratifiedGroupKFold

    y, groups = np.asarray(y), np.asarray(groups)
    n_splits = min(int(n_splits), len(np.unique(groups)))
    if n_splits < 2:
        raise ValueError("the oracle needs candidates from at least 2 patients")
    folds = np.empty((n_repeats, len(y)), dtype=int)
    for r in range(n_repeats):
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed + r)
        for k, (_, test) in enumerate(splitter.split(np.zeros(len(y)), y, groups)):
            folds[r, test] = k
    return folds


def out_of_fold_scores(X, y, folds: np.ndarray, *, C: float = 1.0) -> np.ndarray:
    """Out-of-fold lesion probability of each candidate, averaged over the repeats of
    ``folds``: median imputation, standardisation and a class-balanced logistic regression
    fitted on the other folds (a fold whose training part holds one class predicts its share)."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = np.asarray(X, float), np.asarray(y, int)
    scores = np.zeros((len(folds), len(y)))
    for r, fold in enumerate(folds):
        for k in np.unique(fold):
            train, test = fold != k, fold == k
            if len(np.unique(y[train])) < 2:
                scores[r, test] = y[train].mean()
                continue
            model = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True),
                                  StandardScaler(),
                                  LogisticRegression(C=C, class_weight="balanced", max_iter=2000))
            model.fit(X[train], y[train])
            scores[r, test] = model.predict_proba(X[test])[:, 1]
    return scores.mean(axis=0)


def _grouped_weights(y, score, weights):
    """Positive and negative weight per distinct score (ascending), one row per weight row."""
    w = np.atleast_2d(np.asarray(weights, float))
    y = np.asarray(y, bool)
    _, group = np.unique(np.asarray(score, float), return_inverse=True)
    onehot = np.zeros((len(y), group.max() + 1))
    onehot[np.arange(len(y)), group] = 1.0
    return (w * y) @ onehot, (w * ~y) @ onehot


def weighted_auc(y, score, weights) -> np.ndarray:
    """ROC AUC with candidate weights (ties count one half), one value per row of
    ``weights`` (B, n); NaN where a row weighs no positive or no negative."""
    pos, neg = _grouped_weights(y, score, weights)
    below = np.cumsum(neg, axis=1) - neg
    numerator = (pos * (below + 0.5 * neg)).sum(axis=1)
    denominator = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)


def weighted_average_precision(y, score, weights) -> np.ndarray:
    """Average precision (scikit-learn's step definition) with candidate weights, one value
    per row of ``weights`` (B, n); NaN where a row weighs no positive."""
    pos, neg = _grouped_weights(y, score, weights)
    tp, fp = np.cumsum(pos[:, ::-1], axis=1), np.cumsum(neg[:, ::-1], axis=1)
    total = pos.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = tp / total
        steps = np.diff(recall, axis=1, prepend=0.0)
        return np.where(total[:, 0] > 0, (steps * precision).sum(axis=1), np.nan)


METRICS = {"AUC": weighted_auc, "AP": weighted_average_precision}


def _statistic(metric, y, score, patient_index, n_patients):
    """``statistic(indices)`` for :mod:`crossmodal.stats.bootstrap`: the metric with every
    candidate weighted by how often its patient was drawn (``None``: the original cohort)."""
    def statistic(indices):
        if indices is None:
            return metric(y, score, np.ones(len(y)))[0]
        return metric(y, score, resample_counts(indices, n_patients)[:, patient_index])
    return statistic


def oracle_table(candidates: pd.DataFrame, feature_sets: dict[str, list[str]], *, compare: tuple[str, str],
                 n_splits: int, n_repeats: int, seed: int, C: float, n_boot: int, boot_seed: int,
                 ci: float) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Out-of-fold AUC and AP of the oracle per feature set, with patient-bootstrap CIs, and
    the paired difference ``compare[0] - compare[1]`` (same resamples for both).

    ``candidates`` has ``patient``, ``target`` (1 lesion, 0 mimic) and the feature columns.
    Returns the table (one row per feature set, then the difference row) and the
    out-of-fold scores per feature set.
    """
    y = candidates["target"].to_numpy(int)
    patients, patient_index = np.unique(candidates["patient"].astype(str), return_inverse=True)
    counts = {"candidates": len(y), "lesions": int(y.sum()), "mimics": int((1 - y).sum()),
              "patients": len(patients)}
    folds = grouped_folds(y, patient_index, n_splits=n_splits, n_repeats=n_repeats, seed=seed)
    scores = {name: out_of_fold_scores(candidates[columns], y, folds, C=C)
              for name, columns in feature_sets.items()}
    indices = patient_resamples(len(patients), n_boot, boot_seed)
    rows = []
    for name, score in scores.items():
        row = {"features": name, **counts}
        for metric_name, metric in METRICS.items():
            statistic = _statistic(metric, y, score, patient_index, len(patients))
            low, high = percentile_ci(statistic(indices), ci)
            row.update({metric_name: statistic(None), f"{metric_name}_ci_low": low,
                        f"{metric_name}_ci_high": high})
        rows.append(row)
    row = {"features": f"{compare[0]} minus {compare[1]}", **counts}
    for metric_name, metric in METRICS.items():
        a, b = (_statistic(metric, y, scores[name], patient_index, len(patients)) for name in compare)
        paired = paired_bootstrap_difference(a, b, len(patients), n_boot=n_boot, seed=boot_seed, ci=ci)
        row.update({metric_name: paired.difference, f"{metric_name}_ci_low": paired.low,
                    f"{metric_name}_ci_high": paired.high})
    rows.append(row)
    return pd.DataFrame(rows), scores
