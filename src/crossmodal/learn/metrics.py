"""Patient-level classification metrics with patient-bootstrap CIs (Part 2, step 4).

Evaluation protocol
-------------------
* Input: the out-of-fold (OOF) table of :func:`crossmodal.learn.classify.cross_validated_scores`
  or :func:`crossmodal.learn.c3d.c3d_cross_validated`: one row per patient per repeat,
  columns ``repeat, fold, index, case_id, y, prob``.
* Point estimates: each metric is computed on each repeat's OOF predictions (every
  patient once) and averaged over repeats.
* Confidence intervals: patient bootstrap (:mod:`crossmodal.stats.bootstrap`). One
  resample of patients is drawn per bootstrap replicate and applied to *every* repeat;
  the replicate's value is the repeat-averaged metric. So the interval reflects patient
  sampling, while the fold-split noise is averaged out exactly as in the point estimate.
  2.5 / 97.5 percentiles by default; replicates in which a metric is undefined (e.g. no
  positive drawn) are dropped.
* Calibration: :func:`brier_with_ci` (repeat-averaged Brier score, same bootstrap),
  :func:`reliability_curve` (binned predicted vs observed) and :func:`confusion_counts`.
* Paired comparisons (:func:`compare_with_ci`) resample the same patients for both
  models, and :func:`delong_oof` runs DeLong on the per-patient mean OOF probability.

Metrics are computed by vectorised NumPy code (fast enough for 1000 replicates x 10
classifiers x 4 feature sets); tests check them against :mod:`sklearn.metrics`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.metrics import precision_recall_curve
from sklearn.metrics import roc_curve

from crossmodal.stats.bootstrap import paired_bootstrap_difference
from crossmodal.stats.bootstrap import patient_resamples
from crossmodal.stats.bootstrap import percentile_ci
from crossmodal.stats.delong import delong_test

__all__ = [
    "METRICS",
    "brier_with_ci",
    "confusion_counts",
    "reliability_curve",
    "classification_metrics",
    "compare_with_ci",
    "delong_oof",
    "mean_difference_with_ci",
    "metrics_with_ci",
    "oof_mean",
    "roc_pr_curves",
]

#: The classifier metrics, in table order.
METRICS = ("accuracy", "auc", "sensitivity", "specificity", "f1", "pr_auc")


def _batched_metrics(y, prob, threshold):
    """All metrics for each row of ``y``/``prob`` arrays of shape (b, n); NaN if undefined."""
    y = np.atleast_2d(y).astype(float)
    prob = np.atleast_2d(prob).astype(float)
    n_pos = y.sum(axis=1)
    n_neg = y.shape[1] - n_pos
    pred = prob >= threshold
    tp = (pred * y).sum(axis=1)
    fp = (pred * (1 - y)).sum(axis=1)
    fn = n_pos - tp
    tn = n_neg - fp
    with np.errstate(divide="ignore", invalid="ignore"):
        out = {
            "accuracy": (tp + tn) / y.shape[1],
            "auc": _batched_auc(y, prob, n_pos, n_neg),
            "sensitivity": np.where(n_pos > 0, tp / n_pos, np.nan),
            "specificity": np.where(n_neg > 0, tn / n_neg, np.nan),
            "f1": np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan),
            "pr_auc": _batched_average_precision(y, prob, n_pos),
        }
    return out


def _batched_auc(y, prob, n_pos, n_neg):
    # Mann-Whitney U with midranks: identical to roc_auc_score, ties count 1/2
    ranks = rankdata(prob, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = ((ranks * y).sum(axis=1) - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


def _batched_average_precision(y, prob, n_pos):
    # sklearn's step-wise AP: sum over thresholds of (recall step) x precision, where a
    # threshold is a distinct score, so tied cases enter together at the precision of
    # the end of their tie group.
    order = np.argsort(-prob, axis=1, kind="mergesort")
    s = np.take_along_axis(prob, order, axis=1)
    t = np.take_along_axis(y, order, axis=1)
    n = s.shape[1]
    tps = np.cumsum(t, axis=1)
    precision = tps / np.arange(1, n + 1)
    is_end = np.ones_like(s, dtype=bool)
    is_end[:, :-1] = s[:, :-1] != s[:, 1:]
    end_pos = np.where(is_end, np.arange(n), n)
    end_pos = np.minimum.accumulate(end_pos[:, ::-1], axis=1)[:, ::-1]  # next group end
    prec_at_end = np.take_along_axis(precision, end_pos, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ap = (t * prec_at_end).sum(axis=1) / n_pos
    return np.where(n_pos > 0, ap, np.nan)


def classification_metrics(y, prob, *, threshold=0.5):
    """Accuracy, AUC, sensitivity, specificity, F1 and PR-AUC of one set of predictions.

    Parameters
    ----------
    y : array_like of {0, 1}
    prob : array_like of float
        Positive-class probability (or any score for the threshold-free metrics).
    threshold : float
        A case is called positive when ``prob >= threshold``.

    Returns
    -------
    metrics : dict of str to float
        Keys of :data:`METRICS` plus ``n`` and ``n_pos``. ``pr_auc`` is average precision
        (as :func:`sklearn.metrics.average_precision_score`). Undefined values (AUC with
        one class, sensitivity without positives, F1 with neither true nor predicted
        positives) are NaN rather than 0.
    """
    y = np.asarray(y).astype(int).ravel()
    prob = np.asarray(prob, dtype=float).ravel()
    if y.size != prob.size:
        raise ValueError(f"{y.size} labels for {prob.size} scores")
    batch = _batched_metrics(y[None, :], prob[None, :], threshold)
    out = {k: float(batch[k][0]) for k in METRICS}
    out["n"] = int(y.size)
    out["n_pos"] = int(y.sum())
    return out


def _oof_matrices(oof):
    """``y`` (n,), ``prob`` (n_repeats, n) and the case ids from an OOF table."""
    wide = oof.pivot(index="index", columns="repeat", values="prob")
    if wide.isna().any().any():
        raise ValueError("OOF table does not predict every patient exactly once in every repeat")
    first = oof.drop_duplicates("index").set_index("index").loc[wide.index]
    return first["y"].to_numpy().astype(int), wide.to_numpy().T, first["case_id"].to_numpy()



def _repeat_mean(y, prob, idx, threshold):
    """Metric per bootstrap row, averaged over repeats; ``idx`` is (b, n)."""
    n_rep = prob.shape[0]
    yb = y[idx]
    acc = {k: 0.0 for k in METRICS}
    count = {k: 0 for k in METRICS}
    for r in range(n_rep):
        vals = _batched_metrics(yb, prob[r][idx], threshold)
        for k in METRICS:
            acc[k] = acc[k] + np.nan_to_num(vals[k])
            count[k] = count[k] + np.isfinite(vals[k])
    with np.errstate(invalid="ignore"):
        return {
            k: np.where(count[k] > 0, acc[k] / np.maximum(count[k], 1), np.nan) for k in METRICS
        }


def _oof_statistic(y, prob, threshold):
    """Repeat-averaged metrics as a bootstrap statistic of patient resample indices.

    ``statistic(indices)`` gives a (b, len(METRICS)) matrix; ``statistic(None)`` the
    (len(METRICS),) values on the original patients.
    """
    full = np.arange(y.size)[None, :]

    def statistic(indices):
        values = _repeat_mean(y, prob, full if indices is None else indices, threshold)
        matrix = np.column_stack([values[k] for k in METRICS])
        return matrix[0] if indices is None else matrix

    return statistic


def _ci_table(estimate, draws, alpha):
    """One row per metric: estimate, percentile CI of the draws, valid draw count."""
    low, high = percentile_ci(draws, 1 - alpha)
    table = pd.DataFrame(
        {
            "metric": list(METRICS),
            "estimate": np.asarray(estimate, float),
            "ci_low": low,
            "ci_high": high,
            "n_boot_valid": np.isfinite(draws).sum(axis=0).astype(int),
        }
    )
    return table.set_index("metric")


def _aligned_matrices(tables, what):
    """``(y, prob, ids)`` of each OOF table on the patients common to all, sorted by id.

    ``what`` names the tables in the error messages.
    """
    common = tables[0]["case_id"].unique()
    for oof in tables[1:]:
        common = np.intersect1d(common, oof["case_id"].unique())
    if common.size == 0:
        raise ValueError(f"{what} share no case_id")
    mats = []
    for oof in tables:
        y, prob, ids = _oof_matrices(oof[oof["case_id"].isin(common)])
        order = np.argsort(ids)
        mats.append((y[order], prob[:, order], ids[order]))
    y0, _, ids0 = mats[0]
    for y, _, ids in mats[1:]:
        if not (np.array_equal(ids, ids0) and np.array_equal(y, y0)):
            raise ValueError(f"labels differ between {what} for the same case_id")
    return mats


def _mean_statistic(statistics):
    """Mean of several statistics, accumulated in order."""
    k = len(statistics)

    def statistic(indices):
        total = 0.0
        for one in statistics:
            total = total + one(indices) / k
        return total

    return statistic


def _paired_table(statistic_a, statistic_b, n, *, n_boot, seed, alpha):
    result = paired_bootstrap_difference(
        statistic_a, statistic_b, n, n_boot=n_boot, seed=seed, ci=1 - alpha
    )
    table = _ci_table(result.difference, result.draws, alpha)
    table["a"] = np.asarray(result.a, float)
    table["b"] = np.asarray(result.b, float)
    table["n"] = int(n)
    table["p_value"] = np.asarray(result.p_value, float)  # two-sided bootstrap, difference = 0
    return table


def metrics_with_ci(oof, *, n_boot=1000, seed=0, threshold=0.5, alpha=0.05):
    """Repeat-averaged metrics with patient-bootstrap confidence intervals.

    Parameters
    ----------
    oof : DataFrame
        Output of :func:`crossmodal.learn.classify.cross_validated_scores` or
        :func:`crossmodal.learn.c3d.c3d_cross_validated`.
    n_boot : int
        Bootstrap replicates.
    seed : int
        Seed of the patient resampling (:func:`crossmodal.stats.bootstrap.patient_resamples`).
    threshold : float
        Decision threshold for the threshold-dependent metrics.
    alpha : float
        1 - coverage; 0.05 gives 95 % percentile intervals.

    Returns
    -------
    table : DataFrame
        Index = :data:`METRICS`; columns ``estimate`` (mean over repeats of the per-repeat
        metric), ``ci_low``, ``ci_high``, ``n_boot_valid``. See the module docstring for
        how repeats and the bootstrap combine.
    """
    y, prob, _ = _oof_matrices(oof)
    statistic = _oof_statistic(y, prob, threshold)
    draws = statistic(patient_resamples(y.size, n_boot, seed))
    return _ci_table(statistic(None), draws, alpha)


def compare_with_ci(oof_a, oof_b, *, n_boot=1000, seed=0, threshold=0.5, alpha=0.05):
    """Paired difference ``a - b`` of repeat-averaged metrics, with a patient bootstrap CI.

    Parameters
    ----------
    oof_a, oof_b : DataFrame
        OOF tables of two models. Only patients present in both (by ``case_id``) are
        used, so a fused model can be compared with a single-modality one on the patients
        who have that modality. The two may have different repeat counts.
    n_boot, seed, threshold, alpha
        As in :func:`metrics_with_ci`; each replicate resamples the same patients for both
        (:func:`crossmodal.stats.bootstrap.paired_bootstrap_difference`).

    Returns
    -------
    table : DataFrame
        Index = :data:`METRICS`; columns ``estimate``, ``ci_low``, ``ci_high``,
        ``n_boot_valid``, plus ``a`` and ``b`` (the two point estimates) and ``n``.
    """
    (ya, pa, _), (yb, pb, _) = _aligned_matrices([oof_a, oof_b], "the two OOF tables")
    return _paired_table(
        _oof_statistic(ya, pa, threshold),
        _oof_statistic(yb, pb, threshold),
        ya.size,
        n_boot=n_boot,
        seed=seed,
        alpha=alpha,
    )


def mean_difference_with_ci(oofs_a, oofs_b, *, n_boot=1000, seed=0, threshold=0.5, alpha=0.05):
    """Mean over model pairs of the paired difference ``a_i - b_i``, with one patient bootstrap.

    For example fused minus single-modality features, averaged over classifiers: every
    replicate resamples the same patients for every pair, so the interval is that of the
    average, not of one pair.

    Parameters
    ----------
    oofs_a, oofs_b : sequence of DataFrame
        OOF tables, paired by position (``oofs_a[i]`` with ``oofs_b[i]``). Only patients
        present in every table are used.
    n_boot, seed, threshold, alpha
        As in :func:`metrics_with_ci`.

    Returns
    -------
    table : DataFrame
        As :func:`compare_with_ci` (``estimate``, ``ci_low``, ``ci_high``,
        ``n_boot_valid``, ``a``, ``b``, ``n``), where ``a`` and ``b`` are the means over
        pairs. With a single pair it equals :func:`compare_with_ci`.
    """
    if len(oofs_a) != len(oofs_b) or not len(oofs_a):
        raise ValueError("need the same, non-zero number of tables on both sides")
    mats = _aligned_matrices(list(oofs_a) + list(oofs_b), "the OOF tables")
    statistics = [_oof_statistic(y, prob, threshold) for y, prob, _ in mats]
    k = len(oofs_a)
    return _paired_table(
        _mean_statistic(statistics[:k]),
        _mean_statistic(statistics[k:]),
        mats[0][0].size,
        n_boot=n_boot,
        seed=seed,
        alpha=alpha,
    )



def oof_mean(oof):
    """Mean OOF probability per patient over repeats.

    Returns
    -------
    table : DataFrame
        Index ``case_id``; columns ``y`` and ``prob``. One score per patient, as DeLong
        and curve plots need.
    """
    grouped = oof.groupby("case_id", sort=True)
    return pd.DataFrame({"y": grouped["y"].first().astype(int), "prob": grouped["prob"].mean()})


def delong_oof(oof_a, oof_b):
    """DeLong test of two models on the patients both predicted.

    Each model's score for a patient is its mean OOF probability over repeats
    (:func:`oof_mean`); averaging removes split noise and leaves one correlated score pair
    per patient, which is what DeLong's variance assumes.

    Returns
    -------
    result : dict
        ``auc_a``, ``auc_b``, ``z``, ``p_value``, ``n``, ``n_pos``.
    """
    a, b = oof_mean(oof_a), oof_mean(oof_b)
    common = a.index.intersection(b.index)
    if not np.array_equal(a.loc[common, "y"].to_numpy(), b.loc[common, "y"].to_numpy()):
        raise ValueError("labels differ between the two OOF tables for the same case_id")
    y = a.loc[common, "y"].to_numpy()
    auc_a, auc_b, z, p = delong_test(
        y, a.loc[common, "prob"].to_numpy(), b.loc[common, "prob"].to_numpy()
    )
    return {
        "auc_a": auc_a,
        "auc_b": auc_b,
        "z": z,
        "p_value": p,
        "n": int(y.size),
        "n_pos": int(y.sum()),
    }


def roc_pr_curves(y, prob):
    """ROC and precision-recall curve points, ready for JSON/CSV (DVC plots).

    Parameters
    ----------
    y : array_like of {0, 1}
    prob : array_like of float
        E.g. ``oof_mean(oof)["prob"]``.

    Returns
    -------
    curves : dict
        ``"roc"``: DataFrame ``fpr, tpr, threshold``; ``"pr"``: DataFrame
        ``recall, precision, threshold``, recall increasing. A case is positive when
        ``prob >= threshold``. scikit-learn's "nobody positive" threshold ``+inf`` is
        replaced by the next float above the largest score, so every value is finite
        (JSON has no infinity). ``df.to_dict("records")`` gives DVC's plot format.
    """
    y = np.asarray(y).astype(int)
    prob = np.asarray(prob, dtype=float)
    above = float(np.nextafter(prob.max(), np.inf))
    fpr, tpr, thr = roc_curve(y, prob, drop_intermediate=False)
    thr = np.where(np.isfinite(thr), thr, above)
    precision, recall, pthr = precision_recall_curve(y, prob)
    # sklearn's last PR point (recall 0, precision 1) has no threshold: it is "nobody positive"
    pthr = np.r_[pthr, above]
    roc = pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": thr})
    pr = pd.DataFrame(
        {"recall": recall[::-1], "precision": precision[::-1], "threshold": pthr[::-1]}
    )
    return {"roc": roc, "pr": pr}


def brier_with_ci(oof, *, n_boot=1000, seed=0, alpha=0.05):
    """Brier score ``mean((prob - y)^2)`` averaged over repeats, with a patient-bootstrap CI.

    The same scheme as :func:`metrics_with_ci`: one patient resample per replicate applied
    to every repeat. Lower is better; 0.25 is what a constant 0.5 scores.

    Returns
    -------
    dict
        ``estimate``, ``ci_low``, ``ci_high``, ``n`` (patients).
    """
    y, prob, _ = _oof_matrices(oof)
    squared = (prob - y[None, :]) ** 2  # (repeats, patients)
    per_patient = squared.mean(axis=0)  # averaging over repeats first gives the same mean
    draws = per_patient[patient_resamples(y.size, n_boot, seed)].mean(axis=1)
    low, high = percentile_ci(draws, 1 - alpha)
    return {"estimate": float(per_patient.mean()), "ci_low": float(low), "ci_high": float(high),
            "n": int(y.size)}


def reliability_curve(oof, *, n_bins=5):
    """Observed positive rate against mean predicted probability, in equal-width bins.

    Every out-of-fold prediction (each patient once per repeat) falls in one of ``n_bins``
    bins of ``[0, 1]`` (the last closed); empty bins are left out.

    Returns
    -------
    DataFrame
        ``bin_low, bin_high, predictions, mean_predicted, observed``; a calibrated model
        has ``observed`` close to ``mean_predicted``.
    """
    prob = oof["prob"].to_numpy(float)
    y = oof["y"].to_numpy(float)
    edges = np.round(np.linspace(0.0, 1.0, n_bins + 1), 12)  # 0.6, not 0.6000000000000001
    which = np.clip(np.searchsorted(edges, prob, side="right") - 1, 0, n_bins - 1)
    rows = [{"bin_low": edges[b], "bin_high": edges[b + 1], "predictions": int((which == b).sum()),
             "mean_predicted": float(prob[which == b].mean()),
             "observed": float(y[which == b].mean())}
            for b in range(n_bins) if (which == b).any()]
    return pd.DataFrame(rows, columns=["bin_low", "bin_high", "predictions", "mean_predicted",
                                       "observed"])


def confusion_counts(oof, *, threshold=0.5):
    """Confusion matrix at ``threshold`` (positive when ``prob >= threshold``), as mean counts
    per repeat: they add up to the patient count, and ``(tp + tn) / n`` is the accuracy of
    :func:`metrics_with_ci`.

    Returns
    -------
    dict
        ``tp``, ``fp``, ``fn``, ``tn`` (floats where repeats disagree), ``n``.
    """
    y, prob, _ = _oof_matrices(oof)
    pred = prob >= threshold
    truth = y[None, :] == 1
    return {"tp": float((pred & truth).sum(axis=1).mean()),
            "fp": float((pred & ~truth).sum(axis=1).mean()),
            "fn": float((~pred & truth).sum(axis=1).mean()),
            "tn": float((~pred & ~truth).sum(axis=1).mean()), "n": int(y.size)}
