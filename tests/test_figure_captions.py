"""Every figure of the book is captioned, numbered and traceable: its cell carries MyST-NB
figure metadata whose caption names the DVC stage that runs the page, the function that drew
it (a link into the API reference) and a download link to the data behind it, a file the
stage writes. A notebook run by several stages (Part 1, once per study) is checked as each
page it makes: its ``{{ name }}`` placeholders filled with that stage's parameters, as the
executor fills them. The browser test checks the built pages; this one checks the sources."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import jupytext
import pytest
import yaml

from conftest import REPO
from crossmodal.execute import fill_placeholders
from crossmodal.execute import notebook_parameters

NOTEBOOKS = sorted((REPO / "notebooks").rglob("*.py"))
STAGE_SOURCES = "\n".join(p.read_text() for p in (REPO / "src" / "crossmodal" / "stages").rglob("*.py"))
DRAWS = re.compile(r"plt\.show\(\)|display\(as_image\(|display\([a-z_]*_figure\(|^registration_panel\(", re.M)
DISPLAYS = re.compile(r"\bdisplay\(|plt\.show\(\)|^registration_panel\(", re.M)


STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def stages_of(notebook) -> list[tuple[str, list[str], dict[str, str]]]:
    """Each dvc.yaml stage that runs ``notebook``: its name, outputs and the parameters the
    page runs with (the notebook's defaults, then the command's ``-p key=value``)."""
    rel = str(notebook.relative_to(REPO))
    found = []
    for name, stage in STAGES.items():
        if re.search(rf"\b{re.escape(rel)}\b", stage["cmd"]):
            outs = [o if isinstance(o, str) else next(iter(o)) for o in stage.get("outs", []) + stage.get("metrics", [])]
            values = {**notebook_parameters(jupytext.read(notebook)), **dict(re.findall(r"-p (\w+)=(\S+)", stage["cmd"]))}
            found.append((name, outs, values))
    return found


def figure_cells(notebook, values: dict | None = None) -> list:
    """The cells of ``notebook`` that draw a figure, placeholders filled with ``values``
    (default: the first stage's that runs it)."""
    nb = jupytext.read(notebook)
    if values is None and "{{" in notebook.read_text():
        values = stages_of(notebook)[0][2]
    nb = fill_placeholders(nb, values, source=notebook) if values else nb
    return [c for c in nb.cells if c.cell_type == "code" and DRAWS.search(c.source)]


def pages():
    """Every page a notebook makes: (notebook, stage, outputs, parameter values); the book's
    own pages, which no stage runs, with stage None."""
    return [(nb, *stage) for nb in NOTEBOOKS
            for stage in stages_of(nb) or [(None, [], notebook_parameters(jupytext.read(nb)))]]


def all_figures():
    return [(nb, cell) for nb, _, _, values in pages() for cell in figure_cells(nb, values)]


def test_the_book_has_figures_to_check():
    assert len(all_figures()) >= 15


@pytest.mark.parametrize("notebook,stage,outs,values", [page for page in pages() if figure_cells(page[0], page[3])],
                         ids=lambda p: str(p.relative_to(REPO)) if isinstance(p, Path) else p if isinstance(p, str) else "")
def test_every_figure_is_captioned_with_its_provenance(notebook, stage, outs, values):
    assert stage, f"no stage runs {notebook.relative_to(REPO)}"
    for cell in figure_cells(notebook, values):
        figure = cell.metadata.get("mystnb", {}).get("figure", {})
        caption, where = figure.get("caption", ""), f"{notebook.name}: {cell.source.splitlines()[0]}"
        assert figure.get("name", "").startswith("fig-"), where
        assert len(DISPLAYS.findall(cell.source)) == 1, f"{where}: one figure per captioned cell"
        # a bare matplotlib Figure handed to display() renders as its text repr, not an image
        assert not re.search(r"display\([a-z_]*_figure\(", cell.source), f"{where}: display(as_image(...))"
        assert f"Stage `{stage}`" in caption, where
        functions = re.findall(r"\{py:func\}`([\w.]+)`", caption)
        assert functions, f"{where}: name the function that drew it"
        for dotted in functions:
            module, name = dotted.rsplit(".", 1)
            assert dotted.startswith("crossmodal.report.") and callable(getattr(importlib.import_module(module), name))
            assert name in cell.source, f"{where}: {name} drew another figure"
        data = re.findall(r"\{download\}`[^<`]*<\.\./\.\./\.\./([^>]+)>`", caption)
        assert data, f"{where}: link the data behind it"
        assert all(any(path == out or path.startswith(out.rstrip("/") + "/") for out in outs) for path in data), (
            f"{where}: {data} is not written by {stage} ({outs})")
        # a misspelt file name: the stages write every table under a name their code spells out
        assert all(re.search(rf"[\"']{re.escape(Path(path).stem)}(\.\w+)?[\"']", STAGE_SOURCES) for path in data), (
            f"{where}: no stage writes a file named like {data}")


def test_figure_names_are_unique_across_the_book():
    names = [cell.metadata["mystnb"]["figure"]["name"] for _, cell in all_figures()]
    assert len(names) == len(set(names))


# ----------------------------------------------------------------------------- tables

SHOWN = re.compile(r"\bdisplay\((?!Markdown\(|as_image\(|book_table\()")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_table_goes_through_the_book_formatter(notebook):
    """A page shows a table only as a book table (captioned, numbered, traceable: the
    formatter checks the builder and the data file when the page runs); a DataFrame handed
    to display() would render raw, with its index and unformatted numbers."""
    for cell in jupytext.read(notebook).cells:
        if cell.cell_type == "code":
            raw = [line for line in cell.source.splitlines() if SHOWN.search(line)]
            assert not raw, f"{notebook.name}: {raw} shows a table without book_table"


@pytest.mark.parametrize("notebook", [nb for nb in NOTEBOOKS if "book" not in nb.parts[-2:-1]],
                         ids=lambda p: str(p.relative_to(REPO)))
def test_tables_name_the_stage_that_runs_their_page(notebook):
    source = notebook.read_text()
    for stage, _, values in stages_of(notebook):
        # A Part 1 page runs once per study: its tables name f"<step>_{study}", the study its stage passes.
        named = [name.replace("{study}", values["study"]) if "study" in values else name
                 for name in re.findall(r"\bstage=f?\"(\w+(?:\{study\})?)\"", source)]
        assert len(named) == source.count("book_table("), f"{notebook.name}: every book_table names its stage"
        assert set(named) <= {stage}, f"{notebook.name}: tables name {set(named)}, the page runs in {stage}"


def test_table_names_are_unique_across_the_book():
    # a notebook run once per study names its tables f"...-{study}": one name per page
    names = [name.replace("{study}", values.get("study", "{study}"))
             for nb, _, _, values in pages() for name in re.findall(r"\bname=f?\"(tbl-[^\"]*)\"", nb.read_text())]
    assert len(names) >= 30 and len(names) == len(set(names))
