"""Ingestion of a DICOM tree: clean cohort, each broken-input rule, cohort report."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from crossmodal.io.case import load_cases
from crossmodal.io.cohort import ingest_dicom_cohort
from crossmodal.io.dicom import read_series
from crossmodal.io.dicom import scan_dicom_tree


def ingest(root: Path, out: Path, jobs: int = 1):
    return ingest_dicom_cohort(root, out, modalities=["CT", "PT"], salt="test-salt", jobs=jobs)


def test_clean_cohort_reads_every_case(pelvis_cohort, ingested, pelvis_params):
    cases = load_cases(ingested)
    assert len(cases) == pelvis_params["n_patients"]
    for case in cases:
        assert case.ct.GetSize() == tuple(pelvis_params["ct_size"])
        assert case.pet.GetSize() == tuple(pelvis_params["pet_size"])
        assert np.allclose(case.pet.GetSpacing(), pelvis_params["pet_spacing_mm"], atol=1e-3)
        assert case.label.GetSize() == case.ct.GetSize()
        assert case.truth["simulated"] is True
        assert case.case_id.startswith("C") and case.patient.startswith("P")


def test_reader_matches_simpleitk_series_reader(pelvis_cohort):
    series, problems = scan_dicom_tree(pelvis_cohort)
    assert not problems
    ct = next(s for s in series if s.modality == "CT")
    ours = read_series(ct)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(ct.files[0].parent)))
    theirs = reader.Execute()
    assert ours.GetSize() == theirs.GetSize()
    np.testing.assert_allclose(ours.GetOrigin(), theirs.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(ours.GetSpacing(), theirs.GetSpacing(), atol=1e-3)
    np.testing.assert_allclose(ours.GetDirection(), theirs.GetDirection(), atol=1e-6)
    np.testing.assert_allclose(sitk.GetArrayFromImage(ours), sitk.GetArrayFromImage(theirs), atol=1e-3)


def _patient_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name not in {"labels", "truth"})


def _ct_uid(patient_dir: Path) -> str:
    return str(pydicom.dcmread(next((patient_dir / "CT").iterdir()), stop_before_pixels=True).SeriesInstanceUID)


def _edit(path: Path, **changes) -> None:
    ds = pydicom.dcmread(path)
    for key, value in changes.items():
        if value is None:
            delattr(ds, key)
        else:
            setattr(ds, key, value)
    ds.save_as(path)


def break_corrupt_file(root, patient):
    (patient / "CT" / "0003.dcm").write_bytes(b"this is not DICOM at all" * 40)


def break_truncated_pixels(root, patient):
    path = patient / "CT" / "0003.dcm"
    ds = pydicom.dcmread(path)
    ds.PixelData = ds.PixelData[: len(ds.PixelData) // 2]
    ds.save_as(path)


def break_missing_slice(root, patient):
    (patient / "CT" / "0005.dcm").unlink()


def break_uneven_spacing(root, patient):
    path = patient / "CT" / "0005.dcm"
    ipp = [float(v) for v in pydicom.dcmread(path).ImagePositionPatient]
    _edit(path, ImagePositionPatient=[ipp[0], ipp[1], ipp[2] + 1.0])


def break_position_text(root, patient):
    path = patient / "CT" / "0004.dcm"
    stored = pydicom.dcmread(path).get_item(0x00200032).value  # the bytes as written
    garbled = b"abc" + stored[3:]  # same length, no longer a number
    path.write_bytes(path.read_bytes().replace(stored, garbled, 1))


def break_mixed_orientation(root, patient):
    _edit(patient / "CT" / "0004.dcm", ImageOrientationPatient=[1, 0, 0, 0, 0, -1])


def break_missing_weight(root, patient):
    for path in (patient / "PET").iterdir():
        _edit(path, PatientWeight=None)


def break_units(root, patient):
    for path in (patient / "PET").iterdir():
        _edit(path, Units="PROPCPS")


def break_label_grid(root, patient):
    path = root / "labels" / f"{_ct_uid(patient)}.nii.gz"
    label = sitk.ReadImage(str(path))
    label.SetSpacing([s * 1.5 for s in label.GetSpacing()])
    sitk.WriteImage(label, str(path))


def break_empty_label(root, patient):
    path = root / "labels" / f"{_ct_uid(patient)}.nii.gz"
    label = sitk.ReadImage(str(path))
    sitk.WriteImage(label * 0, str(path))


def break_missing_label(root, patient):
    (root / "labels" / f"{_ct_uid(patient)}.nii.gz").unlink()


CASES = [
    # breaker, expected rule (substring), whether the patient's case is lost
    (break_corrupt_file, "not a readable DICOM file", True),
    (break_truncated_pixels, "not a readable DICOM file", True),
    (break_missing_slice, "missing slices", True),
    (break_uneven_spacing, "uneven slice spacing", True),
    (break_mixed_orientation, "mixed slice orientations", True),
    (break_position_text, "series geometry", True),
    (break_missing_weight, "missing tag needed for SUV", True),
    (break_units, "unsupported PET units", True),
    (break_label_grid, "label grid differs", True),
    (break_empty_label, "label volume is empty", True),
    (break_missing_label, "no label volume", True),
]


@pytest.mark.parametrize("breaker, rule, case_lost", CASES, ids=[c[0].__name__ for c in CASES])
def test_broken_input_is_reported_and_the_rest_goes_on(tmp_path, pelvis_cohort, pelvis_params,
                                                      breaker, rule, case_lost):
    root = tmp_path / "cohort"
    shutil.copytree(pelvis_cohort, root)
    victim = _patient_dirs(root)[1]
    breaker(root, victim)
    report = ingest(root, tmp_path / "out")
    rules = [p["rule"] for p in report.problems]
    assert any(rule in r for r in rules), report.problems
    n_expected = pelvis_params["n_patients"] - (1 if case_lost else 0)
    assert len(report.cases) == n_expected
    assert len(load_cases(tmp_path / "out")) == n_expected
    # the report names the file or folder, pseudonymised
    offending = [p for p in report.problems if rule in p["rule"]][0]
    assert offending["where"] and victim.name not in offending["where"]
    assert offending["detail"]


def test_single_error_names_file_and_rule(tmp_path, pelvis_cohort):
    from crossmodal.io.errors import MissingSliceError

    root = tmp_path / "cohort"
    shutil.copytree(pelvis_cohort, root)
    patient = _patient_dirs(root)[0]
    (patient / "CT" / "0007.dcm").unlink()
    series = next(s for s in scan_dicom_tree(root)[0] if s.modality == "CT" and s.files[0].parent == patient / "CT")
    with pytest.raises(MissingSliceError) as info:
        read_series(series)
    assert "0008.dcm" in str(info.value) and "missing slices" in str(info.value)


def test_non_image_files_and_other_modalities_are_reported_not_fatal(tmp_path, pelvis_cohort, pelvis_params):
    root = tmp_path / "cohort"
    shutil.copytree(pelvis_cohort, root)
    (root / "notes.dat").write_text("scanner export log")
    report = ingest(root, tmp_path / "out")
    assert len(report.cases) == pelvis_params["n_patients"]
    assert any(p["where"] == "notes.dat" and p["action"] == "ignored file" for p in report.problems)


def test_parallel_ingestion_gives_the_same_cases_and_report(tmp_path, pelvis_cohort):
    root = tmp_path / "cohort"
    shutil.copytree(pelvis_cohort, root)
    break_missing_weight(root, _patient_dirs(root)[0])  # one problem, redacted in the worker's report too
    serial = ingest(root, tmp_path / "serial")
    parallel = ingest(root, tmp_path / "parallel", jobs=2)
    assert serial.to_dict() == parallel.to_dict() and serial.problems
    for case_dir in sorted((tmp_path / "serial" / "cases").iterdir()):
        for path in sorted(case_dir.rglob("*")):
            if path.is_file():
                twin = tmp_path / "parallel" / "cases" / case_dir.name / path.relative_to(case_dir)
                assert path.read_bytes() == twin.read_bytes(), path.name


@pytest.mark.parametrize("bits, signed, bits_stored, syntax", [
    (16, 1, 16, "1.2.840.10008.1.2.1"),   # CT: signed 16-bit, explicit little endian (raw view)
    (16, 0, 16, "1.2.840.10008.1.2"),     # unsigned, implicit little endian (raw view)
    (8, 0, 8, "1.2.840.10008.1.2.1"),
    (32, 1, 32, "1.2.840.10008.1.2.1"),
    (16, 1, 12, "1.2.840.10008.1.2.1"),   # 12 of 16 bits: pydicom's handler (sign extension)
])
def test_stored_pixels_match_pydicom(bits, signed, bits_stored, syntax):
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import UID

    from crossmodal.io.dicom import stored_pixels

    rng = np.random.default_rng(bits + signed + bits_stored)
    low, high = (-(2 ** (bits_stored - 1)), 2 ** (bits_stored - 1)) if signed else (0, 2 ** bits_stored)
    values = rng.integers(low, high, size=(5, 7)).astype(f"{'i' if signed else 'u'}{bits // 8}")
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID(syntax)
    ds.Rows, ds.Columns, ds.SamplesPerPixel = 5, 7, 1
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits_stored, bits_stored - 1, signed
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = values.astype(values.dtype.newbyteorder("<")).tobytes()
    ours = stored_pixels(ds)
    assert ours.dtype == ds.pixel_array.dtype
    np.testing.assert_array_equal(ours, ds.pixel_array)
    np.testing.assert_array_equal(ours, values)
