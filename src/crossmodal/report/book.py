"""The book's own pages, run at build time rather than by a DVC stage: the landing page's
results at a glance (``notebooks/book/00_results.py``) and "Reproduce this book"
(``notebooks/book/reproduce.py``).

Both only read what the pipeline left on disk: the claims stages' CSVs, ``params.yaml``,
``dvc.yaml``, ``dvc.lock``, ``data.dvc``, ``pyproject.toml`` and the wall-time records
``crossmodal notebook`` writes under ``.timings/``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import re
import tomllib
from collections.abc import Iterable
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from crossmodal.report.common import NOT_APPLICABLE
from crossmodal.report.common import format_ci
from crossmodal.report.common import thesis_cell
from crossmodal.stats.verdict import overall_verdict

__all__ = ["CLAIMS", "claim_summary", "data_hash", "duration_cell", "glance_table", "machine",
           "package_versions", "profile_settings", "read_claims", "read_timings",
           "run_table", "stage_hashes", "stage_times", "wall_time_sentence"]

CLAIMS = ("C1", "C2", "C3", "C4", "C5", "C6", "C7")
#: Verdicts that carry an estimate; any other row's estimate does not apply on the landing page.
MEASURED = ("supported", "contradicted", "inconclusive", "mixed")


# ----------------------------------------------------------------------------- results at a glance


def read_claims(pelvis_dir: str | Path, skeleton_dir: str | Path) -> pd.DataFrame:
    """Both claims stages' ``claims.csv`` as one frame, one row per primary comparison:
    ``claim, part, says, compared, label, thesis, ours, ci_low, ci_high, verdict,
    claim_verdict, gate``. ``label`` tells a claim's rows apart (detector or comparator)."""
    pelvis = pd.read_csv(Path(pelvis_dir) / "claims.csv")
    skeleton = pd.read_csv(Path(skeleton_dir) / "claims.csv")
    pelvis_rows = pd.DataFrame({
        "claim": pelvis["claim"], "part": "pelvis", "says": pelvis["says"],
        "compared": [f"{c} on {m} ({d})" if isinstance(m, str) and m else c
                     for c, m, d in zip(pelvis["comparison"], pelvis["metric"], pelvis["detector"])],
        "label": pelvis["detector"], "thesis": pelvis["thesis"], "ours": pelvis["ours"],
        "ci_low": pelvis["ci_low"], "ci_high": pelvis["ci_high"], "verdict": pelvis["verdict"],
        "claim_verdict": pelvis["claim"].map(
            {c: overall_verdict(g["verdict"]) for c, g in pelvis.groupby("claim")}),
        "gate": pelvis["gate"]})
    skeleton_rows = pd.DataFrame({
        "claim": skeleton["claim"], "part": "skeleton", "says": skeleton["says"],
        "compared": [f"fused - {c} on {m}" for c, m in zip(skeleton["comparator"], skeleton["metric"])],
        "label": skeleton["comparator"], "thesis": skeleton["thesis"], "ours": skeleton["ours"],
        "ci_low": skeleton["ci_low"], "ci_high": skeleton["ci_high"],
        "verdict": skeleton["verdict"], "claim_verdict": skeleton["claim verdict"],
        "gate": skeleton["gate"]})
    return pd.concat([pelvis_rows, skeleton_rows], ignore_index=True)


def _ours_cell(row) -> str:
    """Ours with CI, or a dash where the row's verdict carries no estimate (a comparator that
    failed its gate, a difference nobody could measure). C4's estimate is a share of rows."""
    if row.verdict not in MEASURED:
        return NOT_APPLICABLE
    if row.claim == "C4":
        return f"{row.ours:.0%} of C1/C2 rows supported"
    return format_ci(row.ours, row.ci_low, row.ci_high, digits=3, signed=True)


def _verdict_cell(verdict: str, gate) -> str:
    """The row's verdict, with the gate that failed when that is the reason."""
    if isinstance(gate, str) and gate.startswith("failed"):
        return f"{verdict} ({gate.removeprefix('failed').lstrip(': ')})"
    return verdict


def _thesis_value(value) -> str:
    return NOT_APPLICABLE if pd.isna(value) else thesis_cell(value)


def glance_table(claims: pd.DataFrame, evidence: Mapping[str, str]) -> pd.DataFrame:
    """The landing page's table from :func:`read_claims`: claim, thesis says, compared, thesis
    value, ours [95 % CI], verdict and ``evidence`` (per part, the cell linking its chapter).
    A claim's statement is written on its first row only."""
    repeated = claims["claim"].duplicated()
    return pd.DataFrame({
        "claim": claims["claim"], "thesis says": claims["says"].where(~repeated, ""),
        "compared": claims["compared"],
        "thesis value": [_thesis_value(v) for v in claims["thesis"]],
        "ours [95 % CI]": [_ours_cell(r) for r in claims.itertuples()],
        "verdict": [_verdict_cell(v, g) for v, g in zip(claims["verdict"], claims["gate"])],
        "evidence": claims["part"].map(evidence)})


