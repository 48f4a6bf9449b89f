"""A coarser sampling grid over the same physical box, and resampling onto it."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from crossmodal.io.geometry import resample_to_reference

__all__ = ["common_grid", "resample_on_grid"]


def common_grid(reference: sitk.Image, size) -> sitk.Image:
    """A grid over the same physical box as ``reference`` with ``size`` (x, y, z) voxels.

    The outer voxel edges stay where they are, so the box is unchanged and only the
    sampling differs; direction is kept.
    """
    old_size = np.asarray(reference.GetSize(), float)
    old_spacing = np.asarray(reference.GetSpacing(), float)
    new_size = np.asarray(size, int)
    if new_size.shape != (3,) or np.any(new_size < 1):
        raise ValueError(f"size must be three positive ints, got {size}")
    new_spacing = old_spacing * old_size / new_size
    direction = np.asarray(reference.GetDirection(), float).reshape(3, 3)
    shift = direction @ ((new_spacing - old_spacing) / 2)
    origin = np.asarray(reference.GetOrigin(), float) + shift
    grid = sitk.Image([int(v) for v in new_size], sitk.sitkFloat32)
    grid.SetSpacing([float(v) for v in new_spacing])
    grid.SetOrigin([float(v) for v in origin])
    grid.SetDirection(reference.GetDirection())
    return grid


def resample_on_grid(image: sitk.Image, grid: sitk.Image, *, fill: float,
                     antialias: bool) -> np.ndarray:
    """``image`` (linear) on ``grid`` through patient coordinates, as a (z, y, x) array;
    Gaussian anti-aliasing (sigma half the new spacing) along axes that get coarser."""
    image = sitk.Cast(image, sitk.sitkFloat32)
    if antialias:
        ratio = np.asarray(grid.GetSpacing()) / np.asarray(image.GetSpacing())
        sigma = [float(0.5 * s) if r > 1 else 0.0 for s, r in zip(grid.GetSpacing(), ratio)]
        if any(sigma):
            image = sitk.SmoothingRecursiveGaussian(image, [max(s, 1e-3) for s in sigma])
    return sitk.GetArrayFromImage(resample_to_reference(image, grid, default_value=fill))
