"""Cross-modal PET-to-CT alignment (method spec Part 1 step 2).

(a) :func:`crossmodal.io.geometry.resample_to_reference` puts PET on the CT grid through
patient coordinates (scanner geometry only). (b) :func:`register_rigid` refines that with a
rigid or affine registration driven by Mattes mutual information, run by elastix
(``engine="elastix"``) or by SimpleITK's ImageRegistrationMethod. :func:`transform_error_mm`
measures the residual against a known misregistration; the book's before/after figure is
``crossmodal.report.align_fuse.registration_figure``.

Transform convention (SimpleITK's): fixed = CT, moving = PET, and a transform maps a
**CT physical point to the PET physical point** that shows the same anatomy, so
``Resample(pet, ct, transform)`` gives the PET on the CT grid. A phantom's stored
misregistration must be expressed the same way before it is compared with an estimate.

Nothing here modifies its input images.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from dataclasses import field

import numpy as np
import SimpleITK as sitk

from crossmodal.io.geometry import resample_to_reference
from crossmodal.io.geometry import sitk_interpolator

__all__ = [
    "RegistrationResult",
    "mask_points_mm",
    "register_rigid",
    "transform_error_mm",
]

# --------------------------------------------------------------------------- registration


@dataclass
class RegistrationResult:
    """Outcome of :func:`register_rigid`.

    Attributes
    ----------
    transform : SimpleITK.Transform
        Maps CT physical points to PET physical points (an ``Euler3DTransform`` or
        ``AffineTransform``; write it with ``SimpleITK.WriteTransform``).
    metric_value : float
        Final metric value at the finest level (Mattes MI is negated: lower is better).
    iterations : int
        Optimizer iterations at the last level.
    stop_condition : str
        The optimizer's stop description.
    kind : str
        ``"rigid"`` or ``"affine"``.
    reference_size, reference_origin, reference_spacing, reference_direction : tuple
        The CT grid, kept so that :meth:`apply` needs no CT image.
    metric_history : list of float
        Metric value per iteration, all levels concatenated.
    """

    transform: sitk.Transform
    metric_value: float
    iterations: int
    stop_condition: str
    kind: str
    reference_size: tuple
    reference_origin: tuple
    reference_spacing: tuple
    reference_direction: tuple
    metric_history: list = field(default_factory=list, repr=False)

    def apply(self, pet, *, interpolator="linear", default_value=0.0):
        """Resample ``pet`` (on its own grid) onto the CT grid with the found transform."""
        return sitk.Resample(pet, self.reference_size, self.transform, sitk_interpolator(interpolator),
                             self.reference_origin, self.reference_spacing,
                             self.reference_direction, float(default_value), pet.GetPixelID())

    def parameters(self):
        """JSON-ready summary: kind, metric, iterations, transform parameters and centre."""
        tx = _innermost(self.transform)
        return {
            "kind": self.kind,
            "metric_value": float(self.metric_value),
            "iterations": int(self.iterations),
            "stop_condition": self.stop_condition,
            "transform_name": tx.GetName(),
            "transform_parameters": [float(v) for v in tx.GetParameters()],
            "transform_fixed_parameters": [float(v) for v in tx.GetFixedParameters()],
        }


def _innermost(transform):
    # sitk.ImageRegistrationMethod returns a CompositeTransform wrapping the optimised one
    if transform.GetName() == "CompositeTransform":
        comp = sitk.CompositeTransform(transform)
        if comp.GetNumberOfTransforms() == 1:
            return comp.GetNthTransform(0).Downcast()
    return transform.Downcast()


def _prepare(ct, pet, ct_range, pet_range):
    """Registration inputs: CT and PET clipped to ranges that both modalities share."""
    ct_f = sitk.Cast(ct, sitk.sitkFloat32)
    pet_f = sitk.Cast(pet, sitk.sitkFloat32)
    if ct_range is not None:
        ct_f = sitk.Clamp(ct_f, sitk.sitkFloat32, float(ct_range[0]), float(ct_range[1]))
    if pet_range is not None:
        pet_f = sitk.Clamp(pet_f, sitk.sitkFloat32, float(pet_range[0]), float(pet_range[1]))
    return ct_f, pet_f


def _metric_mask(ct, pet, margin_mm, user_mask):
    """Fixed-image mask: the user's mask within the axial slab ``margin_mm`` inside both
    fields of view; None when it would not restrict anything."""
    mask = None if user_mask is None else sitk.GetArrayFromImage(user_mask) != 0
    if margin_mm:
        nx, ny, nz = ct.GetSize()
        centres = [ct.TransformContinuousIndexToPhysicalPoint(((nx - 1) / 2, (ny - 1) / 2, k))
                   for k in range(nz)]
        k_pet = np.array([pet.TransformPhysicalPointToContinuousIndex(c)[2] for c in centres])
        k_ct = np.arange(nz, dtype=float)
        m_ct = margin_mm / ct.GetSpacing()[2]
        m_pet = margin_mm / pet.GetSpacing()[2]
        keep = ((k_ct >= m_ct) & (k_ct <= nz - 1 - m_ct)
                & (k_pet >= m_pet) & (k_pet <= pet.GetSize()[2] - 1 - m_pet))
        if keep.sum() >= 4 and not keep.all():  # too thin a slab: register on all
            slab = np.zeros((nz, ny, nx), dtype=bool)
            slab[keep] = True
            mask = slab if mask is None else mask & slab
    if mask is None:
        return None
    out = sitk.GetImageFromArray(mask.astype(np.uint8))
    out.CopyInformation(ct)
    return out


def _image_centre(image):
    size = np.array(image.GetSize(), dtype=float)
    return image.TransformContinuousIndexToPhysicalPoint(((size - 1) / 2).tolist())


def _initial_transform(ct, pet, kind, initialization):
    base = sitk.Euler3DTransform() if kind == "rigid" else sitk.AffineTransform(3)
    if initialization == "center":
        # Rotate about the CT centre, start from the scanner alignment (no translation):
        # PET and CT share the scanner's patient coordinates, and matching the image
        # centres instead would add an error whenever the two fields of view differ.
        base.SetCenter(_image_centre(ct))
        return base
    if initialization in ("geometry", "moments"):
        mode = (sitk.CenteredTransformInitializerFilter.GEOMETRY if initialization == "geometry"
                else sitk.CenteredTransformInitializerFilter.MOMENTS)
        return sitk.CenteredTransformInitializer(ct, pet, base, mode)
    raise ValueError(
        f"initialization must be 'center', 'geometry' or 'moments', got {initialization!r}"
    )


def register_rigid(fixed_ct, moving_pet, *, kind="rigid", metric="mattes", bins=32,
                   sampling=0.2, iterations=200, shrink_factors=(4, 2, 1),
                   smoothing_sigmas=(2.0, 1.0, 0.0), learning_rate=1.0, min_step=1e-3,
                   initialization="center", ct_range=(-200.0, 300.0), pet_range=(0.0, 5.0),
                   fov_margin_mm=8.0, fixed_mask=None, initial_transform=None, seed=0,
                   threads=1, engine="sitk"):
    """Rigid or affine PET-to-CT registration by mutual information.

    Parameters
    ----------
    fixed_ct : SimpleITK.Image
        CT in HU (the fixed image).
    moving_pet : SimpleITK.Image
        PET in SUV on its own grid (the moving image).
    kind : {"rigid", "affine"}, optional
        Euler 3-D (6 parameters) or full affine (12); affine only where scanner-level
        scale or shear differences are expected (on a rigid phantom it trades scale
        against the PSF-blurred outline: about 2 mm mean error against 0.3 mm).
    metric : {"mattes", "correlation", "meansquares"}, optional
        Mattes MI is the cross-modal default; the others are for same-modality checks.
    bins : int, optional
        Histogram bins of Mattes MI.
    sampling : float, optional
        Fraction of fixed voxels sampled (randomly, seeded) per metric evaluation.
    iterations : int, optional
        Maximum optimizer iterations per resolution level.
    shrink_factors, smoothing_sigmas : sequence, optional
        Multi-resolution pyramid, coarse to fine; sigmas in mm.
    learning_rate, min_step : float, optional
        Initial and minimum step of the regular-step gradient descent, in mm of
        physical shift (parameter scales are estimated from physical shift).
    initialization : {"center", "geometry", "moments"}, optional
        ``"center"``: rotate about the CT centre from the scanner alignment; ``"geometry"``
        / ``"moments"``: SimpleITK's initialiser (aligns image centres / centroids).
    ct_range, pet_range : (float, float) or None, optional
        Intensity ranges the images are clipped to, so that the MI histogram spends its
        bins on tissue contrast (CT soft tissue; PET below the bladder). ``None``: as is.
    fov_margin_mm : float or None, optional
        CT slices this close to either axial end of the CT or PET field of view are left
        out of the metric (PET end slices lose PSF and sensitivity, and coinciding edges
        pull towards the scanner alignment). ``None`` or 0 samples every slice.
    fixed_mask : SimpleITK.Image, optional
        Restricts metric sampling to nonzero CT voxels (e.g. a dilated body mask); it is
        combined with the ``fov_margin_mm`` slab.
    initial_transform : SimpleITK.Transform, optional
        Starting transform (overrides ``initialization``); it is copied, not changed.
    seed : int, optional
        Seed of the random metric sampling; equal seeds give equal results.
    threads : int or None, optional
        Threads of the registration and its filters. With a number, equal seeds give
        bit-identical transforms; ``None`` (SimpleITK's default) is faster on many cores
        but reproducible only to about 1e-12 (sums accumulate in a varying order).
    engine : {"sitk", "elastix"}, optional
        ``"sitk"``: SimpleITK's ImageRegistrationMethod with the options above.
        ``"elastix"``: elastix's default rigid or affine map (``itk-elastix``: Mattes MI,
        adaptive stochastic gradient descent, 2048 random samples per iteration) on the
        same clipped images and mask; the SimpleITK optimizer and pyramid options are
        unused. On the Part 1 phantom: the SimpleITK schedule's accuracy at about a sixth
        of its time (``benchmarks/bench_align_vs_elastix.py``).

    Returns
    -------
    RegistrationResult (reproducibility details: ``_sitk_threads``, ``_run``)
    """
    _check_options(kind, shrink_factors, smoothing_sigmas, sampling)
    if engine == "elastix":
        return _register_elastix(fixed_ct, moving_pet, kind=kind, bins=bins, ct_range=ct_range,
                                 pet_range=pet_range, fov_margin_mm=fov_margin_mm,
                                 fixed_mask=fixed_mask, initial_transform=initial_transform,
                                 seed=seed, threads=threads)
    if engine != "sitk":
        raise ValueError(f"engine must be 'sitk' or 'elastix', got {engine!r}")
    with _sitk_threads(threads):
        return _register(fixed_ct, moving_pet, kind=kind, metric=metric, bins=bins, sampling=sampling,
                         iterations=iterations, shrink_factors=shrink_factors, smoothing_sigmas=smoothing_sigmas,
                         learning_rate=learning_rate, min_step=min_step, initialization=initialization,
                         ct_range=ct_range, pet_range=pet_range, fov_margin_mm=fov_margin_mm,
                         fixed_mask=fixed_mask, initial_transform=initial_transform, seed=seed, threads=threads)


def _check_options(kind, shrink_factors, smoothing_sigmas, sampling):
    if kind not in ("rigid", "affine"):
        raise ValueError(f"kind must be 'rigid' or 'affine', got {kind!r}")
    if len(shrink_factors) != len(smoothing_sigmas):
        raise ValueError("shrink_factors and smoothing_sigmas must have the same length")
    if not 0 < sampling <= 1:
        raise ValueError(f"sampling must be in (0, 1], got {sampling}")


@contextlib.contextmanager
def _sitk_threads(threads):
    """SimpleITK's process-wide default thread count set to ``threads`` for a block.

    The smoothing and shrinking filters that ImageRegistrationMethod runs internally
    take that default, so with ``threads`` set it is changed for the duration of the
    call and restored afterwards; do not run registrations with different ``threads``
    concurrently from Python threads. ``None`` leaves it alone.
    """
    previous_threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    if threads is not None:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(int(threads))
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(previous_threads)


def _register(fixed_ct, moving_pet, *, kind, metric, bins, sampling, iterations,
              shrink_factors, smoothing_sigmas, learning_rate, min_step, initialization,
              ct_range, pet_range, fov_margin_mm, fixed_mask, initial_transform, seed,
              threads):
    fixed, moving = _prepare(fixed_ct, moving_pet, ct_range, pet_range)
    fixed_mask = _metric_mask(fixed_ct, moving_pet, fov_margin_mm, fixed_mask)
    if initial_transform is not None:
        init = sitk.Transform(initial_transform).Downcast()  # a copy; the caller's is untouched
    else:
        init = _initial_transform(fixed, moving, kind, initialization)
    final, reg, history = _run(fixed, moving, init, metric=metric, bins=bins,
                               sampling=sampling, iterations=iterations,
                               shrink_factors=shrink_factors,
                               smoothing_sigmas=smoothing_sigmas, learning_rate=learning_rate,
                               min_step=min_step, fixed_mask=fixed_mask, seed=seed,
                               threads=threads)
    return RegistrationResult(
        transform=_innermost(final),
        metric_value=float(reg.GetMetricValue()),
        iterations=int(reg.GetOptimizerIteration()),
        stop_condition=reg.GetOptimizerStopConditionDescription(),
        kind=kind,
        reference_size=tuple(fixed_ct.GetSize()),
        reference_origin=tuple(fixed_ct.GetOrigin()),
        reference_spacing=tuple(fixed_ct.GetSpacing()),
        reference_direction=tuple(fixed_ct.GetDirection()),
        metric_history=history,
    )


def _run(fixed, moving, init, *, metric, bins, sampling, iterations, shrink_factors,
         smoothing_sigmas, learning_rate, min_step, fixed_mask, seed, threads):
    """One multi-resolution registration -> (transform, method, metric per iteration).

    SimpleITK reads a sampling seed of 0 as "seed from the wall clock", so ``seed`` is
    mapped to ``seed + 1`` before it reaches ITK.
    """
    reg = sitk.ImageRegistrationMethod()
    if metric == "mattes":
        reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=int(bins))
    elif metric == "correlation":
        reg.SetMetricAsCorrelation()
    elif metric == "meansquares":
        reg.SetMetricAsMeanSquares()
    else:
        raise ValueError(f"metric must be 'mattes', 'correlation' or 'meansquares', got {metric!r}")
    if sampling < 1:
        reg.SetMetricSamplingStrategy(reg.RANDOM)
        reg.SetMetricSamplingPercentage(float(sampling), int(seed) + 1)
    else:
        reg.SetMetricSamplingStrategy(reg.NONE)
    if fixed_mask is not None:
        reg.SetMetricFixedMask(sitk.Cast(fixed_mask != 0, sitk.sitkUInt8))
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(
        learningRate=float(learning_rate),
        minStep=float(min_step),
        numberOfIterations=int(iterations),
        relaxationFactor=0.5,
        gradientMagnitudeTolerance=1e-8,
    )
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel([int(s) for s in shrink_factors])
    reg.SetSmoothingSigmasPerLevel([float(s) for s in smoothing_sigmas])
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    reg.SetInitialTransform(init, inPlace=False)
    if threads is not None:
        reg.SetNumberOfThreads(int(threads))

    history = []
    reg.AddCommand(sitk.sitkIterationEvent, lambda: history.append(reg.GetMetricValue()))
    final = reg.Execute(fixed, moving)
    return final, reg, history


# --------------------------------------------------------------------------- elastix engine


def _to_itk(image, pixel=np.float32):
    import itk

    out = itk.image_from_array(sitk.GetArrayFromImage(image).astype(pixel))
    out.SetOrigin(image.GetOrigin())
    out.SetSpacing(image.GetSpacing())
    out.SetDirection(itk.matrix_from_array(np.array(image.GetDirection()).reshape(3, 3)))
    return out


def _elastix_transform(tp):
    """SimpleITK transform from an elastix EulerTransform / AffineTransform parameter map
    (elastix maps fixed points to moving points, as SimpleITK does)."""
    params = [float(v) for v in tp["TransformParameters"]]
    centre = [float(v) for v in tp["CenterOfRotationPoint"]]
    name = tp["Transform"][0]
    if name == "EulerTransform":
        tx = sitk.Euler3DTransform()
        tx.SetComputeZYX(tp.get("ComputeZYX", ("false",))[0] == "true")
    elif name == "AffineTransform":
        tx = sitk.AffineTransform(3)
    else:
        raise ValueError(f"unexpected elastix transform {name!r}")
    tx.SetCenter(centre)
    tx.SetParameters(params)
    return tx


def _register_elastix(fixed_ct, moving_pet, *, kind, bins, ct_range, pet_range, fov_margin_mm,
                      fixed_mask, initial_transform, seed, threads):
    import itk  # optional at import time: only this engine needs itk-elastix

    if initial_transform is not None:
        raise ValueError("engine='elastix' starts from the scanner geometry; initial_transform is not supported")
    fixed, moving = _prepare(fixed_ct, moving_pet, ct_range, pet_range)
    mask = _metric_mask(fixed_ct, moving_pet, fov_margin_mm, fixed_mask)
    maps = itk.ParameterObject.New()
    pmap = maps.GetDefaultParameterMap(kind)
    pmap["NumberOfHistogramBins"] = [str(int(bins))]
    pmap["RandomSeed"] = [str(int(seed) + 1)]
    pmap["WriteResultImage"] = ["false"]
    pmap["ErodeMask"] = ["false"]
    maps.AddParameterMap(pmap)
    method = itk.ElastixRegistrationMethod.New(_to_itk(fixed), _to_itk(moving))
    if mask is not None:
        method.SetFixedMask(_to_itk(mask, np.uint8))
    method.SetParameterObject(maps)
    method.SetLogToConsole(False)
    if threads is not None:
        method.SetNumberOfThreads(int(threads))
    method.UpdateLargestPossibleRegion()
    tp = method.GetTransformParameterObject().GetParameterMap(0)
    transform = _elastix_transform(tp)
    # A diagnostic: Mattes MI at the result in SimpleITK's sign (lower is better), on the
    # inputs binned 2x2x2, which costs a tenth of the full-grid evaluation.
    with _sitk_threads(threads):
        probe = sitk.ImageRegistrationMethod()
        probe.SetMetricAsMattesMutualInformation(numberOfHistogramBins=int(bins))
        if mask is not None:
            probe.SetMetricFixedMask(mask)
        probe.SetMetricUseFixedImageGradientFilter(False)
        probe.SetMetricUseMovingImageGradientFilter(False)
        probe.SetInterpolator(sitk.sitkLinear)
        probe.SetInitialTransform(transform)
        value = probe.MetricEvaluate(sitk.BinShrink(fixed, [2, 2, 2]), sitk.BinShrink(moving, [2, 2, 2]))
    return RegistrationResult(
        transform=transform, metric_value=float(value),
        iterations=int(pmap["MaximumNumberOfIterations"][0]),
        stop_condition="elastix: MaximumNumberOfIterations (adaptive stochastic gradient descent)",
        kind=kind, reference_size=tuple(fixed_ct.GetSize()),
        reference_origin=tuple(fixed_ct.GetOrigin()), reference_spacing=tuple(fixed_ct.GetSpacing()),
        reference_direction=tuple(fixed_ct.GetDirection()), metric_history=[],
    )


# --------------------------------------------------------------------------- residual error


def mask_points_mm(mask, *, max_points=None, seed=0):
    """Physical coordinates of the centres of the nonzero voxels of a mask image.

    Parameters
    ----------
    mask : SimpleITK.Image
        Label or binary image (e.g. the CT body mask).
    max_points : int, optional
        Draw at most this many voxels uniformly without replacement (seeded).
    seed : int, optional
        Seed of that draw.

    Returns
    -------
    ndarray
        ``(N, 3)`` points ``(x, y, z)`` in mm.
    """
    arr = sitk.GetArrayViewFromImage(mask)
    zyx = np.argwhere(arr != 0)
    if max_points is not None and len(zyx) > max_points:
        rng = np.random.default_rng(seed)
        zyx = zyx[np.sort(rng.choice(len(zyx), size=int(max_points), replace=False))]
    ijk = zyx[:, ::-1].astype(np.float64)
    direction = np.array(mask.GetDirection(), dtype=np.float64).reshape(3, 3)
    spacing = np.array(mask.GetSpacing(), dtype=np.float64)
    origin = np.array(mask.GetOrigin(), dtype=np.float64)
    return origin + (ijk * spacing) @ direction.T


def _affine_form(transform, points):
    """``(A, c)`` with ``T(p) = A p + c`` if ``transform`` is affine on ``points``, else None."""
    basis = np.vstack([np.zeros(3), np.eye(3)])
    mapped = np.array([transform.TransformPoint(p.tolist()) for p in basis])
    c = mapped[0]
    a = (mapped[1:] - c).T
    lo, hi = points.min(axis=0), points.max(axis=0)
    probes = np.vstack([lo, hi, 0.5 * (lo + hi), [lo[0], hi[1], lo[2]], [hi[0], lo[1], hi[2]]])
    exact = np.array([transform.TransformPoint(p.tolist()) for p in probes])
    scale = max(1.0, float(np.abs(probes).max()))
    if np.allclose(probes @ a.T + c, exact, atol=1e-6 * scale):
        return a, c
    return None


def _transform_points(transform, points):
    form = _affine_form(transform, points)
    if form is not None:
        a, c = form
        return points @ a.T + c
    return np.array([transform.TransformPoint(p.tolist()) for p in points])


def transform_error_mm(estimated, true, points_mm):
    """Distance between where two transforms send each point.

    Parameters
    ----------
    estimated, true : SimpleITK.Transform
        Transforms in one convention (here: CT point -> PET point).
    points_mm : ndarray
        ``(N, 3)`` physical points, e.g. body voxel centres from :func:`mask_points_mm`.

    Returns
    -------
    ndarray
        ``(N,)`` distances in mm.

    Notes
    -----
    Affine transforms (Euler, versor, similarity, affine, translation and composites of
    them) are evaluated in one matrix product; others point by point.
    """
    pts = np.asarray(points_mm, dtype=np.float64).reshape(-1, 3)
    if len(pts) == 0:
        return np.zeros(0)
    diff = _transform_points(estimated, pts) - _transform_points(true, pts)
    return np.linalg.norm(diff, axis=1)
