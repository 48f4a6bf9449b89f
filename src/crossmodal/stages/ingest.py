"""Stage ``ingest_<cohort>``: a DICOM tree -> pseudonymised case folders + problems report.

Everything cohort-specific (modalities, which must be present, which carry labels, how
series group into cases) comes from ``cohort.<name>`` in ``params.yaml``; the reading rules
from ``ingest``. Outputs: ``<out>/cases/``, ``<out>/cases.csv``, ``<out>/report.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from crossmodal.io.cohort import CohortReport
from crossmodal.io.cohort import ingest_dicom_cohort
from crossmodal.parallel import patient_workers


def run(params: dict[str, Any], *, cohort: str, out: str | Path,
        test_out: str | Path | None = None) -> CohortReport:
    """Ingest ``cohort.<cohort>`` into ``out`` and, with ``test_out``, its locked test cohort
    (``test_root``) into ``test_out``; return the development cohort's report. Raises
    ``RuntimeError`` when no case is usable or when a patient is in both cohorts."""
    source = params["cohort"][cohort]
    report = ingest_tree(params, cohort, source["root"], out)
    if test_out is not None:
        if not source.get("test_root"):
            raise RuntimeError(f"cohort.{cohort}: test_out given but cohort.{cohort}.test_root is not set")
        ingest_tree(params, cohort, source["test_root"], test_out)
        check_disjoint(out, test_out)
    return report


def ingest_tree(params: dict[str, Any], cohort: str, root: str | Path, out: str | Path) -> CohortReport:
    """Ingest one DICOM tree of ``cohort.<cohort>`` (its rules) into ``out``."""
    source, rules = params["cohort"][cohort], params["ingest"]
    report = ingest_dicom_cohort(
        root, out, modalities=source["modalities"],
        required_modalities=source["required_modalities"],
        label_modalities=source["label_modalities"], labels_dir=source["labels_dir"],
        label_names=source["label_names"],
        truth_dir=source["truth_dir"], salt=rules["pseudonym_salt"], group_by=source["group_by"],
        require_nonempty_label=source["require_nonempty_label"],
        max_slice_gap_ratio=rules["max_slice_gap_ratio"],
        spacing_tolerance_mm=rules["spacing_tolerance_mm"], progress=True,
        jobs=patient_workers(params),
    )
    for problem in report.problems:
        print(f"skipped: {problem['where']}: {problem['rule']}: {problem['detail']}")
    if not report.cases:
        raise RuntimeError(f"cohort.{cohort}: no usable case in {root}")
    return report


def check_disjoint(out: str | Path, test_out: str | Path) -> None:
    """The locked test cohort must not share a patient with the development cohort."""
    patients = [set(pd.read_csv(Path(folder) / "cases.csv")["patient"]) for folder in (out, test_out)]
    shared = sorted(patients[0] & patients[1])
    if shared:
        raise RuntimeError(f"{test_out}: the locked test cohort shares patients with {out}: {shared[:5]}")
