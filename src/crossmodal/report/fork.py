"""The book's "Fork this study" page: a study's own entries in ``params.yaml`` and its stages
in ``dvc.yaml``, read from the files themselves so the page shows what the run used."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import yaml

__all__ = ["params_excerpt", "params_excerpts_markdown", "study_stages"]


def params_excerpt(params_yaml: str | Path, key: str) -> str:
    """The lines of ``params.yaml`` that hold ``key`` (``section.entry``), as written: the
    comment lines right above the entry, the entry and everything indented under it, under
    its section's line. ``KeyError`` names a key the file does not hold."""
    section, entry = key.split(".", 1)
    lines = Path(params_yaml).read_text().splitlines()
    top = next((i for i, line in enumerate(lines) if line.startswith(f"{section}:")), None)
    if top is None:
        raise KeyError(f"{params_yaml}: no section {section!r}")
    end_of_section = next((i for i in range(top + 1, len(lines)) if re.match(r"[A-Za-z_]", lines[i])), len(lines))
    start = next((i for i in range(top + 1, end_of_section) if re.match(rf"  {re.escape(entry)}:", lines[i])), None)
    if start is None:
        raise KeyError(f"{params_yaml}: no entry {key!r}")
    stop = start + 1
    while stop < end_of_section and (not lines[stop].strip() or lines[stop].startswith("   ")):
        stop += 1
    while stop > start + 1 and not lines[stop - 1].strip():
        stop -= 1
    first = start
    while first > top + 1 and lines[first - 1].startswith("  #"):
        first -= 1
    return "\n".join([lines[top], *lines[first:stop]])


def params_excerpts_markdown(params_yaml: str | Path, keys: list[str]) -> str:
    """Each key's :func:`params_excerpt` as a YAML code block, for a book page."""
    return "\n\n".join(f"```yaml\n{params_excerpt(params_yaml, key)}\n```" for key in keys)


def study_stages(dvc_yaml: str | Path, study: str) -> pd.DataFrame:
    """One row per ``dvc.yaml`` stage that runs for ``study`` (``-p study=<study>`` in its
    command): its name, the notebook it executes and the folders it writes."""
    stages = yaml.safe_load(Path(dvc_yaml).read_text())["stages"]
    rows = []
    for name, stage in stages.items():
        cmd = " ".join(stage["cmd"]) if isinstance(stage["cmd"], list) else stage["cmd"]
        if re.search(rf"-p study={re.escape(study)}\b", cmd):
            notebook = re.search(r"crossmodal notebook (\S+)", cmd)
            outs = [o if isinstance(o, str) else next(iter(o)) for o in stage.get("outs", []) + stage.get("metrics", [])]
            rows.append({"stage": name, "notebook": notebook.group(1) if notebook else "",
                         "writes": ", ".join(o for o in outs if not o.endswith(".ipynb"))})
    return pd.DataFrame(rows, columns=["stage", "notebook", "writes"])
