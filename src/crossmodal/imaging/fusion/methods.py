"""PET/CT fusion methods (method spec Part 1 steps 5 and 6) and their registry.

Every method has one signature::

    f(ct01, pet01, *, suv=None, region=None, <options>) -> ndarray (H, W, 3) float32

``ct01`` and ``pet01`` are enhanced slices in ``[0, 1]`` on one grid (see
:mod:`crossmodal.imaging.preprocess`); ``suv`` is the raw SUV slice and ``region`` the
localised region (a boolean mask, or a ``(y0, y1, x0, x1)`` box). Only
``adaptive_region`` uses ``suv`` and ``region``; the others accept and ignore them, so
a pipeline can call every method the same way. Options are keyword arguments with
defaults; :func:`fuse` rejects an option the method does not have, so a misspelt option
in ``params.yaml`` fails instead of being ignored. Single-image baselines repeat their
fused image to three channels.

The "no refinement" and "no ROI crop" ablations of the spec are not fusion functions:
the pipeline produces them by skipping the registration refinement or the crop and
then calling ``adaptive_region`` as usual.
"""

from __future__ import annotations

import inspect
from typing import Callable

import cv2
import numpy as np
import pywt
from skimage import filters

__all__ = [
    "FUSION_METHODS",
    "adaptive_region",
    "adaptive_weight",
    "box_filter",
    "concat_ct_pet_ct",
    "ct_only",
    "dwt",
    "fuse",
    "guided_filter",
    "guided_filter_fusion",
    "laplacian_pyramid",
    "list_methods",
    "method_options",
    "pca",
    "pca_weights",
    "pet_only",
    "register_fusion",
    "weighted_average",
]

#: Every fusion method by name, filled by :func:`register_fusion`.
FUSION_METHODS: dict[str, Callable] = {}


def register_fusion(name):
    """Decorator that adds a fusion function to :data:`FUSION_METHODS` under ``name``."""

    def decorator(func):
        if name in FUSION_METHODS and FUSION_METHODS[name] is not func:
            raise ValueError(f"fusion method {name!r} is already registered")
        FUSION_METHODS[name] = func
        return func

    return decorator


def list_methods():
    """Names of the registered fusion methods, in registration order."""
    return list(FUSION_METHODS)


#: Inputs every fusion method takes besides the two slices; not options.
COMMON_INPUTS = ("suv", "region")


def method_options(name):
    """Option names of the fusion method ``name`` (its keyword arguments other than
    ``suv`` and ``region``), or ``None`` when it takes any keyword (``**kwargs``)."""
    parameters = inspect.signature(_method(name)).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    return tuple(p.name for p in parameters
                 if p.kind is p.KEYWORD_ONLY and p.name not in COMMON_INPUTS)


def fuse(name, ct01, pet01, *, suv=None, region=None, **options):
    """Run the fusion method ``name`` and return a ``(H, W, 3)`` float32 image in ``[0, 1]``.

    Parameters
    ----------
    name : str
        A key of :data:`FUSION_METHODS` (see :func:`list_methods`).
    ct01, pet01 : ndarray
        Enhanced CT and PET slices in ``[0, 1]``, same shape ``(H, W)``.
    suv, region : optional
        Raw SUV slice and localised region (used by ``adaptive_region``).
    **options
        The method's options (see :func:`method_options`).

    Raises
    ------
    KeyError
        ``name`` is not registered.
    TypeError
        An option the method does not have; the message names the option and the method.
    """
    func = _method(name)
    accepted = method_options(name)
    unknown = [] if accepted is None else [key for key in options if key not in accepted]
    if unknown:
        raise TypeError(f"fusion method {name!r} has no option {', '.join(map(repr, unknown))}; "
                        f"its options: {', '.join(accepted) or 'none'}")
    ct, pet = _check_pair(ct01, pet01)
    out = np.asarray(func(ct, pet, suv=suv, region=region, **options), dtype=np.float32)
    if out.shape != ct.shape + (3,):
        raise RuntimeError(
            f"fusion {name!r} returned shape {out.shape}, expected {ct.shape + (3,)}"
        )
    return np.clip(out, 0.0, 1.0)


def _method(name):
    try:
        return FUSION_METHODS[name]
    except KeyError:
        raise KeyError(f"unknown fusion method {name!r}; known: {list_methods()}") from None


def _check_pair(ct01, pet01):
    ct = np.asarray(ct01, dtype=np.float32)
    pet = np.asarray(pet01, dtype=np.float32)
    if ct.ndim != 2 or ct.shape != pet.shape:
        raise ValueError(f"ct01 and pet01 must be 2-D of one shape, got {ct.shape} and {pet.shape}")
    return ct, pet


