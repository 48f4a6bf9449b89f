"""What each DVC stage can run: its code dependencies (the import graph from its entry point)
and the params it reads, derived from the source so that ``dvc.yaml`` can be checked
against them (``test_dvc_deps.py``) or printed (``python tests/dvc_deps.py``).

Entry points: ``crossmodal stage NAME ...`` runs ``crossmodal.stages.NAME``;
``crossmodal notebook NB.py ...`` runs the notebook file. Both go through ``cli.py`` (its
module-level imports and the imports of the command's own function) and ``params.py``.
Every ``import`` statement of a reached module counts, including those inside functions.
"""

from __future__ import annotations

import ast
import shlex
import sys
from functools import cache
from pathlib import Path

import yaml

from crossmodal.params import DERIVED
from crossmodal.params.schema import StudySections

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
PACKAGE = "crossmodal"
# Sections no stage lists on purpose: compute only changes run time (see params.yaml).
UNLISTED_SECTIONS = {"compute"}


def module_file(name: str) -> Path | None:
    """The file of module ``name`` under src/ (package -> its __init__.py), or None."""
    base = SRC.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _resolve(node: ast.ImportFrom, current: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    parts = current.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(tree: ast.AST, current: str = "", is_package: bool = False) -> set[str]:
    """Every project module named by an import statement anywhere in ``tree``."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = _resolve(node, current, is_package)
            names = [module] + [f"{module}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {n for n in names if n.split(".")[0] == PACKAGE and module_file(n)}
    return found


def _with_parents(name: str) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


@cache
def _module_imports(name: str) -> frozenset[str]:
    path = module_file(name)
    return frozenset(imports_of(ast.parse(path.read_text()), name, path.name == "__init__.py"))


def reachable_modules(start: set[str]) -> set[str]:
    """Modules (with their parent packages) reachable from ``start`` by imports. The CLI's
    imports are not followed: ``cli_entry`` has already chosen those of one command."""
    seen: set[str] = set()
    todo = [m for s in start for m in _with_parents(s)]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name == f"{PACKAGE}.cli":
            continue
        todo += [m for imported in _module_imports(name) for m in _with_parents(imported)]
    return seen


def cli_entry(command: str) -> set[str]:
    """Modules ``cli.py`` imports at load time plus those its ``command`` function imports."""
    tree = ast.parse(module_file(f"{PACKAGE}.cli").read_text())
    top = ast.Module(body=[n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))],
                     type_ignores=[])
    modules = {f"{PACKAGE}.cli"} | imports_of(top, f"{PACKAGE}.cli")
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == command.replace("-", "_"):
            modules |= imports_of(node, f"{PACKAGE}.cli")
    return modules


def stage_entry(cmd: str) -> tuple[set[str], list[Path]]:
    """(entry modules, entry files) of one ``dvc.yaml`` command."""
    words = shlex.split(cmd)
    if words[0] != PACKAGE:
        raise ValueError(f"stage command does not start with {PACKAGE!r}: {cmd}")
    command = words[1]
    modules = cli_entry(command)
    files: list[Path] = []
    if command == "stage":
        modules.add(f"{PACKAGE}.stages.{words[2]}")
    elif command == "notebook":
        notebook = REPO / words[2]
        files.append(notebook)
        modules |= imports_of(ast.parse(notebook.read_text()))
    return modules, files


def relative(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def code_deps(cmd: str) -> list[str]:
    """The smallest dep list covering every file a command can run: a package folder where
    every module in it is reachable, else the module files."""
    modules, files = stage_entry(cmd)
    reached = {module_file(m) for m in reachable_modules(modules)}
    deps = {relative(f) for f in files}
    package_root = SRC / PACKAGE
    for folder in sorted({p.parent for p in reached}, key=lambda p: len(p.parts)):
        if any(relative(folder).startswith(d + "/") for d in deps):
            continue
        inside = set(folder.rglob("*.py"))
        if folder != package_root and inside <= reached:
            deps.add(relative(folder))
    for path in reached:
        if not any(relative(path) == d or relative(path).startswith(d + "/") for d in deps):
            deps.add(relative(path))
    return sorted(deps)


def _key_chain(node: ast.AST) -> tuple[ast.AST, list[str], bool]:
    """(root, keys, whole) of ``root["a"]["b"]``: keys cut before the first one that is not a
    constant string (``params["cohort"][name]["x"]`` -> ``["cohort"]``, whole=False)."""
    keys: list[str] = []
    whole = True
    while isinstance(node, ast.Subscript):
        key = _constant_key(node.slice)
        if key is not None:
            keys.insert(0, key)
        else:
            keys, whole = [], False
        node = node.value
    return node, keys, whole


#: Stands for the study's cohort name in a key read as ``params[...][params["study"]["cohort"]]``.
STUDY_COHORT = "<study_cohort>"


def _constant_key(node: ast.AST) -> str | None:
    """A key known before the run: a string constant, or the study's cohort name."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Subscript):
        root, keys, whole = _key_chain(node)
        if isinstance(root, ast.Name) and root.id == "params" and whole and keys == ["study", "cohort"]:
            return STUDY_COHORT
    return None


def _aliases(tree: ast.AST, root: str) -> dict[str, set[str]]:
    """Names bound to a part of the params: ``cfg = params["a"]`` -> {"cfg": {"a"}}."""
    found: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assign) or len(node.targets) != 1:
            continue
        target, value = node.targets[0], node.value
        pairs = (zip(target.elts, value.elts) if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple)
                 and len(target.elts) == len(value.elts) else [(target, value)])
        for name, expr in pairs:
            if isinstance(name, ast.Name) and root == "params" and _is_study_cohort(expr):
                found.setdefault(name.id, set()).add(f"cohort.{STUDY_COHORT}")
                continue
            chain = _key_chain(expr) if isinstance(expr, ast.Subscript) else None
            if (isinstance(name, ast.Name) and chain and chain[1] and isinstance(chain[0], ast.Name)
                    and chain[0].id == root):
                # A name bound below a variable key stands for the whole constant prefix.
                found.setdefault(name.id, set()).add(".".join(chain[1]) + ("" if chain[2] else "*"))
    return found


