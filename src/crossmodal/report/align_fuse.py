"""Figures and tables of the Part 1 page ``02_align_fuse``.

They draw ``figures/figure_case.npz`` and read the tables that the align_fuse stage wrote
(:mod:`crossmodal.stages.pelvis.align_fuse`): no registration, resampling or fusion here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import SimpleITK as sitk

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def load_figure_case(align_dir: str | Path) -> dict[str, np.ndarray]:
    """The step-by-step case of the align_fuse stage (``figures/figure_case.npz``)."""
    with np.load(Path(align_dir) / "figures" / "figure_case.npz") as data:
        return {k: data[k] for k in data.files}


def slices_shown(case: dict[str, np.ndarray]) -> dict[str, int]:
    """Row titles of the inputs figure: the largest lesion slice, the hottest lesion-free one."""
    names = {int(case["lesion_z"]): "lesion slice", int(case["hot_z"]): "hot lesion-free slice"}
    return {f"{names[int(z)]} {int(z)}": int(z) for z in case["rows"]}


def step_figure(case: dict[str, np.ndarray]) -> Figure:
    """Raw CT, raw PET, body contours with Canny edges, and the localised crop of one slice."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 4, figsize=(13, 3.4))
    ax[0].imshow(case["ct01"], cmap="gray")
    ax[0].set_title("CT, soft-tissue window")
    ax[1].imshow(case["pet_native"], cmap="magma")
    ax[1].set_title("PET (own grid, SUV)")
    ax[2].imshow(case["edges"], cmap="gray")
    ax[2].contour(case["ct_body"], levels=[0.5], colors="cyan", linewidths=1)
    ax[2].contour(case["pet_body"], levels=[0.5], colors="orange", linewidths=1)
    y0, y1, x0, x1 = (int(v) for v in case["region"])
    ax[2].add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="lime", lw=1.5))
    ax[2].set_title("edges; body CT (cyan), PET (orange); region")
    ax[3].imshow(case["ct01"][y0:y1, x0:x1], cmap="gray")
    ax[3].set_title("localised crop")
    for a in ax:
        a.set_xticks([])
        a.set_yticks([])
    fig.tight_layout()
    return fig


def registration_panel(case: dict[str, np.ndarray]) -> Figure:
    """PET on the CT grid before (geometry only) and after the stage's saved refinement:
    overlay and CT/PET checkerboard at the largest lesion slice."""
    from crossmodal.imaging.register import registration_figure

    def on_ct_grid(array):
        image = sitk.GetImageFromArray(array)
        image.SetSpacing(tuple(float(s) for s in case["spacing"]))
        return image

    return registration_figure(on_ct_grid(case["ct_hu"]), on_ct_grid(case["pet_geometric"]),
                               on_ct_grid(case["pet_refined"]), z=int(case["lesion_z"]))


def inputs_figure(case: dict[str, np.ndarray]) -> Figure:
    """Every input side by side (RGB = its three channels) at the shown slices, lesion
    label boxes in green."""
    import matplotlib.pyplot as plt

    names = [str(n) for n in case["inputs"]]
    rows = slices_shown(case)
    fig, axes = plt.subplots(len(rows), len(names), figsize=(1.9 * len(names), 2.1 * len(rows)), squeeze=False)
    for r, (row, title) in enumerate(zip(axes, rows)):
        for k, (ax, name) in enumerate(zip(row, names)):
            ax.imshow(np.clip(case["input_images"][r, k], 0, 1))
            for x0, y0, x1, y1 in case["boxes"][(case["box_row"] == r) & (case["box_input"] == k)]:
                ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="lime", lw=0.8))
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(name.replace("_", " "), fontsize=7)
        row[0].set_ylabel(title, fontsize=8)
    fig.tight_layout()
    return fig


def region_summary(region: pd.DataFrame) -> pd.DataFrame:
    """One row: lesion voxels in all, those inside the localised region, mean region share."""
    return pd.DataFrame({
        "cases": [len(region)],
        "lesion voxels": [int(region["lesion_voxels"].sum())],
        "inside the region": [int(region["lesion_voxels_inside"].sum())],
        "region share of slice (mean)": [round(float(region["region_fraction_of_slice"].mean()), 3)],
    })


def read_summary(align_dir: str | Path, name: str) -> pd.DataFrame:
    """A summary table the stage wrote (``lesion_summary``, ``alignment_summary``,
    ``fusion_quality_summary``), with its index."""
    return pd.read_csv(Path(align_dir) / f"{name}.csv", index_col=0)
