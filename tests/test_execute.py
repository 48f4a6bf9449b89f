"""The stage notebooks' executor: the saved page is the same byte for byte run after run,
papermill's parameter cells are tagged so the book leaves them out, and the page's prose
and captions name the parameters it ran with."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from crossmodal.execute import execute_notebook
from crossmodal.execute import fill_placeholders
from crossmodal.execute import notebook_parameters
from crossmodal.execute import tag_parameter_cells

# A percent notebook with a page's usual cells: prose, parameters, a hidden-input cell, output.
TINY_NOTEBOOK = '''# %% [markdown]
# # A tiny page that says {{ greeting }}

# %% tags=["parameters"]
greeting = "hello"

# %% tags=["hide-input"] mystnb={"figure": {"name": "fig-{{ greeting }}", "caption": "It says `{{greeting}}`."}}
shout = greeting.upper()

# %%
print(shout)
'''


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> tuple[bytes, bytes]:
    """The saved page of two runs of the tiny notebook with the same parameter, as a DVC
    stage runs it: same source, same output path."""
    folder = tmp_path_factory.mktemp("execute")
    source, output = folder / "tiny.py", folder / "tiny.ipynb"
    source.write_text(TINY_NOTEBOOK)
    runs = []
    for _ in range(2):
        execute_notebook(source, output, {"greeting": "bonjour"})
        runs.append(output.read_bytes())
    return tuple(runs)


def test_parameter_cells_are_removed_from_the_book_and_other_cells_untouched(executed):
    nb = nbformat.reads(executed[0].decode(), as_version=4)
    tags = [cell.metadata.get("tags", []) for cell in nb.cells]
    assert tags == [[], ["parameters", "remove-cell"], ["injected-parameters", "remove-cell"],
                    ["hide-input"], []]
    assert nb.cells[2].source == '# Parameters\ngreeting = "bonjour"\n'
    assert nb.cells[3].source == "shout = greeting.upper()"
    assert nb.cells[4].outputs[0]["text"] == "BONJOUR\n"


def test_prose_and_captions_name_the_parameters_the_page_ran_with(executed):
    nb = nbformat.reads(executed[0].decode(), as_version=4)
    assert nb.cells[0].source == "# A tiny page that says bonjour"
    assert nb.cells[3].metadata["mystnb"]["figure"] == {"name": "fig-bonjour", "caption": "It says `bonjour`."}


def test_a_placeholder_takes_the_default_and_one_naming_no_parameter_is_refused():
    import jupytext

    nb = jupytext.reads(TINY_NOTEBOOK, fmt="py:percent")
    assert notebook_parameters(nb) == {"greeting": "hello"}
    assert fill_placeholders(nb, notebook_parameters(nb)).cells[0].source.endswith("says hello")
    nb.cells[0].source = r"# \{{ greeting }} stays, {{ greeting }} is filled"
    assert fill_placeholders(nb, {"greeting": "hi"}).cells[0].source == "# {{ greeting }} stays, hi is filled"
    nb.cells[0].source = "# {{ farewell }}"
    with pytest.raises(KeyError, match=r"tiny.py: placeholder \{\{ farewell \}\} names no parameter"):
        fill_placeholders(nb, {"greeting": "hello"}, source="tiny.py")


def test_the_saved_notebook_is_identical_run_to_run(executed):
    first, second = executed
    assert first == second
    assert b"start_time" not in first


def test_tagging_is_idempotent_and_keeps_the_cells_own_tags():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters", "hide-output"]}),
        nbformat.v4.new_code_cell("print(x)"),
    ])
    once = [cell.metadata.get("tags") for cell in tag_parameter_cells(nb).cells]
    twice = [cell.metadata.get("tags") for cell in tag_parameter_cells(nb).cells]
    assert once == twice == [["parameters", "hide-output", "remove-cell"], None]