def _params_paths(tree: ast.AST, root: str = "params") -> set[str]:
    """Dotted keys read from the params: ``params["a"]["b"]``, and through a name bound to a
    part of them (``cfg = params["a"]``: ``cfg["b"]``, ``cfg.get("b")``; any other use of
    ``cfg`` reads all of ``a``)."""
    aliases = _aliases(tree, root)
    parent = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    local = {f.name: [a.arg for a in f.args.posonlyargs + f.args.args + f.args.kwonlyargs]
             for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)}
    found = set()
    for node in ast.walk(tree):
        if root == "params" and _is_study_cohort(node):
            found.add("study.cohort")  # which cohort is the study's
            if isinstance(parent.get(node), ast.Assign) and _binds_alias(parent[node], parent):
                continue  # a bound name is an alias (_aliases)
            outer = node  # study_cohort(params)["a"] reads cohort.<the study's cohort>.a
            while isinstance(parent.get(outer), ast.Subscript) and parent[outer].value is outer:
                outer = parent[outer]
            keys = _key_chain(outer)[1] if outer is not node else []
            found.add(".".join(["cohort", STUDY_COHORT, *keys]))
            continue
        if not isinstance(node, ast.Name) or node.id not in ({root} | set(aliases)):
            continue
        outer = node
        while isinstance(parent.get(outer), ast.Subscript) and parent[outer].value is outer:
            outer = parent[outer]
        keys = _key_chain(outer)[1]
        above = parent.get(outer)
        if (isinstance(above, ast.Attribute) and above.attr == "get" and isinstance(parent.get(above), ast.Call)
                and parent[above].args and _constant_key(parent[above].args[0]) is not None):
            keys = keys + [_constant_key(parent[above].args[0])]
        if node.id == root:
            is_binding = isinstance(above, (ast.Assign, ast.Tuple)) and outer is not node
            if keys and not (is_binding and _binds_alias(above, parent)):
                found.add(".".join(keys))
        elif isinstance(node.ctx, ast.Load) and not _handed_on(node, parent, local):
            found |= {prefix[:-1] if prefix.endswith("*") else ".".join([prefix, *keys])
                      for prefix in aliases[node.id]}
    return found


def _handed_on(node: ast.Name, parent: dict, local: dict[str, list[str]]) -> bool:
    """True when ``node`` is passed to a function of the same module under its own name
    (``f(cfg)``, ``f(cfg=cfg)``, ``partial(f, cfg=cfg)``): that function's reads of the
    name are counted where they happen."""
    above = parent.get(node)
    call = parent.get(above) if isinstance(above, ast.keyword) else above
    if not isinstance(call, ast.Call):
        return False
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr == "partial" and call.args:
        func = call.args[0]
    name = func.id if isinstance(func, ast.Name) else None
    if name not in local or node.id not in local[name]:
        return False
    if isinstance(above, ast.keyword):
        return above.arg == node.id
    return node in call.args and call.args.index(node) == local[name].index(node.id)


