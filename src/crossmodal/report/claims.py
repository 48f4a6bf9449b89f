"""Tables and sentences of the Part 1 claims page (``07_claims``) and the plan sentences of
the training and evaluation pages. They read the claims stage's CSVs and the params; every
p-value, CI and verdict comes computed from the stages."""

from __future__ import annotations

from typing import Any

import pandas as pd

from crossmodal.report.common import ci_column
from crossmodal.report.common import p_cell
from crossmodal.report.common import thesis_cell
from crossmodal.report.common import yes_no


def analysis_view(analysis: pd.DataFrame) -> pd.DataFrame:
    """The pre-specified analysis (``analysis.csv``) as shown before the results."""
    view = analysis.copy()
    view["thesis value"] = [thesis_cell(v) for v in view["thesis value"]]
    return view.set_index("claim")


def reading_sentence(reading: str) -> str:
    """How the thesis's percentages are read: our choice, stated as ours."""
    if reading == "absolute":
        how = ("as **absolute** differences of AP (\"+6.06 %\" = +0.0606 AP, i.e. 6.06 AP points), "
               "compared directly with our differences")
    else:
        how = ("as **relative** gains (\"+6.06 %\" = 6.06 % of the reference's AP), converted to an absolute "
               "difference with our reference's test AP before they are compared with our interval")
    return ("The abstract gives the gains as percentages without saying whether they are absolute (AP points) "
            f"or relative to the reference. **This is our reading, not the thesis's statement**: we read them {how} "
            "(`detect.analysis.thesis_reading`). The reading changes only the column \"thesis value in CI?\"; "
            "the verdicts test our difference against zero.")


def claims_view(claims: pd.DataFrame, *, digits: int = 3) -> pd.DataFrame:
    """The claimed-vs-reproduced table: thesis value, ours with CI, p, Holm p, verdict and
    whether the thesis's value lies in our CI."""
    view = pd.DataFrame({
        "claim": claims["claim"], "detector": claims["detector"], "thesis says": claims["says"],
        "comparison": [f"{c} ({m})" if isinstance(m, str) and m else c
                       for c, m in zip(claims["comparison"], claims["metric"])],
        "thesis value": [thesis_cell(v) for v in claims["thesis"]],
        "ours [95 % CI]": ci_column(claims, "ours", "ci_low", "ci_high", digits=digits, signed=True),
        "p": [p_cell(p) for p in claims["p_value"]],
        "Holm p": [p_cell(p) for p in claims["p_holm"]],
        "verdict": claims["verdict"],
        "thesis value in CI?": [yes_no(v) for v in claims["thesis_in_ci"]],
    })
    if "gate" in claims:  # why a row is not measurable: a run that found no lesion
        view["sanity gate"] = claims["gate"].fillna("")
    c4 = claims["claim"] == "C4"
    view.loc[c4, "ours [95 % CI]"] = [f"{v:.0%} of C1/C2 rows supported" for v in claims.loc[c4, "ours"]]
    return view


def beside_view(beside: pd.DataFrame, *, digits: int = 3) -> pd.DataFrame:
    """Secondary metrics and controls: difference with CI and unadjusted p, no verdict."""
    view = beside[["claim", "detector", "kind", "comparison", "metric"]].copy()
    view["ours [95 % CI]"] = ci_column(beside, "ours", "ci_low", "ci_high", digits=digits, signed=True)
    view["p (unadjusted)"] = [p_cell(p) for p in beside["p_value"]]
    return view


def verdict_caveat(n_test: int, n_seeds: int) -> str:
    """What the verdicts rest on (test patients, seeds) and what their CIs do not cover."""
    seeds = ("each run's training seed is fixed, so the CI covers patient sampling only: a re-run on another "
             "machine (other thread counts, other float rounding) can move a difference" if n_seeds == 1 else
             "the metrics are averaged over the seeds within each bootstrap draw, so the CI covers patient "
             "sampling of the seed-averaged detector, not a new draw of seeds")
    return (f"These verdicts rest on **{n_test} test patients** and **{n_seeds} training seed(s)** per "
            f"(detector, input); {seeds}. The CIs are the unadjusted 95 % intervals; the verdicts use the "
            "Holm-adjusted p-values, so a CI that just excludes 0 can still be inconclusive.")


def detector_plan(params: dict[str, Any]) -> pd.DataFrame:
    """Which detector trains on which inputs with which seeds in this profile (from params)."""
    detect = params["detect"]
    rows = [{"detector": run["name"],
             "inputs": ", ".join(detect["inputs"] if run["inputs"] == "all" else run["inputs"]),
             "seeds": ", ".join(map(str, detect["seeds"]))} for run in detect["detectors"]]
    return pd.DataFrame(rows).set_index("detector")


def detector_plan_sentence(params: dict[str, Any]) -> str:
    """One sentence: the profile, its detectors and its number of seeds."""
    detect = params["detect"]
    names = [run["name"] for run in detect["detectors"]]
    n = len(detect["seeds"])
    return (f"Profile **{params['profile']}** trains {', '.join(names)} with {n} seed{'s' if n > 1 else ''} "
            f"({', '.join(map(str, detect['seeds']))}) per (detector, input).")


__all__ = ["analysis_view", "beside_view", "claims_view", "detector_plan", "detector_plan_sentence",
           "reading_sentence", "verdict_caveat"]
