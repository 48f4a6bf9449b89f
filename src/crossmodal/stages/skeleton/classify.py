"""Stage ``classify_skeleton``: classifiers x feature sets (each modality, fused) on the shared
folds: out-of-fold scores, metrics, fused-minus-single comparisons, DeLong.

Single-modality sets are scored on the patients who have that modality (their folds are
the shared folds restricted to them, :func:`feature_set_folds`); the fused set on everyone.
Comparisons (fused minus single, per classifier and averaged over classifiers) and DeLong
run on the patients both sets scored. Intervals: ``classify.ci`` patient bootstrap
(``n_boot`` resamples, ``boot_seed``). Writes ``oof.csv``, ``metrics.csv``,
``comparisons.csv``, ``delong.csv``, ``roc.csv``, ``pr.csv``, ``skipped.csv`` under ``out``,
the DVC metrics JSON at ``metrics`` and the ROC/PR plot files under ``plots`` (when given:
``dvc.yaml`` passes both).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crossmodal.learn.classify import cross_validated_scores
from crossmodal.learn.classify import iter_folds
from crossmodal.learn.classify import make_classifiers
from crossmodal.learn.features import feature_columns
from crossmodal.learn.features import modality_mask
from crossmodal.learn.metrics import compare_with_ci
from crossmodal.learn.metrics import delong_oof
from crossmodal.learn.metrics import mean_difference_with_ci
from crossmodal.learn.metrics import metrics_with_ci
from crossmodal.learn.metrics import oof_mean
from crossmodal.learn.metrics import roc_pr_curves
from crossmodal.learn.metrics_json import write_dvc_metrics
from crossmodal.learn.patients import modality_names


SKIPPED_COLUMNS = ["classifier", "feature_set", "patients", "reason"]
OUTPUTS = ("oof", "metrics", "comparisons", "delong", "roc", "pr", "skipped")


def feature_set_folds(folds: pd.DataFrame, case_ids) -> pd.DataFrame:
    """The shared fold table restricted to a subset of patients, re-indexed to its rows.

    A patient keeps the test fold it has in the full table, so two feature sets are
    trained and tested on the same partition of their shared patients.
    """
    position = {c: i for i, c in enumerate(case_ids)}
    sub = folds[folds["case_id"].isin(position)].copy()
    sub["index"] = sub["case_id"].map(position).astype(int)
    return sub.reset_index(drop=True)


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


def boot_options(cfg: dict[str, Any]) -> dict[str, Any]:
    """Bootstrap keywords of :mod:`crossmodal.learn.classify` from ``classify``."""
    return {"n_boot": int(cfg["n_boot"]), "seed": int(cfg["boot_seed"]),
            "threshold": float(cfg["threshold"]),
            "alpha": round(1 - float(cfg["ci"]), 12)}  # 1 - 0.95 is not 0.05 in binary


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


def run(params: dict[str, Any], *, features_dir: str | Path, out: str | Path,
        metrics: str | Path | None = None, plots: str | Path | None = None
        ) -> dict[str, pd.DataFrame]:
    """Classifiers x feature sets on the shared folds (see module doc)."""
    cfg = params["classify"]
    features_dir, out = Path(features_dir), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = list(modality_names(params["cohort"]["skeleton"]).values())
    table = pd.read_csv(features_dir / "features.csv", index_col="case_id")
    oofs, chosen, skipped = classify(table, pd.read_csv(features_dir / "folds.csv"), cfg, names)
    boot = boot_options(cfg)
    oof = pd.concat([o.assign(classifier=c, feature_set=f) for (c, f), o in oofs.items()],
                    ignore_index=True)
    tables = {"oof": oof, **metric_tables(oofs, boot),
              **comparison_tables(oofs, chosen, names, boot), "skipped": skipped}
    tables = {key: tables[key] for key in OUTPUTS}
    for key, t in tables.items():
        t.to_csv(out / f"{key}.csv", index=False)
    write_dvc_metrics(tables, metrics, plots)
    return tables
