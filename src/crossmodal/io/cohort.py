"""Ingest a DICOM cohort: series -> validated cases with pseudonymous IDs + a cohort report.

This is the privacy boundary: patient names, IDs and birth dates are read here and
nowhere else. Everything written by :func:`ingest_dicom_cohort` (case folders, the case
table, the report) carries only pseudonyms; file paths in the report are redacted too.

A broken series or case is reported with the file and the rule it broke and skipped; the
rest of the cohort goes on.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import pandas as pd

from crossmodal.io.case import Case
from crossmodal.io.dicom import LABEL_OBJECT_MODALITIES
from crossmodal.io.dicom import DicomSeries
from crossmodal.io.dicom import read_series
from crossmodal.io.dicom import scan_dicom_tree
from crossmodal.io.errors import IngestError
from crossmodal.io.errors import UnpairedSeriesError
from crossmodal.io.labels import index_label_objects
from crossmodal.io.labels import read_series_label
from crossmodal.io.pseudonym import pseudonym
from crossmodal.io.pseudonym import redact
from crossmodal.parallel import Workers
from crossmodal.parallel import map_jobs


@dataclass
class CohortReport:
    """What was ingested and what was skipped, and why (already pseudonymised)."""

    cases: list[dict[str, Any]] = field(default_factory=list)
    problems: list[dict[str, str]] = field(default_factory=list)
    n_files_scanned: int = 0
    n_series: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"n_files_scanned": self.n_files_scanned, "n_series": self.n_series,
                "n_cases": len(self.cases), "n_problems": len(self.problems),
                "problems": self.problems}

    def problems_table(self) -> pd.DataFrame:
        return pd.DataFrame(self.problems, columns=["case", "where", "rule", "detail", "action"])


def _choose(series: list[DicomSeries], labelled: set[str]) -> tuple[DicomSeries, list[DicomSeries]]:
    # Prefer the series that has a label, then the one with most slices; UID breaks ties.
    ranked = sorted(series, key=lambda s: (s.series_uid not in labelled, -len(s.files), s.series_uid))
    return ranked[0], ranked[1:]


def ingest_dicom_cohort(
    root: str | Path,
    out_dir: str | Path,
    *,
    modalities: list[str],
    required_modalities: list[str] | None = None,
    label_modalities: list[str] = ("CT",),
    labels_dir: str = "labels",
    label_names: dict[int, str] | None = None,
    truth_dir: str = "truth",
    salt: str,
    group_by: str = "study",
    require_nonempty_label: bool = True,
    max_slice_gap_ratio: float = 1.5,
    spacing_tolerance_mm: float = 0.05,
    progress: bool = False,
    jobs: int | str | Workers = 1,
) -> CohortReport:
    """Read a DICOM tree into pseudonymised case folders under ``out_dir/cases``.

    Parameters
    ----------
    root : folder of the cohort (any layout); labels under ``root/labels_dir`` named
        ``<SeriesInstanceUID>.nii.gz``, or DICOM SEG / RTSTRUCT files anywhere in the tree
        (:mod:`crossmodal.io.labels`); optional truth sidecars under ``root/truth_dir``.
    modalities : DICOM Modality values to use (e.g. ``["CT", "PT"]``).
    required_modalities : a case lacking one of these is skipped (default: all).
    label_modalities : modalities whose series must come with a label volume.
    label_names : label value -> name; SEG segment and RTSTRUCT ROI names map through it.
    group_by : "study" (one case per StudyInstanceUID) or "patient".
    salt : key of the pseudonym hash.
    jobs : processes reading cases (``'auto'``: every core), or :class:`~crossmodal.parallel.Workers`;
        the output does not depend on it.
    """
    root, out_dir = Path(root), Path(out_dir)
    required = list(modalities if required_modalities is None else required_modalities)
    series, scan_problems = scan_dicom_tree(root)
    report = CohortReport(n_series=len(series))
    report.n_files_scanned = sum(len(s.files) for s in series) + len(scan_problems)
    labelled = {p.name[: -len(".nii.gz")] for p in (root / labels_dir).glob("*.nii.gz")}

    # Everything identifying is mapped to pseudonyms before anything is written.
    add_problem = _problem_log(report, root, _pseudonym_replacements(series, salt))

    def record(case: str, err: IngestError | str, where: str = "", action: str = "skipped") -> None:
        add_problem(*_problem(case, err, where, action))

    for err in scan_problems:
        record("", err, action="ignored file")
    groups = _group_series(series, modalities, group_by, record)

    items = [(pseudonym(salt, patient_id, study_uid, prefix="C"), pseudonym(salt, patient_id), members)
             for (patient_id, study_uid), members in groups.items()]
    ingest_one = functools.partial(
        _ingest_and_save_case, out_dir=out_dir, root=root, modalities=modalities, required=required,
        label_modalities=list(label_modalities), labels_dir=labels_dir, label_names=label_names,
        truth_dir=truth_dir, labelled=labelled,
        require_nonempty_label=require_nonempty_label, max_slice_gap_ratio=max_slice_gap_ratio,
        spacing_tolerance_mm=spacing_tolerance_mm)
    for row, problems in map_jobs(ingest_one, sorted(items, key=lambda item: item[:2]), jobs=jobs,
                                  progress=progress, desc="ingest cases", unit="case"):
        for problem in problems:
            add_problem(*problem)
        if row is not None:
            report.cases.append(row)

    _write_cohort(out_dir, report)
    return report


def _pseudonym_replacements(series: list[DicomSeries], salt: str) -> dict[str, str]:
    """Every identifying string of every series -> its patient's pseudonym (``[name]`` when
    several patients share it, e.g. a family name, so no problem names the wrong patient);
    the site's and its staff's names, which many patients share, -> ``[site]``."""
    owners: dict[str, set[str]] = {}
    for s in series:
        for secret in s.identifiers:
            owners.setdefault(secret, set()).add(pseudonym(salt, s.patient_id))
    replacements = {name: "[site]" for s in series for name in s.site_names}
    replacements.update({secret: patients.pop() if len(patients) == 1 else "[name]"
                         for secret, patients in owners.items()})
    return replacements


def _problem_log(report: CohortReport, root: Path, replacements: dict[str, str]):
    """``add_problem(case, where, rule, detail, action)``: appends a redacted problem to
    ``report`` (paths relative to ``root``, identifiers replaced by pseudonyms)."""
    def add_problem(case: str, where: str, rule: str, detail: str, action: str) -> None:
        try:
            where = str(Path(where).relative_to(root))
        except ValueError:
            pass
        report.problems.append({
            "case": case, "where": redact(where, replacements), "rule": rule,
            "detail": redact(detail, replacements), "action": action,
        })

    return add_problem


def _group_series(series, modalities, group_by, record) -> dict[tuple[str, str], list[DicomSeries]]:
    """Series of the wanted modalities per case key ``(patient id, study uid or "")``."""
    groups: dict[tuple[str, str], list[DicomSeries]] = {}
    for s in series:
        if s.modality not in modalities and s.modality not in LABEL_OBJECT_MODALITIES:  # labels join their case
            record("", f"modality {s.modality!r} not in {modalities}", where=str(s.files[0].parent),
                   action="ignored series")
            continue
        key = (s.patient_id, s.study_uid if group_by == "study" else "")
        groups.setdefault(key, []).append(s)
    return groups


def _write_cohort(out_dir: Path, report: CohortReport) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(report.cases).to_csv(out_dir / "cases.csv", index=False)
    (out_dir / "report.json").write_text(json.dumps(report.to_dict(), indent=1))


def _problem(case: str, err: IngestError | str, where: str = "", action: str = "skipped") -> tuple[str, ...]:
    """(case, where, rule, detail, action) of a problem, before redaction."""
    if isinstance(err, IngestError):
        return case, err.path, err.rule, err.detail, action
    return case, where, "ingestion", err, action


def _ingest_and_save_case(item, *, out_dir: Path, **rules) -> tuple[dict | None, list[tuple[str, ...]]]:
    """Read one case (in a worker process, maybe): save it, return its cohort row (None when
    skipped) and its problems, still unredacted (the parent redacts them)."""
    case_id, patient, members = item
    problems: list[tuple[str, ...]] = []
    case = _ingest_case(case_id, patient, members, record=lambda *a, **k: problems.append(_problem(*a, **k)),
                        **rules)
    if case is None:
        return None, problems
    case.save(out_dir / "cases" / case_id)
    row = {"case_id": case_id, "patient": patient}
    for modality, image in case.images.items():
        row[f"{modality}_slices"] = image.GetSize()[2]
        row[f"{modality}_spacing_mm"] = "x".join(f"{v:.2f}" for v in image.GetSpacing())
    return row, problems


def _ingest_case(case_id, patient, members, *, root, modalities, required, label_modalities,
                 labels_dir, label_names, truth_dir, labelled, require_nonempty_label, max_slice_gap_ratio,
                 spacing_tolerance_mm, record) -> Case | None:
    by_modality: dict[str, list[DicomSeries]] = {}
    for s in members:
        by_modality.setdefault(s.modality, []).append(s)
    label_files = [f for m in LABEL_OBJECT_MODALITIES for s in by_modality.pop(m, []) for f in s.files]
    label_objects, label_problems = index_label_objects(
        label_files, [s.series_uid for group in by_modality.values() for s in group])
    for err in label_problems:
        record(case_id, err, action="ignored label")
    images, labels, truth = {}, {}, None
    for modality in modalities:
        candidates = by_modality.get(modality, [])
        if not candidates:
            continue
        chosen, others = _choose(candidates, labelled | set(label_objects))
        for other in others:
            record(case_id, f"another {modality} series of this case was used", where=str(other.files[0].parent),
                   action="ignored series")
        try:
            image = read_series(chosen, max_gap_ratio=max_slice_gap_ratio,
                                spacing_tolerance_mm=spacing_tolerance_mm)
            if modality in label_modalities:
                labels[modality] = read_series_label(
                    chosen, image, labels_dir=root / labels_dir, label_objects=label_objects,
                    label_names=label_names, require_nonempty=require_nonempty_label)
        except IngestError as err:
            record(case_id, err, action=f"{modality} series skipped")
            continue
        images[modality] = image
        truth_path = root / truth_dir / f"{chosen.series_uid}.json"
        if truth_path.exists():
            truth = {**(truth or {}), **json.loads(truth_path.read_text())}
    missing = [m for m in required if m not in images]
    if missing or not images:
        where = str(members[0].files[0].parent.parent)
        record(case_id, UnpairedSeriesError(where, f"no usable series of {missing or modalities}"),
               action="case skipped")
        return None
    return Case(case_id=case_id, patient=patient, images=images, labels=labels, truth=truth,
                meta={"simulated": bool(truth and truth.get("simulated"))})
