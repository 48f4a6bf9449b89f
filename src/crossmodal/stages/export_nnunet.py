"""Not a DVC stage: write ingested Part 1 cases in the nnU-Net raw layout, for training a
segmentation baseline outside this study (``crossmodal stage export_nnunet ...``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crossmodal.io.case import load_cases
from crossmodal.io.nnunet import write_nnunet_dataset


def run(params: dict[str, Any], *, ingest_dir: str | Path, out: str | Path, cohort: str = "pelvis") -> Path:
    """CT as channel _0000, PET resampled to the CT grid as _0001, labels named by
    ``cohort.<cohort>.label_names``; dataset id and name from ``ingest.nnunet_dataset``."""
    dataset = params["ingest"]["nnunet_dataset"]
    return write_nnunet_dataset(load_cases(ingest_dir), out, dataset_id=dataset["id"], name=dataset["name"],
                                label_names=params["cohort"][cohort]["label_names"])
