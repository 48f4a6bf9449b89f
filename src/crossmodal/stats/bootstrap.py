"""Patient bootstrap: one draw generator, one percentile interval, one paired difference.

Every confidence interval of the study comes from here, for both parts:

* :func:`patient_resamples` draws the resamples: ``B`` rows of ``P`` patient indices drawn
  uniformly with replacement from one seeded :func:`numpy.random.default_rng`. The same
  seed gives the same patients for every metric and every model, which is what makes two
  models' intervals *paired*.
* :func:`resample_counts` turns those rows into per-patient counts, for metrics that take
  patient weights instead of indices (the detection metrics).
* :func:`percentile_ci` is the percentile interval of the draws, skipping the draws in
  which the statistic is undefined (NaN or infinite).
* :func:`paired_bootstrap_difference` evaluates two statistics on the same resamples and
  gives the interval of their difference and its two-sided bootstrap p-value.
* :func:`bootstrap_p_value` is that p-value: how far the null value sits in the tails of
  the bootstrap distribution of a difference.
* :func:`bootstrap_mean_ci` is the common special case "mean of per-unit values".

References
----------
.. [1] Efron B, Tibshirani RJ. An Introduction to the Bootstrap. Chapman & Hall, 1993,
   ch. 13 (percentile intervals), ch. 16 (bootstrap hypothesis tests).
.. [2] Davison AC, Hinkley DV. Bootstrap Methods and their Application. Cambridge
   University Press, 1997, sec. 4.4 (the ``+1`` in Monte Carlo p-values).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

__all__ = [
    "PairedDifference",
    "bootstrap_mean_ci",
    "bootstrap_p_value",
    "paired_bootstrap_difference",
    "patient_resamples",
    "percentile_ci",
    "resample_counts",
]


def patient_resamples(n_patients: int, n_boot: int, seed) -> np.ndarray:
    """Indices of ``n_boot`` with-replacement resamples of ``n_patients`` patients.

    Parameters
    ----------
    n_patients : int
        Number of patients P (the resampling units).
    n_boot : int
        Number of resamples B.
    seed : int or sequence of int
        Seed of :func:`numpy.random.default_rng`; the same seed draws the same patients.

    Returns
    -------
    indices : ndarray of int, shape (B, P)
        Row ``b`` lists the patients (0 .. P-1) of resample ``b``, in draw order.
    """
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_patients, size=(n_boot, n_patients))


def resample_counts(indices: np.ndarray, n_patients: int) -> np.ndarray:
    """How often each patient occurs in each resample: float (B, P) patient weights.

    ``resample_counts(patient_resamples(P, B, seed), P)`` is the weight matrix that
    weighted metrics (``patient_weights=``) take; columns follow the patients' order.
    """
    indices = np.asarray(indices, dtype=int)
    n_boot = indices.shape[0]
    offsets = (np.arange(n_boot) * n_patients)[:, None]
    flat = np.bincount((indices + offsets).ravel(), minlength=n_boot * n_patients)
    return flat.reshape(n_boot, n_patients).astype(float)


def percentile_ci(draws, ci: float = 0.95):
    """Percentile interval of bootstrap draws (axis 0), skipping undefined draws.

    Parameters
    ----------
    draws : array_like, shape (B,) or (B, ...)
        One value (or one row of values) per resample. NaN or infinite draws (the
        statistic is undefined on that resample, e.g. no positive patient drawn) are
        left out, per column.
    ci : float
        Central coverage, e.g. 0.95 for the 2.5 and 97.5 percentiles.

    Returns
    -------
    (low, high)
        Floats for 1-D ``draws``, arrays of shape ``draws.shape[1:]`` otherwise; NaN
        where no draw is defined.
    """
    draws = np.asarray(draws, dtype=float)
    draws = np.where(np.isfinite(draws), draws, np.nan)
    # Rounded so that ci=0.95 gives exactly the 0.025 quantile (1 - 0.95 is not 0.05 in
    # binary floating point).
    tail = round((1 - ci) / 2, 12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN
        low, high = np.nanquantile(draws, [tail, 1 - tail], axis=0)
    return _scalar_or_array(low), _scalar_or_array(high)


class PairedDifference(NamedTuple):
    """Result of :func:`paired_bootstrap_difference` (all values ``a - b`` unless named)."""

    difference: float | np.ndarray  # statistic_a - statistic_b on the original patients
    low: float | np.ndarray
    high: float | np.ndarray
    a: float | np.ndarray  # statistic_a on the original patients
    b: float | np.ndarray
    draws: np.ndarray  # (B, ...) differences on the resamples
    p_value: float | np.ndarray = float("nan")  # two-sided, difference = 0 (bootstrap_p_value)


def paired_bootstrap_difference(
    statistic_a: Callable,
    statistic_b: Callable,
    n_patients: int,
    *,
    n_boot: int = 1000,
    seed=0,
    ci: float = 0.95,
) -> PairedDifference:
    """Paired patient-bootstrap CI of ``statistic_a - statistic_b``.

    Both statistics are evaluated on the *same* resamples, so the patient-to-patient
    variation common to A and B cancels.

    Parameters
    ----------
    statistic_a, statistic_b : callable
        ``statistic(indices)`` with ``indices`` the (B, P) rows of
        :func:`patient_resamples` returns B values (or a (B, ...) array);
        ``statistic(None)`` returns the value on the original patients.
    n_patients : int
        Number of patients P, the same for both statistics.
    n_boot, seed, ci
        As in :func:`patient_resamples` and :func:`percentile_ci`.

    Returns
    -------
    PairedDifference
        ``difference, low, high, a, b, draws, p_value``; unpack the first three for the
        interval. ``p_value`` is :func:`bootstrap_p_value` of the draws against 0.
    """
    a = _scalar_or_array(statistic_a(None))
    b = _scalar_or_array(statistic_b(None))
    indices = patient_resamples(n_patients, n_boot, seed)
    draws = np.asarray(statistic_a(indices), float) - np.asarray(statistic_b(indices), float)
    low, high = percentile_ci(draws, ci)
    return PairedDifference(_scalar_or_array(np.subtract(a, b)), low, high, a, b, draws,
                            bootstrap_p_value(draws))


def bootstrap_p_value(draws, null: float = 0.0):
    """Two-sided bootstrap p-value of ``difference = null`` from the draws of a difference.

    ``p = min(1, 2 * min(k_low + 1, k_high + 1) / (B + 1))`` with ``k_low`` (``k_high``) the
    draws at or below (at or above) ``null`` and ``B`` the defined draws: twice the smaller
    tail, with the ``+1`` that keeps a Monte Carlo p-value from being 0 [2]_. It agrees with
    the percentile interval: the ``1 - alpha`` interval excludes ``null`` about when
    ``p < alpha``.

    Parameters
    ----------
    draws : array_like, shape (B,) or (B, ...)
        The difference on each resample (axis 0); NaN or infinite draws are left out, per
        column.
    null : float
        The value under the null hypothesis (0: no difference).

    Returns
    -------
    float or ndarray
        A float for 1-D ``draws``, an array of shape ``draws.shape[1:]`` otherwise; NaN
        where no draw is defined.
    """
    draws = np.asarray(draws, dtype=float)
    defined = np.isfinite(draws)
    n = defined.sum(axis=0)
    low = (defined & (draws <= null)).sum(axis=0)
    high = (defined & (draws >= null)).sum(axis=0)
    p = np.minimum(1.0, 2 * (np.minimum(low, high) + 1) / (n + 1))
    return _scalar_or_array(np.where(n > 0, p, np.nan))


def bootstrap_mean_ci(
    values, *, n_boot: int = 1000, seed=0, ci: float = 0.95
) -> tuple[float, float, float]:
    """Mean of per-unit values (e.g. one per patient) and its percentile-bootstrap CI.

    Non-finite values are dropped first; ``(nan, nan, nan)`` when none is left.
    """
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan"), float("nan"), float("nan")
    means = values[patient_resamples(len(values), n_boot, seed)].mean(axis=1)
    low, high = percentile_ci(means, ci)
    return float(values.mean()), low, high


def _scalar_or_array(x):
    x = np.asarray(x, dtype=float)
    return float(x) if x.ndim == 0 else x
