"""Classifier zoo, repeated-CV out-of-fold scores, metrics and bootstrap intervals."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator
from sklearn.base import ClassifierMixin
from sklearn.metrics import accuracy_score
from sklearn.metrics import average_precision_score
from sklearn.metrics import f1_score
from sklearn.metrics import recall_score
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline

from crossmodal.learn.classify import OOF_COLUMNS
from crossmodal.learn.classify import cross_validated_scores
from crossmodal.learn.classify import fold_assignments
from crossmodal.learn.classify import iter_folds
from crossmodal.learn.classify import make_classifiers
from crossmodal.learn.metrics import METRICS
from crossmodal.learn.metrics import classification_metrics
from crossmodal.learn.metrics import compare_with_ci
from crossmodal.learn.metrics import delong_oof
from crossmodal.learn.metrics import mean_difference_with_ci
from crossmodal.learn.metrics import metrics_with_ci
from crossmodal.learn.metrics import oof_mean
from crossmodal.learn.metrics import roc_pr_curves


def _dataset(n=60, shift=3.0, seed=0, n_features=27):
    rng = np.random.default_rng(seed)
    y = np.r_[np.zeros(n // 2, int), np.ones(n - n // 2, int)]
    rng.shuffle(y)
    X = rng.normal(size=(n, n_features))
    X[:, :4] += shift * y[:, None]
    X[:, -3:] = rng.integers(0, 2, size=(n, 3))  # flag-like binary columns
    return X, y


class _Spy(ClassifierMixin, BaseEstimator):
    """Remembers the patient ids (column 0) it trained on; says 1 for any of them."""

    fitted_on = []

    def fit(self, X, y):
        self.classes_ = np.array([0, 1])
        self.seen_ = set(X[:, 0].astype(int).tolist())
        _Spy.fitted_on.append(self.seen_)
        return self

    def predict_proba(self, X):
        leaked = np.array([i in self.seen_ for i in X[:, 0].astype(int)], float)
        return np.c_[1 - leaked, leaked]


def test_zoo_has_at_least_eight_seeded_pipelines():
    zoo = make_classifiers(0)
    assert len(zoo) >= 8
    assert {
        "logistic_regression",
        "svm_rbf",
        "knn",
        "decision_tree",
        "random_forest",
        "gradient_boosting",
        "naive_bayes",
        "mlp",
    } <= set(zoo)
    for name, model in zoo.items():
        assert isinstance(model, Pipeline), name
        for key, value in model.get_params().items():
            if key.endswith("random_state") and value is not None and not hasattr(value, "split"):
                assert value == 0, (name, key)


def test_fold_assignments_cover_each_patient_once_per_repeat_and_stratify():
    y = np.r_[np.zeros(23, int), np.ones(17, int)]
    folds = fold_assignments(y, n_splits=5, n_repeats=3, seed=7)
    assert list(folds.columns) == ["repeat", "fold", "index", "case_id"]
    assert len(folds) == 3 * 40
    for _, in_repeat in folds.groupby("repeat"):
        assert sorted(in_repeat["index"]) == list(range(40))
        pos_per_fold = in_repeat.groupby("fold")["index"].apply(lambda i: y[i.to_numpy()].sum())
        assert pos_per_fold.max() - pos_per_fold.min() <= 1
    # reproducible with the seed, different across repeats
    pd.testing.assert_frame_equal(folds, fold_assignments(y, n_splits=5, n_repeats=3, seed=7))
    r0 = folds[folds.repeat == 0].sort_values("index")["fold"].to_numpy()
    r1 = folds[folds.repeat == 1].sort_values("index")["fold"].to_numpy()
    assert not np.array_equal(r0, r1)
    ids = fold_assignments(pd.Series(y, index=[f"p{i}" for i in range(40)]), n_repeats=1)
    assert ids.loc[ids["index"] == 3, "case_id"].item() == "p3"


def test_oof_each_patient_once_per_repeat_by_a_model_that_never_saw_it():
    X, y = _dataset(n=40)
    X[:, 0] = np.arange(40)  # patient id as a feature, for the spy
    folds = fold_assignments(y, n_splits=4, n_repeats=3, seed=1)
    _Spy.fitted_on.clear()
    oof = cross_validated_scores(X, y, classifier=_Spy(), folds=folds)
    assert tuple(oof.columns) == OOF_COLUMNS
    assert len(oof) == 3 * 40
    assert (oof.groupby("repeat")["index"].apply(lambda s: sorted(s) == list(range(40)))).all()
    assert (oof["prob"] == 0).all()  # no patient scored by a model trained on it
    # every model trained on exactly the complement of its test fold
    assert len(_Spy.fitted_on) == 12
    for seen, (_, _, train, test) in zip(_Spy.fitted_on, iter_folds(folds), strict=True):
        assert seen == set(train.tolist())
        assert seen.isdisjoint(test.tolist()) and len(seen) + len(test) == 40
    # the fold column in the OOF table agrees with the fold table
    merged = oof.merge(folds, on=["repeat", "index"], suffixes=("", "_folds"))
    assert (merged["fold"] == merged["fold_folds"]).all()
    np.testing.assert_array_equal(oof["y"], y[oof["index"]])


def test_case_ids_follow_dataframe_index():
    X, y = _dataset(n=30)
    frame = pd.DataFrame(X, index=[f"case{i:02d}" for i in range(30)])
    oof = cross_validated_scores(
        frame, y, classifier="naive_bayes", n_splits=3, n_repeats=2, seed=0
    )
    assert set(oof["case_id"]) == set(frame.index)
    assert (oof["case_id"] == [f"case{i:02d}" for i in oof["index"]]).all()


def test_separable_data_high_auc_for_every_classifier():
    X, y = _dataset(n=60, shift=4.0)  # classes ~4 sd apart on 4 features
    folds = fold_assignments(y, n_splits=5, n_repeats=1, seed=0)
    for name, model in make_classifiers(0).items():
        oof = cross_validated_scores(X, y, classifier=model, folds=folds)
        assert oof["prob"].between(0, 1).all(), name
        auc = classification_metrics(oof["y"], oof["prob"])["auc"]
        assert auc > 0.9, (name, auc)


def test_random_labels_auc_near_half():
    X, _ = _dataset(n=100, shift=0.0, seed=3)
    y = np.random.default_rng(11).permutation(np.r_[np.zeros(50, int), np.ones(50, int)])
    folds = fold_assignments(y, n_splits=5, n_repeats=1, seed=0)
    aucs = []
    for name in ("logistic_regression", "random_forest", "naive_bayes", "knn", "lda"):
        oof = cross_validated_scores(X, y, classifier=name, folds=folds, seed=0)
        aucs.append(classification_metrics(oof["y"], oof["prob"])["auc"])
    assert 0.35 < np.mean(aucs) < 0.65
    assert max(aucs) < 0.75


def test_same_seed_same_probabilities():
    X, y = _dataset(n=40, shift=1.0)
    a = cross_validated_scores(X, y, classifier="random_forest", n_splits=4, n_repeats=1, seed=5)
    b = cross_validated_scores(X, y, classifier="random_forest", n_splits=4, n_repeats=1, seed=5)
    pd.testing.assert_frame_equal(a, b)


def test_metrics_hand_case():
    y = [1, 1, 1, 0, 0, 0, 0, 1]
    p = [0.9, 0.6, 0.3, 0.7, 0.2, 0.1, 0.4, 0.5]
    m = classification_metrics(y, p, threshold=0.5)
    # called positive: 0.9, 0.6, 0.7, 0.5 -> TP 3 (0.9, 0.6, 0.5), FP 1 (0.7), FN 1 (0.3), TN 3
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["sensitivity"] == pytest.approx(3 / 4)
    assert m["specificity"] == pytest.approx(3 / 4)
    assert m["f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))
    # positives 0.9, 0.6, 0.5, 0.3 vs negatives 0.7, 0.4, 0.2, 0.1: wins 4 + 3 + 3 + 2 = 12 of 16
    assert m["auc"] == pytest.approx(12 / 16)
    # ranked: 0.9+ 0.7- 0.6+ 0.5+ 0.4- 0.3+ -> AP = (1/1 + 2/3 + 3/4 + 4/6) / 4
    assert m["pr_auc"] == pytest.approx((1 + 2 / 3 + 3 / 4 + 4 / 6) / 4)
    assert m["n"] == 8 and m["n_pos"] == 4


@pytest.mark.parametrize("seed", range(4))
def test_metrics_match_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=50)
    y[:2] = [0, 1]
    p = np.round(rng.uniform(size=50), 1)  # many ties, some exactly at 0.5
    m = classification_metrics(y, p)
    pred = (p >= 0.5).astype(int)
    assert m["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert m["pr_auc"] == pytest.approx(average_precision_score(y, p), abs=1e-12)
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert m["f1"] == pytest.approx(f1_score(y, pred))
    assert m["sensitivity"] == pytest.approx(recall_score(y, pred))
    assert m["specificity"] == pytest.approx(recall_score(1 - y, 1 - pred))


def test_undefined_metrics_are_nan():
    m = classification_metrics([0, 0, 0], [0.1, 0.2, 0.3])
    assert np.isnan(m["auc"]) and np.isnan(m["sensitivity"]) and np.isnan(m["pr_auc"])
    assert m["specificity"] == 1.0


def test_metrics_with_ci():
    X, y = _dataset(n=60, shift=1.0)
    oof = cross_validated_scores(
        X, y, classifier="logistic_regression", n_splits=5, n_repeats=3, seed=0
    )
    table = metrics_with_ci(oof, n_boot=300, seed=0)
    assert list(table.index) == list(METRICS)
    per_repeat = [classification_metrics(g["y"], g["prob"]) for _, g in oof.groupby("repeat")]
    for k in METRICS:
        assert table.loc[k, "estimate"] == pytest.approx(np.mean([r[k] for r in per_repeat]))
        assert table.loc[k, "ci_low"] <= table.loc[k, "estimate"] <= table.loc[k, "ci_high"]
    assert 0 < table.loc["auc", "ci_high"] - table.loc["auc", "ci_low"] < 0.4
    pd.testing.assert_frame_equal(table, metrics_with_ci(oof, n_boot=300, seed=0))
    broken = oof.drop(index=oof.index[0])
    with pytest.raises(ValueError, match="exactly once"):
        metrics_with_ci(broken, n_boot=10)


def _informative_and_noise_scores(*, shift: float, n_splits: int, n_repeats: int, classifier: str,
                                  noise_columns: slice):
    """Out-of-fold scores of one classifier on informative features and on noise columns only."""
    X, y = _dataset(n=60, shift=shift)
    folds = fold_assignments(y, n_splits=n_splits, n_repeats=n_repeats, seed=0)
    return (cross_validated_scores(X, y, classifier=classifier, folds=folds),
            cross_validated_scores(X[:, noise_columns], y, classifier=classifier, folds=folds))


def test_paired_comparison_and_delong_on_oof():
    good, noise = _informative_and_noise_scores(shift=1.0, n_splits=5, n_repeats=2, classifier="logistic_regression",
                                                noise_columns=slice(10, 20))
    same = compare_with_ci(good, good, n_boot=100, seed=0)
    assert (same[["estimate", "ci_low", "ci_high"]].to_numpy() == 0).all()
    diff = compare_with_ci(good, noise, n_boot=300, seed=0)
    assert diff.loc["auc", "estimate"] == pytest.approx(diff.loc["auc", "a"] - diff.loc["auc", "b"])
    assert diff.loc["auc", "ci_low"] > 0
    # a subset comparison uses only the shared patients
    subset = noise[noise["index"] < 40]
    assert compare_with_ci(good, subset, n_boot=50, seed=0)["n"].iloc[0] == 40
    result = delong_oof(good, noise)
    assert result["auc_a"] > result["auc_b"] and result["p_value"] < 0.05 and result["n"] == 60
    assert delong_oof(good, good)["p_value"] == 1.0
    means = oof_mean(good)
    assert len(means) == 60 and means["prob"].between(0, 1).all()


def test_mean_difference_over_pairs_shares_one_bootstrap():
    X, y = _dataset(n=60, shift=1.0)
    folds = fold_assignments(y, n_splits=5, n_repeats=2, seed=0)
    good = {c: cross_validated_scores(X, y, classifier=c, folds=folds)
            for c in ("logistic_regression", "naive_bayes")}
    weak = {c: cross_validated_scores(X[:, 10:20], y, classifier=c, folds=folds)
            for c in ("logistic_regression", "naive_bayes")}
    # one pair: exactly the paired comparison
    one = mean_difference_with_ci([good["naive_bayes"]], [weak["naive_bayes"]], n_boot=200, seed=3)
    pd.testing.assert_frame_equal(
        one, compare_with_ci(good["naive_bayes"], weak["naive_bayes"], n_boot=200, seed=3))
    both = mean_difference_with_ci(list(good.values()), list(weak.values()), n_boot=300, seed=3)
    singles = [compare_with_ci(good[c], weak[c], n_boot=300, seed=3) for c in good]
    for m in ("accuracy", "auc"):
        assert both.loc[m, "estimate"] == pytest.approx(np.mean([t.loc[m, "estimate"] for t in singles]))
        assert both.loc[m, "a"] == pytest.approx(np.mean([t.loc[m, "a"] for t in singles]))
    assert both.loc["auc", "ci_low"] > 0 and both["n"].iloc[0] == 60
    # patients outside the smallest table are left out everywhere
    sub = mean_difference_with_ci([good["naive_bayes"]], [weak["naive_bayes"][weak["naive_bayes"]["index"] < 30]],
                                  n_boot=50, seed=0)
    assert sub["n"].iloc[0] == 30
    with pytest.raises(ValueError):
        mean_difference_with_ci([good["naive_bayes"]], [], n_boot=10)


def test_roc_pr_curves_are_finite_json_and_consistent():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=40)
    p = np.clip(np.round(0.3 * y + rng.uniform(size=40) * 0.7, 2), 0, 1)
    curves = roc_pr_curves(y, p)
    roc, pr = curves["roc"], curves["pr"]
    assert list(roc.columns) == ["fpr", "tpr", "threshold"]
    assert list(pr.columns) == ["recall", "precision", "threshold"]
    assert np.isfinite(roc.to_numpy()).all() and np.isfinite(pr.to_numpy()).all()
    json.dumps({k: v.to_dict("records") for k, v in curves.items()}, allow_nan=False)
    assert (roc.iloc[0][["fpr", "tpr"]] == 0).all() and (roc.iloc[-1][["fpr", "tpr"]] == 1).all()
    assert np.trapezoid(roc["tpr"], roc["fpr"]) == pytest.approx(roc_auc_score(y, p))
    assert pr["recall"].is_monotonic_increasing and pr["recall"].iloc[0] == 0
    # the first threshold calls nobody positive
    assert (p >= roc["threshold"].iloc[0]).sum() == 0


# ----------------------------------------------------------------------------- nested selection


class _Recorder(ClassifierMixin, BaseEstimator):
    """Logs the patient ids (column 0) of every fit and every prediction; scores column 1."""

    log = []

    def fit(self, X, y):
        self.classes_ = np.array([0, 1])
        _Recorder.log.append(("fit", frozenset(X[:, 0].astype(int).tolist())))
        return self

    def predict_proba(self, X):
        _Recorder.log.append(("predict", frozenset(X[:, 0].astype(int).tolist())))
        p = 1.0 / (1.0 + np.exp(-X[:, 1]))
        return np.c_[1 - p, p]


def test_nested_selection_never_sees_the_outer_test_fold():
    from crossmodal.learn.classify import nested_cross_validated_scores

    X, y = _dataset(n=40)
    X = np.c_[np.arange(40), X]  # column 0: patient id, for the recorder
    folds = fold_assignments(y, n_splits=4, n_repeats=2, seed=1)
    _Recorder.log = []
    oof, choices = nested_cross_validated_scores(
        X, y, classifiers={"a": _Recorder(), "b": _Recorder()}, folds=folds, inner_splits=3, seed=0)
    log = iter(_Recorder.log)
    for _, _, train, test in iter_folds(folds):
        train, test = set(train.tolist()), set(test.tolist())
        for _ in range(2 * 3):  # 2 candidates x 3 inner folds: fit and predict inside train only
            for kind in ("fit", "predict"):
                what, ids = next(log)
                assert what == kind and ids <= train and not ids & test
        assert next(log) == ("fit", frozenset(train))  # the chosen model, refitted on train
        assert next(log) == ("predict", frozenset(test))  # and only then the outer test fold
    assert next(log, None) is None
    assert len(choices) == 8 and set(choices["chosen"]) <= {"a", "b"}
    assert tuple(oof.columns) == OOF_COLUMNS and len(oof) == 2 * 40


def test_nested_selection_picks_the_classifier_that_is_better_on_training_patients():
    from crossmodal.learn.classify import nested_cross_validated_scores
    from crossmodal.learn.classify import select_classifier

    X, y = _dataset(n=60, shift=2.0)
    folds = fold_assignments(y, n_splits=3, n_repeats=1, seed=0)
    zoo = make_classifiers(0)
    # a "classifier" that sees only pure-noise columns cannot win the inner AUC
    noise = Pipeline([("pick", _Columns([10, 11])), ("clf", zoo["logistic_regression"])])
    _, choices = nested_cross_validated_scores(
        X, y, classifiers={"noise_only": noise, "lda": zoo["lda"]}, folds=folds, seed=0)
    assert (choices["chosen"] == "lda").all()
    assert (choices["inner_auc_lda"] > choices["inner_auc_noise_only"]).all()
    # the choice is a function of the training rows alone: it ignores anything else
    name, auc = select_classifier(X[:40], y[:40], {"noise_only": noise, "lda": zoo["lda"]})
    assert name == "lda" and auc["lda"] > 0.8


class _Columns(BaseEstimator):
    """Keeps only the given columns (a transformer step)."""

    def __init__(self, columns=(0,)):
        self.columns = columns

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.asarray(X)[:, list(self.columns)]


# ----------------------------------------------------------------------------- calibration


def _oof_table(y, probs):
    """An OOF table: ``probs`` is (repeats, patients)."""
    rows = [pd.DataFrame({"repeat": r, "fold": 0, "index": np.arange(len(y)),
                          "case_id": [f"p{i}" for i in range(len(y))], "y": y, "prob": p})
            for r, p in enumerate(np.atleast_2d(probs))]
    return pd.concat(rows, ignore_index=True)


def test_brier_reliability_and_confusion_on_a_known_case():
    from crossmodal.learn.metrics import brier_with_ci
    from crossmodal.learn.metrics import confusion_counts
    from crossmodal.learn.metrics import reliability_curve

    y = np.array([1, 1, 0, 0])
    oof = _oof_table(y, [[0.9, 0.6, 0.4, 0.1], [0.7, 0.4, 0.2, 0.1]])
    b = brier_with_ci(oof, n_boot=200, seed=0)
    # repeat 0: (0.01 + 0.16 + 0.16 + 0.01) / 4 = 0.085; repeat 1: (0.09 + 0.36 + 0.04 + 0.01) / 4 = 0.125
    assert b["estimate"] == pytest.approx(0.105)
    assert b["ci_low"] <= b["estimate"] <= b["ci_high"] and b["ci_low"] < b["ci_high"]
    assert brier_with_ci(_oof_table(y, [y.astype(float)]), n_boot=50)["estimate"] == 0.0
    # mean counts per repeat at 0.5: repeat 0 tp 2 tn 2; repeat 1 tp 1 fn 1 tn 2
    cm = confusion_counts(oof, threshold=0.5)
    assert cm == {"tp": 1.5, "fp": 0.0, "fn": 0.5, "tn": 2.0, "n": 4}
    curve = reliability_curve(oof, n_bins=2).set_index("bin_low")
    # [0, 0.5): 0.4 0.1 0.4 0.2 0.1 (one positive: 0.4 of repeat 1); [0.5, 1]: 0.9 0.6 0.7
    assert curve.loc[0.0, "predictions"] == 5 and curve.loc[0.0, "observed"] == pytest.approx(0.2)
    assert curve.loc[0.0, "mean_predicted"] == pytest.approx(0.24)
    assert curve.loc[0.5, "predictions"] == 3 and curve.loc[0.5, "observed"] == 1.0
    assert curve.loc[0.5, "mean_predicted"] == pytest.approx(2.2 / 3)


def test_paired_comparison_reports_a_bootstrap_p_value():
    good, noise = _informative_and_noise_scores(shift=2.0, n_splits=3, n_repeats=1, classifier="lda",
                                                noise_columns=slice(10, 14))
    c = compare_with_ci(good, noise, n_boot=300, seed=0)
    assert c.loc["auc", "p_value"] < 0.05 and c.loc["auc", "estimate"] > 0
    same = compare_with_ci(good, good, n_boot=300, seed=0)
    assert same.loc["auc", "p_value"] == 1.0


def test_chance_sentence_counts_cis_against_chance_and_compares_fused_with_the_best_single():
    from crossmodal.report.skeleton.classifiers import chance_sentence

    rows = [("knn", "CT", 0.45, 0.30, 0.60), ("lda", "CT", 0.30, 0.20, 0.40),
            ("knn", "PET", 0.80, 0.65, 0.90), ("lda", "PET", 0.70, 0.55, 0.85),
            ("knn", "fused", 0.72, 0.52, 0.88), ("lda", "fused", 0.68, 0.45, 0.80)]
    metrics = pd.DataFrame(rows, columns=["classifier", "feature_set", "estimate", "ci_low", "ci_high"]).assign(metric="auc")
    text = chance_sentence(metrics)
    assert "CT 0.38 (0 above chance, 1 not told from it, 1 below)" in text
    assert "PET 0.75 (2 above chance, 0 not told from it, 0 below)" in text
    assert "wholly below chance" in text and "fused features score at or below the best single modality, PET" in text
    assert "wholly below" not in chance_sentence(metrics[metrics["feature_set"] != "CT"])