def _stack(*channels):
    return np.clip(np.stack(channels, axis=-1), 0.0, 1.0).astype(np.float32)


def _repeat(img):
    return _stack(img, img, img)


def _region_mask(region, shape):
    """Boolean mask from a mask, a ``(y0, y1, x0, x1)`` box, or ``None`` (-> None)."""
    if region is None:
        return None
    arr = np.asarray(region)
    if arr.shape == shape:
        return arr.astype(bool)
    if arr.shape == (4,):
        y0, y1, x0, x1 = (int(v) for v in arr)
        mask = np.zeros(shape, dtype=bool)
        mask[y0:y1, x0:x1] = True
        return mask
    raise ValueError(f"region must be a mask of shape {shape} or a (y0, y1, x0, x1) box")


# --------------------------------------------------------------------------- proposed method


def adaptive_weight(suv, region=None, *, slope=2.0, threshold=None, suv_max=10.0):
    """Per-pixel PET weight ``w = clip((SUV - t) / s, 0, 1)`` of the adaptive fusion.

    Parameters
    ----------
    suv : ndarray
        SUV slice.
    region : ndarray of bool, optional
        Where the fusion acts and where ``t`` is estimated; ``w = 0`` outside it. ``None``
        uses the PET body mask of the slice, or the whole slice if that is empty.
    slope : float, optional
        ``s``, in SUV: the weight rises from 0 at ``t`` to 1 at ``t + s``.
    threshold : float, optional
        ``t`` in SUV; ``None`` estimates it as the Otsu threshold of the SUV inside the
        region, with the SUV capped at ``suv_max`` first so that the bladder's extreme
        uptake does not drag ``t`` above lesion uptake.
    suv_max : float, optional
        The cap used for the Otsu estimate (the PET enhancement's clip value).

    Returns
    -------
    w : ndarray
        float32 in ``[0, 1]``.
    t : float
        The threshold used.
    """
    from crossmodal.imaging.preprocess import body_mask_pet  # local: keeps import light

    suv = np.asarray(suv, dtype=np.float32)
    if slope <= 0:
        raise ValueError(f"slope must be positive, got {slope}")
    mask = _region_mask(region, suv.shape)
    if mask is None:
        mask = body_mask_pet(suv)
    if not mask.any():
        mask = np.ones(suv.shape, dtype=bool)
    if threshold is None:
        values = np.minimum(suv[mask], suv_max)
        # threshold_otsu fails on a flat histogram; a flat region has no hot part anyway
        if np.ptp(values) == 0:
            threshold = float(values.max())
        else:
            threshold = float(filters.threshold_otsu(values))
    w = np.clip((suv - threshold) / slope, 0.0, 1.0)
    w[~mask] = 0.0
    return w.astype(np.float32), float(threshold)


@register_fusion("adaptive_region")
def adaptive_region(ct01, pet01, *, suv=None, region=None, slope=2.0, threshold=None,
                    suv_max=10.0):
    """Adaptive region feature fusion ``[CT, PET, F]`` (the proposed input).

    ``F = w * PET + (1 - w) * CT`` with ``w`` from :func:`adaptive_weight`: CT anatomy
    everywhere except where the uptake rises above the region's own threshold, where
    PET takes over.

    Parameters
    ----------
    ct01, pet01 : ndarray
        Enhanced CT and PET slices in ``[0, 1]``.
    suv : ndarray, optional
        Raw SUV slice. If absent it is approximated by ``pet01 * suv_max``, which loses
        everything above ``suv_max`` but keeps ``slope`` and ``threshold`` in SUV units.
    region : ndarray of bool or (y0, y1, x0, x1), optional
        Localised region (body mask or ROI box); see :func:`adaptive_weight`.
    slope, threshold, suv_max : optional
        See :func:`adaptive_weight`.

    Returns
    -------
    ndarray
        ``(H, W, 3)`` float32 in ``[0, 1]``.
    """
    ct, pet = _check_pair(ct01, pet01)
    if suv is None:
        suv = pet * np.float32(suv_max)
    w, _t = adaptive_weight(suv, region, slope=slope, threshold=threshold, suv_max=suv_max)
    fused = w * pet + (1.0 - w) * ct
    return _stack(ct, pet, fused)


