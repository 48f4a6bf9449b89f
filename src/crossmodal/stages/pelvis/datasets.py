"""Stage ``datasets_pelvis``: one YOLO dataset + COCO JSON per fusion input, one patient split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crossmodal.parallel import compute_setting
from crossmodal.part1_detect import export_datasets


def run(params: dict[str, Any], *, align_dir: str | Path, out: str | Path):
    names = params["cohort"]["pelvis"]["label_names"]
    split = export_datasets(align_dir, out, params["detect"], class_names=[names[k] for k in sorted(names)],
                            jobs=compute_setting(params, "jobs"))
    print(split["split"].value_counts().to_dict())
    return split
