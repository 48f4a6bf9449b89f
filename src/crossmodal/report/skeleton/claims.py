"""Claims C5-C7 of Part 2 (page ``skeleton/08_claims``): our choices beside the thesis's,
late versus early fusion, claimed versus reproduced.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from crossmodal.learn.classify import make_classifiers
from crossmodal.learn.patients import modality_names
from crossmodal.report.common import ci_column
from crossmodal.report.common import format_ci

__all__ = ["c3d_difference_table", "choices_table", "claims_view", "verdict_summary"]


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
         f"{det['imgsz']} px letterboxed slices, "
         f"{det['train']['epochs']} epochs; lesion slices + {det['negatives_per_positive']} "
         "lesion-free slice per lesion slice; lesion boxes widened to at least "
         f"{det.get('min_box_size', 0)} px"),
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
        ("early fusion", "C3D on the stacked modalities",
         f"reduced-width C3D (width {c3d['train']['width']}, BatchNorm, global pooling), "
         f"grid {'x'.join(map(str, c3d['grid_size']))} voxels, {c3d['train']['epochs']} epochs, "
         f"first {c3d['n_repeats']} repeat(s) of the same folds"),
    ]
    return pd.DataFrame(rows, columns=["step", "thesis says", "our choice"]).set_index("step")


def c3d_difference_table(vs_c3d: pd.DataFrame, metrics=("accuracy", "auc")) -> pd.DataFrame:
    """(classifier, role) x metric: classifier minus C3D ``difference [CI]``."""
    shown = vs_c3d[vs_c3d["metric"].isin(metrics)].copy()
    shown["classifier - C3D"] = ci_column(shown, "difference", "ci_low", "ci_high")
    return shown.pivot_table(index=["classifier", "role"], columns="metric",
                             values="classifier - C3D",
                             aggfunc="first", sort=False)


def claims_view(claims: pd.DataFrame, *, ci: float = 0.95) -> pd.DataFrame:
    """The claimed-vs-reproduced table as the page shows it (``ci``: the interval level)."""
    column = f"ours [{100 * ci:g} % CI]"
    shown = claims.copy()
    shown[column] = [format_ci(o, lo, hi, digits=3) if pd.notna(lo) else o
                               for o, lo, hi in shown[["ours", "ci_low", "ci_high"]].to_numpy()]
    shown["thesis"] = shown["thesis"].map(
        lambda v: f"+{v:.3f}" if pd.notna(v) else "(direction only)")
    return shown[["claim", "quantity", "thesis", column, "patients", "verdict",
                  "claim verdict", "how"]].set_index(["claim", "quantity"])


def verdict_summary(summary: Mapping[str, Any]) -> str:
    """``**Claim verdicts:** C5: ...; C6: ...`` from the claims metrics JSON."""
    verdicts = "; ".join(f"{k}: {v}" for k, v in summary["verdict"].items())
    return f"**Claim verdicts:** {verdicts}."
