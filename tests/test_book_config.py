"""The book's API reference: every module of ``crossmodal`` has its autodoc block in
book/api.md, one section per subpackage, and the page is in the book."""

from __future__ import annotations

import importlib.util
import re

import yaml

from conftest import REPO

API_PAGE = REPO / "book" / "api.md"
PACKAGE = REPO / "src" / "crossmodal"
NOT_DOCUMENTED = {"crossmodal.__main__"}  # `python -m crossmodal`: the CLI, documented as cli


def package_modules() -> set[str]:
    """Every module and subpackage of crossmodal, from the source tree (nothing imported)."""
    names = set()
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names - {"crossmodal"} - NOT_DOCUMENTED


def documented_modules() -> list[str]:
    return re.findall(r"^\.\. automodule:: (\S+)$", API_PAGE.read_text(), re.MULTILINE)


def test_every_module_has_one_autodoc_block_in_the_api_reference():
    documented = documented_modules()
    assert sorted(set(documented)) == sorted(documented), "a module documented twice"
    assert sorted(package_modules() - set(documented)) == [], "modules missing from book/api.md"
    assert sorted(set(documented) - package_modules()) == [], "book/api.md names no such module"


def test_each_subpackage_and_top_level_module_has_its_section():
    sections = re.findall(r"^## `crossmodal\.(\w+)`$", API_PAGE.read_text(), re.MULTILINE)
    top_level = {name.split(".")[1] for name in package_modules()}
    assert sorted(sections) == sorted(top_level)
    section = None  # each module's block sits in its own subpackage's section
    for line in API_PAGE.read_text().splitlines():
        if heading := re.match(r"## `crossmodal\.(\w+)`$", line):
            section = heading[1]
        elif block := re.match(r"\.\. automodule:: crossmodal\.(\w+)", line):
            assert block[1] == section, line


def test_the_api_reference_closes_the_book_and_autodoc_is_on():
    toc = yaml.safe_load((REPO / "book" / "_toc.yml").read_text())
    about = next(part for part in toc["parts"] if part["caption"] == "About this book")
    assert about["chapters"][-1] == {"file": "api"}
    config = yaml.safe_load((REPO / "_config.yml").read_text())["sphinx"]
    assert {"sphinx.ext.autodoc", "sphinx.ext.napoleon"} <= set(config["extra_extensions"])


def load_docstring_hooks(name: str = "api_docstrings"):
    path = REPO / "book" / "_ext" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_numbered_references_become_citations_named_after_the_docstring_that_lists_them():
    hooks = load_docstring_hooks()

    def own_function():
        pass

    own_function.__module__ = "crossmodal.stats.delong"
    lines = ["As in [1]_, with the module's correction [2]_.", "",
             "References", "----------", ".. [1] Someone. A paper, 2001."]
    hooks.name_citations(None, "function", "crossmodal.stats.delong.fast_delong",
                         own_function, {}, lines)
    assert lines[0] == "As in [fast_delong-1]_, with the module's correction [delong-2]_."
    assert lines[4] == ".. [fast_delong-1] Someone. A paper, 2001."
    assert lines[-3:] == [".. only:: latex", "", "   [fast_delong-1]_"]  # cited: no warning
    module_lines = [".. [2] Someone else. Another paper, 2014."]
    hooks.name_citations(None, "module", "crossmodal.stats.delong", None, {}, module_lines)
    assert module_lines[0] == ".. [delong-2] Someone else. Another paper, 2014."


def test_an_inline_script_registered_twice_is_written_once():
    from sphinx.builders.html._assets import _JavaScript

    hooks = load_docstring_hooks("single_scripts")
    thebe = 'const THEBE_JS_URL = "x"'
    scripts = [_JavaScript("a.js"), _JavaScript(None, body=thebe), _JavaScript("", body=thebe),
               _JavaScript("b.js"), _JavaScript("", body="const OTHER = 1")]
    context = {"script_files": scripts}
    hooks.drop_repeated_scripts(None, "index", "page.html", context, None)
    assert context["script_files"] == [scripts[0], scripts[1], scripts[3], scripts[4]]