def _binds_alias(node: ast.AST, parent: dict) -> bool:
    """True when ``node`` is the value side of an assignment to plain names."""
    assign = node if isinstance(node, ast.Assign) else parent.get(node)
    if not isinstance(assign, ast.Assign) or len(assign.targets) != 1:
        return False
    target = assign.targets[0]
    return isinstance(target, ast.Name) or (isinstance(target, ast.Tuple)
                                            and all(isinstance(t, ast.Name) for t in target.elts))


def command_study(cmd: str) -> str:
    """The Part 1 study a command loads its params for: ``-p study=NAME``, else the first of
    ``studies`` (``load_params``'s default)."""
    words = shlex.split(cmd)
    for flag, value in zip(words, words[1:]):
        if flag == "-p" and value.startswith("study="):
            return value.split("=", 1)[1]
    studies = yaml.safe_load((REPO / "params.yaml").read_text())["studies"]
    return next(iter(studies))


def _is_study_cohort(node: ast.AST) -> bool:
    """``study_cohort(params)``: the study's ``cohort`` entry (crossmodal.params)."""
    return isinstance(node, ast.Call) and getattr(node.func, "id", None) == "study_cohort"


def params_read(cmd: str) -> set[str]:
    """Params a command reads: ``params[...]`` in its stage modules and notebook, less the
    sections that change no output (``UNLISTED_SECTIONS``). ``study`` is resolved by the
    load: a command that reads it or a section a study may replace (``StudySections``) reads
    ``studies.<its study>``; ``study_cohort(params)[...]`` reads that study's cohort entry."""
    modules, files = stage_entry(cmd)
    trees = [ast.parse(f.read_text()) for f in files]
    trees += [ast.parse(module_file(m).read_text()) for m in reachable_modules(modules)
              if m.startswith((f"{PACKAGE}.stages", f"{PACKAGE}.report"))]
    read = set().union(*(_params_paths(t) for t in trees)) if trees else set()
    study = command_study(cmd)
    cohort = yaml.safe_load((REPO / "params.yaml").read_text())["studies"][study]["cohort"]
    read = {k.replace(STUDY_COHORT, cohort) for k in read}
    if any(k.split(".")[0] in {"study", *StudySections.model_fields} for k in read):
        read.add(f"studies.{study}")
    read = {k for k in read if k.split(".")[0] != "study"}
    # A derived key is not in params.yaml: the stage depends on the key it is copied from.
    read |= {source for target, (source, _) in DERIVED.items()
             if any(_related(target, key) for key in read)}
    return {p for p in read if p.split(".")[0] not in UNLISTED_SECTIONS}


def _related(a: str, b: str) -> bool:
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def dvc_stages() -> dict[str, dict]:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def listed_params(stage: dict) -> set[str]:
    return {p for p in stage.get("params", []) if isinstance(p, str)}


#: Read by the ``crossmodal`` command itself for every stage it runs (the CPU kernels of
#: the stage's processes: crossmodal.reproducible.pin_cpu_kernels).
EVERY_STAGE = {"reproducibility.cpu_kernels"}


def minimal_params(cmd: str) -> list[str]:
    """The params list of a stage: the profile selector, the selected profile, the keys
    every stage reads (:data:`EVERY_STAGE`) and every key the stage reads, less those whose
    section is read whole."""
    read = (params_read(cmd) | EVERY_STAGE) - {"profile"}
    kept = sorted(k for k in read if not any(k.startswith(other + ".") for other in read))
    return ["profile", "profiles.${profile}", *kept]


def rewrite_dvc_yaml(text: str) -> str:
    """``dvc.yaml`` with every stage's code deps and params derived anew; data deps, outs,
    comments and order kept."""
    stages = dvc_stages()
    lines, out = text.splitlines(), []
    stage, section = None, None
    for line in lines:
        indent = len(line) - len(line.lstrip())
        stripped = line.strip()
        if indent == 2 and stripped.endswith(":") and not stripped.startswith("#"):
            stage, section = stripped[:-1], None
        elif indent == 4 and stripped in ("deps:", "params:") and stage in stages:
            section = stripped[:-1]
            out.append(line)
            cmd = stages[stage]["cmd"]
            if section == "deps":
                data = [d for d in stages[stage].get("deps", []) if not d.startswith(("src/", "notebooks/"))]
                out += [f"      - {d}" for d in data + code_deps(cmd)]
            else:
                out += [f"      - {p}" for p in minimal_params(cmd)]
            continue
        elif indent <= 4 and stripped:
            section = None
        if section and stripped.startswith("- "):
            continue
        out.append(line)
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        path = REPO / "dvc.yaml"
        path.write_text(rewrite_dvc_yaml(path.read_text()))
    else:
        for stage_name, stage in dvc_stages().items():
            print(f"{stage_name}:\n  code: {code_deps(stage['cmd'])}\n  params: {minimal_params(stage['cmd'])}")
