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

from crossmodal.imaging.preprocess import clip_suv
from crossmodal.imaging.preprocess import window_ct
from crossmodal.io.case import same_grid
from crossmodal.io.geometry import resample_to_reference
from crossmodal.report.common import COLUMN_INCHES

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

    fig, axes = plt.subplots(2, 2, figsize=(COLUMN_INCHES, COLUMN_INCHES * 0.9), layout="constrained")
    ax = axes.ravel()
    ax[0].imshow(case["ct01"], cmap="gray")
    ax[0].set_title("CT, soft-tissue window")
    ax[1].imshow(case["pet_native"], cmap="magma")
    ax[1].set_title("PET (own grid, SUV)")
    ax[2].imshow(case["edges"], cmap="gray")
    ax[2].contour(case["ct_body"], levels=[0.5], colors="cyan", linewidths=1)
    ax[2].contour(case["pet_body"], levels=[0.5], colors="orange", linewidths=1)
    y0, y1, x0, x1 = (int(v) for v in case["region"])
    ax[2].add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="lime", lw=1.5))
    ax[2].set_title("edges; body CT (cyan), PET (orange);\nregion (green)")
    ax[3].imshow(case["ct01"][y0:y1, x0:x1], cmap="gray")
    ax[3].set_title("localised crop")
    for a in ax:
        a.set_xticks([])
        a.set_yticks([])
    return fig


def registration_panel(case: dict[str, np.ndarray]) -> Figure:
    """PET on the CT grid before (geometry only) and after the stage's saved refinement:
    overlay and CT/PET checkerboard at the largest lesion slice."""
    def on_ct_grid(array):
        image = sitk.GetImageFromArray(array)
        image.SetSpacing(tuple(float(s) for s in case["spacing"]))
        return image

    return registration_figure(on_ct_grid(case["ct_hu"]), on_ct_grid(case["pet_geometric"]),
                               on_ct_grid(case["pet_refined"]), z=int(case["lesion_z"]))


INPUTS_PER_ROW = int(COLUMN_INCHES // 1.85)  # inputs a row of the inputs figure, each 1.85 in wide


def inputs_figure(case: dict[str, np.ndarray]) -> Figure:
    """Every input (RGB = its three channels) at the shown slices, lesion label boxes in
    green: a grid of ``INPUTS_PER_ROW`` inputs a row, each input's shown slices one
    under the other (the slice named on the left), the input named above them."""
    import matplotlib.pyplot as plt

    names = [str(n) for n in case["inputs"]]
    rows = slices_shown(case)
    per_row = min(INPUTS_PER_ROW, len(names))
    groups = -(-len(names) // per_row)
    fig = plt.figure(figsize=(1.85 * per_row, (1.75 * len(rows) + 0.3) * groups), layout="constrained")
    for group, sub in enumerate(np.atleast_1d(fig.subfigures(groups, 1, hspace=0.03))):
        shown = names[group * per_row:(group + 1) * per_row]
        axes = sub.subplots(len(rows), per_row, squeeze=False, gridspec_kw={"hspace": 0.02, "wspace": 0.02})
        for col, ax in enumerate(axes[0]):
            if col < len(shown):
                ax.set_title(shown[col].replace("_", " "), fontsize=9)
        for r, title in enumerate(rows):
            axes[r, 0].set_ylabel(title.replace(" slice ", "\nslice "), fontsize=8)
            for col, ax in enumerate(axes[r]):
                if col >= len(shown):
                    ax.remove()  # the last row of inputs may be short
                    continue
                k = group * per_row + col
                ax.imshow(np.clip(case["input_images"][r, k], 0, 1))
                for x0, y0, x1, y1 in case["boxes"][(case["box_row"] == r) & (case["box_input"] == k)]:
                    ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="lime", lw=1.0))
                ax.set_xticks([])
                ax.set_yticks([])
    return fig


