"""Patient-level classifiers on confidence-bin features (Part 2, step 4).

Evaluation protocol
-------------------
* Folds: repeated stratified k-fold over patients (:func:`fold_assignments`), kept as a
  table so the C3D model (:mod:`crossmodal.learn.c3d`) and every classifier see exactly the same
  splits.
* Out-of-fold (OOF) table: one row per patient per repeat with columns
  ``repeat, fold, index, case_id, y, prob``; ``prob`` comes from a model fitted on the
  other folds of that repeat only.
* Point estimates: each metric is computed on each repeat's OOF predictions (every
  patient once) and averaged over repeats.
* Confidence intervals: patient bootstrap. One resample of patients is drawn per
  bootstrap replicate and applied to *every* repeat; the replicate's value is the
  repeat-averaged metric. So the interval reflects patient sampling, while the fold-split
  noise is averaged out exactly as in the point estimate. 2.5 / 97.5 percentiles by
  default; replicates in which a metric is undefined (e.g. no positive drawn) are dropped.
* Paired comparisons (:func:`compare_with_ci`) resample the same patients for both
  models, and :func:`delong_oof` runs DeLong on the per-patient mean OOF probability.

Metrics are computed by vectorised NumPy code (fast enough for 1000 replicates x 10
classifiers x 4 feature sets); tests check them against :mod:`sklearn.metrics`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.ensemble import AdaBoostClassifier
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import precision_recall_curve
from sklearn.metrics import roc_curve
from sklearn.model_selection import RepeatedStratifiedKFold
from sklearn.model_selection import StratifiedKFold
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from crossmodal.stats.delong import delong_test

__all__ = [
    "METRICS",
    "OOF_COLUMNS",
    "classification_metrics",
    "compare_with_ci",
    "cross_validated_scores",
    "delong_oof",
    "fold_assignments",
    "iter_folds",
    "make_classifiers",
    "mean_difference_with_ci",
    "metrics_with_ci",
    "oof_mean",
    "roc_pr_curves",
]

METRICS = ("accuracy", "auc", "sensitivity", "specificity", "f1", "pr_auc")
OOF_COLUMNS = ("repeat", "fold", "index", "case_id", "y", "prob")


# ---------------------------------------------------------------------------- models


def make_classifiers(seed):
    """The classifier zoo, each a seeded scikit-learn Pipeline.

    Parameters
    ----------
    seed : int
        ``random_state`` of every stochastic component.

    Returns
    -------
    classifiers : dict of str to Pipeline
        ``logistic_regression``, ``svm_rbf``, ``knn``, ``decision_tree``,
        ``random_forest``, ``gradient_boosting``, ``naive_bayes``, ``mlp``, ``adaboost``,
        ``lda``. Distance- and gradient-based models get a StandardScaler first; trees and
        naive Bayes do not need one.

    Notes
    -----
    All have ``predict_proba``. The SVM's probabilities come from Platt scaling fitted on
    internal 3-fold decision values (``CalibratedClassifierCV(ensemble=False)``), the
    replacement for the deprecated ``SVC(probability=True)``. The tree is depth-limited
    and the k-NN uses 7 neighbours so that their probabilities are not all 0 or 1, which
    would make AUC a single-threshold number. Hyperparameters are fixed, not tuned: the
    comparison is between feature sets, not an optimisation of each model.
    """
    inner_cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)

    def scaled(model):
        return Pipeline([("scale", StandardScaler()), ("clf", model)])

    def plain(model):
        return Pipeline([("clf", model)])

    return {
        "logistic_regression": scaled(LogisticRegression(C=1.0, max_iter=2000, random_state=seed)),
        "svm_rbf": scaled(
            CalibratedClassifierCV(
                SVC(kernel="rbf", C=1.0, gamma="scale"),
                method="sigmoid",
                cv=inner_cv,
                ensemble=False,
            )
        ),
        "knn": scaled(KNeighborsClassifier(n_neighbors=7, weights="distance")),
        "decision_tree": plain(
            DecisionTreeClassifier(max_depth=4, min_samples_leaf=3, random_state=seed)
        ),
        "random_forest": plain(
            RandomForestClassifier(
                n_estimators=200, min_samples_leaf=2, random_state=seed, n_jobs=1
            )
        ),
        "gradient_boosting": plain(
            GradientBoostingClassifier(n_estimators=100, max_depth=2, random_state=seed)
        ),
        "naive_bayes": plain(GaussianNB()),
        "mlp": scaled(
            MLPClassifier(hidden_layer_sizes=(32,), alpha=1e-2, max_iter=2000, random_state=seed)
        ),
        "adaboost": plain(AdaBoostClassifier(n_estimators=100, random_state=seed)),
        "lda": scaled(LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")),
    }


# ---------------------------------------------------------------------------- folds


def fold_assignments(y, *, n_splits=5, n_repeats=5, seed=0, case_ids=None):
    """Repeated stratified k-fold test-fold membership, as a table.

    Parameters
    ----------
    y : array_like or Series of {0, 1}, shape (n_patients,)
        Patient labels. A Series' index is used as ``case_id`` unless ``case_ids`` is given.
    n_splits, n_repeats : int
    seed : int
        ``random_state`` of :class:`~sklearn.model_selection.RepeatedStratifiedKFold`.
    case_ids : array_like, optional
        Patient identifiers in the order of ``y``.

    Returns
    -------
    folds : DataFrame
        Columns ``repeat``, ``fold``, ``index`` (0-based row position in ``y``),
        ``case_id``; one row per patient per repeat, giving the fold in which that patient
        is *tested*. Training rows of (repeat r, fold f) are all other rows of repeat r.
    """
    y_arr = np.asarray(y).astype(int)
    if case_ids is None:
        case_ids = y.index.to_numpy() if isinstance(y, pd.Series) else np.arange(y_arr.size)
    case_ids = np.asarray(case_ids)
    if case_ids.size != y_arr.size:
        raise ValueError(f"{case_ids.size} case_ids for {y_arr.size} labels")
    rskf = RepeatedStratifiedKFold(n_splits=n_splits, n_repeats=n_repeats, random_state=seed)
    rows = []
    for split, (_, test) in enumerate(rskf.split(np.zeros(y_arr.size), y_arr)):
        repeat, fold = divmod(split, n_splits)
        rows.append(
            pd.DataFrame({"repeat": repeat, "fold": fold, "index": test, "case_id": case_ids[test]})
        )
    return pd.concat(rows, ignore_index=True)


def iter_folds(folds):
    """Yield ``(repeat, fold, train_index, test_index)`` from a fold table.

    Parameters
    ----------
    folds : DataFrame
        Output of :func:`fold_assignments`.

    Yields
    ------
    repeat, fold : int
    train_index, test_index : ndarray of int
        Row positions; training = every patient of the repeat outside the test fold.
    """
    for repeat, in_repeat in folds.groupby("repeat", sort=True):
        everyone = in_repeat["index"].to_numpy()
        for fold, in_fold in in_repeat.groupby("fold", sort=True):
            test = in_fold["index"].to_numpy()
            train = np.setdiff1d(everyone, test)
            yield int(repeat), int(fold), train, test


def _positive_scores(model, X):
    if hasattr(model, "predict_proba"):
        proba = model.predict_proba(X)
        classes = list(model.classes_)
        return proba[:, classes.index(1)]
    # models without probabilities: squash the margin so the 0.5 threshold means margin 0
    return 1.0 / (1.0 + np.exp(-model.decision_function(X)))


def cross_validated_scores(
    X, y, *, classifier, n_splits=5, n_repeats=5, seed=0, folds=None, case_ids=None
):
    """Out-of-fold positive-class probabilities under repeated stratified k-fold.

    Parameters
    ----------
    X : array_like or DataFrame, shape (n_patients, n_features)
    y : array_like of {0, 1}, shape (n_patients,)
    classifier : estimator or str
        A scikit-learn estimator (cloned for every fold) or a key of
        :func:`make_classifiers` (built with ``seed``).
    n_splits, n_repeats, seed : int
        Used to build the folds when ``folds`` is not given.
    folds : DataFrame, optional
        Precomputed :func:`fold_assignments` (share it between models for paired tests).
    case_ids : array_like, optional
        Patient identifiers; default ``X.index`` for a DataFrame, else row positions.

    Returns
    -------
    oof : DataFrame
        Columns ``repeat, fold, index, case_id, y, prob``, one row per patient per repeat,
        sorted by ``repeat`` then ``index``.
    """
    if isinstance(classifier, str):
        classifier = make_classifiers(seed)[classifier]
    if case_ids is None and isinstance(X, pd.DataFrame):
        case_ids = X.index.to_numpy()
    X_arr = np.asarray(X, dtype=float)
    y_arr = np.asarray(y).astype(int)
    if X_arr.shape[0] != y_arr.size:
        raise ValueError(f"X has {X_arr.shape[0]} rows, y has {y_arr.size}")
    if folds is None:
        folds = fold_assignments(
            y_arr, n_splits=n_splits, n_repeats=n_repeats, seed=seed, case_ids=case_ids
        )
    elif case_ids is not None:
        folds = folds.assign(case_id=np.asarray(case_ids)[folds["index"].to_numpy()])
    parts = []
    for repeat, fold, train, test in iter_folds(folds):
        model = clone(classifier).fit(X_arr[train], y_arr[train])
        parts.append(
            pd.DataFrame(
                {
                    "repeat": repeat,
                    "fold": fold,
                    "index": test,
                    "prob": _positive_scores(model, X_arr[test]),
                }
            )
        )
    return _finish_oof(pd.concat(parts, ignore_index=True), folds, y_arr)


def _finish_oof(oof, folds, y_arr):
    """Attach ``case_id`` and ``y`` and put the columns in the standard order."""
    ids = folds.drop_duplicates("index").set_index("index")["case_id"]
    oof["case_id"] = ids.reindex(oof["index"]).to_numpy()
    oof["y"] = y_arr[oof["index"].to_numpy()]
    oof = oof.sort_values(["repeat", "index"], ignore_index=True)
    return oof[list(OOF_COLUMNS)]


# ---------------------------------------------------------------------------- metrics


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


def _bootstrap_indices(n, n_boot, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(n_boot, n))


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


def _summarise(point, boot, alpha):
    rows = []
    for k in METRICS:
        draws = boot[k][np.isfinite(boot[k])]
        low, high = (
            np.quantile(draws, [alpha / 2, 1 - alpha / 2]) if draws.size else (np.nan, np.nan)
        )
        rows.append(
            {
                "metric": k,
                "estimate": float(point[k]),
                "ci_low": float(low),
                "ci_high": float(high),
                "n_boot_valid": int(draws.size),
            }
        )
    return pd.DataFrame(rows).set_index("metric")


def metrics_with_ci(oof, *, n_boot=1000, seed=0, threshold=0.5, alpha=0.05):
    """Repeat-averaged metrics with patient-bootstrap confidence intervals.

    Parameters
    ----------
    oof : DataFrame
        Output of :func:`cross_validated_scores` or :func:`crossmodal.learn.c3d.c3d_cross_validated`.
    n_boot : int
        Bootstrap replicates.
    seed : int
        Seed of the patient resampling.
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
    point = _repeat_mean(y, prob, np.arange(y.size)[None, :], threshold)
    boot = _repeat_mean(y, prob, _bootstrap_indices(y.size, n_boot, seed), threshold)
    return _summarise({k: v[0] for k, v in point.items()}, boot, alpha)


