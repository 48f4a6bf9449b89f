"""DeLong's test for two correlated ROC AUCs, by the fast algorithm of Sun & Xu (2014).

DeLong, DeLong & Clarke-Pearson (1988) estimate the covariance of AUCs measured on the
same cases from the *structural components*: for ``m`` positives with scores ``X_i`` and
``n`` negatives with scores ``Y_j``, with ``psi(x, y) = 1 if x > y, 1/2 if x == y, else 0``,

    V10_i = (1/n) sum_j psi(X_i, Y_j)        (one per positive)
    V01_j = (1/m) sum_i psi(X_i, Y_j)        (one per negative)
    AUC   = mean(V10) = mean(V01)
    S     = cov(V10) / m + cov(V01) / n      (sample covariances, ddof = 1)

Sun & Xu obtain all components from midranks in O((m + n) log(m + n)) instead of the
O(m n) pairwise comparison: with ``Tz`` the midranks of the pooled scores and ``Tx``, ``Ty``
the midranks within positives and within negatives,

    V10_i = (Tz_i - Tx_i) / n,     V01_j = 1 - (Tz_{m+j} - Ty_j) / m.

References
----------
.. [1] DeLong ER, DeLong DM, Clarke-Pearson DL. Comparing the areas under two or more
   correlated receiver operating characteristic curves: a nonparametric approach.
   Biometrics 44(3):837-845, 1988. :DOI:`10.2307/2531595`
.. [2] Sun X, Xu W. Fast implementation of DeLong's algorithm for comparing the areas
   under correlated receiver operating characteristic curves. IEEE Signal Processing
   Letters 21(11):1389-1393, 2014. :DOI:`10.1109/LSP.2014.2337313`
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

__all__ = [
    "delong_auc_variance",
    "delong_covariance",
    "delong_test",
    "midrank",
    "structural_components",
]


def midrank(x):
    """Midranks (1-based; tied values share the mean of their ranks).

    Parameters
    ----------
    x : array_like, shape (n,)

    Returns
    -------
    ranks : ndarray of float64, shape (n,)

    Examples
    --------
    >>> midrank([3.0, 1.0, 3.0, 2.0])
    array([3.5, 1. , 3.5, 2. ])
    """
    x = np.asarray(x, dtype=float)
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    n = sorted_x.size
    # start of each run of equal values, and the run's end (exclusive)
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    ends = np.r_[starts[1:], n]
    run_rank = 0.5 * (starts + ends - 1) + 1.0  # mean of 1-based ranks starts+1 .. ends
    ranks_sorted = np.repeat(run_rank, ends - starts)
    ranks = np.empty(n)
    ranks[order] = ranks_sorted
    return ranks


def structural_components(y, scores):
    """AUCs and DeLong structural components for one or more score vectors.

    Parameters
    ----------
    y : array_like of {0, 1}, shape (n_cases,)
        Truth; 1 = positive. Both classes must be present.
    scores : array_like, shape (n_cases,) or (k, n_cases)
        Scores of ``k`` classifiers on the same cases (higher = more positive).

    Returns
    -------
    auc : ndarray, shape (k,)
    v10 : ndarray, shape (k, m)
        Component of each positive.
    v01 : ndarray, shape (k, n)
        Component of each negative.
    """
    y = np.asarray(y).astype(int).ravel()
    scores = np.atleast_2d(np.asarray(scores, dtype=float))
    if scores.shape[1] != y.size:
        raise ValueError(f"scores have {scores.shape[1]} cases, y has {y.size}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y must be binary 0/1")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores must be finite")
    pos = scores[:, y == 1]
    neg = scores[:, y == 0]
    m, n = pos.shape[1], neg.shape[1]
    if m == 0 or n == 0:
        raise ValueError("DeLong needs at least one positive and one negative case")
    k = scores.shape[0]
    tx = np.vstack([midrank(pos[r]) for r in range(k)])
    ty = np.vstack([midrank(neg[r]) for r in range(k)])
    tz = np.vstack([midrank(np.concatenate([pos[r], neg[r]])) for r in range(k)])
    auc = (tz[:, :m].sum(axis=1) - m * (m + 1) / 2.0) / (m * n)
    v10 = (tz[:, :m] - tx) / n
    v01 = 1.0 - (tz[:, m:] - ty) / m
    return auc, v10, v01


def delong_covariance(y, scores):
    """AUCs and their DeLong covariance matrix.

    Parameters
    ----------
    y : array_like of {0, 1}, shape (n_cases,)
    scores : array_like, shape (k, n_cases)

    Returns
    -------
    auc : ndarray, shape (k,)
    cov : ndarray, shape (k, k)
        ``cov(V10) / m + cov(V01) / n``. With a single positive (or negative) the
        corresponding term is taken as 0, as it cannot be estimated.
    """
    auc, v10, v01 = structural_components(y, scores)
    m, n = v10.shape[1], v01.shape[1]
    k = auc.size
    s10 = np.atleast_2d(np.cov(v10, ddof=1)) if m > 1 else np.zeros((k, k))
    s01 = np.atleast_2d(np.cov(v01, ddof=1)) if n > 1 else np.zeros((k, k))
    return auc, s10 / m + s01 / n


def delong_auc_variance(y, scores):
    """AUC and its DeLong variance for one score vector.

    Parameters
    ----------
    y : array_like of {0, 1}, shape (n_cases,)
    scores : array_like, shape (n_cases,)

    Returns
    -------
    auc : float
        Equal to :func:`sklearn.metrics.roc_auc_score` (ties count one half).
    variance : float

    Examples
    --------
    >>> auc, var = delong_auc_variance([1, 1, 1, 0, 0, 0], [0.9, 0.6, 0.4, 0.5, 0.4, 0.1])
    >>> round(auc, 4), round(var * 27, 10)
    (0.8333, 1.0)
    """
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 1:
        raise ValueError("scores must be 1-D; use delong_covariance for several")
    auc, cov = delong_covariance(y, scores[None, :])
    return float(auc[0]), float(cov[0, 0])


def delong_test(y, scores_a, scores_b):
    """Two-sided DeLong test of equal AUC for two scores on the same cases.

    Parameters
    ----------
    y : array_like of {0, 1}, shape (n_cases,)
    scores_a, scores_b : array_like, shape (n_cases,)
        Scores of the two models on the same cases, in the same order.

    Returns
    -------
    auc_a, auc_b : float
    z : float
        ``(auc_a - auc_b) / sqrt(var_a + var_b - 2 cov_ab)``.
    p_value : float
        Two-sided normal p-value. When the difference has zero estimated variance the test
        is degenerate: ``z = 0, p = 1`` if the AUCs are equal (e.g. identical scores),
        ``z = +-inf, p = 0`` otherwise.
    """
    auc, cov = delong_covariance(
        y, np.vstack([np.asarray(scores_a, float), np.asarray(scores_b, float)])
    )
    diff = auc[0] - auc[1]
    var = cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1]
    # rounding can leave a tiny negative or nonzero variance for identical curves
    scale = max(cov[0, 0], cov[1, 1], 1e-300)
    if var <= 1e-12 * scale or var <= 0:
        if abs(diff) <= 1e-12:
            return float(auc[0]), float(auc[1]), 0.0, 1.0
        return float(auc[0]), float(auc[1]), float(np.sign(diff) * np.inf), 0.0
    z = diff / np.sqrt(var)
    p = 2.0 * norm.sf(abs(z))
    return float(auc[0]), float(auc[1]), float(z), float(p)
