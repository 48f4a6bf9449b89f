"""Part 2 data card page: the views of the ``data_card_skeleton`` stage's tables."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crossmodal.report.common import COLUMN_INCHES
from crossmodal.report.common import ci_column

MODALITY_NAMES = {"CT": "CT", "MR": "MRI", "PT": "PET"}


def phenomena_view(phenomena: pd.DataFrame) -> pd.DataFrame:
    """Counts with the share of their group in per cent, indexed by group and name."""
    view = phenomena.assign(share=(100 * phenomena["share"]).round(1))
    return view.rename(columns={"share": "share (%)"}).set_index(["group", "name"])


def visibility_view(visibility: pd.DataFrame) -> pd.DataFrame:
    """Kinds of region as rows, one column per modality: ``seen / regions`` (designed
    visible in brackets), so that each mimic's and each occult kind's row reads across."""
    cells = visibility.assign(cell=[f"{s} / {n} (design {d})" for s, n, d in
                                    zip(visibility["seen"], visibility["regions"], visibility["designed_visible"])])
    view = cells.pivot(index="region", columns="modality", values="cell").fillna("")
    return view.rename(columns=MODALITY_NAMES)


def oracle_view(oracle: pd.DataFrame) -> pd.DataFrame:
    """AUC and AP with their CIs per subset of patients and feature set."""
    signed = oracle["features"].str.contains("minus")
    view = oracle[["subset", "features", "patients", "positives", "negatives"]].copy()
    for metric in ("AUC", "AP"):
        plain = ci_column(oracle, metric, f"{metric}_ci_low", f"{metric}_ci_high")
        diff = ci_column(oracle, metric, f"{metric}_ci_low", f"{metric}_ci_high", signed=True)
        view[f"{metric} (95 % CI)"] = np.where(signed, diff, plain)
    return view.set_index(["subset", "features"])


def fusion_sentence(oracle: pd.DataFrame) -> str:
    """What combining the modalities gains over the best single one, on the patients who
    have every modality (or why there is no answer)."""
    rows = oracle[(oracle["subset"] == "all modalities") & oracle["features"].str.contains("minus")]
    if rows.empty or not np.isfinite(rows["AUC"].iloc[0]):
        return ("Too few patients of a class have every modality for the oracle "
                "(`data_card_skeleton.min_per_class`): no statement on what fusion can gain.")
    row = rows.iloc[0]
    best = row["features"].split(" minus ")[1]
    covers = row["AUC_ci_low"] <= 0 <= row["AUC_ci_high"]
    verdict = ("the interval includes 0: on this cohort the true regions give fusion no "
               "demonstrable gain over the best single modality" if covers else
               "the interval excludes 0")
    return (f"On the {int(row['patients'])} patients with every modality, combining them changes the "
            f"oracle's AUC by {row['AUC']:+.3f} (95 % CI {row['AUC_ci_low']:+.3f} to {row['AUC_ci_high']:+.3f}) "
            f"over {MODALITY_NAMES.get(best, best)} alone, the best single modality here; {verdict}.")


def sizes_view(summary: pd.DataFrame) -> pd.DataFrame:
    return summary.assign(modality=summary["modality"].map(MODALITY_NAMES)).set_index("modality").round(1)


def conspicuity_figure(regions: pd.DataFrame):
    """Conspicuity of every true region per modality, metastases by evidence kind and
    mimics by type, with each modality's threshold (a dashed line)."""
    import matplotlib.pyplot as plt

    modalities = [m for m in MODALITY_NAMES if m in set(regions["modality"])]
    fig, axes = plt.subplots(1, max(len(modalities), 1), figsize=(COLUMN_INCHES, 4.2), squeeze=False,
                             layout="constrained")
    kinds = np.where(regions["kind"] == "metastasis", "met: " + regions["evidence"].astype(str),
                     "mimic: " + regions["type"].astype(str))
    order = sorted(set(kinds))
    for ax, m in zip(axes[0], modalities):
        on = regions["modality"].to_numpy() == m
        for y, kind in enumerate(order):
            x = regions["conspicuity"].to_numpy()[on & (kinds == kind)]
            ax.scatter(x, np.full(len(x), y) + np.linspace(-0.15, 0.15, len(x)), s=14,
                       color="tab:red" if kind.startswith("met") else "tab:blue")
        ax.axvline(regions.loc[on, "threshold"].iloc[0] if on.any() else 0, ls="--", color="grey")
        ax.set_yticks(range(len(order)), order if ax is axes[0][0] else [""] * len(order))
        ax.set_title(MODALITY_NAMES[m])
        ax.set_xlabel({"CT": "RMS of HU - marrow", "MR": "T1 darkening", "PT": "SUVmax / marrow - 1"}[m],
                      fontsize=8.5)
        ax.tick_params(labelsize=7.5)
    return fig
