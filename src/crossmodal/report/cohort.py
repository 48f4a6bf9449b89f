"""Cohort tables and figures: the ingest pages of both parts (ingestion sentence, problems
table, phantom card) and the Part 1 cohort montage (page ``pelvis/02_align_fuse``).

Everything here reads what the ingest and align_fuse stages wrote: the ingestion report
and the montage slices; nothing is resampled or computed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import numpy as np
import pandas as pd

from crossmodal.imaging.preprocess import clip_suv
from crossmodal.imaging.preprocess import window_ct
from crossmodal.report.common import COLUMN_INCHES

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PROBLEM_COLUMNS = ["case", "where", "rule", "detail", "action"]


def ingest_sentence(report: dict[str, Any], profile: str) -> str:
    """One sentence on the ingestion: files scanned, series, cases ingested, problems."""
    return (f"Profile **{profile}**: {report['n_files_scanned']} files scanned, "
            f"{report['n_series']} series found, **{report['n_cases']} cases** ingested, "
            f"{report['n_problems']} problems reported.")


def problems_table(report: dict[str, Any]) -> pd.DataFrame:
    """Every skipped file, series or case with the rule it broke."""
    return pd.DataFrame(report["problems"], columns=PROBLEM_COLUMNS)


def phantom_card(params: dict[str, Any], prefix: str = "") -> pd.DataFrame:
    """A parameter section as a two-column table (the phantom card's parameter list)."""
    rows = []
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and not all(isinstance(v, (int, float)) for v in value.values()):
            rows.extend(phantom_card(value, f"{name}.").to_dict("records"))
        else:
            rows.append({"parameter": name, "value": value if not isinstance(value, dict) else
                         ", ".join(f"{k}={v}" for k, v in value.items())})
    return pd.DataFrame(rows, columns=["parameter", "value"])


def montage(align_dir: str | Path, *, ct_window: list[float], suv_display_max: float,
            title: str = "Simulated cohort (phantom): CT, PET, overlay and label") -> Figure:
    """CT, PET (SUV), fused overlay and label contour at each montage case's largest lesion
    slice (``figures/montage/`` of the align_fuse stage).

    PET is on the CT grid through the DICOM geometry only (no registration), so any
    misregistration is visible in the overlay.
    """
    import matplotlib.pyplot as plt

    shown = [dict(np.load(p)) for p in sorted(Path(align_dir, "figures", "montage").glob("*.npz"))]
    fig, axes = plt.subplots(len(shown), 4, figsize=(COLUMN_INCHES, 2.0 * len(shown) + 0.4), squeeze=False,
                             layout="constrained")
    for row, case in zip(axes, shown):
        ct = window_ct(case["ct_hu"], window=ct_window)
        pet01 = clip_suv(case["pet_suv"], suv_max=suv_display_max)
        row[0].imshow(ct, cmap="gray", vmin=0, vmax=1)
        im = row[1].imshow(case["pet_suv"], cmap="magma", vmin=0, vmax=suv_display_max)
        fig.colorbar(im, ax=row[1], fraction=0.046).ax.tick_params(labelsize=7)
        row[2].imshow(ct, cmap="gray", vmin=0, vmax=1)
        row[2].imshow(np.ma.masked_less(pet01, 0.05), cmap="hot", alpha=0.55, vmin=0, vmax=1)
        row[3].imshow(ct, cmap="gray", vmin=0, vmax=1)
        row[3].contour(case["label"] > 0, levels=[0.5], colors="lime", linewidths=1.2)
        row[0].set_ylabel(f"{case['case_id']}\nslice {int(case['z'])}", fontsize=8)
        for ax, panel in zip(row, ["CT (window)", "PET SUVbw, CT grid", "fused overlay", "lesion label"]):
            ax.set_title(panel, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    return fig
