"""The one verdict rule of the study: a claim's confidence interval against zero.

A thesis claim is stated as an improvement (a difference ``ours - reference`` that should
be positive, or negative when lower is better, e.g. false positives). Its verdict is read
from the CI of that difference, never typed:

* ``supported``: the whole interval is on the better side of 0;
* ``contradicted``: the whole interval is on the worse side of 0;
* ``inconclusive``: the interval contains 0;
* ``not measurable``: the estimate or an interval end is not finite.

:func:`overall_verdict` combines the rows of one claim (e.g. one per detector).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = ["VERDICTS", "overall_verdict", "verdict"]

VERDICTS = ("supported", "contradicted", "inconclusive", "mixed", "not measurable")


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

    ``supported`` / ``contradicted`` only when every measurable row is; ``mixed`` when
    some rows are supported and others contradicted; otherwise ``inconclusive`` (or
    ``not measurable`` without any measurable row).
    """
    measured = [v for v in verdicts if v != "not measurable"]
    if not measured:
        return "not measurable"
    if all(v == "supported" for v in measured):
        return "supported"
    if all(v == "contradicted" for v in measured):
        return "contradicted"
    if "supported" in measured and "contradicted" in measured:
        return "mixed"
    return "inconclusive"
