"""Stage ``claims_skeleton``: claims C5-C7, claimed versus reproduced.

Reads the classifier outputs (``comparisons.csv``, ``delong.csv``, ``oof.csv``,
``metrics.csv``) and C3D's ``oof.csv``; ``classify`` (bootstrap, ``ci``, thesis numbers in
``classify.claims``). Writes under ``out``: ``c3d_comparisons.csv`` (every fused-feature
classifier minus C3D, paired patient bootstrap and DeLong) and ``claims.csv`` (every row's
verdict by :func:`crossmodal.stats.verdict.verdict`, each claim's by
:func:`~crossmodal.stats.verdict.overall_verdict`); the DVC metrics JSON at ``metrics`` (when given: ``dvc.yaml`` passes it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crossmodal.learn.metrics import compare_with_ci
from crossmodal.learn.metrics import delong_oof
from crossmodal.learn.metrics_json import json_number
from crossmodal.learn.metrics_json import write_json
from crossmodal.stats.verdict import overall_verdict
from crossmodal.stats.verdict import verdict


def c3d_comparisons(classify_oof: pd.DataFrame, classify_metrics: pd.DataFrame,
                    c3d_oof: pd.DataFrame, *, n_boot: int, seed: int, threshold: float,
                    ci: float = 0.95) -> pd.DataFrame:
    """Fused-feature classifiers (best, median by fused AUC, and each one) minus C3D."""
    fused_auc = (classify_metrics["feature_set"] == "fused") & (classify_metrics["metric"] == "auc")
    auc = classify_metrics[fused_auc].set_index("classifier")["estimate"]
    ranked = auc.sort_values(ascending=False, kind="mergesort")
    roles = {ranked.index[0]: "best", ranked.index[(len(ranked) - 1) // 2]: "median"}
    rows = []
    for clf in ranked.index:
        fused = classify_oof[(classify_oof["classifier"] == clf)
                             & (classify_oof["feature_set"] == "fused")]
        c = compare_with_ci(fused, c3d_oof, n_boot=n_boot, seed=seed, threshold=threshold,
                            alpha=round(1 - ci, 12))
        d = delong_oof(fused, c3d_oof)
        for metric, r in c.iterrows():
            rows.append({"classifier": clf, "role": roles.get(clf, ""), "metric": metric,
                         "classifier_value": r["a"], "c3d_value": r["b"],
                         "difference": r["estimate"],
                         "ci_low": r["ci_low"], "ci_high": r["ci_high"], "n": r["n"],
                         "delong_p": d["p_value"] if metric == "auc" else np.nan})
    return pd.DataFrame(rows)


def _count_row(key: str, quantity: str, ours: str, claim_verdict: str, how: str) -> dict[str, Any]:
    """A claims row without an interval (a count of pairs)."""
    return {"claim": key.split(".")[0], "key": key, "quantity": quantity, "thesis": None,
            "ours": ours, "ci_low": np.nan, "ci_high": np.nan, "patients": np.nan,
            "verdict": claim_verdict, "how": how}


def _delong_row(delong: pd.DataFrame, alpha: float) -> dict[str, Any]:
    favour = ((delong["p_value"] < alpha) & (delong["auc_a"] > delong["auc_b"])).sum()
    against = ((delong["p_value"] < alpha) & (delong["auc_a"] < delong["auc_b"])).sum()
    total = len(delong)
    return _count_row("C5.delong", f"DeLong p < {alpha}: fused better / worse, of pairs",
                      f"{favour} / {against} of {total}",
                      "supported" if favour > total / 2 else "contradicted" if against > total / 2
                      else "inconclusive",
                      "classifier x single modality pairs; more than half significant decides")


def _dominance_row(per: pd.DataFrame) -> dict[str, Any]:
    wide = per[per["metric"].isin(["auc", "pr_auc"])].pivot_table(
        index=["classifier", "single"], columns="metric", values="estimate")
    dominated = int(((wide["auc"] > 0) & (wide["pr_auc"] > 0)).sum())
    return _count_row("C7.dominance", "pairs where fused has the larger ROC-AUC and PR-AUC",
                      f"{dominated} of {len(wide)}",
                      "supported" if dominated > len(wide) / 2 else "inconclusive",
                      "classifier x single modality pairs (point estimates)")


def claims_table(comparisons: pd.DataFrame, delong: pd.DataFrame, c3d_vs: pd.DataFrame,
                 cfg: dict[str, Any], *, alpha: float = 0.05) -> pd.DataFrame:
    """The claimed-vs-reproduced table for C5-C7.

    Parameters
    ----------
    comparisons : ``comparisons.csv`` of ``classify_skeleton`` (fused minus single, per
        classifier and ``mean over classifiers``)
    delong : ``delong.csv`` of ``classify_skeleton``
    c3d_vs : :func:`c3d_comparisons`
    cfg : ``classify.claims`` (thesis numbers)
    alpha : DeLong significance level for the per-classifier count
    """
    rows = []
    mean = comparisons[comparisons["classifier"] == "mean over classifiers"]

    def add(key, quantity, thesis, est, low, high, n, how):
        rows.append({"claim": key.split(".")[0], "key": key, "quantity": quantity, "thesis": thesis,
                     "ours": est, "ci_low": low, "ci_high": high, "patients": n,
                     "verdict": verdict(est, low, high), "how": how})

    for metric, thesis_key in (("accuracy", "thesis_c5_accuracy"), ("auc", "thesis_c5_auc")):
        for _, r in mean[mean["metric"] == metric].iterrows():
            add(f"C5.{metric}.{r['single']}", f"{metric}: fused - {r['single']}",
                cfg.get(thesis_key), r["estimate"], r["ci_low"], r["ci_high"], r["n"],
                "mean over classifiers, patients with that modality")
    if len(delong):
        rows.append(_delong_row(delong, alpha))
    for role in ("best", "median"):
        sub = c3d_vs[c3d_vs["role"] == role]
        for metric in ("auc", "accuracy"):
            r = sub[sub["metric"] == metric]
            if len(r):
                r = r.iloc[0]
                add(f"C6.{role}.{metric}",
                    f"{metric}: {role} classifier ({r['classifier']}, fused) - C3D", None,
                    r["difference"], r["ci_low"], r["ci_high"], r["n"],
                    "paired patient bootstrap on the shared folds")
    for _, r in mean[mean["metric"] == "pr_auc"].iterrows():
        add(f"C7.pr_auc.{r['single']}", f"PR-AUC: fused - {r['single']}", None, r["estimate"],
            r["ci_low"], r["ci_high"], r["n"], "mean over classifiers (ROC: see the C5 AUC rows)")
    per = comparisons[comparisons["classifier"] != "mean over classifiers"]
    if len(per):
        rows.append(_dominance_row(per))
    table = pd.DataFrame(rows)
    overall = {claim: overall_verdict(list(group["verdict"]))
               for claim, group in table[table["ci_low"].notna()].groupby("claim")}
    table["claim verdict"] = table["claim"].map(overall).fillna("not measurable")
    return table


def claims_json(claims: pd.DataFrame) -> dict[str, Any]:
    """DVC ``metrics`` of the claims table: each claim's verdict and each interval row's
    estimate, under the stable ``key`` of :func:`claims_table`."""
    measured = claims[claims["ci_low"].notna()]
    return {"verdict": {claim: group["claim verdict"].iloc[0]
                        for claim, group in claims.groupby("claim")},
            "estimate": {k: json_number(v) for k, v in zip(measured["key"], measured["ours"])}}


def run(params: dict[str, Any], *, classify_dir: str | Path, c3d_dir: str | Path, out: str | Path,
        metrics: str | Path | None = None) -> dict[str, Any]:
    """C3D comparisons, the claims table and its DVC metrics (see module doc)."""
    cfg = params["classify"]
    classify_dir, out = Path(classify_dir), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    vs_c3d = c3d_comparisons(pd.read_csv(classify_dir / "oof.csv"),
                             pd.read_csv(classify_dir / "metrics.csv"),
                             pd.read_csv(Path(c3d_dir) / "oof.csv"), n_boot=int(cfg["n_boot"]),
                             seed=int(cfg["boot_seed"]), threshold=float(cfg["threshold"]),
                             ci=float(cfg["ci"]))
    claims = claims_table(pd.read_csv(classify_dir / "comparisons.csv"),
                          pd.read_csv(classify_dir / "delong.csv"), vs_c3d, cfg["claims"],
                          alpha=float(cfg["claims"].get("delong_alpha", 0.05)))
    vs_c3d.to_csv(out / "c3d_comparisons.csv", index=False)
    claims.to_csv(out / "claims.csv", index=False)
    summary = claims_json(claims)
    if metrics is not None:
        write_json(summary, metrics)
    print("; ".join(f"{k}: {v}" for k, v in summary["verdict"].items()))
    return {"c3d_comparisons": vs_c3d, "claims": claims, "summary": summary}
