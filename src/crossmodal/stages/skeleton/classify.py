"""Stage ``classify_skeleton``: classifiers x feature sets (each modality, fused) on the shared
folds: out-of-fold scores, metrics, fused-minus-single comparisons, DeLong.

Single-modality sets are scored on the patients who have that modality (their folds are
the shared folds restricted to them, :func:`feature_set_folds`); the fused set on everyone.
Comparisons (fused minus single, per classifier and averaged over classifiers) and DeLong
run on the patients both sets scored. Intervals: ``classify.ci`` patient bootstrap
(``n_boot`` resamples, ``boot_seed``). Writes ``oof.csv``, ``metrics.csv``,
``comparisons.csv``, ``delong.csv``, ``roc.csv``, ``pr.csv``, ``skipped.csv`` under ``out``
and the metrics JSON at ``metrics`` (when given).

The models the claims use are chosen by nested CV (:func:`nested_models`): per outer fold the
classifier with the best inner AUC on the training patients, on the first
``classify.nested.n_repeats`` repeats of the shared folds (``classify.nested``). They are
fitted on the fused features of everyone, and, like for like, on each modality's patients
both on that modality's features and on the fused features, so fused and single are trained
and tested on the same patients. Their out-of-fold scores, choices, metrics, comparisons
(like for like and, beside it, the fused model of all patients scored on that modality's
patients) and calibration (Brier score with CI, reliability bins, confusion counts at
``classify.threshold``) are written as ``nested_*.csv``, ``calibration.csv``,
``reliability.csv`` and ``confusion.csv``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crossmodal.learn.classify import boot_options
from crossmodal.learn.classify import cross_validated_scores
from crossmodal.learn.classify import feature_set_folds
from crossmodal.learn.classify import iter_folds
from crossmodal.learn.classify import make_classifiers
from crossmodal.learn.classify import nested_cross_validated_scores
from crossmodal.learn.features import feature_columns
from crossmodal.learn.features import modality_mask
from crossmodal.learn.metrics import brier_with_ci
from crossmodal.learn.metrics import compare_with_ci
from crossmodal.learn.metrics import confusion_counts
from crossmodal.learn.metrics import delong_oof
from crossmodal.learn.metrics import mean_difference_with_ci
from crossmodal.learn.metrics import metrics_with_ci
from crossmodal.learn.metrics import oof_mean
from crossmodal.learn.metrics import reliability_curve
from crossmodal.learn.metrics import roc_pr_curves
from crossmodal.learn.metrics_json import write_dvc_metrics
from crossmodal.learn.patients import modality_names
from crossmodal.parallel import compute_setting



SKIPPED_COLUMNS = ["classifier", "feature_set", "patients", "reason"]
OUTPUTS = ("oof", "metrics", "comparisons", "delong", "roc", "pr", "skipped", "nested_oof",
           "nested_choices", "nested_metrics", "nested_comparisons", "calibration", "reliability",
           "confusion")


def feature_sets(table: pd.DataFrame, names: list[str]) -> dict[str, pd.DataFrame]:
    """Each modality's bins on the patients who have it, and ``fused`` on everyone."""
    sets = {}
    for fs in [*names, "fused"]:
        rows = modality_mask(table, fs) if fs != "fused" else pd.Series(True, index=table.index)
        sets[fs] = table.loc[rows, feature_columns(table, fs)]
    return sets


def unfit_reason(y: np.ndarray, folds: pd.DataFrame) -> str | None:
    """Why a feature set cannot be cross-validated on these folds (None: it can)."""
    if len(y) == 0:
        return "no patient has this modality"
    if len(np.unique(y)) < 2:
        return "only one class among the patients with this modality"
    for repeat, fold, train, _ in iter_folds(folds):
        if len(np.unique(y[train])) < 2:
            return f"repeat {repeat}, fold {fold}: training patients of one class only"
    return None


