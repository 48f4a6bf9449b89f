"""Per-modality detectors of Part 2 (pages ``skeleton/02_datasets`` to ``04_evaluate``): the
leakage rule in numbers, training, detection accuracy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from crossmodal.report.common import ci_column

__all__ = ["boxes_sentence", "detector_ap_table", "leakage_table", "training_summary"]


def leakage_table(assignment: pd.DataFrame) -> pd.DataFrame:
    """Patients per detector and role, plus how many were scored by a detector that trained
    or validated on them (the leakage rule says 0)."""
    table = assignment.pivot_table(index=["modality", "detector"], columns="role", values="case_id",
                                   aggfunc="nunique", fill_value=0)
    seen = assignment[assignment["role"] != "scored"]
    scored = assignment[assignment["role"] == "scored"]
    overlap = seen.merge(scored, on=["modality", "detector", "case_id"])
    table["patients scored by a detector that saw them"] = (
        overlap.groupby(["modality", "detector"]).size().reindex(table.index, fill_value=0))
    return table


def training_summary(training: pd.DataFrame) -> str:
    """One Markdown sentence on ``training.csv``: detectors, epochs, seconds, runs at once."""
    trained = training[training["selected"] != "not trained: no lesion"]
    untrained = len(training) - len(trained)
    return (f"{len(training)} detectors ({len(trained)} trained, {untrained} without a "
            f"lesion to learn), {training['epochs'].iloc[0]} epochs each, "
            f"{training['runs_at_once'].iloc[0]} at a time: "
            f"{training['train_seconds'].sum() / 60:.1f} min of training summed over detectors, "
            f"{training['stage_seconds'].iloc[0] / 60:.1f} min for the whole stage.")


def boxes_sentence(params: Mapping[str, Any]) -> str:
    """How ground-truth boxes are made and from which confidence detections are kept."""
    det = params["part2_detect"]
    return (f"Ground-truth boxes: each 3-D metastasis's cross-section on a slice (at least "
            f"{det['min_box_pixels']} native pixels), widened about its centre to at least "
            f"{det['min_box_size']} px at the {det['imgsz']} px detector input; detections "
            f"kept from confidence {det['predict']['ap_conf']} for AP, from "
            f"{params['features']['conf']} for the features.")


def detector_ap_table(ap: pd.DataFrame) -> pd.DataFrame:
    """Pooled per-modality detector metrics (``ap.csv``) with CI cells."""
    return pd.DataFrame({
        "modality": ap["modality"], "patients": ap["patients"], "slices": ap["slices"],
        "lesion boxes": ap["lesion_boxes"],
        "AP50": ci_column(ap, "ap50", "ap50_ci_low", "ap50_ci_high"),
        "AP50-95": ci_column(ap, "ap50_95", "ap50_95_ci_low", "ap50_95_ci_high"),
        "lesion sensitivity": ci_column(ap, "lesion_sensitivity", "lesion_sensitivity_ci_low",
                                        "lesion_sensitivity_ci_high"),
        "FP per slice": ap["fp_per_slice"].round(3),
    }).set_index("modality")
