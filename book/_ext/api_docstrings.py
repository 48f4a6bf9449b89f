"""Sphinx hooks for the API reference (book/api.md): numpydoc citations and prose
attribute docstrings, as napoleon alone does not render them.

* The docstrings number their references from ``[1]`` each, as numpydoc expects. On one
  page these would be many footnotes ``[1]``; each becomes a citation named after the
  docstring that defines it (``[delong-1]``), and a reference to one its docstring does not
  define (a function citing its module's references) names the module's. As numpydoc
  does, a LaTeX-only line cites them all, so a reference list cited nowhere in the text
  raises no "not referenced" warning.
* Napoleon reads the first line of a data or attribute docstring as ``type: description``;
  this package's ``#:`` comments are prose ("Pixel and slice spacing, mm: ..."), so those
  docstrings are kept as written.
"""

from __future__ import annotations

import re

DEFINITION = re.compile(r"^(\s*)\.\. \[(\d+)\]", re.MULTILINE)
REFERENCE = re.compile(r"\[(\d+)\]_")
PROSE = ("data", "attribute", "property")


def name_citations(app, what, name, obj, options, lines):
    """Rename the ``[N]`` footnotes of ``lines`` (in place) after their docstring or module."""
    text = "\n".join(lines)
    defined = {number for _, number in DEFINITION.findall(text)}
    module = name if what == "module" else getattr(obj, "__module__", None) or name

    def label(number: str) -> str:
        owner = name if number in defined else module
        return f"{owner.rsplit('.', 1)[-1]}-{number}"

    text = DEFINITION.sub(lambda m: f"{m[1]}.. [{label(m[2])}]", text)
    text = REFERENCE.sub(lambda m: f"[{label(m[1])}]_", text)
    lines[:] = text.split("\n")
    if defined:
        cited = " ".join(f"[{label(number)}]_" for number in sorted(defined, key=int))
        lines.extend(["", ".. only:: latex", "", f"   {cited}"])


def keep_prose_before_napoleon(app, what, name, obj, options, lines):
    if what in PROSE:
        app.env.temp_data.setdefault("prose_docstrings", {})[name] = list(lines)


def restore_prose_after_napoleon(app, what, name, obj, options, lines):
    kept = app.env.temp_data.get("prose_docstrings", {}).pop(name, None)
    if what in PROSE and kept is not None:
        lines[:] = kept


def setup(app):
    app.setup_extension("sphinx.ext.napoleon")  # its hook runs at the default priority, 500
    app.connect("autodoc-process-docstring", keep_prose_before_napoleon, priority=400)
    app.connect("autodoc-process-docstring", restore_prose_after_napoleon, priority=600)
    app.connect("autodoc-process-docstring", name_citations, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
