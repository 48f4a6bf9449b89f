"""Multiplicity control across a family of pre-specified comparisons.

The Part 1 analysis tests one primary comparison per claim and detector; the family is all
of them. :func:`holm` adjusts their p-values so that rejecting where the adjusted p-value is
below ``alpha`` keeps the family-wise error rate at ``alpha`` under any dependence between
the comparisons (they share test patients, so they are dependent).

References
----------
.. [1] Holm S. A simple sequentially rejective multiple test procedure. Scandinavian
   Journal of Statistics 1979;6(2):65-70.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ADJUSTMENTS", "adjust", "holm"]


def holm(p_values) -> np.ndarray:
    """Holm step-down adjusted p-values, in the input order.

    With the ``m`` defined p-values sorted ascending, ``p_(1) <= ... <= p_(m)``, the
    adjusted value of the ``i``-th is ``max_{j <= i} min(1, (m - j + 1) p_(j))`` [1]_: each
    is at least as large as the one before it in the sorted order (monotone) and at most 1.

    Parameters
    ----------
    p_values : array_like of float
        One p-value per comparison. NaN (a comparison that could not be made) is left out
        of the family: it does not count in ``m`` and stays NaN.

    Returns
    -------
    ndarray of float
        The adjusted p-values, same shape and order as ``p_values``.

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03, 0.005])
    array([0.03, 0.06, 0.06, 0.02])
    """
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    defined = np.flatnonzero(np.isfinite(p.ravel()))
    if len(defined) == 0:
        return adjusted
    flat = p.ravel()[defined]
    order = np.argsort(flat, kind="stable")
    m = len(flat)
    stepped = np.minimum(1.0, (m - np.arange(m)) * flat[order])
    result = np.empty(m)
    result[order] = np.maximum.accumulate(stepped)
    adjusted.ravel()[defined] = result
    return adjusted


def _none(p_values) -> np.ndarray:
    return np.asarray(p_values, dtype=float).copy()


#: multiplicity rule name (``detect.analysis.multiplicity``) -> the adjustment.
ADJUSTMENTS = {"holm": holm, "none": _none}


def adjust(p_values, method: str) -> np.ndarray:
    """``p_values`` adjusted by the rule named ``method`` (a key of :data:`ADJUSTMENTS`)."""
    if method not in ADJUSTMENTS:
        raise ValueError(f"unknown multiplicity rule {method!r} (known: {', '.join(ADJUSTMENTS)})")
    return ADJUSTMENTS[method](p_values)