@register_fusion("concat_ct_pet_ct")
def concat_ct_pet_ct(ct01, pet01, *, suv=None, region=None):
    """Ablation: plain channel concatenation ``[CT, PET, CT]``."""
    ct, pet = _check_pair(ct01, pet01)
    return _stack(ct, pet, ct)


# --------------------------------------------------------------------------- baselines


@register_fusion("ct_only")
def ct_only(ct01, pet01, *, suv=None, region=None):
    """Single-modality baseline: CT repeated to three channels."""
    ct, _pet = _check_pair(ct01, pet01)
    return _repeat(ct)


@register_fusion("pet_only")
def pet_only(ct01, pet01, *, suv=None, region=None):
    """Single-modality baseline: PET repeated to three channels."""
    _ct, pet = _check_pair(ct01, pet01)
    return _repeat(pet)


@register_fusion("weighted_average")
def weighted_average(ct01, pet01, *, suv=None, region=None, weight=0.5):
    """``(1 - weight) * CT + weight * PET`` repeated to three channels (``weight`` = PET's)."""
    ct, pet = _check_pair(ct01, pet01)
    return _repeat((1.0 - weight) * ct + weight * pet)


def pca_weights(a, b):
    """PCA fusion weights: the principal eigenvector of the 2x2 covariance, normalised.

    Parameters
    ----------
    a, b : ndarray
        Images of one shape.

    Returns
    -------
    (float, float)
        Non-negative weights summing to 1; ``(0.5, 0.5)`` when both images are flat.

    References
    ----------
    .. [1] Naidu VPS, Raol JR. Pixel-level image fusion using wavelets and principal
           component analysis. Defence Science Journal 58(3):338-352, 2008.
    """
    data = np.vstack([np.ravel(a), np.ravel(b)]).astype(np.float64)
    cov = np.cov(data)
    if not np.isfinite(cov).all() or np.allclose(cov, 0.0):
        return 0.5, 0.5
    _vals, vecs = np.linalg.eigh(cov)
    v = np.abs(vecs[:, -1])  # eigh sorts ascending; the sign of an eigenvector is arbitrary
    total = v.sum()
    if total == 0:
        return 0.5, 0.5
    return float(v[0] / total), float(v[1] / total)


@register_fusion("pca")
def pca(ct01, pet01, *, suv=None, region=None):
    """PCA fusion: weighted sum with :func:`pca_weights`, repeated to three channels."""
    ct, pet = _check_pair(ct01, pet01)
    wa, wb = pca_weights(ct, pet)
    return _repeat(wa * ct + wb * pet)


def _max_abs(a, b):
    return np.where(np.abs(a) >= np.abs(b), a, b)


def _laplacian_pyramid(img, levels):
    gauss = [img]
    for _ in range(levels):
        gauss.append(cv2.pyrDown(gauss[-1]))
    lap = []
    for fine, coarse in zip(gauss[:-1], gauss[1:]):
        up = cv2.pyrUp(coarse, dstsize=(fine.shape[1], fine.shape[0]))
        lap.append(fine - up)
    return lap, gauss[-1]


def _collapse(lap, top):
    img = top
    for detail in reversed(lap):
        img = cv2.pyrUp(img, dstsize=(detail.shape[1], detail.shape[0])) + detail
    return img


@register_fusion("laplacian_pyramid")
def laplacian_pyramid(ct01, pet01, *, suv=None, region=None, levels=4):
    """Laplacian pyramid fusion: max-abs detail coefficients, averaged top level.

    Parameters
    ----------
    levels : int, optional
        Number of decompositions (detail levels); the top is the Gaussian level below
        the last one. Reduced automatically for images too small to halve that often.

    References
    ----------
    .. [1] Burt PJ, Adelson EH. The Laplacian pyramid as a compact image code.
           IEEE Trans Commun 31(4):532-540, 1983.
    """
    ct, pet = _check_pair(ct01, pet01)
    levels = int(max(0, min(levels, np.floor(np.log2(min(ct.shape))))))
    lap_a, top_a = _laplacian_pyramid(ct.astype(np.float64), levels)
    lap_b, top_b = _laplacian_pyramid(pet.astype(np.float64), levels)
    lap = [_max_abs(a, b) for a, b in zip(lap_a, lap_b)]
    fused = _collapse(lap, 0.5 * (top_a + top_b))
    return _repeat(fused)


