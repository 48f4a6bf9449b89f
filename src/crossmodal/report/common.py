"""Table cells shared by every page of the book: an estimate with its CI, a p-value, a
thesis value, a yes/no.

The pages' own tables and figures live beside this module, one module per page or group
of pages (:mod:`~crossmodal.report.cohort`, :mod:`~crossmodal.report.align_fuse`,
:mod:`~crossmodal.report.detection`). Report functions only read what the stages wrote
and draw it; they compute no statistic.
"""

from __future__ import annotations

import pandas as pd

# What a cell shows where a value does not apply or was not measured.
NOT_APPLICABLE = "—"

# The book's text column (about 740 px at the figures' 100 dpi). A wider figure is shrunk to
# it, and its labels with it, so small multiples wrap into rows instead.
COLUMN_INCHES = 7.4


def grid_shape(n_panels: int, *, panel_inches: float) -> tuple[int, int]:
    """(rows, columns) of ``n_panels`` panels ``panel_inches`` wide within the book's column."""
    columns = max(1, min(n_panels, int(COLUMN_INCHES // panel_inches)))
    return -(-n_panels // columns), columns


def format_ci(estimate, lo, hi, *, digits: int = 2, signed: bool = False) -> str:
    """``estimate [lo, hi]`` for a table cell; ``—`` without an estimate, no bracket without a CI."""
    if pd.isna(estimate):
        return NOT_APPLICABLE
    spec = f"{'+' if signed else ''}.{digits}f"
    if pd.isna(lo) or pd.isna(hi):
        return f"{estimate:{spec}}"
    return f"{estimate:{spec}} [{lo:{spec}}, {hi:{spec}}]"


def ci_column(frame: pd.DataFrame, estimate: str, lo: str, hi: str, **options) -> list[str]:
    """One :func:`format_ci` cell per row of ``frame``."""
    return [format_ci(e, a, b, **options) for e, a, b in frame[[estimate, lo, hi]].to_numpy()]


def thesis_cell(value) -> str:
    """A thesis effect size as a signed number, or ``no number`` where it gives none."""
    return "no number" if value is None or pd.isna(value) else f"{float(value):+.4g}"


def p_cell(p) -> str:
    """A p-value to three decimals, ``< 0.001`` below that, ``—`` without one."""
    if pd.isna(p):
        return NOT_APPLICABLE
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def yes_no(value) -> str:
    """``yes``/``no`` of a bool (also as read back from CSV), ``—`` for NaN or None."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return NOT_APPLICABLE
    return "yes" if str(value) in ("True", "1", "1.0") else "no"