def claim_summary(claims: pd.DataFrame, names: Iterable[str] = CLAIMS) -> dict[str, dict[str, str]]:
    """Per claim: its ``verdict`` (over its rows), ``ours`` (each row's cell, labelled when
    there are several) and ``thesis`` value, as strings for prose; a dash for a claim
    without rows."""
    summary = {}
    for name in names:
        rows = claims[claims["claim"] == name]
        if rows.empty:
            summary[name] = {"verdict": NOT_APPLICABLE, "ours": NOT_APPLICABLE, "thesis": NOT_APPLICABLE}
            continue
        cells = [_ours_cell(r) for r in rows.itertuples()]
        if all(c == NOT_APPLICABLE for c in cells):
            ours = NOT_APPLICABLE
        elif len(cells) == 1:
            ours = cells[0]
        else:
            ours = "; ".join(f"{c} ({label})" for c, label in zip(cells, rows["label"]))
        summary[name] = {"verdict": str(rows["claim_verdict"].iloc[0]), "ours": ours,
                         "thesis": _thesis_value(rows["thesis"].iloc[0])}
    return summary


# ----------------------------------------------------------------------------- reproduce this book


def _yaml(source: str | Path | Mapping[str, Any]) -> Mapping[str, Any]:
    """A YAML file's content (``params.yaml``, ``dvc.yaml``, ``dvc.lock``, ``data.dvc``), or
    the mapping itself when already read."""
    return source if isinstance(source, Mapping) else yaml.safe_load(Path(source).read_text())


def profile_settings(params_yaml: str | Path | Mapping[str, Any], profile: str) -> pd.DataFrame:
    """The overrides profile ``profile`` makes to ``params.yaml`` (its ``profiles`` entry),
    one row per dotted key: ``setting, value``; no rows for a profile that changes nothing."""
    params_yaml = _yaml(params_yaml)
    def flat(node, prefix: str):
        if isinstance(node, Mapping) and node:
            for key, value in node.items():
                yield from flat(value, f"{prefix}.{key}" if prefix else str(key))
        elif prefix:
            yield prefix, json.dumps(node, default=str)

    overrides = (params_yaml.get("profiles") or {}).get(profile)
    if overrides is None:
        raise KeyError(f"profile {profile!r} is not in params.yaml's profiles")
    return pd.DataFrame(list(flat(overrides, "")), columns=["setting", "value"])


def profile_sentence(profile: str, overrides: pd.DataFrame) -> str:
    """Which profile this run used, and whether it overrides anything (the table follows)."""
    if overrides.empty:
        return (f"This run used profile **{profile}**, which overrides nothing: every value is "
                "the one in `params.yaml`'s sections.")
    return f"This run used profile **{profile}**, which sets:"


def package_versions(pyproject: str | Path) -> pd.DataFrame:
    """Every package ``pyproject.toml`` requires (dependencies and extras): ``package,
    group, pinned, installed``; ``not installed`` where the package is missing."""
    project = tomllib.loads(Path(pyproject).read_text())["project"]
    groups = {"dependencies": project.get("dependencies", []),
              **{f"extra: {k}": v for k, v in project.get("optional-dependencies", {}).items()}}
    rows = []
    for group, requirements in groups.items():
        for requirement in requirements:
            name, pinned = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*(?:\[[^]]*\])?\s*([^;]*)",
                                    requirement).groups()
            try:
                installed = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                installed = "not installed"
            rows.append({"package": name, "group": group, "pinned": pinned.strip() or NOT_APPLICABLE,
                         "installed": installed})
    return pd.DataFrame(rows)