@register_fusion("dwt")
def dwt(ct01, pet01, *, suv=None, region=None, wavelet="db1", levels=3):
    """Discrete wavelet fusion: mean approximation, max-abs detail coefficients.

    Parameters
    ----------
    wavelet : str, optional
        PyWavelets wavelet name.
    levels : int, optional
        Decomposition levels (capped at PyWavelets' maximum for the image size).
    """
    ct, pet = _check_pair(ct01, pet01)
    max_level = pywt.dwtn_max_level(ct.shape, wavelet)
    levels = int(max(1, min(levels, max_level))) if max_level > 0 else 1
    ca = pywt.wavedec2(ct.astype(np.float64), wavelet, level=levels)
    cb = pywt.wavedec2(pet.astype(np.float64), wavelet, level=levels)
    coeffs = [0.5 * (ca[0] + cb[0])]
    for da, db in zip(ca[1:], cb[1:]):
        coeffs.append(tuple(_max_abs(x, y) for x, y in zip(da, db)))
    fused = pywt.waverec2(coeffs, wavelet)[: ct.shape[0], : ct.shape[1]]
    return _repeat(fused)


def box_filter(img, radius):
    """Mean over a ``(2r+1) x (2r+1)`` window (reflected borders)."""
    k = 2 * int(radius) + 1
    return cv2.boxFilter(img, ddepth=-1, ksize=(k, k), normalize=True,
                         borderType=cv2.BORDER_REFLECT)


def guided_filter(guide, src, *, radius, eps):
    """Grey-scale guided filter of He, Sun & Tang, from box filters.

    Parameters
    ----------
    guide : ndarray
        Guidance image ``I``.
    src : ndarray
        Image to filter ``p``.
    radius : int
        Window radius ``r``.
    eps : float
        Regularisation; larger values smooth more.

    References
    ----------
    .. [1] He K, Sun J, Tang X. Guided image filtering. IEEE TPAMI 35(6):1397-1409, 2013.
           :DOI:`10.1109/TPAMI.2012.213`
    """
    guide = np.asarray(guide, dtype=np.float64)
    src = np.asarray(src, dtype=np.float64)
    mean_i = box_filter(guide, radius)
    mean_p = box_filter(src, radius)
    cov_ip = box_filter(guide * src, radius) - mean_i * mean_p
    var_i = box_filter(guide * guide, radius) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box_filter(a, radius) * guide + box_filter(b, radius)


@register_fusion("guided_filter")
def guided_filter_fusion(ct01, pet01, *, suv=None, region=None, r1=45, eps1=0.3, r2=7,
                         eps2=1e-6, base_size=31, saliency_radius=5, saliency_sigma=5.0):
    """Guided filtering fusion (GFF) of Li, Kang & Hu.

    Two-scale decomposition (mean filter of ``base_size``), Laplacian saliency smoothed by
    a Gaussian of radius ``saliency_radius`` and ``saliency_sigma``, binary weight maps
    refined by the guided filter with ``(r1, eps1)`` for the base layers and ``(r2, eps2)``
    for the detail layers.

    References
    ----------
    .. [1] Li S, Kang X, Hu J. Image fusion with guided filtering. IEEE Trans Image
           Process 22(7):2864-2875, 2013. :DOI:`10.1109/TIP.2013.2244222`
    """
    ct, pet = _check_pair(ct01, pet01)
    images = [ct.astype(np.float64), pet.astype(np.float64)]
    k = int(base_size)
    bases = [cv2.blur(im, (k, k), borderType=cv2.BORDER_REFLECT) for im in images]
    details = [im - base for im, base in zip(images, bases)]
    g = 2 * int(saliency_radius) + 1
    saliency = [
        cv2.GaussianBlur(np.abs(cv2.Laplacian(im, cv2.CV_64F, ksize=1,
                                              borderType=cv2.BORDER_REFLECT)),
                         (g, g), saliency_sigma, borderType=cv2.BORDER_REFLECT)
        for im in images
    ]
    winner = np.argmax(np.stack(saliency), axis=0)
    masks = [(winner == n).astype(np.float64) for n in range(2)]
    wb = [guided_filter(im, m, radius=r1, eps=eps1) for im, m in zip(images, masks)]
    wd = [guided_filter(im, m, radius=r2, eps=eps2) for im, m in zip(images, masks)]
    fused = _blend(bases, wb) + _blend(details, wd)
    return _repeat(fused)


def _blend(layers, weights):
    # Guided-filter outputs can be slightly negative; clip, then renormalise to sum 1.
    w = np.clip(np.stack(weights), 0.0, None)
    total = w.sum(axis=0)
    w = np.where(total > 1e-12, w / np.maximum(total, 1e-12), 1.0 / len(layers))
    return np.sum(w * np.stack(layers), axis=0)