def out_of_fold(X: pd.DataFrame, y: pd.Series, folds: pd.DataFrame, classifier
                ) -> tuple[pd.DataFrame | None, str | None]:
    """Out-of-fold scores of one classifier on one feature set, or why there are none."""
    sub_folds = feature_set_folds(folds, X.index)
    reason = unfit_reason(y.loc[X.index].to_numpy(), sub_folds)
    if reason is not None:
        return None, reason
    try:
        with warnings.catch_warnings():  # degenerate folds are reported in `skipped`
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.simplefilter("ignore", UserWarning)
            oof = cross_validated_scores(X, y.loc[X.index], classifier=classifier, folds=sub_folds)
    except ValueError as err:  # e.g. more neighbours or inner folds than patients
        return None, f"{type(err).__name__}: {err}"
    if not np.isfinite(oof["prob"]).all():  # e.g. naive Bayes on features without any variance
        return None, "non-finite probabilities (features without variance?)"
    return oof, None


def chosen_classifiers(cfg: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The classifier zoo (seeded with ``cv.seed``) and the names ``classifiers`` picks."""
    zoo = make_classifiers(int(cfg["cv"]["seed"]))
    chosen = list(cfg.get("classifiers") or zoo)
    unknown = sorted(set(chosen) - set(zoo))
    if unknown:
        raise ValueError(f"unknown classifiers {unknown}; known: {sorted(zoo)}")
    return zoo, chosen


def classify(table: pd.DataFrame, folds: pd.DataFrame, cfg: dict[str, Any], names: list[str]
             ) -> tuple[dict[tuple[str, str], pd.DataFrame], list[str], pd.DataFrame]:
    """Out-of-fold scores per (classifier, feature set); the chosen classifiers; what was
    skipped and why."""
    y = table["y"].astype(int)
    zoo, chosen = chosen_classifiers(cfg)
    sets = feature_sets(table, names)
    oofs, skipped = {}, []
    for clf in chosen:
        for fs, X in sets.items():
            oof, reason = out_of_fold(X, y, folds, zoo[clf])
            if oof is not None:
                oofs[clf, fs] = oof
            else:
                skipped.append({"classifier": clf, "feature_set": fs, "patients": len(X),
                                "reason": reason})
    return oofs, chosen, pd.DataFrame(skipped, columns=SKIPPED_COLUMNS)


def metric_tables(oofs: dict[tuple[str, str], pd.DataFrame],
                  boot: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """Metrics with CIs, ROC and PR curves of every (classifier, feature set)."""
    metric_rows, roc_rows, pr_rows = [], [], []
    for (clf, fs), oof in oofs.items():
        m = metrics_with_ci(oof, **boot).reset_index()
        metric_rows.append(m.assign(classifier=clf, feature_set=fs, n=oof["case_id"].nunique(),
                                    n_pos=int(oof.drop_duplicates("case_id")["y"].sum())))
        mean = oof_mean(oof)
        curves = roc_pr_curves(mean["y"], mean["prob"])
        roc_rows.append(curves["roc"].assign(classifier=clf, feature_set=fs))
        pr_rows.append(curves["pr"].assign(classifier=clf, feature_set=fs))
    return {"metrics": pd.concat(metric_rows, ignore_index=True),
            "roc": pd.concat(roc_rows, ignore_index=True),
            "pr": pd.concat(pr_rows, ignore_index=True)}


def comparison_tables(oofs: dict[tuple[str, str], pd.DataFrame], chosen: list[str],
                      names: list[str], boot: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """Fused minus each single modality (per classifier and averaged) and DeLong."""
    comparison_rows, delong_rows = [], []
    for single in names:
        pairs = [(clf, oofs[clf, "fused"], oofs[clf, single]) for clf in chosen
                 if (clf, "fused") in oofs and (clf, single) in oofs]
        for clf, fused, alone in pairs:
            c = compare_with_ci(fused, alone, **boot).reset_index()
            comparison_rows.append(c.assign(classifier=clf, single=single))
            delong_rows.append({"classifier": clf, "single": single, **delong_oof(fused, alone)})
        if pairs:
            c = mean_difference_with_ci([p[1] for p in pairs], [p[2] for p in pairs], **boot)
            comparison_rows.append(c.reset_index().assign(classifier="mean over classifiers",
                                                          single=single))
    comparisons = (pd.concat(comparison_rows, ignore_index=True) if comparison_rows
                   else pd.DataFrame(columns=["metric", "classifier", "single"]))
    return {"comparisons": comparisons, "delong": pd.DataFrame(delong_rows)}


# ---------------------------------------------------------------------------- nested models


def nested_sets(table: pd.DataFrame, names: list[str]) -> dict[tuple[str, str], pd.DataFrame]:
    """``(feature set, patients) -> features`` of the nested models: ``("fused", "all")``,
    and per modality ``(m, m)`` and ``("fused", m)`` on the patients who have ``m``."""
    sets = {("fused", "all"): table[feature_columns(table, "fused")]}
    for m in names:
        rows = modality_mask(table, m)
        sets[m, m] = table.loc[rows, feature_columns(table, m)]
        sets["fused", m] = table.loc[rows, feature_columns(table, "fused")]
    return sets


def _nested_one(job: tuple) -> tuple:
    """One nested model (module level, for :func:`crossmodal.parallel.map_jobs`)."""
    X, y, folds, names, seed, inner_splits = job
    zoo = make_classifiers(seed)
    sub_folds = feature_set_folds(folds, X.index)
    reason = unfit_reason(y.loc[X.index].to_numpy(), sub_folds)
    if reason is not None:
        return None, None, reason
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        try:
            oof, choices = nested_cross_validated_scores(
                X, y.loc[X.index], classifiers={k: zoo[k] for k in names}, folds=sub_folds,
                inner_splits=inner_splits, seed=seed, case_ids=X.index.to_numpy())
        except ValueError as err:  # e.g. the chosen model cannot fit the outer training set
            return None, None, f"{type(err).__name__}: {err}"
    if not np.isfinite(oof["prob"]).all():
        return None, None, "non-finite probabilities (features without variance?)"
    return oof, choices, None


def nested_models(table: pd.DataFrame, folds: pd.DataFrame, cfg: dict[str, Any],
                  names: list[str], *, jobs: int | str = 1
                  ) -> tuple[dict[tuple[str, str], pd.DataFrame], pd.DataFrame, pd.DataFrame]:
    """Nested-CV OOF scores per ``(feature set, patients)`` of :func:`nested_sets`, the
    per-fold choices, and what was skipped."""
    from crossmodal.parallel import map_jobs

    y = table["y"].astype(int)
    sets = nested_sets(table, names)
    _, chosen = chosen_classifiers(cfg)
    job = (chosen, int(cfg["cv"]["seed"]), int(cfg["nested"]["inner_splits"]))
    folds = folds[folds["repeat"] < int(cfg["nested"]["n_repeats"])]
    results = map_jobs(_nested_one, [(X, y, folds, *job) for X in sets.values()], jobs=jobs)
    oofs, choices, skipped = {}, [], []
    for (fs, patients), (oof, chosen, reason) in zip(sets, results):
        if oof is None:
            skipped.append({"classifier": "nested", "feature_set": f"{fs} ({patients})",
                            "patients": len(sets[fs, patients]), "reason": reason})
            continue
        oofs[fs, patients] = oof
        choices.append(chosen.assign(feature_set=fs, patients=patients))
    choices = pd.concat(choices, ignore_index=True) if choices else pd.DataFrame()
    return oofs, choices, pd.DataFrame(skipped, columns=SKIPPED_COLUMNS)


def nested_comparisons(oofs: dict[tuple[str, str], pd.DataFrame], names: list[str],
                       boot: dict[str, Any]) -> pd.DataFrame:
    """Fused minus each single modality, nested models, on that modality's patients:
    ``like for like`` (fused trained on those patients too) and ``all patients`` (fused
    trained on everyone). Paired bootstrap (``p_value``) on every metric, DeLong on AUC."""
    rows = []
    for m in names:
        if (m, m) not in oofs:
            continue
        for comparison, fused in (("like for like", ("fused", m)), ("all patients", ("fused", "all"))):
            if fused not in oofs:
                continue
            c = compare_with_ci(oofs[fused], oofs[m, m], **boot).reset_index()
            d = delong_oof(oofs[fused], oofs[m, m])
            rows.append(c.assign(single=m, comparison=comparison,
                                 delong_p=np.where(c["metric"] == "auc", d["p_value"], np.nan)))
    columns = ["metric", "estimate", "ci_low", "ci_high", "n_boot_valid", "a", "b", "n", "p_value",
               "single", "comparison", "delong_p"]
    return pd.concat(rows, ignore_index=True)[columns] if rows else pd.DataFrame(columns=columns)


def calibration_tables(oofs: dict[tuple[str, str], pd.DataFrame], boot: dict[str, Any],
                       *, n_bins: int = 5) -> dict[str, pd.DataFrame]:
    """Brier score with CI, reliability bins and confusion counts of every nested model."""
    calibration, reliability, confusion = [], [], []
    for (fs, patients), oof in oofs.items():
        key = {"feature_set": fs, "patients": patients}
        b = brier_with_ci(oof, n_boot=boot["n_boot"], seed=boot["seed"], alpha=boot["alpha"])
        calibration.append({**key, "metric": "brier", **b})
        reliability.append(reliability_curve(oof, n_bins=n_bins).assign(**key))
        confusion.append({**key, "threshold": boot["threshold"],
                          **confusion_counts(oof, threshold=boot["threshold"])})
    return {"calibration": pd.DataFrame(calibration),
            "reliability": pd.concat(reliability, ignore_index=True) if reliability else pd.DataFrame(),
            "confusion": pd.DataFrame(confusion)}


def nested_metric_table(oofs: dict[tuple[str, str], pd.DataFrame], boot: dict[str, Any]
                        ) -> pd.DataFrame:
    """Metrics with CIs of every nested model."""
    rows = [metrics_with_ci(oof, **boot).reset_index().assign(
                feature_set=fs, patients=patients, n=oof["case_id"].nunique(),
                n_pos=int(oof.drop_duplicates("case_id")["y"].sum()))
            for (fs, patients), oof in oofs.items()]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def run(params: dict[str, Any], *, features_dir: str | Path, out: str | Path,
        metrics: str | Path | None = None) -> dict[str, pd.DataFrame]:
    """Classifiers x feature sets on the shared folds (see module doc)."""
    cfg = params["classify"]
    features_dir, out = Path(features_dir), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = list(modality_names(params["cohort"]["skeleton"]).values())
    table = pd.read_csv(features_dir / "features.csv", index_col="case_id")
    folds = pd.read_csv(features_dir / "folds.csv")
    oofs, chosen, skipped = classify(table, folds, cfg, names)
    nested, choices, nested_skipped = nested_models(table, folds, cfg, names,
                                                    jobs=compute_setting(params, "jobs"))
    boot = boot_options(cfg)
    oof = pd.concat([o.assign(classifier=c, feature_set=f) for (c, f), o in oofs.items()],
                    ignore_index=True)
    tables = {"oof": oof, **metric_tables(oofs, boot),
              **comparison_tables(oofs, chosen, names, boot),
              "skipped": pd.concat([skipped, nested_skipped], ignore_index=True),
              "nested_oof": pd.concat([o.assign(feature_set=f, patients=p)
                                       for (f, p), o in nested.items()], ignore_index=True),
              "nested_choices": choices, "nested_metrics": nested_metric_table(nested, boot),
              "nested_comparisons": nested_comparisons(nested, names, boot),
              **calibration_tables(nested, boot)}
    tables = {key: tables[key] for key in OUTPUTS}
    for key, t in tables.items():
        t.to_csv(out / f"{key}.csv", index=False)
    write_dvc_metrics(tables, metrics)
    return tables
