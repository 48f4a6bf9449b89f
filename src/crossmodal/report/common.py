"""Table cells shared by every page of the book: an estimate with its CI.

The pages' own tables and figures live beside this module, one module per page or group
of pages (:mod:`.cohort`, :mod:`.align_fuse`, :mod:`.detection`). Report functions only
read what the stages wrote and draw it; they compute no statistic.
"""

from __future__ import annotations

import pandas as pd


def format_ci(estimate, lo, hi, *, digits: int = 2, signed: bool = False) -> str:
    """``estimate [lo, hi]`` for a table cell; ``n/a`` without an estimate, no bracket without a CI."""
    if pd.isna(estimate):
        return "n/a"
    spec = f"{'+' if signed else ''}.{digits}f"
    if pd.isna(lo) or pd.isna(hi):
        return f"{estimate:{spec}}"
    return f"{estimate:{spec}} [{lo:{spec}}, {hi:{spec}}]"


def ci_column(frame: pd.DataFrame, estimate: str, lo: str, hi: str, **options) -> list[str]:
    """One :func:`format_ci` cell per row of ``frame``."""
    return [format_ci(e, a, b, **options) for e, a, b in frame[[estimate, lo, hi]].to_numpy()]
