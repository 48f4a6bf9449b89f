"""The one verdict rule of the study: a claim's confidence interval against zero.

A thesis claim is stated as an improvement (a difference ``ours - reference`` that should
be positive, or negative when lower is better, e.g. false positives). Its verdict is read
from the CI of that difference, never typed:

* ``supported``: the whole interval is on the better side of 0;
* ``contradicted``: the whole interval is on the worse side of 0;
* ``inconclusive``: the interval contains 0;
* ``not measurable``: the estimate or an interval end is not finite.

:func:`overall_verdict` combines the rows of one claim (e.g. one per detector).

Part 1's pre-specified analysis reads the same four verdicts from a multiplicity-adjusted
p-value instead of the interval (:func:`adjusted_verdict`, with
:func:`crossmodal.stats.multiplicity.holm`), and says whether the thesis's own effect size
lies inside our interval (:func:`thesis_in_ci`).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = ["VERDICTS", "adjusted_verdict", "overall_verdict", "thesis_in_ci", "verdict"]

VERDICTS = ("supported", "contradicted", "inconclusive", "mixed", "not measurable",
            "comparator not measurable")


def verdict(estimate: float, low: float, high: float, *, higher_is_better: bool = True) -> str:
    """Verdict of a claimed improvement from its estimate and CI ``[low, high]``.

    Parameters
    ----------
    estimate, low, high : float
        The difference ``ours - reference`` and its confidence interval.
    higher_is_better : bool
        False for metrics where a decrease is the improvement (false positives per
        slice): the interval is mirrored before the rule is applied.

    Returns
    -------
    str
        ``supported``, ``contradicted``, ``inconclusive`` or ``not measurable``.
    """
    if not np.all(np.isfinite([estimate, low, high])):
        return "not measurable"
    if not higher_is_better:
        low, high = -high, -low
    if low > 0:
        return "supported"
    if high < 0:
        return "contradicted"
    return "inconclusive"


def overall_verdict(verdicts: Iterable[str]) -> str:
    """A claim's verdict from its rows' verdicts.

    Rows ``not measurable`` or ``comparator not measurable`` (a comparator that failed its
    sanity gate) do not count. ``supported`` / ``contradicted`` only when every measurable
    row is; ``mixed`` when some rows are supported and others contradicted; otherwise
    ``inconclusive`` (or, without any measurable row, ``comparator not measurable`` when a
    comparator failed its gate and ``not measurable`` otherwise).
    """
    verdicts = list(verdicts)
    measured = [v for v in verdicts if v not in ("not measurable", "comparator not measurable")]
    if not measured:  # say why: a failed comparator is not a failed measurement of ours
        return ("comparator not measurable" if "comparator not measurable" in verdicts
                else "not measurable")
    if all(v == "supported" for v in measured):
        return "supported"
    if all(v == "contradicted" for v in measured):
        return "contradicted"
    if "supported" in measured and "contradicted" in measured:
        return "mixed"
    return "inconclusive"


def adjusted_verdict(estimate: float, p_adjusted: float, low: float, high: float, *, alpha: float,
                     higher_is_better: bool = True) -> str:
    """Verdict of a claimed improvement from its multiplicity-adjusted p-value.

    Parameters
    ----------
    estimate : float
        The difference ``ours - reference``.
    p_adjusted : float
        Its two-sided p-value against no difference, adjusted across the family (Holm).
    low, high : float
        Its confidence interval; only checked to be finite (the verdict needs a measured
        difference), the decision is the adjusted p-value's.
    alpha : float
        Family-wise significance level.
    higher_is_better : bool
        False where a decrease is the improvement (false positives).

    Returns
    -------
    str
        ``supported`` when ``p_adjusted < alpha`` and the estimate is on the better side,
        ``contradicted`` when ``p_adjusted < alpha`` on the worse side, ``inconclusive``
        otherwise, ``not measurable`` when any input is not finite.
    """
    if not np.all(np.isfinite([estimate, p_adjusted, low, high])):
        return "not measurable"
    if p_adjusted >= alpha or estimate == 0:
        return "inconclusive"
    return "supported" if (estimate > 0) == higher_is_better else "contradicted"


def thesis_in_ci(value, low: float, high: float) -> bool | float:
    """Whether the thesis's effect size ``value`` lies inside ``[low, high]``.

    NaN (not True or False) when the thesis gives no number (``value`` is None, text or
    NaN) or the interval is not finite: there is nothing to compare.
    """
    try:
        value = float(value)
    except (TypeError, ValueError):
        return float("nan")
    if not np.all(np.isfinite([value, low, high])):
        return float("nan")
    return bool(low <= value <= high)
