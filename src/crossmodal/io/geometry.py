"""Image geometry helpers: put one image on another's voxel grid through patient coordinates.

Used by ingestion and export (:mod:`crossmodal.io.nnunet`) and by registration
(:mod:`crossmodal.imaging.register`), which is why it lives below both: io never imports
imaging.
"""

from __future__ import annotations

import SimpleITK as sitk

__all__ = ["INTERPOLATORS", "resample_to_reference", "sitk_interpolator"]

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
