"""Stage ``align_fuse_pelvis``: align PET to CT, enhance, localise and fuse every input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crossmodal.io.case import load_cases
from crossmodal.parallel import compute_setting
from crossmodal.part1 import run_align_fuse


def run(params: dict[str, Any], *, ingest_dir: str | Path, out: str | Path) -> dict:
    tables = run_align_fuse(load_cases(ingest_dir), out, params["align_fuse"], progress=True,
                            jobs=compute_setting(params, "jobs"))
    alignment = tables["alignment"]
    if "error_after_mm" in alignment:
        print(f"alignment error: {alignment['error_before_mm'].mean():.2f} mm before, "
              f"{alignment['error_after_mm'].mean():.2f} mm after refinement")
    return tables
