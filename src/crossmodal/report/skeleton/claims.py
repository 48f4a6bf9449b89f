"""Claims C5-C7 of Part 2 (page ``skeleton/08_claims``): our choices beside the thesis's,
the pre-specified analysis, the gates, late versus early fusion, claimed versus reproduced.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from crossmodal.learn.classify import make_classifiers
from crossmodal.learn.patients import modality_names
from crossmodal.report.common import ci_column
from crossmodal.report.common import p_cell
from crossmodal.report.common import thesis_cell
from crossmodal.report.common import yes_no

__all__ = ["analysis_view", "beside_view", "c3d_difference_table", "choices_table", "claims_view",
           "early_fusion_sentence", "gate_view", "verdict_summary"]


def choices_table(params: Mapping[str, Any]) -> pd.DataFrame:
    """"Thesis says" vs "our choice" for Part 2, with every number read from ``params``."""
    det, feat, clf, c3d = (params["part2_detect"], params["features"], params["classify"],
                           params["c3d"])
    cohort = params["cohort"]["skeleton"]
    phantom = params.get("phantom", {}).get("skeleton", {})
    if det["leakage"] == "cross_fit":
        leakage = (f"cross-fitting: {det['n_folds']} label-stratified patient folds; "
                   "each patient's series are scored by the detector trained on the other folds")
    else:
        leakage = (f"disjoint subset: {det['holdout_fraction']:.0%} of the patients train the "
                   "detectors, only the others are scored and classified")
    cv = clf["cv"]
    classifiers = list(clf.get("classifiers") or make_classifiers(0))
    n_classifiers = len(classifiers)
    rows = [
        ("cohort", "233 patients; CT, MRI and PET series (1-3 per patient)",
         f"{cohort['source']} cohort: {phantom.get('n_patients', '?')} patients, "
         f"{cohort['cancer']}; modalities {', '.join(modality_names(cohort).values())}"),
        ("detectors", "one YOLO per modality",
         f"{det['detector']}{det.get('scale') or ''} from scratch, "
         f"trained on {det['tile_size']} px tiles and detecting on whole "
         f"{det['slice_size'][0]} x {det['slice_size'][1]} px slices (body crop, couch "
         f"excluded), {det['train']['epochs']} epochs; a tile per lesion cross-section + "
         f"{det['negatives_per_positive']} lesion-free tile per lesion slice; boxes not widened"),
        ("leakage", "(not stated)", leakage),
        ("featurisation", "confidence >= 0.2, 8 bins, per-series counts",
         f"confidence >= {feat['conf']}, {feat['n_bins']} equal bins on "
         f"[{feat['conf']}, {feat['high']}], "
         f"normalised by {'slice count' if feat['normalise'] == 'slices' else 'total detections'}"
         + (", presence flag per modality" if feat["presence_flags"] else "")),
        ("classifiers", "several machine-learning classifiers",
         f"{n_classifiers} scikit-learn pipelines ({', '.join(classifiers)}), "
         "fixed hyperparameters"),
        ("evaluation", "(not stated)",
         f"{cv['n_repeats']} x repeated stratified {cv['n_splits']}-fold CV on patients; "
         f"patient-bootstrap CIs (B = {clf['n_boot']}); DeLong on mean OOF scores"),
        ("model for the claims", "(not stated)",
         f"nested CV: per outer fold the best of the {n_classifiers} by inner "
         f"{clf['nested']['inner_splits']}-fold AUC on the training patients only"),
        ("comparator gate", "(not stated)",
         f"a modality is a comparator when its detector's AP50 CI lower bound is >= "
         f"{clf['gate']['detector_ap50_ci_low']}; an early-fusion model when its AUC CI lower "
         f"bound for lesion presence from {c3d['gate']['modality']} alone is > "
         f"{c3d['gate']['sanity_auc_ci_low']} (C3D: {c3d['gate']['epochs']} epochs there)"),
        ("early fusion", "C3D on the stacked modalities",
         f"reduced-width C3D (width {c3d['train']['width']}, BatchNorm, global pooling), "
         f"grid {'x'.join(map(str, c3d['grid_size']))} voxels, {c3d['train']['epochs']} epochs, "
         f"first {c3d['n_repeats']} repeat(s) of the same folds"),
    ]
    return pd.DataFrame(rows, columns=["step", "thesis says", "our choice"]).set_index("step")


def c3d_difference_table(vs_early: pd.DataFrame, metrics=("auc", "accuracy")) -> pd.DataFrame:
    """(comparator, gate passed) x metric: nested fused model minus it, ``difference [CI]``."""
    shown = vs_early[vs_early["metric"].isin(metrics)].copy()
    shown["fused - comparator"] = ci_column(shown, "difference", "ci_low", "ci_high", digits=3,
                                            signed=True)
    return shown.pivot_table(index=["comparator", "gate passed"], columns="metric",
                             values="fused - comparator", aggfunc="first",
                             sort=False).reindex(columns=list(metrics))


def analysis_view(analysis: pd.DataFrame) -> pd.DataFrame:
    """The pre-specified analysis (``analysis.csv``) as shown before the results."""
    view = analysis.copy()
    view["thesis value"] = [thesis_cell(v) for v in view["thesis value"]]
    return view.set_index("claim")


def early_fusion_sentence(vs_early: pd.DataFrame) -> str:
    """Which early-fusion model C6 compares with, and why, from ``c3d_comparisons.csv``."""
    passed = vs_early.drop_duplicates("comparator").set_index("comparator")["gate passed"].astype(bool)
    if passed.get("c3d", False):
        return "C3D passed its sanity gate: it is C6's comparator."
    if passed.any():
        return ("**C3D failed its sanity gate** (it does not find lesions from one channel alone "
                f"better than chance), so C6 compares with the cheap early-fusion model `{passed[passed].index[0]}`, "
                "which passed the same gate.")
    return ("**C3D failed its sanity gate, and so did the cheap early-fusion model**: no early-fusion "
            "comparator is measurable, and C6 is *comparator not measurable*.")


def gate_view(detector_gate: pd.DataFrame) -> pd.DataFrame:
    """Per modality: detector AP50 [CI], the threshold and whether it is a comparator."""
    return pd.DataFrame({
        "detector AP50 [CI]": ci_column(detector_gate, "ap50", "ap50_ci_low", "ap50_ci_high"),
        "CI low needed": detector_gate["threshold"].to_numpy(),
        "comparator?": ["yes" if p else "no: comparator not measurable"
                        for p in detector_gate["passed"]]}, index=detector_gate["modality"])


def claims_view(claims: pd.DataFrame, *, ci: float = 0.95, digits: int = 3) -> pd.DataFrame:
    """The claimed-vs-reproduced table: thesis value, ours with CI, p, Holm p, verdict and
    whether the thesis's value lies in our CI (``ci``: the interval level)."""
    return pd.DataFrame({
        "claim": claims["claim"], "comparator": claims["comparator"],
        "metric (fused - comparator)": claims["metric"], "patients": claims["patients"],
        "thesis value": [thesis_cell(v) for v in claims["thesis"]],
        f"ours [{100 * ci:g} % CI]": ci_column(claims, "ours", "ci_low", "ci_high", digits=digits,
                                             signed=True),
        "p": [p_cell(p) for p in claims["p_value"]],
        "Holm p": [p_cell(p) for p in claims["p_holm"]],
        "verdict": claims["verdict"], "claim verdict": claims["claim verdict"],
        "thesis value in CI?": [yes_no(v) for v in claims["thesis_in_ci"]],
        "gate": claims["gate"]}).set_index(["claim", "comparator"])


def beside_view(beside: pd.DataFrame, *, ci: float = 0.95, digits: int = 3) -> pd.DataFrame:
    """Secondary metrics and all-patient figures: CI, unadjusted p, thesis in CI; no verdict."""
    return pd.DataFrame({
        "claim": beside["claim"], "comparator": beside["comparator"], "metric": beside["metric"],
        "patients": beside["patients"], "thesis value": [thesis_cell(v) for v in beside["thesis"]],
        f"ours [{100 * ci:g} % CI]": ci_column(beside, "ours", "ci_low", "ci_high", digits=digits,
                                             signed=True),
        "p (unadjusted)": [p_cell(p) for p in beside["p_value"]],
        "thesis value in CI?": [yes_no(v) for v in beside["thesis_in_ci"]],
        "gate": beside["gate"]})


def verdict_summary(summary: Mapping[str, Any]) -> str:
    """``**Claim verdicts:** C5: ...; C6: ...`` from the claims metrics JSON (claim -> verdict)."""
    verdicts = "; ".join(f"{k}: {v}" for k, v in summary.items())
    return f"**Claim verdicts:** {verdicts}."
