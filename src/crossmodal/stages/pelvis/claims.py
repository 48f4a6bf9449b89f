"""Stage ``claims_pelvis``: claims C1-C4 from the evaluation stage's differences.

Per detector: C1 the proposed input against the best single modality, C2 against the
best baseline fusion (AP50 differences), C3 its false positives per slice against
``detect.claims.fp_reference``; C4 whether C1 and C2 hold for every detector. Thesis
numbers come from params, ours with their paired patient-bootstrap CI from
``<eval_dir>/differences.csv``; verdicts follow the study's one rule
(:mod:`crossmodal.stats.verdict`), never typed. Outputs: ``<out>/claims.csv`` and the DVC
metrics JSON at ``metrics``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crossmodal.stats.verdict import overall_verdict
from crossmodal.stats.verdict import verdict


def run(params: dict[str, Any], *, eval_dir: str | Path, out: str | Path, metrics: str | Path) -> pd.DataFrame:
    """Claims from ``<eval_dir>/metrics.csv`` and ``differences.csv`` (params ``detect.proposed``,
    ``detect.claims``)."""
    claims = claims_table(pd.read_csv(Path(eval_dir) / "metrics.csv"),
                          read_differences(Path(eval_dir) / "differences.csv"),
                          proposed=params["detect"]["proposed"], groups=params["detect"]["claims"])
    write_claims(claims, out, metrics)
    print(claims.to_string(index=False))
    return claims


def read_differences(path: Path) -> pd.DataFrame:
    """``differences.csv`` (an evaluation without any comparison writes an empty file)."""
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame(columns=["detector", "input", "metric", "difference", "ci_low", "ci_high"])


def write_claims(claims: pd.DataFrame, out: str | Path, metrics_json: str | Path) -> None:
    """``<out>/claims.csv`` and the DVC metrics JSON: ``<claim>/<detector>/ours|ci_low|ci_high|verdict``."""
    Path(out).mkdir(parents=True, exist_ok=True)
    claims.to_csv(Path(out) / "claims.csv", index=False)
    flat = {}
    for row in claims.itertuples():
        key = f"{row.claim}/{row.detector}"
        flat.update({f"{key}/ours": float(row.ours), f"{key}/ci_low": float(row.ci_low), f"{key}/ci_high": float(row.ci_high),
                     f"{key}/verdict": row.verdict})
    Path(metrics_json).parent.mkdir(parents=True, exist_ok=True)
    Path(metrics_json).write_text(json.dumps(flat, indent=1, allow_nan=True))


def claims_table(metrics: pd.DataFrame, differences: pd.DataFrame, *, proposed: str,
                 groups: dict[str, Any]) -> pd.DataFrame:
    """C1-C4 per detector: thesis number, our number with CI, verdict (computed, never typed)."""
    rows = []
    for detector in metrics["detector"].unique():
        m = metrics[metrics.detector == detector].set_index("input")
        d = differences[differences.detector == detector]
        for claim, group, thesis in (("C1", groups["single_modality"], groups["thesis_c1"]),
                                     ("C2", groups["baseline_fusions"], groups["thesis_c2"])):
            present = [g for g in group if g in m.index]
            if not present:
                continue
            best = m.loc[present, "AP50"].idxmax()
            row = d[(d.input == best) & (d.metric == "AP50")].iloc[0]
            rows.append({"claim": claim, "detector": detector, "comparison": f"{proposed} - {best} (AP50)",
                         "thesis": thesis, "ours": row.difference, "ci_low": row.ci_low, "ci_high": row.ci_high,
                         "verdict": verdict(row.difference, row.ci_low, row.ci_high)})
        fp = d[(d.input == groups["fp_reference"]) & (d.metric == "FP_per_slice")]
        if len(fp):
            row = fp.iloc[0]
            rows.append({"claim": "C3", "detector": detector,
                         "comparison": f"{proposed} - {groups['fp_reference']} (FP per slice)",
                         "thesis": "fewer false positives", "ours": row.difference, "ci_low": row.ci_low, "ci_high": row.ci_high,
                         "verdict": verdict(row.difference, row.ci_low, row.ci_high, higher_is_better=False)})
    claims = pd.DataFrame(rows)
    if len(claims):
        c12 = claims[claims.claim.isin(["C1", "C2"])]
        claims = pd.concat([claims, pd.DataFrame([{
            "claim": "C4", "detector": ", ".join(metrics["detector"].unique()),
            "comparison": "C1 and C2 positive with CI above 0 for every detector",
            "thesis": "consistent across detectors", "ours": float((np.sign(c12.ours) == 1).all()),
            "ci_low": np.nan, "ci_high": np.nan, "verdict": overall_verdict(c12.verdict)}])], ignore_index=True)
    return claims
