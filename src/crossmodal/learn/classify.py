"""Patient-level classifiers on confidence-bin features (Part 2, step 4).

* Folds: repeated stratified k-fold over patients (:func:`fold_assignments`), kept as a
  table so the C3D model (:mod:`crossmodal.learn.c3d`) and every classifier see exactly the same
  splits.
* Nested selection (:func:`nested_cross_validated_scores`): in every outer training set an
  inner stratified k-fold picks the classifier with the best inner AUC
  (:func:`select_classifier`, which is only ever given the training rows); the chosen model
  is refitted on the whole training set and predicts the outer test fold. Picking the best
  classifier on the out-of-fold predictions one then reports would be optimistic.
* Out-of-fold (OOF) table: one row per patient per repeat with columns
  ``repeat, fold, index, case_id, y, prob``; ``prob`` comes from a model fitted on the
  other folds of that repeat only.

Metrics, confidence intervals, paired comparisons and DeLong on OOF tables live in
:mod:`crossmodal.learn.metrics`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.ensemble import AdaBoostClassifier
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import RepeatedStratifiedKFold
from sklearn.model_selection import StratifiedKFold
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

__all__ = [
    "OOF_COLUMNS",
    "boot_options",
    "cross_validated_scores",
    "feature_set_folds",
    "finish_oof",
    "fold_assignments",
    "iter_folds",
    "make_classifiers",
    "nested_cross_validated_scores",
    "select_classifier",
]

#: Columns of an out-of-fold score table, one row per case, repeat and fold.
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


def feature_set_folds(folds, case_ids):
    """The shared fold table restricted to a subset of patients, re-indexed to its rows.

    A patient keeps the test fold it has in the full table, so two feature sets (or a
    feature set and a sanity task) are trained and tested on the same partition of their
    shared patients.
    """
    position = {c: i for i, c in enumerate(case_ids)}
    sub = folds[folds["case_id"].isin(position)].copy()
    sub["index"] = sub["case_id"].map(position).astype(int)
    return sub.reset_index(drop=True)


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
    return finish_oof(pd.concat(parts, ignore_index=True), folds, y_arr)


def finish_oof(oof, folds, y_arr):
    """The standard OOF table from raw ``repeat, fold, index, prob`` rows.

    Attaches ``case_id`` (from the fold table) and ``y`` (``y_arr`` by row position),
    sorts by ``repeat`` then ``index`` and orders the columns as :data:`OOF_COLUMNS`.
    Every model that predicts out of fold (classifiers, C3D) ends with it.
    """
    ids = folds.drop_duplicates("index").set_index("index")["case_id"]
    oof["case_id"] = ids.reindex(oof["index"]).to_numpy()
    oof["y"] = y_arr[oof["index"].to_numpy()]
    oof = oof.sort_values(["repeat", "index"], ignore_index=True)
    return oof[list(OOF_COLUMNS)]


def select_classifier(X_train, y_train, classifiers, *, n_splits=3, seed=0):
    """The classifier with the best inner cross-validated AUC on training rows only.

    Parameters
    ----------
    X_train : ndarray, shape (n, n_features)
    y_train : ndarray of {0, 1}, shape (n,)
        The outer fold's training rows; the outer test rows are not an argument, so the
        choice cannot depend on them.
    classifiers : dict of str to estimator
        Candidates, in order; ties go to the first.
    n_splits, seed : int
        Inner :class:`~sklearn.model_selection.StratifiedKFold` (shuffled, seeded).

    Returns
    -------
    name : str
    inner_auc : dict of str to float
        Pooled inner out-of-fold AUC of every candidate; NaN where one failed to fit or gave
        non-finite probabilities (it cannot be chosen). When every one is NaN (too few
        training rows for an inner CV) the first candidate is returned.
    """
    from sklearn.metrics import roc_auc_score

    y_train = np.asarray(y_train).astype(int)
    n_splits = max(2, min(n_splits, int(np.bincount(y_train, minlength=2).min())))
    inner = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    splits = list(inner.split(X_train, y_train))
    inner_auc = {}
    for name, model in classifiers.items():
        prob = np.full(y_train.size, np.nan)
        try:
            for train, test in splits:
                prob[test] = _positive_scores(clone(model).fit(X_train[train], y_train[train]),
                                              X_train[test])
        except ValueError:  # e.g. more neighbours than inner training rows
            prob[:] = np.nan
        inner_auc[name] = (float(roc_auc_score(y_train, prob)) if np.isfinite(prob).all()
                           else float("nan"))
    finite = {k: v for k, v in inner_auc.items() if np.isfinite(v)}
    if not finite:  # training rows too few for any inner CV (smoke profiles): no selection
        return next(iter(classifiers)), inner_auc
    return max(finite, key=finite.get), inner_auc  # max keeps the first of equal values


def nested_cross_validated_scores(X, y, *, classifiers, folds, inner_splits=3, seed=0,
                                  case_ids=None):
    """Out-of-fold probabilities of the classifier chosen per outer fold by inner CV.

    Parameters
    ----------
    X : array_like, shape (n_patients, n_features)
    y : array_like of {0, 1}, shape (n_patients,)
    classifiers : dict of str to estimator
        The candidates of :func:`select_classifier`.
    folds : DataFrame
        Outer :func:`fold_assignments` table (row positions in ``X``).
    inner_splits, seed : int
        Inner CV of :func:`select_classifier`; outer fold ``(r, f)`` uses a seed derived
        from ``(seed, r, f)``.
    case_ids : array_like, optional
        As in :func:`cross_validated_scores`.

    Returns
    -------
    oof : DataFrame
        The OOF table (:data:`OOF_COLUMNS`) of the chosen-per-fold models.
    choices : DataFrame
        One row per outer fold: ``repeat, fold, chosen`` and ``inner_auc_<name>`` of every
        candidate.
    """
    X_arr = np.asarray(X, dtype=float)
    y_arr = np.asarray(y).astype(int)
    if case_ids is not None:
        folds = folds.assign(case_id=np.asarray(case_ids)[folds["index"].to_numpy()])
    parts, choices = [], []
    for repeat, fold, train, test in iter_folds(folds):
        inner_seed = int(np.random.SeedSequence([seed, repeat, fold]).generate_state(1)[0])
        chosen, inner_auc = select_classifier(X_arr[train], y_arr[train], classifiers,
                                              n_splits=inner_splits, seed=inner_seed)
        model = clone(classifiers[chosen]).fit(X_arr[train], y_arr[train])
        parts.append(pd.DataFrame({"repeat": repeat, "fold": fold, "index": test,
                                   "prob": _positive_scores(model, X_arr[test])}))
        choices.append({"repeat": repeat, "fold": fold, "chosen": chosen,
                        **{f"inner_auc_{k}": v for k, v in inner_auc.items()}})
    return finish_oof(pd.concat(parts, ignore_index=True), folds, y_arr), pd.DataFrame(choices)


def boot_options(cfg: dict) -> dict:
    """Bootstrap keywords of this module's comparisons from the ``classify`` params section."""
    return {"n_boot": int(cfg["n_boot"]), "seed": int(cfg["boot_seed"]),
            "threshold": float(cfg["threshold"]),
            "alpha": round(1 - float(cfg["ci"]), 12)}  # 1 - 0.95 is not 0.05 in binary
