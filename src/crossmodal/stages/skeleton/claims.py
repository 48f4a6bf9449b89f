"""Stage ``claims_skeleton``: the pre-specified analysis of claims C5-C7.

The analysis is fixed in ``params.yaml`` (``classify.analysis``) before any result: one
primary comparison per claim and comparator, between nested-selected models (classify
stage, ``nested_*.csv``), fused minus comparator on the claim's metric:

* C5, C7 (``single_modality``): per modality, like for like: the fused and the single
  model trained and tested on the patients who have that modality (``nested_comparisons.csv``,
  ``like for like``); the fused model of all patients is reported beside it.
* C6 (``early_fusion``): the fused model of all patients minus the first early-fusion model
  that passed the sanity gate (``<c3d_dir>/gate.csv``: C3D, else the cheap comparator).

Gates: a modality whose detector's AP50 CI lower bound (``ap.csv`` of the evaluate stage)
is below ``classify.gate.detector_ap50_ci_low`` is no comparator; nor is an early-fusion
model that failed its sanity gate. Such a row is ``comparator not measurable`` and keeps
p = 1 in the family, as Part 1 does. p-values: DeLong for AUC, the paired patient bootstrap
otherwise; Holm across the family of all primary rows at ``classify.claims.delong_alpha``;
verdicts from the adjusted p (:func:`crossmodal.stats.verdict.adjusted_verdict`), never typed.

Outputs under ``out``: ``analysis.csv`` (the analysis as a table), ``detector_gate.csv``,
``c3d_comparisons.csv`` (fused minus each early-fusion model, with its gate),
``claims.csv`` (primary rows) and ``beside.csv`` (secondary metrics and the all-patient
figures: CI, unadjusted p, no verdict); the DVC metrics JSON at ``metrics``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crossmodal.learn.classify import boot_options
from crossmodal.learn.metrics import compare_with_ci
from crossmodal.learn.metrics import delong_oof
from crossmodal.learn.metrics_json import write_json
from crossmodal.learn.patients import modality_names
from crossmodal.stats.multiplicity import adjust
from crossmodal.stats.verdict import adjusted_verdict
from crossmodal.stats.verdict import overall_verdict
from crossmodal.stats.verdict import thesis_in_ci

NOT_A_COMPARATOR = "comparator not measurable"
EARLY_FUSION = ("c3d", "early_fusion_histogram")  # in order of preference (C3D is the thesis's)


# ----------------------------------------------------------------------------- gates


def detector_gate(ap: pd.DataFrame, names: list[str], threshold: float) -> pd.DataFrame:
    """Per modality: its detector's AP50 and CI (``ap.csv``) and whether the CI lower bound
    reaches ``threshold``; a modality without a row fails."""
    rows = ap.set_index("modality")
    out = []
    for m in names:
        low = float(rows.loc[m, "ap50_ci_low"]) if m in rows.index else np.nan
        out.append({"modality": m, "ap50": float(rows.loc[m, "ap50"]) if m in rows.index else np.nan,
                    "ap50_ci_low": low,
                    "ap50_ci_high": float(rows.loc[m, "ap50_ci_high"]) if m in rows.index else np.nan,
                    "threshold": threshold, "passed": bool(np.isfinite(low) and low >= threshold)})
    return pd.DataFrame(out)


def early_fusion_comparator(gate: pd.DataFrame) -> str | None:
    """The first of :data:`EARLY_FUSION` that passed its sanity gate, or None."""
    passed = set(gate.loc[gate["passed"].astype(bool), "model"])
    return next((m for m in EARLY_FUSION if m in passed), None)


# ----------------------------------------------------------------------------- comparisons


def early_fusion_comparisons(fused: pd.DataFrame, others: dict[str, pd.DataFrame],
                             gate: pd.DataFrame, boot: dict[str, Any]) -> pd.DataFrame:
    """Nested fused model (all patients) minus each early-fusion model: paired patient
    bootstrap on every metric (``p_value``), DeLong on AUC; with each model's gate."""
    passed = gate.set_index("model")["passed"].astype(bool).to_dict()
    rows = []
    for model, oof in others.items():
        c = compare_with_ci(fused, oof, **boot)
        d = delong_oof(fused, oof)
        for metric, r in c.iterrows():
            rows.append({"comparator": model, "gate passed": passed.get(model, False),
                         "metric": metric, "fused": r["a"], "comparator_value": r["b"],
                         "difference": r["estimate"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                         "p_value": d["p_value"] if metric == "auc" else r["p_value"], "n": r["n"]})
    return pd.DataFrame(rows)


def _thesis(cfg: dict[str, Any], claim: str, metric: str):
    value = cfg["claims"].get(f"thesis_{claim.lower()}_{metric}")
    return np.nan if value is None else float(value)


def _row(claim, spec_says, comparator, metric, found, thesis, *, gate: str, patients_rule: str):
    """One comparison row from a ``nested_comparisons`` / ``c3d_comparisons`` row (or none)."""
    if found is None:
        found = {}
    p = found.get("delong_p") if metric == "auc" and "delong_p" in found else found.get("p_value")
    return {"claim": claim, "says": spec_says, "comparator": comparator, "metric": metric,
            "patients": patients_rule, "thesis": thesis,
            "ours": found.get("estimate", found.get("difference", np.nan)),
            "ci_low": found.get("ci_low", np.nan), "ci_high": found.get("ci_high", np.nan),
            "n": found.get("n", np.nan), "p_value": np.nan if p is None else float(p), "gate": gate}


def comparison_rows(nested: pd.DataFrame, vs_early: pd.DataFrame, det_gate: pd.DataFrame,
                    early: str | None, cfg: dict[str, Any], *, secondary: bool
                    ) -> list[dict[str, Any]]:
    """The primary rows (``secondary=False``) or the rows reported beside them."""
    analysis = cfg["analysis"]
    passed = det_gate.set_index("modality")["passed"].to_dict()
    rows = []

    def pick(table, **match):
        sub = table
        for k, v in match.items():
            sub = sub[sub[k] == v]
        return sub.iloc[0].to_dict() if len(sub) else None

    for claim, spec in analysis["claims"].items():
        metrics = list(spec.get("secondary", [])) if secondary else [spec["metric"]]
        if spec["comparator"] == "single_modality":
            for m in det_gate["modality"]:
                gate = "passed" if passed[m] else f"failed: {m} detector AP50 CI low"
                for metric in metrics:
                    rows.append(_row(claim, spec["says"], m, metric,
                                     pick(nested, comparison="like for like", single=m, metric=metric),
                                     _thesis(cfg, claim, metric), gate=gate,
                                     patients_rule=f"like for like: patients with {m}"))
                if secondary:  # the all-patient figure beside the primary one
                    rows.append(_row(claim, spec["says"], m, spec["metric"],
                                     pick(nested, comparison="all patients", single=m,
                                          metric=spec["metric"]),
                                     _thesis(cfg, claim, spec["metric"]), gate=gate,
                                     patients_rule=f"fused trained on all patients, scored on {m}'s"))
        else:
            model = early or EARLY_FUSION[0]
            gate = "passed" if early else "failed: no early-fusion model passed the sanity gate"
            for metric in metrics:
                found = pick(vs_early, comparator=model, metric=metric) if len(vs_early) else None
                rows.append(_row(claim, spec["says"], model, metric, found,
                                 _thesis(cfg, claim, metric), gate=gate, patients_rule="all patients"))
    return rows


# ----------------------------------------------------------------------------- the table


def claims_table(rows: list[dict[str, Any]], *, alpha: float, multiplicity: str) -> pd.DataFrame:
    """Primary rows with Holm-adjusted p, verdict, claim verdict and thesis-in-CI.

    A row whose comparator failed its gate is ``comparator not measurable``, and a row
    without a finite difference, CI and p ``not measurable``; both enter the family with
    p = 1, so the family keeps its pre-specified size. ``p_value`` is the p that entered
    the family (the test's own p of a gated row is in ``p_test``).
    """
    claims = pd.DataFrame(rows)
    if claims.empty:
        return claims
    values = claims[["ours", "ci_low", "ci_high", "p_value"]].astype(float)
    measured = np.isfinite(values).all(axis=1)
    gated = claims["gate"] == "passed"
    claims["p_test"] = claims["p_value"]
    claims["p_value"] = claims["p_value"].astype(float).where(gated & measured, 1.0)
    claims["p_holm"] = adjust(claims["p_value"].to_numpy(), multiplicity)
    claims["verdict"] = [
        adjusted_verdict(r.ours, r.p_holm, r.ci_low, r.ci_high, alpha=alpha) if r.gate == "passed"
        else NOT_A_COMPARATOR for r in claims.itertuples()]
    claims["thesis_in_ci"] = _thesis_in_ci(claims)
    overall = {c: overall_verdict(list(g["verdict"])) for c, g in claims.groupby("claim")}
    claims["claim verdict"] = claims["claim"].map(overall)
    return claims


def beside_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Secondary rows: thesis value, ours with CI, unadjusted p, thesis in CI; no verdict."""
    beside = pd.DataFrame(rows)
    if beside.empty:
        return beside
    beside["thesis_in_ci"] = _thesis_in_ci(beside)
    return beside


def _thesis_in_ci(rows: pd.DataFrame) -> pd.Series:
    """Whether the thesis value lies in our CI; NaN where the comparator failed its gate (an
    interval against a broken comparator says nothing about the thesis's effect)."""
    return pd.Series([thesis_in_ci(r.thesis, r.ci_low, r.ci_high) if r.gate == "passed" else np.nan
                      for r in rows.itertuples()], dtype=object, index=rows.index)


def analysis_table(cfg: dict[str, Any], c3d_cfg: dict[str, Any], names: list[str]) -> pd.DataFrame:
    """The pre-specified analysis, one row per claim, with the family size it implies."""
    analysis = cfg["analysis"]
    sizes = {c: len(names) if s["comparator"] == "single_modality" else 1
             for c, s in analysis["claims"].items()}
    rows = []
    for claim, spec in analysis["claims"].items():
        single = spec["comparator"] == "single_modality"
        rows.append({
            "claim": claim, "thesis says": spec["says"], "primary metric": spec["metric"],
            "comparison": ("fused minus each single modality, like for like (the patients who "
                           f"have it): {', '.join(names)}") if single else
                          ("fused (all patients) minus early fusion: C3D if it passes its sanity "
                           "gate, else the joint-histogram comparator if it does"),
            "models": f"nested CV: per outer fold the best of {len(cfg['classifiers'])} classifiers "
                      f"by inner {cfg['nested']['inner_splits']}-fold AUC on the training patients",
            "test": "DeLong (mean OOF scores)" if spec["metric"] == "auc" else "paired patient bootstrap",
            "thesis value": _thesis(cfg, claim, spec["metric"]),
            "secondary (no verdict)": ", ".join(spec.get("secondary", [])) or "-",
            "gate": (f"detector AP50 CI low >= {cfg['gate']['detector_ap50_ci_low']}" if single else
                     f"AUC CI low > {c3d_cfg['gate']['sanity_auc_ci_low']} for lesion presence from "
                     f"the {c3d_cfg['gate']['modality']} channel alone"),
            "alpha": cfg["claims"]["delong_alpha"], "correction": analysis["multiplicity"],
            "family size": sum(sizes.values())})
    return pd.DataFrame(rows)


def claims_json(claims: pd.DataFrame) -> dict[str, Any]:
    """DVC metrics, the headline ``dvc metrics show`` prints: each claim's verdict (over its
    comparators); estimates and p-values stay in ``claims.csv``."""
    return {c: g["claim verdict"].iloc[0] for c, g in claims.groupby("claim")}


def run(params: dict[str, Any], *, classify_dir: str | Path, c3d_dir: str | Path, ap: str | Path,
        out: str | Path, metrics: str | Path | None = None) -> dict[str, Any]:
    """The analysis, gates, early-fusion comparisons, claims and beside tables (module doc)."""
    cfg = params["classify"]
    classify_dir, c3d_dir, out = Path(classify_dir), Path(c3d_dir), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = list(modality_names(params["cohort"]["skeleton"]).values())
    boot = boot_options(cfg)
    det_gate = detector_gate(pd.read_csv(ap), names, float(cfg["gate"]["detector_ap50_ci_low"]))
    sanity = pd.read_csv(c3d_dir / "gate.csv")
    early = early_fusion_comparator(sanity)
    nested_oof = pd.read_csv(classify_dir / "nested_oof.csv")
    fused = nested_oof[(nested_oof["feature_set"] == "fused") & (nested_oof["patients"] == "all")]
    vs_early = early_fusion_comparisons(
        fused, {"c3d": pd.read_csv(c3d_dir / "oof.csv"),
                "early_fusion_histogram": pd.read_csv(c3d_dir / "fallback_oof.csv")}, sanity, boot)
    nested = pd.read_csv(classify_dir / "nested_comparisons.csv")
    alpha = float(cfg["claims"]["delong_alpha"])
    tables = {
        "analysis": analysis_table(cfg, params["c3d"], names),
        "detector_gate": det_gate,
        "c3d_comparisons": vs_early,
        "claims": claims_table(comparison_rows(nested, vs_early, det_gate, early, cfg, secondary=False),
                               alpha=alpha, multiplicity=cfg["analysis"]["multiplicity"]),
        "beside": beside_table(comparison_rows(nested, vs_early, det_gate, early, cfg, secondary=True)),
    }
    for key, t in tables.items():
        t.to_csv(out / f"{key}.csv", index=False)
    summary = claims_json(tables["claims"])
    if metrics is not None:
        write_json(summary, metrics)
    print("; ".join(f"{k}: {v}" for k, v in summary.items()))
    return {**tables, "summary": summary}
