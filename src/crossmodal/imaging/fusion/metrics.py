"""No-reference and reference-based fusion quality metrics (method spec Part 1 step 6).

All images are 2-D float arrays in ``[0, 1]``. A 3-channel fused image is reduced to
one image with :func:`to_gray` (the channel mean) before the metrics are computed.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.metrics import structural_similarity

__all__ = [
    "entropy",
    "fusion_quality",
    "mutual_information",
    "qabf",
    "spatial_frequency",
    "ssim",
    "std_dev",
    "to_gray",
]


def to_gray(fused3):
    """Reduce an ``(H, W, 3)`` fused image to one ``(H, W)`` image: the channel mean.

    Notes
    -----
    The mean treats the three channels alike, so a single-image baseline repeated to
    three channels reduces to itself and ``[CT, PET, F]`` reduces to ``(CT + PET + F)/3``.
    A luminance weighting (ITU-R BT.601) would instead favour whichever modality sits in
    the green channel, which carries no meaning for these pseudo-colour inputs.
    A 2-D input is returned unchanged.
    """
    arr = np.asarray(fused3, dtype=np.float64)
    if arr.ndim == 2:
        return arr
    if arr.ndim != 3:
        raise ValueError(f"expected (H, W) or (H, W, C), got shape {arr.shape}")
    return arr.mean(axis=-1)


def _gray(img):
    return to_gray(img)


def entropy(img, *, bins=256, value_range=(0.0, 1.0)):
    """Shannon entropy (EN) of the grey-level histogram, in bits."""
    hist, _ = np.histogram(np.clip(_gray(img), *value_range), bins=bins, range=value_range)
    p = hist[hist > 0] / hist.sum()
    return float(-(p * np.log2(p)).sum())


def std_dev(img):
    """Standard deviation (SD) of the grey levels."""
    return float(np.std(_gray(img)))


def spatial_frequency(img):
    """Spatial frequency (SF) ``sqrt(RF^2 + CF^2)``.

    ``RF^2`` and ``CF^2`` are the sums of squared horizontal and vertical first
    differences divided by the pixel count ``M N`` (Eskicioglu & Fisher 1995).
    """
    f = _gray(img)
    n = f.size
    rf2 = np.sum(np.diff(f, axis=1) ** 2) / n
    cf2 = np.sum(np.diff(f, axis=0) ** 2) / n
    return float(np.sqrt(rf2 + cf2))


def _bin(img, bins, value_range):
    lo, hi = value_range
    idx = np.floor((np.clip(_gray(img), lo, hi) - lo) / (hi - lo) * bins).astype(np.int64)
    return np.minimum(idx, bins - 1).ravel()


def mutual_information(a, f, *, bins=256, value_range=(0.0, 1.0)):
    """Mutual information ``I(A; F)`` in bits from the joint histogram.

    Both images are binned into ``bins`` equal-width bins over ``value_range`` (values
    outside are clipped into the end bins).
    """
    ia, jf = _bin(a, bins, value_range), _bin(f, bins, value_range)
    if ia.shape != jf.shape:
        raise ValueError("images must have the same shape")
    joint = np.bincount(ia * bins + jf, minlength=bins * bins).reshape(bins, bins)
    joint = joint.astype(np.float64)
    p = joint / joint.sum()
    pa = p.sum(axis=1, keepdims=True)
    pf = p.sum(axis=0, keepdims=True)
    nz = p > 0
    return float(np.sum(p[nz] * np.log2(p[nz] / (pa @ pf)[nz])))


def ssim(a, f, *, data_range=1.0):
    """Structural similarity, :func:`skimage.metrics.structural_similarity` with its
    default 7x7 uniform window and ``data_range=1``."""
    return float(structural_similarity(_gray(a), _gray(f), data_range=data_range))


def _sobel_edges(img):
    img = _gray(img)
    sx = ndi.sobel(img, axis=1, mode="nearest")  # horizontal derivative
    sy = ndi.sobel(img, axis=0, mode="nearest")
    g = np.hypot(sx, sy)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.arctan(sy / sx)
    # sx == 0: a purely vertical gradient, or no gradient at all
    alpha = np.where(sx == 0, np.where(sy == 0, 0.0, np.pi / 2), alpha)
    return g, alpha


def _edge_preservation(g_in, a_in, g_f, a_f, gamma_g, kappa_g, sigma_g,
                       gamma_a, kappa_a, sigma_a):
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(g_in > g_f, g_f / g_in, g_in / g_f)
    rel = np.where((g_in == 0) & (g_f == 0), 1.0, rel)  # no edge in either: no loss
    rel = np.nan_to_num(rel, nan=0.0)
    orient = 1.0 - np.abs(a_in - a_f) / (np.pi / 2)
    qg = gamma_g / (1.0 + np.exp(kappa_g * (rel - sigma_g)))
    qa = gamma_a / (1.0 + np.exp(kappa_a * (orient - sigma_a)))
    return qg * qa


def qabf(a, b, f, *, gamma_g=0.9994, kappa_g=-15.0, sigma_g=0.5, gamma_a=0.9879,
         kappa_a=-22.0, sigma_a=0.8, exponent=1.0):
    """Xydeas-Petrovic edge-preservation metric ``Q^AB/F`` in ``[0, 1]``.

    Sobel gradient strength ``g`` and orientation ``alpha = arctan(s_y / s_x)`` of the
    sources ``a``, ``b`` and the fused image ``f``; per-pixel preservation ``Q^{AF}`` and
    ``Q^{BF}`` from sigmoid mappings of the relative strength and orientation; the
    result is their average weighted by ``g_A**exponent`` and ``g_B**exponent``.

    Returns 0 when neither source has any gradient.

    References
    ----------
    .. [1] Xydeas CS, Petrovic V. Objective image fusion performance measure.
           Electronics Letters 36(4):308-309, 2000. :DOI:`10.1049/el:20000267`
    """
    ga, aa = _sobel_edges(a)
    gb, ab = _sobel_edges(b)
    gf, af = _sobel_edges(f)
    consts = (gamma_g, kappa_g, sigma_g, gamma_a, kappa_a, sigma_a)
    qaf = _edge_preservation(ga, aa, gf, af, *consts)
    qbf = _edge_preservation(gb, ab, gf, af, *consts)
    wa, wb = ga ** exponent, gb ** exponent
    total = np.sum(wa + wb)
    if total == 0:
        return 0.0
    return float(np.sum(qaf * wa + qbf * wb) / total)


def fusion_quality(ct01, pet01, fused, *, bins=256):
    """All fusion metrics of one slice.

    Parameters
    ----------
    ct01, pet01 : ndarray
        Source slices in ``[0, 1]``.
    fused : ndarray
        ``(H, W)`` or ``(H, W, 3)``; the latter is reduced with :func:`to_gray`.
    bins : int, optional
        Histogram bins for EN and MI.

    Returns
    -------
    dict
        ``EN, SD, SF, MI_CT, MI_PET, SSIM_CT, SSIM_PET, QABF`` as floats.
    """
    f = to_gray(fused)
    return {
        "EN": entropy(f, bins=bins),
        "SD": std_dev(f),
        "SF": spatial_frequency(f),
        "MI_CT": mutual_information(ct01, f, bins=bins),
        "MI_PET": mutual_information(pet01, f, bins=bins),
        "SSIM_CT": ssim(ct01, f),
        "SSIM_PET": ssim(pet01, f),
        "QABF": qabf(ct01, pet01, f),
    }
