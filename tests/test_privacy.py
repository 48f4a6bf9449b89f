"""No identifier of the DICOM headers (names, IDs, birth dates, accession numbers, institution
and physician names) leaves the ingestion layer; the scan itself is tests/phi_scan.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom

from crossmodal.io.case import load_cases
from crossmodal.io.cohort import ingest_dicom_cohort
from crossmodal.io.nnunet import write_nnunet_dataset
from phi_scan import assert_no_identifier
from phi_scan import header_identifiers

# What the phantom writes in every header, as a hospital export would.
IDENTIFYING_FIELDS = ("PatientName", "PatientID", "OtherPatientIDs", "PatientBirthDate", "AccessionNumber", "StudyID",
                      "InstitutionName", "InstitutionAddress", "ReferringPhysicianName", "PerformingPhysicianName",
                      "OperatorsName")


def test_phantom_headers_carry_fake_identifiers(pelvis_cohort):
    headers = [pydicom.dcmread(next(patient.rglob("0001.dcm")), stop_before_pixels=True)
               for patient in sorted(pelvis_cohort.glob("PX*"))]
    ids = header_identifiers(pelvis_cohort)
    for ds in headers:
        assert all(str(ds.get(key, "")) for key in IDENTIFYING_FIELDS), ds
        assert len(str(ds.PatientName).split("^")) == 3 and str(ds.AccessionNumber).startswith("ACC")
        assert {str(ds.PatientID), str(ds.AccessionNumber), str(ds.PatientBirthDate)} <= ids
    for key in ("PatientID", "OtherPatientIDs", "AccessionNumber", "StudyID"):
        assert len({str(ds.get(key)) for ds in headers}) == len(headers), key  # one per patient
    assert any(i.startswith("PX") for i in ids) and any(len(i) == 8 and i.isdigit() for i in ids)


def test_ingestion_outputs_hold_no_identifier(pelvis_cohort, ingested, tmp_path):
    ids = header_identifiers(pelvis_cohort)
    write_nnunet_dataset(load_cases(ingested), tmp_path / "nnunet", dataset_id=999, name="Test",
                         label_names={1: "tumour", 2: "node"})
    scanned = assert_no_identifier(ingested, ids)
    assert scanned["nifti"] >= 9 and scanned["json"] >= 4 and scanned["csv"] == 1 and scanned["name"] > 10
    scanned = assert_no_identifier(tmp_path / "nnunet", ids)
    assert scanned["nifti"] == 9 and scanned["json"] == 1


def test_folder_names_of_a_hospital_export_are_redacted_in_the_report(pelvis_cohort, tmp_path):
    """Exports often name folders by patient, accession number or physician; a stray file there
    puts the folder in the cohort report."""
    root = tmp_path / "export"
    shutil.copytree(pelvis_cohort, root)
    for patient in sorted(root.glob("PX*")):
        ds = pydicom.dcmread(next(patient.rglob("0001.dcm")), stop_before_pixels=True)
        folder = root / (f"{ds.PatientName.family_name}_{ds.AccessionNumber}_{ds.StudyID}_"
                         f"{ds.ReferringPhysicianName.family_name}_{str(ds.InstitutionName).split()[0]}")
        patient.rename(folder)
        (folder / "CT" / "VERSION").write_text("export tool 1.0")
    report = ingest_dicom_cohort(root, tmp_path / "ingest", modalities=["CT", "PT"], salt="test-salt")
    stray = [p["where"] for p in report.problems if p["where"].endswith("VERSION")]
    assert len(stray) == 3 and all(where.count("[site]") == 2 for where in stray), stray
    assert assert_no_identifier(tmp_path / "ingest", header_identifiers(root))["json"] >= 4