def machine() -> dict[str, str]:
    """The machine running this: Python, operating system, CPU cores (all and usable by
    this process) and whether torch sees a CUDA GPU (with its names)."""
    import torch

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpus = ([torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            if torch.cuda.is_available() else [])
    return {"Python": platform.python_version(),
            "operating system": f"{platform.system()} {platform.release()} ({platform.machine()})",
            "CPU cores": f"{os.cpu_count()} ({usable} usable by this process)",
            "GPU (torch.cuda)": ", ".join(gpus) if gpus else "none: CPU only"}


def read_timings(directory: str | Path) -> dict[str, dict[str, Any]]:
    """The wall-time records ``crossmodal notebook`` wrote (``<dir>/*.json``), keyed by the
    executed notebook's path; empty when the folder does not exist."""
    records = [json.loads(p.read_text()) for p in sorted(Path(directory).glob("*.json"))]
    return {r["output"]: r for r in records}


def _notebook_out(stage: Mapping[str, Any]) -> str | None:
    """The executed notebook among a dvc.yaml stage's outs (an out may be a str or a dict)."""
    outs = [o if isinstance(o, str) else next(iter(o)) for o in stage.get("outs", [])]
    return next((o for o in outs if o.endswith(".ipynb")), None)


def stage_times(dvc_yaml: str | Path | Mapping[str, Any], timings: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per ``dvc.yaml`` stage, in its order: ``stage, notebook, seconds, finished,
    profile`` from the record of the notebook that stage writes (NaN / None without one)."""
    rows = []
    for name, stage in _yaml(dvc_yaml)["stages"].items():
        notebook = _notebook_out(stage)
        record = timings.get(notebook, {}) if notebook else {}
        rows.append({"stage": name, "notebook": notebook,
                     "seconds": float(record.get("seconds", float("nan"))),
                     "finished": record.get("finished"), "profile": record.get("profile")})
    return pd.DataFrame(rows)


def _short_hash(entries: Iterable[Mapping[str, Any]], length: int = 10) -> str:
    """One short md5 over a dvc.lock list of ``{path, md5}`` (paths included, order-free)."""
    lines = sorted(f"{e['path']} {e.get('md5', '')}" for e in entries)
    return hashlib.md5("\n".join(lines).encode()).hexdigest()[:length] if lines else NOT_APPLICABLE


def stage_hashes(dvc_lock: str | Path | Mapping[str, Any]) -> pd.DataFrame:
    """Per ``dvc.lock`` stage: how many deps and outs it records and a short hash of each
    list (data and code in, results out) and of its params: ``stage, deps, deps hash, outs,
    outs hash, params hash``."""
    rows = []
    for name, stage in _yaml(dvc_lock).get("stages", {}).items():
        params = json.dumps(stage.get("params", {}), sort_keys=True, default=str)
        rows.append({"stage": name, "deps": len(stage.get("deps", [])),
                     "deps hash": _short_hash(stage.get("deps", [])), "outs": len(stage.get("outs", [])),
                     "outs hash": _short_hash(stage.get("outs", [])),
                     "params hash": hashlib.md5(params.encode()).hexdigest()[:10]})
    return pd.DataFrame(rows)


def data_hash(data_dvc: str | Path | Mapping[str, Any]) -> dict[str, str]:
    """``data.dvc``'s record of the input data: md5, size, file count and the phantom
    generator fingerprints."""
    data_dvc = _yaml(data_dvc)
    out = data_dvc["outs"][0]
    record = {"path": out["path"], "md5": out["md5"], "files": f"{out.get('nfiles', NOT_APPLICABLE)}",
              "size": f"{out['size'] / 1e6:.0f} MB" if "size" in out else NOT_APPLICABLE}
    for name, fingerprint in (data_dvc.get("meta", {}).get("phantom") or {}).items():
        record[f"phantom fingerprint: {name}"] = fingerprint
    return record


def duration_cell(seconds) -> str:
    """``42 s``, ``3 min 12 s``, ``1 h 02 min``; ``not recorded`` without a time."""
    if seconds is None or pd.isna(seconds):
        return "not recorded"
    seconds = round(float(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def run_table(times: pd.DataFrame, hashes: pd.DataFrame) -> pd.DataFrame:
    """Stages of :func:`stage_times` beside their :func:`stage_hashes`, indexed by stage:
    wall time, when it finished (UTC, to the minute), its profile, and the hashes (a dash for a stage
    ``dvc.lock`` does not record yet)."""
    table = times.merge(hashes, on="stage", how="left")
    view = pd.DataFrame({
        "stage": table["stage"], "wall time": [duration_cell(s) for s in table["seconds"]],
        "finished (UTC)": [f[:16].replace("T", " ") if isinstance(f, str) else NOT_APPLICABLE
                           for f in table["finished"]],
        "profile": table["profile"].fillna(NOT_APPLICABLE)})
    for column in ("deps", "outs"):
        view[column] = [NOT_APPLICABLE if pd.isna(n) else f"{int(n)} ({h})"
                        for n, h in zip(table[column], table[f"{column} hash"])]
    view["params hash"] = table["params hash"].fillna(NOT_APPLICABLE)
    return view.set_index("stage")


def wall_time_sentence(times: pd.DataFrame) -> str:
    """The recorded stages' total wall time, and how many stages have no record."""
    recorded = times["seconds"].dropna()
    missing = len(times) - len(recorded)
    if recorded.empty:
        return (f"No stage of this run recorded its wall time ({missing} stages): they ran before "
                "`crossmodal notebook` recorded times, or their records were removed.")
    text = (f"The {len(recorded)} recorded stages took **{duration_cell(recorded.sum())}** of wall "
            "time in all (each at its last run; `dvc repro` runs them one after another)")
    return text + (f"; {missing} stage(s) have no record (\"not recorded\")." if missing else ".")
