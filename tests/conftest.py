"""Shared fixtures: a tiny simulated pelvic cohort written as DICOM, and its ingestion; the
real scans of ``real_data`` fetched from the package registry."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from crossmodal.params import load_params

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def with_real_source(params: dict, name: str, root: Path) -> dict:
    """``params`` with ``real_data.<name>`` fetched from the package registry into ``root``
    (archive cached between runs); skips, saying why, where the registry is unreachable."""
    from crossmodal.io.registry import RealSourceError
    from crossmodal.io.registry import fetch_real_source

    source = dict(params["real_data"][name], root=str(root))
    try:
        fetch_real_source(name, source)
    except RealSourceError as error:
        if "unreachable" not in str(error):
            raise
        pytest.skip(f"the package registry is unreachable from this machine, so real_data.{name} cannot be "
                    f"fetched: {error}")
    params["real_data"][name] = source
    return params


def ingest_by_cohort_rules(root: Path, out: Path, cohort: str):
    """Ingest the DICOM tree ``root`` into ``out`` by the rules of ``cohort.<cohort>`` and
    ``ingest`` in the repository's params.yaml; the cohort report."""
    from crossmodal.io.cohort import ingest_dicom_cohort

    params = load_params(REPO / "params.yaml")
    source, rules = params["cohort"][cohort], params["ingest"]
    return ingest_dicom_cohort(
        root, out, modalities=source["modalities"], required_modalities=source["required_modalities"],
        label_modalities=source["label_modalities"], labels_dir=source["labels_dir"], label_names=source["label_names"],
        truth_dir=source["truth_dir"], salt=rules["pseudonym_salt"], group_by=source["group_by"],
        require_nonempty_label=source["require_nonempty_label"], max_slice_gap_ratio=rules["max_slice_gap_ratio"],
        spacing_tolerance_mm=rules["spacing_tolerance_mm"])


def tiny_pelvis_params(n_patients: int = 3) -> dict:
    """The quick profile's phantom, made smaller still so fixtures take seconds."""
    p = copy.deepcopy(load_params(REPO / "params.yaml", "quick")["phantom"]["pelvis"])
    p.update(n_patients=n_patients, ct_size=[80, 80, 20], ct_spacing_mm=[5.0, 5.0, 6.0],
             pet_size=[64, 64, 20], pet_spacing_mm=[6.25, 6.25, 6.0], pet_oversample=1)
    return p


@pytest.fixture(scope="session")
def pelvis_params() -> dict:
    return tiny_pelvis_params()


@pytest.fixture(scope="session")
def pelvis_cohort(tmp_path_factory, pelvis_params) -> Path:
    """A clean simulated cohort (DICOM tree + labels + truth). Treat as read-only."""
    from crossmodal.phantom.cohort import generate_pelvis_cohort

    return generate_pelvis_cohort(pelvis_params, tmp_path_factory.mktemp("cohort") / "pelvis")


@pytest.fixture(scope="session")
def ingested(tmp_path_factory, pelvis_cohort) -> Path:
    from crossmodal.io.cohort import ingest_dicom_cohort

    out = tmp_path_factory.mktemp("ingest")
    report = ingest_dicom_cohort(pelvis_cohort, out, modalities=["CT", "PT"], salt="test-salt")
    assert not report.problems, report.problems
    return out


@pytest.fixture(scope="session")
def part1_stage(ingested, tmp_path_factory):
    """The Part 1 imaging stage on the tiny cohort, with four inputs at 64 px."""
    from crossmodal.io.case import load_cases
    from crossmodal.stages.pelvis.align_fuse import run_align_fuse

    cfg = copy.deepcopy(load_params(REPO / "params.yaml", "quick")["align_fuse"])
    cfg["inputs"] = {k: cfg["inputs"][k] for k in ("adaptive_region", "adaptive_no_crop", "pet_only", "dwt")}
    cfg["image_size"] = 64
    out = tmp_path_factory.mktemp("align_fuse")
    cases = load_cases(ingested)
    return cases, out, cfg, run_align_fuse(cases, out, cfg, montage_cases=2)
