"""Execute a jupytext percent notebook with papermill, as the DVC stages do.

One notebook can make several pages: Part 1's run once per study (``-p study=lung``). Its
markdown and its cells' metadata (figure names and captions) quote parameters as
``{{ name }}`` (a caption's stage ``data_card_{{ study }}``, its data file
``../../../{{ out }}/x.csv``), filled with the values the page runs with
(:func:`fill_placeholders`), so each page names its own stage, anchors and files.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path
from typing import Any

# Papermill's clock readings: they change on every run and say nothing about the results.
VOLATILE_METADATA = ("start_time", "end_time", "duration")
# The notebook's own parameters cell and the one papermill injects after it: plumbing, not
# part of the page, so MyST-NB's ``remove-cell`` tag keeps them out of the book.
PARAMETER_TAGS = ("parameters", "injected-parameters")
BOOK_REMOVE_TAG = "remove-cell"


def execute_notebook(source: str | Path, output: str | Path, parameters: dict[str, Any]) -> None:
    """Run ``source`` (``py:percent``) into ``output`` (``.ipynb``) with ``parameters``
    replacing its ``parameters`` cell; the working directory stays the repository root.

    Progress bars are off in the kernel, papermill's timings are dropped from the saved
    notebook and its cell ids are numbered, not drawn at random, so the same inputs give
    the same page, byte for byte, run after run. The parameter cells are tagged for removal
    from the book (:func:`tag_parameter_cells`).
    """
    import jupytext
    import nbformat
    import papermill

    nb = with_stable_cell_ids(jupytext.read(source))
    nb = fill_placeholders(nb, {**notebook_parameters(nb), **parameters}, source=source)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    saved = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"  # the kernel inherits this process's environment
    try:
        executed = papermill.execute_notebook(nb, str(output), parameters=parameters,
                                              kernel_name="python3", progress_bar=False,
                                              cwd=str(Path.cwd()))
    finally:
        if saved is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = saved
    for_the_book = tag_parameter_cells(with_stable_cell_ids(without_timings(executed)))
    nbformat.write(for_the_book, str(output))


def without_timings(nb):
    """``nb`` with papermill's start/end times and durations removed (in place)."""
    for holder in [nb.metadata] + [cell.metadata for cell in nb.cells]:
        record = holder.get("papermill", {})
        for key in VOLATILE_METADATA:
            record.pop(key, None)
        holder.pop("execution", None)
    return nb


def with_stable_cell_ids(nb):
    """``nb`` with its cells' ids numbered in order (in place) where nbformat draws them at
    random; papermill's injected cell is ``injected-parameters`` and leaves the others'
    numbers as they were before execution."""
    index = 0
    for cell in nb.cells:
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.id = "injected-parameters"
        else:
            cell.id = f"cell-{index}"
            index += 1
    return nb


def tag_parameter_cells(nb):
    """``nb`` with its ``parameters`` and ``injected-parameters`` cells tagged
    ``remove-cell`` (in place, once), so the book shows neither; other cells are untouched."""
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if any(tag in tags for tag in PARAMETER_TAGS) and BOOK_REMOVE_TAG not in tags:
            cell.metadata["tags"] = [*tags, BOOK_REMOVE_TAG]
    return nb


PLACEHOLDER = re.compile(r"(\\?)\{\{\s*(\w+)\s*\}\}")


def notebook_parameters(nb) -> dict[str, Any]:
    """The defaults of ``nb``'s ``parameters`` cell (literal assignments), by name."""
    values: dict[str, Any] = {}
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.Assign):
                    for target in node.targets:
                        if isinstance(target, ast.Name):
                            values[target.id] = ast.literal_eval(node.value)
    return values


def fill_placeholders(nb, values: dict[str, Any], *, source: str | Path = "notebook"):
    """``nb`` with every ``{{ name }}`` in its markdown cells and in any cell's metadata
    strings replaced by ``values[name]`` (in place); ``\\{{ name }}`` is kept as the literal
    ``{{ name }}`` (a page that explains placeholders). A placeholder naming no parameter
    raises ``KeyError`` naming the notebook and the placeholder."""

    def fill(text: str) -> str:
        def value(match: re.Match) -> str:
            if match.group(1):  # escaped: the placeholder itself, as text
                return match.group(0)[1:]
            if match.group(2) not in values:
                raise KeyError(f"{source}: placeholder {match.group(0)} names no parameter of the page "
                               f"({', '.join(sorted(values))})")
            return str(values[match.group(2)])
        return PLACEHOLDER.sub(value, text)

    def fill_all(item):
        if isinstance(item, str):
            return fill(item)
        if isinstance(item, dict):
            return type(item)({k: fill_all(v) for k, v in item.items()})
        if isinstance(item, list):
            return [fill_all(v) for v in item]
        return item

    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = fill(cell.source)
        cell.metadata = fill_all(cell.metadata)
    return nb
