"""Per-modality detectors of Part 2 (pages ``skeleton/02_datasets`` to ``04_evaluate``): the
leakage rule in numbers, training, detection accuracy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from crossmodal.report.common import ci_column

__all__ = ["boxes_sentence", "detector_ap_table", "leakage_table", "learning_curve_figure",
           "learning_curve_table", "lesion_size_table", "training_summary"]


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
    # assigned, not trained on: a lesion-free patient may give no tile (the datasets table)
    return table.rename(columns={role: f"assigned to {role}" for role in ("train", "val")})


def lesion_size_table(sizes: pd.DataFrame, *, min_px: float) -> pd.DataFrame:
    """Per modality: how large the scored metastases are, in mm and at the detector input
    (``lesion_sizes.csv``: each 3-D lesion's largest cross-section), and how many are
    narrower than ``min_px`` detector pixels."""
    table = sizes.groupby("modality").agg(
        lesions=("lesion", "size"),
        smallest_mm=("max_diameter_mm", "min"), median_mm=("max_diameter_mm", "median"),
        largest_mm=("max_diameter_mm", "max"), smallest_px=("max_diameter_px", "min"),
        median_px=("max_diameter_px", "median"),
        below=("max_diameter_px", lambda v: int((v < min_px).sum())))
    table = table.round({"smallest_mm": 1, "median_mm": 1, "largest_mm": 1, "smallest_px": 1,
                         "median_px": 1})
    return table.rename(columns={"smallest_mm": "smallest (mm)", "median_mm": "median (mm)",
                                 "largest_mm": "largest (mm)", "smallest_px": "smallest (px)",
                                 "median_px": "median (px)",
                                 "below": f"narrower than {min_px:g} px"})


def learning_curve_table(curve: pd.DataFrame) -> pd.DataFrame:
    """AP50 and lesion sensitivity of fold d0's patients per share of d0's training
    patients (``learning_curve.csv``), with CI cells."""
    return pd.DataFrame({
        "modality": curve["modality"], "share of training patients": curve["fraction"].map("{:.0%}".format),
        "training patients": curve["train_patients"], "training tiles": curve["train_tiles"],
        "AP50": ci_column(curve, "ap50", "ap50_ci_low", "ap50_ci_high"),
        "lesion sensitivity": ci_column(curve, "lesion_sensitivity", "lesion_sensitivity_ci_low",
                                        "lesion_sensitivity_ci_high"),
    }).set_index(["modality", "share of training patients"])


def learning_curve_figure(curve: pd.DataFrame):
    """AP50 (with its CI) against the number of training patients, one line per modality."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 3.5))
    ax = fig.add_subplot()
    for modality, group in curve.groupby("modality"):
        group = group.sort_values("train_patients")
        err = [group["ap50"] - group["ap50_ci_low"], group["ap50_ci_high"] - group["ap50"]]
        ax.errorbar(group["train_patients"], group["ap50"], yerr=err, marker="o", capsize=3,
                    label=modality)
    ax.set(xlabel="training patients (fold d0)", ylabel="AP50 on fold d0's patients",
           ylim=(0, 1))
    ax.legend(title="detector")
    fig.tight_layout()
    return fig


def training_summary(training: pd.DataFrame) -> str:
    """One Markdown sentence on ``training.csv``: detectors, epochs, seconds, runs at once."""
    curve = training[training["fraction"] < 1] if "fraction" in training else training.iloc[:0]
    training = training.drop(curve.index)
    trained = training[training["selected"] != "not trained: no lesion"]
    untrained = len(training) - len(trained)
    return (f"{len(training)} detectors ({len(trained)} trained, {untrained} without a "
            f"lesion to learn), {training['epochs'].iloc[0]} epochs each, "
            f"{training['runs_at_once'].iloc[0]} at a time: "
            f"{training['train_seconds'].sum() / 60:.1f} min of training summed over detectors, "
            f"{training['stage_seconds'].iloc[0] / 60:.1f} min for the whole stage"
            + (f", including {len(curve)} learning-curve runs "
               f"({curve['train_seconds'].sum() / 60:.1f} min of training)." if len(curve) else "."))


HIT_RULES = {"center": "counts a lesion as found when a detection's centre falls inside one of "
                      "its boxes (looser than AP's rule)",
             "iou": "counts a lesion as found at IoU 0.5 with one of its boxes (AP's rule)"}


def boxes_sentence(params: Mapping[str, Any]) -> str:
    """How ground-truth boxes are made and from which confidence detections are kept."""
    det = params["part2_detect"]
    return (f"Ground-truth boxes: each 3-D metastasis's cross-section on a slice (at least "
            f"{det['min_box_pixels']} native pixels), as it is, at the "
            f"{det['slice_size'][0]} x {det['slice_size'][1]} px detector input (training "
            f"tiles {det['tile_size']} px at the same magnification); detections kept from "
            f"confidence {det['predict']['ap_conf']} for AP, from {params['features']['conf']} "
            f"for the features. AP counts a detection as a hit at IoU 0.5; lesion sensitivity "
            f"{HIT_RULES[det['lesion_hit']]}.")


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
