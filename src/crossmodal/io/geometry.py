"""Image geometry helpers: put one image on another's voxel grid through patient coordinates,
and read or write a rigid CT->PET transform as a truth sidecar stores it.

Used by ingestion and export (:mod:`crossmodal.io.nnunet`), by registration
(:mod:`crossmodal.imaging.register`) and by the phantom, which is why it lives below them
all: io never imports imaging.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import SimpleITK as sitk

__all__ = ["INTERPOLATORS", "rasterise_ellipsoids", "resample_to_reference", "sitk_interpolator"]

#: SimpleITK interpolators by name.
INTERPOLATORS = {
    "nearest": sitk.sitkNearestNeighbor,
    "linear": sitk.sitkLinear,
    "bspline": sitk.sitkBSpline,
    "gaussian": sitk.sitkGaussian,
    "label_gaussian": sitk.sitkLabelGaussian,
}


def sitk_interpolator(name):
    """The SimpleITK interpolator constant of ``name`` (a key of :data:`INTERPOLATORS`)."""
    try:
        return INTERPOLATORS[name]
    except KeyError:
        known = sorted(INTERPOLATORS)
        raise ValueError(f"interpolator must be one of {known}, got {name!r}") from None


def resample_to_reference(moving, reference, *, transform=None, interpolator="linear",
                          default_value=0.0):
    """Resample ``moving`` onto the grid of ``reference`` through patient coordinates.

    Parameters
    ----------
    moving : SimpleITK.Image
        Image to resample (e.g. PET in SUV on its own grid).
    reference : SimpleITK.Image
        Image whose size, origin, spacing and direction define the output grid (CT).
    transform : SimpleITK.Transform, optional
        Maps reference physical points to moving physical points; identity by default,
        i.e. the scanner geometry alone aligns the two.
    interpolator : {"linear", "nearest", "bspline", "gaussian", "label_gaussian"}, optional
        Use "nearest" for label maps.
    default_value : float, optional
        Value where the reference grid falls outside the moving image.

    Returns
    -------
    SimpleITK.Image
        On the reference grid, with the pixel type of ``moving``.
    """
    if transform is None:
        transform = sitk.Transform(reference.GetDimension(), sitk.sitkIdentity)
    return sitk.Resample(moving, reference, transform, sitk_interpolator(interpolator),
                         float(default_value), moving.GetPixelID())


def transform_to_dict(transform: sitk.Euler3DTransform) -> dict[str, Any]:
    """A rigid CT->PET transform as a truth sidecar stores it (JSON-ready)."""
    return {
        "type": "Euler3DTransform",
        "convention": "maps a CT physical point (mm) to the same anatomy's PET physical point",
        "center_mm": list(transform.GetCenter()),
        "angles_rad": [transform.GetAngleX(), transform.GetAngleY(), transform.GetAngleZ()],
        "translation_mm": list(transform.GetTranslation()),
    }


def transform_from_dict(d: dict[str, Any]) -> sitk.Euler3DTransform:
    """The transform of a truth sidecar's ``misregistration`` (``center_mm``, ``angles_rad``,
    ``translation_mm``): it maps a CT physical point to the same anatomy's PET point."""
    transform = sitk.Euler3DTransform()
    transform.SetCenter(d["center_mm"])
    transform.SetRotation(*d["angles_rad"])
    transform.SetTranslation(d["translation_mm"])
    return transform


def rasterise_ellipsoids(ellipsoids: list[dict[str, Any]], reference: sitk.Image) -> np.ndarray:
    """Union of axis-aligned ellipsoids, sampled at the voxel centres of ``reference``.

    Parameters
    ----------
    ellipsoids : list of dict
        Each ``{"centre_mm": [x, y, z], "radii_mm": [rx, ry, rz]}`` in patient coordinates
        (LPS mm), its axes along the patient axes (a truth sidecar's mimics).
    reference : SimpleITK.Image
        The grid (origin, spacing and direction are honoured).

    Returns
    -------
    ndarray of bool, shape (z, y, x)
        True where a voxel centre lies inside (or on) any ellipsoid.
    """
    size = np.asarray(reference.GetSize())  # (x, y, z)
    origin = np.asarray(reference.GetOrigin())
    # columns of ``axes`` are the physical steps of one voxel along index x, y, z
    axes = np.asarray(reference.GetDirection()).reshape(3, 3) * np.asarray(reference.GetSpacing())
    to_index = np.linalg.inv(axes)
    mask = np.zeros(size[::-1], dtype=bool)
    for ellipsoid in ellipsoids:
        centre = np.asarray(ellipsoid["centre_mm"], float)
        radii = np.asarray(ellipsoid["radii_mm"], float)
        # index box of the ellipsoid's bounding box (its corners mapped to index space)
        corners = centre + radii * np.array(np.meshgrid(*[[-1, 1]] * 3, indexing="ij")).reshape(3, -1).T
        index = (corners - origin) @ to_index.T
        low = np.clip(np.floor(index.min(axis=0)).astype(int), 0, size)
        high = np.clip(np.ceil(index.max(axis=0)).astype(int) + 1, 0, size)
        if np.any(high <= low):
            continue
        ix, iy, iz = (np.arange(lo, hi) for lo, hi in zip(low, high))
        grid = np.stack(np.meshgrid(iz, iy, ix, indexing="ij")[::-1], axis=-1)  # (z, y, x, [i, j, k])
        points = origin + grid @ axes.T
        inside = (((points - centre) / radii) ** 2).sum(axis=-1) <= 1.0
        mask[low[2]:high[2], low[1]:high[1], low[0]:high[0]] |= inside
    return mask
