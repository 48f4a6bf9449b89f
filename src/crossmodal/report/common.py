"""Tables and figures shared by the notebooks and the book.

Notebooks stay thin: they call these functions and display the results.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

import numpy as np
import pandas as pd
import SimpleITK as sitk
from scipy import ndimage

from crossmodal.io.case import Case
from crossmodal.imaging.preprocess import clip_suv
from crossmodal.imaging.preprocess import window_ct
from crossmodal.imaging.register import resample_to_reference

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def lesion_stats(case: Case) -> dict[str, Any]:
    """Per-case lesion statistics on the CT grid (PET resampled through DICOM geometry)."""
    label = sitk.GetArrayViewFromImage(case.label) > 0
    spacing = case.ct.GetSpacing()
    voxel_ml = float(np.prod(spacing)) / 1000.0
    pet_on_ct = sitk.GetArrayFromImage(resample_to_reference(case.pet, case.ct))
    _, n_lesions = ndimage.label(label, structure=np.ones((3, 3, 3)))
    return {
        "case_id": case.case_id,
        "patient": case.patient,
        "ct_slices": case.ct.GetSize()[2],
        "pet_slices": case.pet.GetSize()[2],
        "lesion_slices": int(label.any(axis=(1, 2)).sum()),
        "lesions": int(n_lesions),
        "lesion_volume_ml": float(label.sum()) * voxel_ml,
        "lesion_suvmax": float(pet_on_ct[label].max()) if label.any() else float("nan"),
        "simulated": bool(case.meta.get("simulated", False)),
    }


def cohort_table(cases: list[Case]) -> pd.DataFrame:
    """One row per case: slices, lesion slices, lesion count, volume (ml), SUVmax."""
    return pd.DataFrame([lesion_stats(c) for c in cases])


def describe_distribution(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Median [IQR] and range of each column, plus totals where a sum makes sense."""
    rows = []
    for col in columns:
        values = table[col].dropna()
        rows.append({
            "quantity": col,
            "total": values.sum() if col.endswith(("slices", "lesions")) else np.nan,
            "median": values.median(),
            "q1": values.quantile(0.25),
            "q3": values.quantile(0.75),
            "min": values.min(),
            "max": values.max(),
        })
    return pd.DataFrame(rows).set_index("quantity")


def _lesion_slice(case: Case) -> int:
    label = sitk.GetArrayViewFromImage(case.label)
    counts = (label > 0).sum(axis=(1, 2))
    return int(np.argmax(counts))


def montage(cases: list[Case], *, ct_window: dict[str, float], suv_display_max: float) -> Figure:
    """CT, PET (SUV), fused overlay and label contour at each case's largest lesion slice.

    PET is resampled onto the CT grid through the DICOM geometry only (no registration),
    so any misregistration is visible in the overlay.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(cases), 4, figsize=(12, 3.1 * len(cases)), squeeze=False)
    for row, case in zip(axes, cases):
        z = _lesion_slice(case)
        ct = window_ct(sitk.GetArrayFromImage(case.ct)[z], width=ct_window["width"], level=ct_window["level"])
        pet_on_ct = sitk.GetArrayFromImage(resample_to_reference(case.pet, case.ct))[z]
        pet01 = clip_suv(pet_on_ct, suv_max=suv_display_max)
        label = sitk.GetArrayFromImage(case.label)[z] > 0
        row[0].imshow(ct, cmap="gray", vmin=0, vmax=1)
        im = row[1].imshow(pet_on_ct, cmap="magma", vmin=0, vmax=suv_display_max)
        fig.colorbar(im, ax=row[1], fraction=0.046, label="SUVbw")
        row[2].imshow(ct, cmap="gray", vmin=0, vmax=1)
        row[2].imshow(np.ma.masked_less(pet01, 0.05), cmap="hot", alpha=0.55, vmin=0, vmax=1)
        row[3].imshow(ct, cmap="gray", vmin=0, vmax=1)
        row[3].contour(label, levels=[0.5], colors="lime", linewidths=1.2)
        row[0].set_ylabel(f"{case.case_id}\nslice {z}")
        for ax, title in zip(row, ["CT (window)", "PET SUV on CT grid", "fused overlay", "lesion label"]):
            ax.set_title(title, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle("Simulated cohort (phantom): CT, PET, overlay and label", fontsize=11)
    fig.tight_layout()
    return fig


def flatten_params(params: dict[str, Any], prefix: str = "") -> pd.DataFrame:
    """A parameter section as a two-column table (the phantom card's parameter list)."""
    rows = []
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and not all(isinstance(v, (int, float)) for v in value.values()):
            rows.extend(flatten_params(value, f"{name}.").to_dict("records"))
        else:
            rows.append({"parameter": name, "value": value if not isinstance(value, dict) else
                         ", ".join(f"{k}={v}" for k, v in value.items())})
    return pd.DataFrame(rows, columns=["parameter", "value"])


def bootstrap_mean_ci(values, *, n_boot: int = 1000, seed: int = 0, ci: float = 0.95) -> tuple[float, float, float]:
    """Mean and percentile-bootstrap CI of the mean (resampling the given units, e.g. patients)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(n_boot, len(values)))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - ci) / 2, 1 - (1 - ci) / 2])
    return float(values.mean()), float(lo), float(hi)


def summary_with_ci(table: pd.DataFrame, columns: list[str], *, by: str | None = None,
                    n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """``mean ± sd [95 % CI]`` per column (and per group), one row per unit in ``table``."""
    groups = table.groupby(by, sort=False) if by else [("all", table)]
    rows = []
    for key, group in groups:
        row = {by or "group": key, "n": len(group)}
        for col in columns:
            mean, lo, hi = bootstrap_mean_ci(group[col], n_boot=n_boot, seed=seed)
            row[col] = f"{mean:.3g} ± {group[col].std(ddof=1):.2g} [{lo:.3g}, {hi:.3g}]"
        rows.append(row)
    return pd.DataFrame(rows).set_index(by or "group")


def format_ci(estimate, lo, hi, *, digits: int = 2, signed: bool = False) -> str:
    """``estimate [lo, hi]`` for a table cell; ``n/a`` without an estimate, no bracket without a CI."""
    if pd.isna(estimate):
        return "n/a"
    spec = f"{'+' if signed else ''}.{digits}f"
    if pd.isna(lo) or pd.isna(hi):
        return f"{estimate:{spec}}"
    return f"{estimate:{spec}} [{lo:{spec}}, {hi:{spec}}]"


def ci_column(frame: pd.DataFrame, estimate: str, lo: str, hi: str, **options) -> list[str]:
    """One :func:`format_ci` cell per row of ``frame``."""
    return [format_ci(e, a, b, **options) for e, a, b in frame[[estimate, lo, hi]].to_numpy()]
