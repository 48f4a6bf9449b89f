"""Stage ``claims_pelvis``: the pre-specified analysis of claims C1-C4.

The analysis is fixed in ``params.yaml`` (``detect.analysis``) before any result: one
primary comparison per claim and detector, the proposed input (``detect.proposed``) minus
the claim's reference, on the claim's metric. Among a claim's ``references`` the one
compared is the best on the *validation* patients (``val_<metric>`` of
``<eval_dir>/metrics.csv``), never on test. The difference, its paired patient-bootstrap CI
and two-sided bootstrap p-value come from ``<eval_dir>/differences.csv``; the p-values of
the whole family (every claim x detector) are adjusted together (Holm) and the verdicts
are read from the adjusted p-values (:func:`crossmodal.stats.verdict.adjusted_verdict`),
never typed. C4 is computed from C1 and C2: supported for every detector (its ``ours`` is
the share of C1/C2 rows supported).

Outputs under ``out``: ``analysis.csv`` (the pre-specified analysis as a table),
``claims.csv`` (C1-C4), ``beside.csv`` (secondary endpoints and controls, reported beside
the claims, outside the family, without verdict); the DVC metrics JSON at ``metrics``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crossmodal.params import study_cohort
from crossmodal.stats.multiplicity import adjust
from crossmodal.stats.verdict import adjusted_verdict
from crossmodal.stats.verdict import overall_verdict
from crossmodal.stats.verdict import thesis_in_ci

DIFFERENCE_COLUMNS = ["detector", "input", "metric", "difference", "ci_low", "ci_high", "p_value"]
REFERENCE_RULE = "best on the validation patients (val_{metric}) among {references}"


def run(params: dict[str, Any], *, eval_dir: str | Path, out: str | Path, metrics: str | Path) -> pd.DataFrame:
    """C1-C4 from ``<eval_dir>/metrics.csv`` and ``differences.csv`` (params ``detect.proposed``,
    ``detect.analysis``, the study's cohort ``label_names``); returns the claims table."""
    evaluated = pd.read_csv(Path(eval_dir) / "metrics.csv")
    differences = read_differences(Path(eval_dir) / "differences.csv")
    analysis = resolved_analysis(params)
    proposed = params["detect"]["proposed"]
    tables = {"analysis": analysis_table(analysis, family_size=len(planned_family(params, analysis))),
              "claims": claims_table(evaluated, differences, proposed=proposed, analysis=analysis),
              "beside": beside_table(evaluated, differences, proposed=proposed, analysis=analysis)}
    Path(out).mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        table.to_csv(Path(out) / f"{name}.csv", index=False)
    write_metrics_json(tables["claims"], metrics)
    print(tables["claims"].to_string(index=False))
    return tables["claims"]


# ----------------------------------------------------------------------------- the analysis


def claim_metric(metric: str, primary_class: str) -> str:
    """The metrics.csv column a claim's ``metric`` names: ``primary`` is ``AP50_<primary_class>``."""
    return f"AP50_{primary_class}" if metric == "primary" else metric


def resolved_analysis(params: dict[str, Any]) -> dict[str, Any]:
    """``detect.analysis`` with every claim's ``metric`` resolved to its metrics.csv column
    and ``secondary`` the secondary metrics: AP50 of every other class, then
    ``secondary_metrics``."""
    analysis = params["detect"]["analysis"]
    primary = analysis["primary_class"]
    classes = [str(n) for n in study_cohort(params)["label_names"].values()]
    claims = {name: {**spec, "metric": claim_metric(spec["metric"], primary)}
              for name, spec in analysis["claims"].items()}
    secondary = [f"AP50_{c}" for c in classes if c != primary] + list(analysis.get("secondary_metrics", []))
    return {**analysis, "claims": claims, "secondary": secondary, "controls": analysis.get("controls", {})}


def comparison_metrics(params: dict[str, Any]) -> list[str]:
    """Every metric whose paired difference the analysis reads from differences.csv: each
    claim's metric and the secondary metrics (for the evaluate stage to compute)."""
    analysis = resolved_analysis(params)
    return list(dict.fromkeys([*(s["metric"] for s in analysis["claims"].values()), *analysis["secondary"]]))


def planned_family(params: dict[str, Any], analysis: dict[str, Any]) -> list[tuple[str, str]]:
    """(claim, detector) of every primary comparison the profile's runs allow: the detector
    trains the proposed input and at least one of the claim's references."""
    detect = params["detect"]
    family = []
    for claim, spec in analysis["claims"].items():
        for run in detect["detectors"]:
            inputs = detect["inputs"] if run["inputs"] == "all" else run["inputs"]
            if detect["proposed"] in inputs and set(spec["references"]) & set(inputs):
                family.append((claim, run["name"]))
    return family


def analysis_table(analysis: dict[str, Any], *, family_size: int) -> pd.DataFrame:
    """The pre-specified analysis, one row per claim (C4 last, computed from C1 and C2)."""
    rows = [{"claim": claim, "thesis says": spec["says"], "primary metric": spec["metric"],
             "reference rule": (REFERENCE_RULE.format(metric=spec["metric"], references=", ".join(spec["references"]))
                                if len(spec["references"]) > 1 else spec["references"][0]),
             "better": spec["better"], "thesis value": spec["thesis"],
             "reading": analysis["thesis_reading"] if spec["thesis"] is not None else "no number",
             "alpha": analysis["alpha"], "correction": analysis["multiplicity"], "family size": family_size,
             "sanity gate": f"validation AP50_{analysis['primary_class']} >= "
                            f"{analysis.get('gate', {}).get('min_val_ap', 0.0)} for both runs; at least "
                            f"{analysis.get('min_test_patients', 1)} test patients"}
            for claim, spec in analysis["claims"].items()]
    if {"C1", "C2"} <= set(analysis["claims"]):
        rows.append({"claim": "C4", "thesis says": "consistent across detectors", "primary metric": "C1, C2 verdicts",
                     "reference rule": "as C1 and C2", "better": "supported for every detector",
                     "thesis value": None, "reading": "no number", "alpha": analysis["alpha"],
                     "correction": "none (no test of its own)", "family size": family_size})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- the claims


def read_differences(path: Path) -> pd.DataFrame:
    """``differences.csv`` (an evaluation without any comparison writes an empty file)."""
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame(columns=DIFFERENCE_COLUMNS)


def choose_reference(rows: pd.DataFrame, references: list[str], metric: str, *, higher_is_better: bool) -> str | None:
    """The reference compared: the best of ``references`` on the validation patients.

    ``rows`` are one detector's metrics.csv rows indexed by input. Only references that
    detector was evaluated on compete; with one of them no choice is made. Otherwise
    ``val_<metric>`` decides (highest, or lowest where lower is better): the test metric
    is never looked at. None when no reference was evaluated.
    """
    present = [r for r in references if r in rows.index]
    if len(present) <= 1:
        return present[0] if present else None
    column = f"val_{metric}"
    if column not in rows.columns:
        raise KeyError(f"metrics.csv has no {column}: the reference among {present} is chosen on validation")
    values = rows.loc[present, column].astype(float)
    if values.isna().all():
        return present[0]
    return values.idxmax() if higher_is_better else values.idxmin()


def primary_rows(metrics: pd.DataFrame, differences: pd.DataFrame, *, proposed: str,
                 analysis: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (claim, detector) of the family: chosen reference and our difference."""
    rows = []
    for detector in metrics["detector"].unique():
        m = metrics[metrics.detector == detector].set_index("input")
        if proposed not in m.index:
            continue
        for claim, spec in analysis["claims"].items():
            metric, higher = spec["metric"], spec["better"] == "higher"
            reference = choose_reference(m.drop(index=proposed), spec["references"], metric, higher_is_better=higher)
            if reference is None:
                continue
            found = differences[(differences.detector == detector) & (differences.input == reference)
                                & (differences.metric == metric)]
            diff = found.iloc[0] if len(found) else pd.Series(dtype=float)
            thesis = spec["thesis"]
            rows.append({"claim": claim, "detector": detector, "says": spec["says"],
                         "comparison": f"{proposed} - {reference}", "metric": metric, "reference": reference,
                         "better": spec["better"], "thesis": np.nan if thesis is None else float(thesis),
                         "thesis_compared": _thesis_compared(thesis, analysis["thesis_reading"], m, reference, metric),
                         "ours": diff.get("difference", np.nan), "ci_low": diff.get("ci_low", np.nan),
                         "ci_high": diff.get("ci_high", np.nan), "p_value": diff.get("p_value", np.nan),
                         "seeds": m.loc[proposed].get("seeds", np.nan),
                         "test_patients": m.loc[proposed].get("test_patients", np.nan)})
    return rows


def _thesis_compared(thesis, reading: str, rows: pd.DataFrame, reference: str, metric: str) -> float:
    """The thesis's effect as an absolute difference of ``metric``: as stated under the
    absolute reading, times our reference's test value under the relative one."""
    if thesis is None:
        return np.nan
    if reading == "absolute":
        return float(thesis)
    return float(thesis) * float(rows.loc[reference, metric]) if metric in rows.columns else np.nan


def claims_table(metrics: pd.DataFrame, differences: pd.DataFrame, *, proposed: str,
                 analysis: dict[str, Any]) -> pd.DataFrame:
    """C1-C4 per detector: thesis value, ours with CI and p-value, Holm-adjusted p-value and
    verdict, and whether the thesis's value lies in our CI (all computed, never typed)."""
    claims = pd.DataFrame(primary_rows(metrics, differences, proposed=proposed, analysis=analysis))
    if claims.empty:
        return claims
    claims["gate"] = [gate_outcome(metrics, r.detector, [proposed, r.reference], analysis,
                                   test_patients=r.test_patients) for r in claims.itertuples()]
    # A comparison without a finite difference and CI is not measurable and leaves the family.
    # One with a run that fails the sanity gate (decided on validation) is not measurable
    # either, and nothing is "beaten" by it; it stays in the family with p = 1, so the family
    # keeps its planned size.
    measured = np.isfinite(claims[["ours", "ci_low", "ci_high"]].astype(float)).all(axis=1)
    p_values = claims["p_value"].astype(float).where(claims["gate"] == "passed", 1.0).where(measured)
    claims["p_holm"] = adjust(p_values.to_numpy(), analysis["multiplicity"])
    claims["verdict"] = [adjusted_verdict(r.ours, r.p_holm, r.ci_low, r.ci_high, alpha=analysis["alpha"],
                                          higher_is_better=r.better == "higher") if r.gate == "passed"
                         else "not measurable" for r in claims.itertuples()]
    claims["thesis_in_ci"] = pd.Series([thesis_in_ci(r.thesis_compared, r.ci_low, r.ci_high)
                                        for r in claims.itertuples()], dtype=object)
    c12 = claims[claims.claim.isin(["C1", "C2"])]
    if {"C1", "C2"} <= set(c12.claim):
        detectors = list(dict.fromkeys(c12.detector))
        claims = pd.concat([claims, pd.DataFrame([{
            "claim": "C4", "detector": "all", "says": "consistent across detectors",
            "comparison": f"C1 and C2 supported for every detector ({', '.join(detectors)})",
            "metric": "", "reference": "", "better": "higher",
            "thesis": np.nan, "thesis_compared": np.nan, "ours": float((c12.verdict == "supported").mean()),
            "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan, "p_holm": np.nan,
            "seeds": claims["seeds"].iloc[0], "test_patients": claims["test_patients"].iloc[0],
            "verdict": consistency_verdict(c12.verdict, n_detectors=len(detectors)), "thesis_in_ci": np.nan,
            "gate": ""}])],
            ignore_index=True)
    return claims


def consistency_verdict(verdicts: pd.Series, *, n_detectors: int) -> str:
    """C4: supported only when every C1 and C2 row is; not measurable when any is not
    (a comparison nobody could measure does not count as agreeing) or when fewer than two
    detectors were compared (one detector cannot be consistent with another)."""
    if n_detectors < 2 or (verdicts == "not measurable").any():
        return "not measurable"
    return overall_verdict(verdicts)


def gate_outcome(metrics: pd.DataFrame, detector: str, inputs: list[str], analysis: dict[str, Any], *,
                 test_patients: float | None = None) -> str:
    """``passed``, or why the comparison measures nothing: a run whose primary endpoint on
    the validation patients (``val_AP50_<primary_class>``; never the test patients) is below
    ``analysis.gate.min_val_ap`` has not learnt to find the lesion; fewer ``test_patients``
    than ``analysis.min_test_patients`` leave a patient bootstrap too few resamples."""
    minimum = int(analysis.get("min_test_patients", 1))
    if test_patients is not None and np.isfinite(test_patients) and test_patients < minimum:
        return f"failed: {int(test_patients)} test patients < {minimum}"
    threshold = float(analysis.get("gate", {}).get("min_val_ap", 0.0))
    column = f"val_AP50_{analysis['primary_class']}"
    rows = metrics[metrics.detector == detector].set_index("input")
    failed = [name for name in inputs if name in rows.index and column in rows.columns
              and not float(rows.loc[name, column]) >= threshold]
    return "passed" if not failed else "failed: " + ", ".join(failed)


def beside_table(metrics: pd.DataFrame, differences: pd.DataFrame, *, proposed: str,
                 analysis: dict[str, Any]) -> pd.DataFrame:
    """Reported beside the claims, outside the family and without verdict: the secondary
    metrics at the chosen reference of each claim on the primary endpoint, and the controls
    (proposed minus each, on the claim's metric)."""
    primary = pd.DataFrame(primary_rows(metrics, differences, proposed=proposed, analysis=analysis))
    endpoint = f"AP50_{analysis['primary_class']}"
    wanted = []
    for row in primary.itertuples():
        if row.metric == endpoint:  # beside the primary endpoint only (not beside C3's FP)
            wanted += [(row.claim, row.detector, "secondary", row.reference, m) for m in analysis["secondary"]]
    for claim, controls in analysis["controls"].items():
        metric = analysis["claims"][claim]["metric"]
        wanted += [(claim, detector, "control", control, metric)
                   for detector in metrics["detector"].unique() for control in controls]
    rows = []
    for claim, detector, kind, other, metric in wanted:
        found = differences[(differences.detector == detector) & (differences.input == other)
                            & (differences.metric == metric)]
        if len(found):
            diff = found.iloc[0]
            rows.append({"claim": claim, "detector": detector, "kind": kind, "comparison": f"{proposed} - {other}",
                         "metric": metric, "ours": diff["difference"], "ci_low": diff["ci_low"],
                         "ci_high": diff["ci_high"], "p_value": diff.get("p_value", np.nan)})
    return pd.DataFrame(rows, columns=["claim", "detector", "kind", "comparison", "metric", "ours", "ci_low",
                                       "ci_high", "p_value"])


def write_metrics_json(claims: pd.DataFrame, path: str | Path) -> None:
    """DVC metrics, the headline ``dvc metrics show`` prints: each claim's verdict over its
    detectors (:func:`~crossmodal.stats.verdict.overall_verdict`); estimates, CIs and
    p-values stay in ``claims.csv``."""
    verdicts = {claim: overall_verdict(rows["verdict"]) for claim, rows in claims.groupby("claim", sort=True)}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(verdicts, indent=1))
