"""Every figure of the book is captioned, numbered and traceable: its cell carries MyST-NB
figure metadata whose caption names the DVC stage that runs the page, the function that drew
it (a link into the API reference) and a download link to the data behind it, a file the
stage writes. The browser test checks the built pages; this one checks the sources."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import jupytext
import pytest
import yaml

from conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").rglob("*.py"))
STAGE_SOURCES = "\n".join(p.read_text() for p in (REPO / "src" / "crossmodal" / "stages").rglob("*.py"))
DRAWS = re.compile(r"plt\.show\(\)|display\(as_image\(|display\([a-z_]*_figure\(|^registration_panel\(", re.M)
DISPLAYS = re.compile(r"\bdisplay\(|plt\.show\(\)|^registration_panel\(", re.M)


STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def stage_of(notebook) -> tuple[str, list[str]]:
    """The dvc.yaml stage that runs ``notebook`` and its outputs."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    rel = str(notebook.relative_to(REPO))
    for name, stage in stages.items():
        if rel in stage["cmd"]:
            outs = [o if isinstance(o, str) else next(iter(o)) for o in stage.get("outs", []) + stage.get("metrics", [])]
            return name, outs
    raise AssertionError(f"no stage runs {rel}")


def figure_cells(notebook) -> list:
    return [c for c in jupytext.read(notebook).cells if c.cell_type == "code" and DRAWS.search(c.source)]


def all_figures():
    return [(nb, cell) for nb in NOTEBOOKS for cell in figure_cells(nb)]


def test_the_book_has_figures_to_check():
    assert len(all_figures()) >= 15


@pytest.mark.parametrize("notebook", [nb for nb in NOTEBOOKS if figure_cells(nb)],
                         ids=lambda p: str(p.relative_to(REPO)))
def test_every_figure_is_captioned_with_its_provenance(notebook):
    stage, outs = stage_of(notebook)
    for cell in figure_cells(notebook):
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
    stage, _ = stage_of(notebook)
    source = notebook.read_text()
    # A Part 1 page runs once per study: its tables name f"<step>_{study}", the study its stage passes.
    study = re.search(r"-p study=(\w+)", STAGES[stage]["cmd"])
    named = [name.replace("{study}", study.group(1)) if study else name
             for name in re.findall(r"\bstage=f?\"(\w+(?:\{study\})?)\"", source)]
    assert len(named) == source.count("book_table("), f"{notebook.name}: every book_table names its stage"
    assert set(named) <= {stage}, f"{notebook.name}: tables name {set(named)}, the page runs in {stage}"


def test_table_names_are_unique_across_the_book():
    names = [name for nb in NOTEBOOKS for name in re.findall(r"\bname=f?\"(tbl-[^\"]*)\"", nb.read_text())]
    assert len(names) >= 30 and len(names) == len(set(names))