def compare_with_ci(oof_a, oof_b, *, n_boot=1000, seed=0, threshold=0.5, alpha=0.05):
    """Paired difference ``a - b`` of repeat-averaged metrics, with a patient bootstrap CI.

    Parameters
    ----------
    oof_a, oof_b : DataFrame
        OOF tables of two models. Only patients present in both (by ``case_id``) are
        used, so a fused model can be compared with a single-modality one on the patients
        who have that modality. The two may have different repeat counts.
    n_boot, seed, threshold, alpha
        As in :func:`metrics_with_ci`; each replicate resamples the same patients for both.

    Returns
    -------
    table : DataFrame
        Index = :data:`METRICS`; columns ``estimate``, ``ci_low``, ``ci_high``,
        ``n_boot_valid``, plus ``a`` and ``b`` (the two point estimates) and ``n``.
    """
    common = np.intersect1d(oof_a["case_id"].unique(), oof_b["case_id"].unique())
    if common.size == 0:
        raise ValueError("the two OOF tables share no case_id")
    mats = []
    for oof in (oof_a, oof_b):
        sub = oof[oof["case_id"].isin(common)]
        y, prob, ids = _oof_matrices(sub)
        order = np.argsort(ids)
        mats.append((y[order], prob[:, order], ids[order]))
    (ya, pa, ida), (yb, pb, idb) = mats
    if not (np.array_equal(ida, idb) and np.array_equal(ya, yb)):
        raise ValueError("labels differ between the two OOF tables for the same case_id")
    full = np.arange(ya.size)[None, :]
    idx = _bootstrap_indices(ya.size, n_boot, seed)
    point_a, point_b = _repeat_mean(ya, pa, full, threshold), _repeat_mean(yb, pb, full, threshold)
    boot_a, boot_b = _repeat_mean(ya, pa, idx, threshold), _repeat_mean(yb, pb, idx, threshold)
    table = _summarise(
        {k: point_a[k][0] - point_b[k][0] for k in METRICS},
        {k: boot_a[k] - boot_b[k] for k in METRICS},
        alpha,
    )
    table["a"] = [float(point_a[k][0]) for k in METRICS]
    table["b"] = [float(point_b[k][0]) for k in METRICS]
    table["n"] = int(ya.size)
    return table


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
    tables = list(oofs_a) + list(oofs_b)
    common = tables[0]["case_id"].unique()
    for oof in tables[1:]:
        common = np.intersect1d(common, oof["case_id"].unique())
    if common.size == 0:
        raise ValueError("the OOF tables share no case_id")
    mats = []
    for oof in tables:
        y, prob, ids = _oof_matrices(oof[oof["case_id"].isin(common)])
        order = np.argsort(ids)
        mats.append((y[order], prob[:, order], ids[order]))
    y0, _, ids0 = mats[0]
    for y, _, ids in mats[1:]:
        if not (np.array_equal(ids, ids0) and np.array_equal(y, y0)):
            raise ValueError("labels differ between the OOF tables for the same case_id")
    full = np.arange(y0.size)[None, :]
    idx = _bootstrap_indices(y0.size, n_boot, seed)
    k = len(oofs_a)
    point = {"a": {m: 0.0 for m in METRICS}, "b": {m: 0.0 for m in METRICS}}
    boot = {m: 0.0 for m in METRICS}
    for i, (y, prob, _) in enumerate(mats):
        side, sign = ("a", 1.0) if i < k else ("b", -1.0)
        p = _repeat_mean(y, prob, full, threshold)
        b = _repeat_mean(y, prob, idx, threshold)
        for m in METRICS:
            point[side][m] = point[side][m] + p[m][0] / k
            boot[m] = boot[m] + sign * b[m] / k
    table = _summarise({m: point["a"][m] - point["b"][m] for m in METRICS}, boot, alpha)
    table["a"] = [float(point["a"][m]) for m in METRICS]
    table["b"] = [float(point["b"][m]) for m in METRICS]
    table["n"] = int(y0.size)
    return table


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
