"""Tables, figure and sentences of the Part 1 page ``03_data_card``.

They read the tables the data card stage wrote (:mod:`crossmodal.stages.pelvis.data_card`)
and format or draw them; every number, interval and share comes from the stage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from crossmodal.report.common import NOT_APPLICABLE
from crossmodal.report.common import ci_column
from crossmodal.report.common import format_ci

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DIFFERENCE = "PET+CT minus PET"


def phenomena_view(phenomena: pd.DataFrame) -> pd.DataFrame:
    """The phenomena table as shown: group, what, total, patients with it (share), median."""
    view = pd.DataFrame({
        "group": phenomena["group"], "what": phenomena["name"],
        "total": phenomena["total"].map(lambda v: "" if pd.isna(v) else f"{v:g}"),
        "patients with it": [f"{int(k)} / {int(n)} ({s:.0%})" if n else NOT_APPLICABLE for k, n, s in
                             phenomena[["patients_with", "patients", "share"]].to_numpy()],
        "median per patient": phenomena["median"].map(lambda v: "" if pd.isna(v) else f"{v:.3g}"),
    })
    return view.set_index(["group", "what"])


def sizes_view(summary: pd.DataFrame) -> pd.DataFrame:
    """Per kind: n, extent in mm and in detector pixels as ``median [min, max]``, median
    volume and the share at or above the target size."""
    target = summary["target_px"].iloc[0] if len(summary) else float("nan")
    return pd.DataFrame({
        "kind": summary["kind"], "lesion": summary["target"].map({1: "yes", 0: "mimic"}), "n": summary["n"],
        "extent mm, median [min, max]": ci_column(summary, "median_mm", "min_mm", "max_mm", digits=1),
        "extent px, median [min, max]": ci_column(summary, "median_px", "min_px", "max_px", digits=1),
        "median volume (ml)": summary["median_volume_ml"].round(2),
        f"share >= {target:g} px": summary["share_at_least_target"].map(lambda v: f"{v:.0%}"),
    }).set_index("kind")


def oracle_view(oracle: pd.DataFrame, *, digits: int = 3) -> pd.DataFrame:
    """AUC and AP with their 95 % patient-bootstrap CIs per target and feature set; the
    difference row is signed."""
    signed = oracle["features"] == DIFFERENCE
    cells = {}
    for metric in ("AUC", "AP"):
        cells[metric] = [format_ci(e, lo, hi, digits=digits, signed=s) for (e, lo, hi), s in
                         zip(oracle[[metric, f"{metric}_ci_low", f"{metric}_ci_high"]].to_numpy(), signed)]
    counts = [f"{_count(l)} lesions, {_count(m)} mimics, {_count(p)} patients" for l, m, p in
              oracle[["lesions", "mimics", "patients"]].to_numpy()] if "lesions" in oracle else ""
    return pd.DataFrame({"target": oracle["target"], "features": oracle["features"], **cells,
                         "candidates": counts}).set_index(["target", "features"])


def _count(value) -> str:
    return NOT_APPLICABLE if pd.isna(value) else str(int(value))


def fusion_gain_sentence(oracle: pd.DataFrame, *, target: str = "lesion") -> str:
    """What the oracle implies for any fusion: the AUC of PET alone, CT alone and PET+CT,
    and the paired gain of PET+CT over PET with its interval (numbers from the stage)."""
    rows = oracle[oracle["target"] == target].set_index("features")
    if rows["AUC"].isna().all():
        mimics = int(rows["mimics"].max()) if "mimics" in rows and len(rows) else 0
        return (f"The oracle could not be computed for target '{target}': it needs lesions and mimics "
                f"from at least two patients, and this cohort has {mimics} mimic{'s' if mimics != 1 else ''}. "
                "Mimics come only from truth sidecars, where a generator inserted them: the pelvic phantom "
                "does; a hybrid of real anatomy does not, so what fusion can gain over PET alone is not "
                "stated before training there.")
    auc = {name: format_ci(*rows.loc[name, ["AUC", "AUC_ci_low", "AUC_ci_high"]], digits=3)
           for name in ("PET", "CT", "PET+CT")}
    gain, low, high = rows.loc[DIFFERENCE, ["AUC", "AUC_ci_low", "AUC_ci_high"]]
    headroom = max(1.0 - rows.loc["PET", "AUC"], 0.0)  # PET alone's distance to a perfect AUC
    return (f"On ground-truth candidates ({target} vs mimic), PET features alone reach AUC {auc['PET']}, "
            f"CT features alone {auc['CT']} and both together {auc['PET+CT']}. Adding CT to PET "
            f"changes the AUC by {format_ci(gain, low, high, digits=3, signed=True)} (paired). So on "
            f"this cohort, with these features and this classifier, the CT information a fusion can "
            f"add over PET alone is worth about **{max(gain, 0.0):.3f} AUC** (upper end of the interval "
            f"{max(high, 0.0):.3f}; PET alone's distance to a perfect AUC is {headroom:.3f}). A better "
            f"model could find more: this is a reference, not a ceiling.")


def truth_sentence(candidates: pd.DataFrame) -> str:
    """How many cases had a truth sidecar; the others contribute lesions only (no mimics)."""
    per_case = candidates.drop_duplicates("case_id")
    without = int((~per_case["has_truth"].astype(bool)).sum())
    text = (f"{len(per_case)} cases with at least one candidate; "
            f"{len(per_case) - without} with a truth sidecar.")
    if without:
        text += (f" {without} cases have no truth sidecar (real data): they contribute their labelled "
                 "lesions only, no mimics, and no phenomena.")
    return text


def crop_sentence(summary: pd.DataFrame) -> str:
    """Which crop turned CT pixels into detector pixels (a fallback is said out loud)."""
    crops = sorted({c for cell in summary["crop"] for c in str(cell).split("; ")})
    return "Detector pixels through: " + "; ".join(crops) + "."


def candidates_figure(candidates: pd.DataFrame, *, x: str = "suv_max", y: str = "hu_mean") -> Figure:
    """Each candidate's PET feature ``x`` against its CT feature ``y``: lesions by kind and
    each mimic kind in its own marker, so one sees which mimics CT tells apart."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for (target, kind), group in candidates.groupby(["target", "kind"], sort=True):
        ax.scatter(group[x], group[y], s=18, alpha=0.75, marker="o" if target == 1 else "x",
                   label=f"{kind} ({'lesion' if target == 1 else 'mimic'}, n={len(group)})")
    _log_axis(ax.xaxis)
    ax.set_xlabel(f"PET: {x}")
    ax.set_ylabel(f"CT: {y}")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def sizes_figure(sizes: pd.DataFrame, *, target_px: float) -> Figure:
    """Detector-pixel extent of every candidate per kind, with the target size marked."""
    import matplotlib.pyplot as plt

    kinds = list(dict.fromkeys(sizes.sort_values(["target", "kind"], ascending=[False, True])["kind"]))
    fig, ax = plt.subplots(figsize=(6.4, 0.5 + 0.45 * max(len(kinds), 1)))
    for i, kind in enumerate(kinds):
        values = sizes.loc[sizes["kind"] == kind, "extent_px"]
        ax.scatter(values, [i] * len(values), s=12, alpha=0.6)
    ax.axvline(target_px, color="k", ls="--", lw=1, label=f"target {target_px:g} px")
    ax.set_yticks(range(len(kinds)), kinds)
    _log_axis(ax.xaxis)
    ax.set_xlabel("largest in-plane extent (detector pixels)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _log_axis(axis) -> None:
    """A log axis labelled in plain numbers (no minor labels)."""
    from matplotlib.ticker import NullFormatter
    from matplotlib.ticker import ScalarFormatter

    axis.axes.set_xscale("log")
    axis.set_major_formatter(ScalarFormatter())
    axis.set_minor_formatter(NullFormatter())
