"""Physically impossible PET and geometry headers are refused with the rule named, the
series skipped and reported, while legitimate extremes still read."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag
from test_ingest import _patient_dirs
from test_ingest import ingest
from test_suv import pet_header

from crossmodal.io import suv
from crossmodal.io.case import load_cases
from crossmodal.io.dicom import read_series
from crossmodal.io.errors import ImplausibleValueError
from crossmodal.io.errors import IngestError
from crossmodal.io.errors import SeriesGeometryError

# the tests write such values on purpose; pydicom warns when it meets them
pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR")
RULE = ImplausibleValueError.rule
PET_FILE = "pet/0001.dcm"


def _raw(dataset, keyword: str, text: str) -> None:
    """Store ``text`` unconverted, as a file read from disk holds it (pydicom refuses to set a
    non-number decimal string, but reads one and fails only on access)."""
    tag = Tag(keyword)
    dataset[tag] = RawDataElement(tag, "DS", len(text), text.encode(), 0, True, True)


def _drug(**values):
    def edit(ds):
        for keyword, value in values.items():
            setattr(ds.RadiopharmaceuticalInformationSequence[0], keyword, value)
    return edit


def _top(**values):
    def edit(ds):
        for keyword, value in values.items():
            setattr(ds, keyword, value)
    return edit


def _drug_text(keyword, text):
    return lambda ds: _raw(ds.RadiopharmaceuticalInformationSequence[0], keyword, text)


SUV_RULES = [
    # id, edit of a valid PET header, what the detail must say
    ("weight_zero", _top(PatientWeight="0"), "PatientWeight 0 kg is outside"),
    ("weight_negative", _top(PatientWeight="-70"), "PatientWeight -70 kg is outside"),
    ("weight_in_grams", _top(PatientWeight="70000"), "PatientWeight 70000 kg is outside"),
    ("weight_nan", _top(PatientWeight="NaN"), "PatientWeight nan kg is outside"),
    ("weight_text", lambda ds: _raw(ds, "PatientWeight", "heavy"), "PatientWeight is not a number"),
    ("dose_zero", _drug(RadionuclideTotalDose="0"), "RadionuclideTotalDose 0 Bq is outside"),
    ("dose_negative", _drug(RadionuclideTotalDose="-370000000"), "RadionuclideTotalDose -3.7e+08 Bq"),
    ("dose_in_mbq", _drug(RadionuclideTotalDose="370"), "RadionuclideTotalDose 370 Bq is outside"),
    ("dose_absurd", _drug(RadionuclideTotalDose="3.7e12"), "RadionuclideTotalDose 3.7e+12 Bq"),
    ("dose_inf", _drug(RadionuclideTotalDose="inf"), "RadionuclideTotalDose inf Bq"),
    ("dose_text", _drug_text("RadionuclideTotalDose", "370MBq"), "RadionuclideTotalDose is not a number"),
    ("half_life_zero", _drug(RadionuclideHalfLife="0"), "RadionuclideHalfLife 0 s is outside"),
    ("half_life_negative", _drug(RadionuclideHalfLife="-6586.2"), "RadionuclideHalfLife -6586.2 s"),
    ("half_life_a_year", _drug(RadionuclideHalfLife="31557600"), "RadionuclideHalfLife 3.15576e+07 s"),
    ("half_life_text", _drug_text("RadionuclideHalfLife", "F18"), "RadionuclideHalfLife is not a number"),
    ("acquired_before_injection", _top(SeriesTime="090000", AcquisitionTime="090000"),
     "acquisition before injection: the reference time is 3600 s before"),
    ("injected_a_day_earlier", _drug(RadiopharmaceuticalStartDateTime="20220228100000"),
     "decay factor 2^-13.7 out of range"),
    ("half_life_in_minutes", _drug(RadionuclideHalfLife="109.77"), "decay factor 2^-32.8 out of range"),
    ("series_time_malformed", _top(SeriesTime="25xx00"), "SeriesDate + SeriesTime is not a valid DICOM"),
    ("series_date_malformed", _top(SeriesDate="2022-3-1"), "SeriesDate + SeriesTime is not a valid DICOM"),
    ("series_date_short", _top(SeriesDate="2022031"), "SeriesDate + SeriesTime is not a valid DICOM"),
    ("injection_datetime_malformed", _drug(RadiopharmaceuticalStartDateTime="20221301100000"),
     "RadiopharmaceuticalStartDateTime is not a valid DICOM"),
    ("injection_time_malformed", _drug(RadiopharmaceuticalStartDateTime="", RadiopharmaceuticalStartTime="1O0000"),
     "SeriesDate + RadiopharmaceuticalStartTime is not a valid DICOM"),
]


@pytest.mark.parametrize("edit, detail", [r[1:] for r in SUV_RULES], ids=[r[0] for r in SUV_RULES])
def test_implausible_suv_input_is_refused_naming_file_and_rule(edit, detail):
    ds = pet_header()
    edit(ds)
    with pytest.raises(ImplausibleValueError) as info:
        suv.suv_factor(ds, PET_FILE)
    assert str(info.value).startswith(f"{PET_FILE}: {RULE}: ")
    assert detail in info.value.detail
    assert "2022" not in str(info.value), "dates are identifying: the message gives durations only"


@pytest.mark.parametrize("value, detail", [("abc", "is not a number"), ("0", "0 is not a finite positive"),
                                           ("-0.0001", "-0.0001 is not a finite positive")])
def test_implausible_philips_scale_factor_is_refused(value, detail):
    ds = pet_header(Units="CNTS")
    vr = "LO" if value == "abc" else "DS"
    ds.add(pydicom.DataElement(0x70531000, vr, value))
    with pytest.raises(ImplausibleValueError, match=f"{PET_FILE}: {RULE}: Philips .*{detail}"):
        suv.suv_factor(ds, PET_FILE)


def test_malformed_acquisition_time_is_refused():
    with pytest.raises(ImplausibleValueError, match=f"{PET_FILE}: {RULE}: AcquisitionDate.*AcquisitionTime"):
        suv.acquisition_datetime(pet_header(AcquisitionTime="11h30"), PET_FILE)


@pytest.mark.parametrize("edit", [
    _top(PatientWeight="2.8"),  # a neonate ...
    _drug(RadionuclideTotalDose="14000000"),  # ... and the EANM paediatric FDG minimum, 14 MBq
    _top(PatientWeight="250"),  # a bariatric patient
    _top(SeriesTime="095800", AcquisitionTime="095800"),  # dynamic scan, scanner clock 2 min behind the injector's
    _top(SeriesTime="140000", AcquisitionTime="140000"),  # delayed FDG imaging 4 h after injection
    _drug(RadionuclideHalfLife="75.5", RadiopharmaceuticalStartDateTime="20220301105800"),  # Rb-82, 2 min
    _drug(RadionuclideHalfLife="282276", RadiopharmaceuticalStartDateTime="20220223110000"),  # Zr-89, day 6
    _top(SeriesTime="11:00:00"),  # the retired ACR-NEMA time form
], ids=["neonate", "paediatric_dose", "bariatric", "clock_skew", "delayed", "rb82", "zr89", "colon_time"])
def test_legitimate_extremes_are_not_refused(edit):
    ds = pet_header()
    edit(ds)
    assert 0 < suv.suv_factor(ds, PET_FILE) < np.inf


def _series_copy(tmp_path: Path, cohort: Path, modality: str, edit, only: int | None = None) -> list[Path]:
    """Copies of a phantom series with ``edit(ds)`` applied to every file, or to file ``only``."""
    files = sorted((_patient_dirs(cohort)[0] / modality).iterdir())
    copies = []
    for k, path in enumerate(files):
        ds = pydicom.dcmread(path)
        if only is None or k == only:
            edit(ds)
        copies.append(tmp_path / path.name)
        ds.save_as(copies[-1])
    return copies


def _float_pixels_with_nan(ds):
    planes = ds.pixel_array.astype(np.float32)
    planes[2, 3] = np.nan
    del ds.PixelData, ds.BitsStored, ds.HighBit, ds.PixelRepresentation
    ds.BitsAllocated = 32
    ds.FloatPixelData = planes.tobytes()


def _positions_scaled(ds):
    x, y, z = (float(v) for v in ds.ImagePositionPatient)
    ds.ImagePositionPatient = [x, y, z * 1000.0]  # slice spacing in micrometres


GEOMETRY_RULES = [
    # id, modality folder, edit, one slice (index) or all, what the detail must say
    ("pixel_spacing_zero", "CT", _top(PixelSpacing=["0", "0"]), 3, "PixelSpacing [0.0, 0.0] mm is outside"),
    ("pixel_spacing_negative", "PET", _top(PixelSpacing=["-6.25", "6.25"]), 0, "PixelSpacing [-6.25, 6.25] mm"),
    ("pixel_spacing_nan", "CT", _top(PixelSpacing=["NaN", "5"]), 3, "PixelSpacing [nan, 5.0] mm"),
    ("pixel_spacing_in_um", "CT", _top(PixelSpacing=["5000", "5000"]), None, "PixelSpacing [5000.0, 5000.0]"),
    ("slice_spacing_in_um", "CT", _positions_scaled, None, "slice spacing [6000.0] mm is outside"),
    ("orientation_degenerate", "CT", _top(ImageOrientationPatient=[1, 0, 0, 1, 0, 0]), 3,
     "is not two perpendicular unit vectors"),
    ("orientation_not_unit", "PET", _top(ImageOrientationPatient=[2, 0, 0, 0, 2, 0]), None,
     "is not two perpendicular unit vectors"),
    ("orientation_zero", "CT", _top(ImageOrientationPatient=[0, 0, 0, 0, 0, 0]), 0,
     "is not two perpendicular unit vectors"),
    ("orientation_nan", "CT", _top(ImageOrientationPatient=["NaN", 0, 0, 0, 1, 0]), 3,
     "is not two perpendicular unit vectors"),
    ("position_nan", "PET", _top(ImagePositionPatient=["0", "NaN", "0"]), 3, "ImagePositionPatient [0.0, nan, 0.0]"),
    ("slope_zero", "PET", _top(RescaleSlope="0"), 3, "RescaleSlope 0 or RescaleIntercept"),
    ("slope_negative", "CT", _top(RescaleSlope="-1"), 3, "RescaleSlope -1 or RescaleIntercept"),
    ("slope_inf", "PET", _top(RescaleSlope="inf"), 3, "RescaleSlope inf or RescaleIntercept"),
    ("intercept_nan", "CT", _top(RescaleIntercept="NaN"), 3, "RescaleIntercept nan"),
    ("pixels_overflow_to_inf", "CT", _top(RescaleSlope="1e300"), 3, "pixel values not finite (NaN or inf)"),
    ("pixels_nan", "CT", _float_pixels_with_nan, 3, "pixel values not finite (NaN or inf) after rescale"),
]


@pytest.mark.parametrize("modality, edit, only, detail", [r[1:] for r in GEOMETRY_RULES],
                         ids=[r[0] for r in GEOMETRY_RULES])
def test_implausible_geometry_or_pixels_are_refused_naming_file_and_rule(tmp_path, pelvis_cohort, modality,
                                                                         edit, only, detail):
    files = _series_copy(tmp_path, pelvis_cohort, modality, edit, only)
    with pytest.raises(ImplausibleValueError) as info:
        read_series(files)
    assert f": {RULE}: " in str(info.value) and detail in info.value.detail
    named = Path(info.value.path)
    assert named in files and str(named) in str(info.value)
    if only is not None:
        assert named == files[only]


def test_non_number_pixel_spacing_is_an_ingest_error_not_a_crash(tmp_path, pelvis_cohort):
    files = _series_copy(tmp_path, pelvis_cohort, "CT", lambda ds: None)
    stored = pydicom.dcmread(files[3]).get_item(0x00280030).value  # the bytes as written
    files[3].write_bytes(files[3].read_bytes().replace(stored, b"ab" + stored[2:], 1))
    with pytest.raises(SeriesGeometryError, match=f"{files[3].name}: series geometry: PixelSpacing is not a number"):
        read_series(files)


def _zero_half_life(ds):  # was a bare ZeroDivisionError that stopped the whole cohort
    ds.RadiopharmaceuticalInformationSequence[0].RadionuclideHalfLife = "0"


def _text_weight(path: Path):  # was a bare ValueError that stopped the whole cohort
    stored = pydicom.dcmread(path).get_item(0x00101030).value  # the bytes as written
    element = b"\x10\x00\x30\x10DS" + len(stored).to_bytes(2, "little")  # (0010,1030), explicit VR LE
    data = path.read_bytes()
    assert data.count(element + stored) == 1
    path.write_bytes(data.replace(element + stored, element + b"kg".ljust(len(stored))))


@pytest.mark.parametrize("breaker", ["zero_half_life", "text_weight"])
def test_patient_with_one_implausible_pet_series_is_reported_and_the_rest_ingested(tmp_path, pelvis_cohort,
                                                                                   pelvis_params, breaker):
    root = tmp_path / "cohort"
    shutil.copytree(pelvis_cohort, root)
    victim = _patient_dirs(root)[1]
    for path in sorted((victim / "PET").iterdir()):
        if breaker == "zero_half_life":
            ds = pydicom.dcmread(path)
            _zero_half_life(ds)
            ds.save_as(path)
        else:
            _text_weight(path)
    report = ingest(root, tmp_path / "out")
    refused = [p for p in report.problems if p["rule"] == RULE]
    assert len(refused) == 1, report.problems
    assert refused[0]["action"] == "PT series skipped"
    assert refused[0]["where"].endswith(".dcm") and "PET" in refused[0]["where"]
    assert victim.name not in refused[0]["where"]  # pseudonymised, like every report path
    assert ("RadionuclideHalfLife 0 s" if breaker == "zero_half_life" else "PatientWeight is not a number") \
        in refused[0]["detail"]
    assert any(p["rule"] == "study lacks a required modality" for p in report.problems)
    n_expected = pelvis_params["n_patients"] - 1
    assert len(report.cases) == n_expected == len(load_cases(tmp_path / "out"))


def test_implausible_value_error_is_an_ingest_error():
    # the cohort reader catches IngestError: this is what makes it skip and report, not stop
    assert issubclass(ImplausibleValueError, IngestError)


def test_an_injection_before_midnight_and_a_scan_after_it_are_an_hour_apart():
    # RadiopharmaceuticalStartTime carries no date: 23:40 with a scan at 00:40 the next day.
    ds = pet_header(SeriesDate="20220302", SeriesTime="004000", AcquisitionDate="20220302", AcquisitionTime="004000")
    drug = ds.RadiopharmaceuticalInformationSequence[0]
    del drug.RadiopharmaceuticalStartDateTime
    drug.RadiopharmaceuticalStartTime = "234000"
    assert suv.suv_factor(ds, "pet.dcm") == pytest.approx(suv.suv_factor(pet_header()), rel=1e-12)


@pytest.mark.parametrize("offset", ["-0500", "+0100"])
def test_a_start_datetime_with_a_utc_offset_is_read(offset):
    ds = pet_header()
    ds.RadiopharmaceuticalInformationSequence[0].RadiopharmaceuticalStartDateTime = f"20220301100000{offset}"
    assert suv.suv_factor(ds, "pet.dcm") == pytest.approx(suv.suv_factor(pet_header()), rel=1e-12)


def test_an_ingest_error_keeps_its_file_and_rule_across_processes():
    import pickle

    error = ImplausibleValueError("case/pet/0001.dcm", "PatientWeight 0 kg is outside 0.3..400 kg")
    back = pickle.loads(pickle.dumps(error))
    assert (type(back), back.path, back.detail, str(back)) == (type(error), error.path, error.detail, str(error))
