"""The package keeps the shape README "Layout" describes: small modules and functions, the
report layer on top, stages one per DVC stage, notebooks that compute nothing."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from dvc_deps import REPO
from dvc_deps import SRC
from dvc_deps import dvc_stages
from dvc_deps import imports_of

PACKAGE_DIR = SRC / "crossmodal"
MODULES = sorted(PACKAGE_DIR.rglob("*.py"))
NOTEBOOKS = sorted((REPO / "notebooks").rglob("*.py"))
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80
# Library packages: everything but the layers on top (stages, report) and the entry points.
TOP_LAYERS = ("stages", "report", "cli.py", "__main__.py", "execute.py")


def _name(path: Path) -> str:
    return ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")


def _layer(path: Path) -> str:
    return path.relative_to(PACKAGE_DIR).parts[0]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_module_and_function_sizes(path):
    assert len(path.read_text().splitlines()) <= MAX_MODULE_LINES
    long = [f"{node.name}: {node.end_lineno - node.lineno + 1} lines"
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == []


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_only_notebooks_import_the_report_layer(path):
    if _layer(path) == "report":
        return
    imported = imports_of(ast.parse(path.read_text()), _name(path), path.name == "__init__.py")
    assert not [m for m in imported if m.startswith("crossmodal.report")]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_library_does_not_import_stages_or_plotting_at_load_time(path):
    if _layer(path) in TOP_LAYERS:
        return
    tree = ast.parse(path.read_text())
    imported = imports_of(tree, _name(path), path.name == "__init__.py")
    assert not [m for m in imported if m.startswith("crossmodal.stages")]
    top_level = [alias.name if isinstance(node, ast.Import) else node.module
                 for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))
                 for alias in node.names]
    assert not [m for m in top_level if m and m.split(".")[0] == "matplotlib"]


def test_only_the_data_stage_imports_the_phantom():
    # The phantom is written as DICOM and read back like a hospital export: only the data
    # stage may generate it. Its parameter sources (a table of strings, no generator) are
    # also read by the data card.
    readable = {"crossmodal.phantom.sources"}
    for path in MODULES:
        if _layer(path) in ("phantom",) or path.name == "data.py" and _layer(path) == "stages":
            continue
        imported = imports_of(ast.parse(path.read_text()), _name(path), path.name == "__init__.py")
        assert not [m for m in imported if m.startswith("crossmodal.phantom") and m not in readable], path


# Names of computations that belong in a stage, never in a notebook.
COMPUTING = ("bootstrap", "quantile", "percentile", "register", "resample", "delong", "average_precision",
             "roc_auc", "ap50", "metrics_with_ci", "compare_with_ci", "mean_difference")
# A notebook writes nothing itself: files, DVC metrics included, come from its stage's run.
WRITING = {"open", "write_text", "write_bytes", "dump", "to_csv", "to_json", "savefig", "imwrite"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(REPO)))
def test_notebooks_compute_nothing_and_write_no_metric(path):
    tree = ast.parse(path.read_text())
    called = {node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
              for node in ast.walk(tree) if isinstance(node, ast.Call)}
    imported = {alias.asname or alias.name for node in ast.walk(tree)
                if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}
    assert not [n for n in called | imported if any(word in n.lower() for word in COMPUTING)]
    assert not called & WRITING


def _stage_modules_of_notebook(source: str) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("crossmodal.stages"):
            modules |= {f"{node.module}.{a.name}" if (PACKAGE_DIR.parent / node.module.replace(".", "/")
                        / f"{a.name}.py").is_file() else node.module for a in node.names}
    return modules


def test_every_dvc_stage_runs_one_stage_module_named_like_it():
    # dvc.yaml stage <step>_<cohort> runs crossmodal.stages[.<cohort>].<step>; a Part 1 stage
    # <step>_<study> (-p study=<study>) runs Part 1's crossmodal.stages.pelvis.<step>
    for name, stage in dvc_stages().items():
        words = stage["cmd"].split()
        step, cohort = name.rsplit("_", 1)
        if words[1] == "stage":
            modules = {f"crossmodal.stages.{words[2]}"}
        else:
            modules = _stage_modules_of_notebook((REPO / words[2]).read_text())
        study = re.search(rf"-p study={cohort}\b", stage["cmd"])
        allowed = [{f"crossmodal.stages.{cohort}.{step}"}, {f"crossmodal.stages.{step}"}]
        assert modules in allowed + ([{f"crossmodal.stages.pelvis.{step}"}] if study else []), name


def test_architecture_page_lists_every_stage_with_its_module_notebook_and_outputs():
    page = (REPO / "book" / "architecture.md").read_text()
    rows = {line.split("|")[1].strip(" `"): line for line in page.splitlines() if line.startswith("| `")}
    stages = dvc_stages()
    assert set(rows) == set(stages)
    for name, stage in stages.items():
        notebook = stage["cmd"].split()[2]
        module = _stage_modules_of_notebook((REPO / notebook).read_text()).pop().removeprefix("crossmodal.")
        outs = [o if isinstance(o, str) else next(iter(o)) for o in stage.get("outs", []) + stage.get("metrics", [])]
        for text in [notebook, f"`{module}`", *[o for o in outs if not o.endswith(".ipynb")]]:
            assert text in rows[name], f"{name}: {text} missing from book/architecture.md"