def region_summary(region: pd.DataFrame) -> pd.DataFrame:
    """One row: lesion voxels in all, those inside the localised region, mean region share."""
    return pd.DataFrame({
        "cases": [len(region)],
        "lesion voxels": [int(region["lesion_voxels"].sum())],
        "inside the region": [int(region["lesion_voxels_inside"].sum())],
        "region share of slice (mean)": [round(float(region["region_fraction_of_slice"].mean()), 3)],
    })


def _checkerboard(a, b, tiles):
    h, w = a.shape
    yy, xx = np.meshgrid(np.arange(h) * tiles // max(h, 1), np.arange(w) * tiles // max(w, 1),
                         indexing="ij")
    return np.where((yy + xx) % 2 == 0, a, b)


def registration_figure(ct, pet_before, pet_after, *, z=None, ct_window=(-160.0, 240.0),
                        suv_max=5.0, tiles=8, alpha=0.5):
    """Quality figure: PET over CT and a CT/PET checkerboard, before and after.

    Parameters
    ----------
    ct : SimpleITK.Image
        CT in HU.
    pet_before, pet_after : SimpleITK.Image
        PET in SUV without and with the refinement; images not already on the CT grid
        are resampled onto it through patient coordinates.
    z : int, optional
        Axial slice index on the CT grid; default is the slice with the highest PET
        uptake after registration (lesion or bladder level).
    ct_window : (float, float), optional
        CT display window ``[low, high]`` in HU.
    suv_max : float, optional
        Top of the PET colour scale.
    tiles : int, optional
        Checkerboard tiles per side.
    alpha : float, optional
        PET opacity in the overlay.

    Returns
    -------
    matplotlib.figure.Figure
        Rows "before" and "after"; columns axial overlay, axial checkerboard and coronal
        overlay (through the same slice's uptake maximum).
    """
    from matplotlib.figure import Figure

    def on_ct_grid(img):
        return img if same_grid(img, ct) else resample_to_reference(img, ct)

    ct01 = window_ct(sitk.GetArrayFromImage(ct), window=ct_window)
    pets = [clip_suv(sitk.GetArrayFromImage(on_ct_grid(p)), suv_max=suv_max)
            for p in (pet_before, pet_after)]
    if z is None:
        z = int(np.argmax(pets[1].reshape(len(pets[1]), -1).sum(axis=1)))
    y = int(np.unravel_index(np.argmax(pets[1][z]), pets[1][z].shape)[0])
    sx, sy, sz = ct.GetSpacing()

    fig = Figure(figsize=(COLUMN_INCHES, 5.4), layout="constrained")
    axes = fig.subplots(2, 3)
    for row, (label, pet01) in enumerate(zip(("before", "after"), pets)):
        ax = axes[row, 0]
        ax.imshow(ct01[z], cmap="gray", vmin=0, vmax=1, aspect=sy / sx)
        ax.imshow(np.ma.masked_less_equal(pet01[z], 0.02), cmap="hot", vmin=0, vmax=1,
                  alpha=alpha, aspect=sy / sx)
        ax.set_title(f"{label}: axial z={z}, PET over CT", fontsize=8.5)
        ax = axes[row, 1]
        ax.imshow(_checkerboard(ct01[z], pet01[z], tiles), cmap="gray", vmin=0, vmax=1,
                  aspect=sy / sx)
        ax.set_title(f"{label}: checkerboard CT / PET", fontsize=8.5)
        ax = axes[row, 2]
        ax.imshow(ct01[:, y, :], cmap="gray", vmin=0, vmax=1, aspect=sz / sx, origin="lower")
        ax.imshow(np.ma.masked_less_equal(pet01[:, y, :], 0.02), cmap="hot", vmin=0, vmax=1,
                  alpha=alpha, aspect=sz / sx, origin="lower")
        ax.set_title(f"{label}: coronal y={y}", fontsize=8.5)
        for ax in axes[row]:
            ax.set_axis_off()
    return fig
