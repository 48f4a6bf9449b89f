"""One formatter for every table of the book.

A stage's notebook hands the view a report function built (:mod:`~crossmodal.report.detection`
and its siblings) to :func:`book_table`, with a caption and where the table comes from. The
result renders in the book as a numbered MyST ``{table}``: no index column, counts as
integers, ``—`` where a value does not apply, other numbers to three significant digits,
wide tables split into parts that keep their key columns, and a caption that ends with the
table's provenance: the DVC stage, the function that built it (linked into the API
reference), the ``params.yaml`` keys it read and a download link to the file behind it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from crossmodal.report.common import NOT_APPLICABLE

# The executed notebooks live at book/executed/<part>/<page>.ipynb: three levels below the
# repository root, from which the stages write every path they are given.
PAGE_TO_REPOSITORY = "../../../"


def number_cell(value, *, digits: int = 3) -> str:
    """A number for a table cell: integers as integers, others to at most ``digits``
    significant digits without an exponent in the range a table shows (large values rounded to a whole
    number), ``—`` for NaN or None."""
    if value is None or (isinstance(value, (float, np.floating)) and math.isnan(value)):
        return NOT_APPLICABLE
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)) or float(value).is_integer():
        return str(int(value))
    magnitude = abs(float(value))
    if magnitude >= 10 ** (digits - 1):
        return f"{float(value):.0f}"
    if magnitude >= 1e-3:  # trailing zeros dropped: a threshold of 0.1 reads 0.1, not 0.100
        decimals = digits - 1 - math.floor(math.log10(magnitude))
        return f"{float(value):.{decimals}f}".rstrip("0").rstrip(".")
    return f"{float(value):.{digits - 1}e}"


def format_cells(frame: pd.DataFrame, *, digits: int = 3) -> pd.DataFrame:
    """Every cell of ``frame`` as the text a reader sees: the index becomes leading columns
    (unless it is the default 0..n-1), nested column labels are joined with `` · ``,
    numbers go through :func:`number_cell`, booleans read yes/no and missing values ``—``."""
    table = frame.copy()
    if not isinstance(table.index, pd.RangeIndex) or any(name is not None for name in table.index.names):
        table = table.reset_index()
    if isinstance(table.columns, pd.MultiIndex):
        table.columns = [" · ".join(str(part) for part in column if str(part)) for column in table.columns]
    table.columns = [str(column) for column in table.columns]

    def cell(value) -> str:
        if isinstance(value, str):  # already a cell: an empty one stays empty (same as above, none)
            return value
        if value is None or isinstance(value, (int, float, bool, np.number, np.bool_)):
            return number_cell(value, digits=digits)
        return str(value)

    return table.apply(lambda column: column.map(cell)) if len(table) else table.astype(str)


def split_columns(table: pd.DataFrame, *, keys: int = 1, max_columns: int = 7) -> list[pd.DataFrame]:
    """``table`` cut into parts of at most ``max_columns`` columns, each repeating the
    first ``keys`` columns (the ones that say what a row is)."""
    if len(table.columns) <= max_columns:
        return [table]
    head, rest = list(table.columns[:keys]), list(table.columns[keys:])
    width = max(1, max_columns - keys)
    return [table[head + rest[start:start + width]] for start in range(0, len(rest), width)]


def markdown_rows(table: pd.DataFrame) -> list[str]:
    """``table`` as the lines of a Markdown (MyST) table, without its index; a cell's pipes
    are escaped and its line breaks joined, so a cell may hold MyST roles and links."""
    def cell(value) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    return (["| " + " | ".join(cell(c) for c in table.columns) + " |", "|" + "---|" * len(table.columns)]
            + ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)])


def download_target(path: str | Path) -> str:
    """The link from a book page to ``path``, a file a stage wrote (relative to the
    repository root, or absolute inside the working directory)."""
    path = Path(path)
    if path.is_absolute():
        path = Path(os.path.relpath(path, Path.cwd()))
    return PAGE_TO_REPOSITORY + path.as_posix()


def provenance(stage: str | Sequence[str] | None, built_by: Callable, *, params: Iterable[str] = (),
               data: Iterable[str | Path] = ()) -> str:
    """The provenance sentence of a table's caption: ``Stage `x`; built by {py:func}`f`;
    params `k`; data {download}`file <link>`.`` (a figure's is the same, written in its
    cell's metadata). ``stage``: the DVC stage that ran the page, the stages whose files a
    book page gathers, or None for a page the book build itself writes."""
    where = f"{built_by.__module__}.{built_by.__qualname__}"
    if not where.startswith("crossmodal.") or any(part.startswith("_") for part in where.split(".")):
        raise ValueError(f"{where}: a table is built by a public crossmodal function, one the API reference documents")
    if stage is None:
        made = "Written when the book is built (`crossmodal book`)"
    elif isinstance(stage, str):
        made = f"Stage `{stage}`"
    else:
        made = "Stages " + ", ".join(f"`{name}`" for name in stage)
    parts = [made, f"built by {{py:func}}`{where}`"]
    keys = list(params)
    if keys:
        parts.append("params " + ", ".join(f"`{key}`" for key in keys))
    files = [Path(f) for f in data]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"the data behind a table is not there: {', '.join(missing)}")
    if files:
        # a file's name says which it is, unless two share it (two stages' metrics.csv)
        shown = [f.name if [g.name for g in files].count(f.name) == 1 else f.as_posix() for f in files]
        parts.append("data " + ", ".join(f"{{download}}`{text} <{download_target(f)}>`"
                                         for text, f in zip(shown, files)))
    return "; ".join(parts) + "."


@dataclass(frozen=True)
class BookTable:
    """A formatted table with its number anchor, caption and provenance; renders as MyST
    Markdown (one ``{table}`` per part) in the book and as HTML in a Jupyter session."""

    parts: tuple[pd.DataFrame, ...]
    name: str
    caption: str
    source: str

    def part_caption(self, index: int) -> str:
        caption = self.caption.rstrip()
        if len(self.parts) > 1:
            caption = f"{caption.rstrip('.')} (part {index + 1} of {len(self.parts)})."
        return f"{caption} {self.source}"

    def part_name(self, index: int) -> str:
        return self.name if index == 0 else f"{self.name}-{index + 1}"

    def _repr_markdown_(self) -> str:
        blocks = []
        for index, part in enumerate(self.parts):
            # A colon fence: a backtick fence's first line may not hold the caption's backticks.
            blocks.append("\n".join([f":::{{table}} {self.part_caption(index)}", f":name: {self.part_name(index)}",
                                     "", *markdown_rows(part), ":::"]))
        return "\n\n".join(blocks)

    def _repr_html_(self) -> str:
        return "".join(part.to_html(index=False, escape=True).replace(
            ">", f"><caption>{self.part_caption(i)}</caption>", 1) for i, part in enumerate(self.parts))


def book_table(frame: pd.DataFrame, *, name: str, caption: str, stage: str | Sequence[str] | None, built_by: Callable,
               params: Iterable[str] = (), data: Iterable[str | Path] | str | Path = (),
               digits: int = 3, keys: int = 1, max_columns: int = 7, transpose: bool = False) -> BookTable:
    """``frame`` as a captioned, numbered book table.

    Parameters
    ----------
    frame : the view a report function built.
    name : the table's anchor, ``tbl-…``, unique in the book.
    caption : what the table shows, a sentence or two.
    stage, built_by, params, data : the provenance: the DVC stage that ran the page (see
        :func:`provenance` for pages that gather stages' files or that the build writes), the
        public function that built ``frame`` (a report function, or the stage function
        that wrote the file shown as it is), the ``params.yaml`` keys it read, the
        files (relative to the repository root) it was built from.
    digits : significant digits of non-integer numbers.
    keys, max_columns : a table wider than ``max_columns`` is split into parts that each
        repeat its first ``keys`` columns.
    transpose : show ``frame`` turned (rows become columns), for a few long rows.
    """
    if not name.startswith("tbl-"):
        raise ValueError(f"table name {name!r}: book table names start with 'tbl-'")
    table = format_cells(frame.T.rename_axis("") if transpose else frame, digits=digits)
    files = [data] if isinstance(data, (str, Path)) else list(data)
    parts = tuple(split_columns(table, keys=keys, max_columns=max_columns))
    return BookTable(parts, name, caption, provenance(stage, built_by, params=params, data=files))
