"""Stage ``ingest_<cohort>``: a DICOM tree -> pseudonymised case folders + problems report.

Everything cohort-specific (modalities, which must be present, which carry labels, how
series group into cases) comes from ``cohort.<name>`` in ``params.yaml``; the reading rules
from ``ingest``. Outputs: ``<out>/cases/``, ``<out>/cases.csv``, ``<out>/report.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crossmodal.io.cohort import CohortReport
from crossmodal.io.cohort import ingest_dicom_cohort
from crossmodal.parallel import compute_setting


def run(params: dict[str, Any], *, cohort: str, out: str | Path) -> CohortReport:
    """Ingest ``cohort.<cohort>`` into ``out``. Raises ``RuntimeError`` when no case is usable."""
    source, rules = params["cohort"][cohort], params["ingest"]
    report = ingest_dicom_cohort(
        source["root"], out, modalities=source["modalities"],
        required_modalities=source["required_modalities"],
        label_modalities=source["label_modalities"], labels_dir=source["labels_dir"],
        truth_dir=source["truth_dir"], salt=rules["pseudonym_salt"], group_by=source["group_by"],
        require_nonempty_label=source["require_nonempty_label"],
        max_slice_gap_ratio=rules["max_slice_gap_ratio"],
        spacing_tolerance_mm=rules["spacing_tolerance_mm"], progress=True,
        jobs=compute_setting(params, "jobs"),
    )
    for problem in report.problems:
        print(f"skipped: {problem['where']}: {problem['rule']}: {problem['detail']}")
    if not report.cases:
        raise RuntimeError(f"cohort.{cohort}: no usable case in {source['root']}")
    return report
