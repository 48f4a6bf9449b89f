"""SUV by the QIBA rule: hand-computed values, pysuv agreement, per-slice slope, errors."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from crossmodal.io import suv
from crossmodal.io.dicom import read_series
from crossmodal.io.dicom import scan_dicom_tree
from crossmodal.io.errors import MissingSUVTagError
from crossmodal.io.errors import UnsupportedUnitsError


def pet_header(**overrides) -> Dataset:
    ds = Dataset()
    ds.Units = "BQML"
    ds.DecayCorrection = "START"
    ds.CorrectedImage = ["ATTN", "DECY"]
    ds.PatientWeight = "70.0"
    ds.SeriesDate, ds.SeriesTime = "20220301", "110000"
    ds.AcquisitionDate, ds.AcquisitionTime = "20220301", "110000"
    drug = Dataset()
    drug.RadiopharmaceuticalStartDateTime = "20220301100000"
    drug.RadiopharmaceuticalStartTime = "100000"
    drug.RadionuclideTotalDose = "370000000"
    drug.RadionuclideHalfLife = "6586.2"
    ds.RadiopharmaceuticalInformationSequence = Sequence([drug])
    for key, value in overrides.items():
        if value is None:
            delattr(ds, key)
        else:
            setattr(ds, key, value)
    return ds


def test_hand_computed_factor():
    # 60 min after a 370 MBq injection, 70 kg: SUV factor = 70000 / (370e6 * 2^(-3600/6586.2)).
    expected = 70.0 * 1000.0 / (370e6 * 2.0 ** (-3600.0 / 6586.2))
    assert suv.suv_factor(pet_header()) == pytest.approx(expected, rel=1e-12)
    # worked by hand: 2^(-3600/6586.2) = 0.68465; 70000 / (370e6 * 0.68465) = 2.7633e-4 per Bq/ml
    assert 5000.0 * suv.suv_factor(pet_header()) == pytest.approx(1.3817, abs=1e-3)


def test_injection_time_falls_back_to_series_date_plus_start_time():
    ds = pet_header()
    del ds.RadiopharmaceuticalInformationSequence[0].RadiopharmaceuticalStartDateTime
    assert suv.injection_datetime(ds) == dt.datetime(2022, 3, 1, 10, 0, 0)
    assert suv.suv_factor(ds) == pytest.approx(suv.suv_factor(pet_header()))


def test_post_processed_series_uses_earliest_acquisition():
    ds = pet_header(SeriesTime="130000")  # series re-saved two hours later
    earliest = dt.datetime(2022, 3, 1, 11, 0, 0)
    assert suv.suv_factor(ds, earliest_acquisition=earliest) == pytest.approx(suv.suv_factor(pet_header()))
    assert suv.suv_factor(ds) != pytest.approx(suv.suv_factor(pet_header()))


def test_gml_is_already_suv_and_cnts_uses_philips_factor():
    assert suv.suv_factor(pet_header(Units="GML")) == 1.0
    ds = pet_header(Units="CNTS")
    ds.add_new((0x7053, 0x1000), "DS", "0.000123")
    assert suv.suv_factor(ds) == pytest.approx(0.000123)


@pytest.mark.parametrize("tag", ["Units", "PatientWeight", "DecayCorrection", "SeriesDate", "SeriesTime",
                                 "RadiopharmaceuticalInformationSequence"])
def test_missing_top_level_tag_raises_named_error(tag):
    with pytest.raises(MissingSUVTagError, match=tag):
        suv.suv_factor(pet_header(**{tag: None}), "pet/0001.dcm")


@pytest.mark.parametrize("tag", ["RadionuclideTotalDose", "RadionuclideHalfLife"])
def test_missing_drug_tag_raises_named_error(tag):
    ds = pet_header()
    delattr(ds.RadiopharmaceuticalInformationSequence[0], tag)
    with pytest.raises(MissingSUVTagError, match=f"pet/0001.dcm.*{tag}"):
        suv.suv_factor(ds, "pet/0001.dcm")


def test_missing_injection_time_raises():
    ds = pet_header()
    drug = ds.RadiopharmaceuticalInformationSequence[0]
    del drug.RadiopharmaceuticalStartDateTime, drug.RadiopharmaceuticalStartTime
    with pytest.raises(MissingSUVTagError, match="RadiopharmaceuticalStartTime"):
        suv.suv_factor(ds)


def test_cnts_without_philips_tag_and_unknown_units_raise():
    with pytest.raises(MissingSUVTagError, match="7053,1000"):
        suv.suv_factor(pet_header(Units="CNTS"))
    with pytest.raises(UnsupportedUnitsError, match="PROPCPS"):
        suv.suv_factor(pet_header(Units="PROPCPS"))


def test_corrections_and_decay_reference_are_enforced():
    with pytest.raises(UnsupportedUnitsError, match="ATTN"):
        suv.suv_factor(pet_header(CorrectedImage=["DECY"]))
    with pytest.raises(UnsupportedUnitsError, match="DECY"):
        suv.suv_factor(pet_header(CorrectedImage=["ATTN"]))
    with pytest.raises(UnsupportedUnitsError, match="ADMIN"):
        suv.suv_factor(pet_header(DecayCorrection="ADMIN"))


def _pet_series(cohort):
    series, _ = scan_dicom_tree(cohort)
    return [s for s in series if s.modality == "PT"]


def test_phantom_pet_agrees_with_pysuv(pelvis_cohort):
    pysuv = pytest.importorskip("pysuv")
    pet = _pet_series(pelvis_cohort)[0]
    volume = read_series(pet)
    ours = sitk.GetArrayFromImage(volume)
    checked = 0
    for path in pet.files:
        ds = pydicom.dcmread(path)
        z = volume.TransformPhysicalPointToIndex([float(v) for v in ds.ImagePositionPatient])[2]
        reference = pysuv.compute_suv(ds)
        np.testing.assert_allclose(ours[z], reference, rtol=1e-4, atol=1e-4)
        checked += 1
    assert checked == len(pet.files) > 5


def test_per_slice_slope_is_applied(pelvis_cohort):
    pet = _pet_series(pelvis_cohort)[0]
    slopes = {float(pydicom.dcmread(p, stop_before_pixels=True).RescaleSlope) for p in pet.files}
    assert len(slopes) > 1, "the phantom stores a slope per slice, as scanners do"
    volume = sitk.GetArrayFromImage(read_series(pet))
    for path in pet.files[:4]:
        ds = pydicom.dcmread(path)
        z = int(ds.InstanceNumber) - 1
        expected = ds.pixel_array * float(ds.RescaleSlope) * suv.suv_factor(ds)
        np.testing.assert_allclose(volume[z], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("units", ["BQML", "GML", "CNTS"])
def test_suv_factor_reads_only_the_listed_tags(units, monkeypatch):
    # read_series computes the factor once per distinct set of SUV_TAGS values: a tag read
    # but not listed would let two slices that differ in it share one factor.
    ds = pet_header(Units=units)
    if units == "CNTS":
        ds.add_new((0x7053, 0x1000), "DS", "0.000123")
    read = set()
    original = Dataset.__getitem__

    def recording(self, key):
        if self is ds:
            read.add(int(pydicom.tag.Tag(key)) if not isinstance(key, slice) else key)
        return original(self, key)

    monkeypatch.setattr(Dataset, "__getitem__", recording)
    suv.suv_factor(ds, earliest_acquisition=dt.datetime(2022, 3, 1, 11, 0, 0))
    assert read and read <= set(suv.SUV_TAGS), sorted(hex(t) for t in read - set(suv.SUV_TAGS))


def _every_other_slice_doubled(tmp_path, pelvis_cohort, edit) -> np.ndarray:
    """Copies of one PET series with ``edit(ds, doubled)`` applied to each file (doubled
    on every other one); per-slice SUV ratios of the copy to the original."""
    pet_dir = next(p for p in sorted(pelvis_cohort.iterdir()) if (p / "PET").is_dir()) / "PET"
    files = sorted(pet_dir.iterdir())
    before = sitk.GetArrayFromImage(read_series(files))
    copies = []
    for k, path in enumerate(files):
        ds = pydicom.dcmread(path)
        edit(ds, bool(k % 2))
        copies.append(tmp_path / path.name)
        ds.save_as(copies[-1])
    after = sitk.GetArrayFromImage(read_series(copies))
    ratios = np.asarray([after[z].sum() / before[z].sum() for z in range(len(after)) if before[z].sum() > 0])
    assert np.all(np.isclose(ratios, 1.0) | np.isclose(ratios, 2.0))
    return ratios


def test_series_with_per_slice_weight_gets_per_slice_factors(tmp_path, pelvis_cohort):
    # The factor is shared only between slices whose SUV tags hold the same values.
    def double_weight(ds, doubled):
        if doubled:
            ds.PatientWeight = str(float(ds.PatientWeight) * 2)

    ratios = _every_other_slice_doubled(tmp_path, pelvis_cohort, double_weight)
    assert np.isclose(ratios, 2.0).sum() > 0 and np.isclose(ratios, 1.0).sum() > 0


def test_undefined_length_sequences_with_other_doses_get_their_own_factors(tmp_path, pelvis_cohort):
    # pydicom parses a sequence of undefined length while reading the file, so the factor
    # cache must compare its contents, not a summary of it.
    def halve_dose(ds, doubled):
        ds[0x00540016].is_undefined_length = True
        if doubled:
            drug = ds.RadiopharmaceuticalInformationSequence[0]
            drug.RadionuclideTotalDose = str(float(drug.RadionuclideTotalDose) / 2)

    ratios = _every_other_slice_doubled(tmp_path, pelvis_cohort, halve_dose)
    assert np.isclose(ratios, 2.0).sum() > 0 and np.isclose(ratios, 1.0).sum() > 0
    reread = pydicom.dcmread(next(tmp_path.glob("*")))
    assert isinstance(reread.get_item(0x00540016).value, Sequence)  # parsed at read time
