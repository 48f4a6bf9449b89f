"""No patient name, ID or birth date from the DICOM headers leaves the ingestion layer."""

from __future__ import annotations

import gzip
from pathlib import Path

import pydicom

from crossmodal.io.case import load_cases
from crossmodal.io.nnunet import write_nnunet_dataset


def header_identifiers(root: Path) -> set[str]:
    ids = set()
    for path in root.rglob("*.dcm"):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        ids |= {str(ds.PatientID), str(ds.PatientBirthDate), str(ds.PatientName)}
        ids |= {part for part in str(ds.PatientName).split("^") if len(part) > 3}
    return ids


def written_text(root: Path):
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if path.suffix == ".gz":
                data = gzip.decompress(data)
            yield path, data


def assert_no_identifier(root: Path, identifiers: set[str]) -> int:
    n_files = 0
    for path, data in written_text(root):
        n_files += 1
        for secret in identifiers:
            assert secret.encode() not in data, f"{secret!r} leaked into {path}"
        assert secret not in str(path.relative_to(root)), f"{secret!r} in a file name: {path}"
    return n_files


def test_phantom_headers_carry_fake_identifiers(pelvis_cohort):
    ids = header_identifiers(pelvis_cohort)
    assert any(i.startswith("PX") for i in ids) and any(len(i) == 8 and i.isdigit() for i in ids)


def test_ingestion_outputs_hold_no_identifier(pelvis_cohort, ingested, tmp_path):
    ids = header_identifiers(pelvis_cohort)
    write_nnunet_dataset(load_cases(ingested), tmp_path / "nnunet", dataset_id=999, name="Test",
                         label_names={1: "tumour", 2: "node"})
    assert assert_no_identifier(ingested, ids) > 10
    assert assert_no_identifier(tmp_path / "nnunet", ids) > 3
