"""Ingestion on real public data from ../shared/data (never copied into the repository).

Lung-PET-CT-Dx A0001: two real chest CT series with the collection's official tumour boxes
(PASCAL-VOC, one file per slice named by SOPInstanceUID). TotalSegmentator example: a real
CT as a DICOM series and as NIfTI with organ/bone labels.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from conftest import SHARED_DATA

from crossmodal.io.case import same_grid
from crossmodal.io.dicom import read_series
from crossmodal.io.dicom import scan_dicom_tree
from crossmodal.io.voc import box_checks

LUNG = SHARED_DATA / "lung-pet-ct-dx"
TOTALSEG = SHARED_DATA / "totalsegmentator-example"

pytestmark = pytest.mark.realdata


def need(path):
    if not path.exists():
        pytest.skip(f"real sample data not present at {path} (it lives in ../shared/data, outside the repo)")


@pytest.fixture(scope="module")
def lung_series():
    need(LUNG)
    series, problems = scan_dicom_tree(LUNG / "Lung_Dx-A0001")
    assert not problems
    return series


def test_lung_ct_series_read_with_geometry(lung_series):
    assert len(lung_series) == 2
    for s in lung_series:
        image = read_series(s)
        assert image.GetSize() == (512, 512, 64)
        assert image.GetSpacing()[2] == pytest.approx(5.0, abs=0.01)
        hu = sitk.GetArrayViewFromImage(image)
        assert hu.min() < -900 and 0 < np.median(hu[hu > -200]) < 200  # air and soft tissue in HU


def test_voc_boxes_match_slices_and_land_on_tumour(lung_series):
    checks = box_checks(lung_series, LUNG / "Annotation" / "A0001")
    assert len(checks) == 20 and set(checks["label"]) == {"A"}
    assert sorted(checks.groupby("series").size().tolist()) == [9, 11]
    # each box on tissue, clearly denser than the lung parenchyma around it
    assert checks["lands_on_tissue"].all(), checks[~checks["lands_on_tissue"]]


def test_the_box_check_fails_when_the_reader_flips_the_rows(lung_series, monkeypatch):
    """The check can fail: the same boxes on a volume upside down mostly land on air."""
    import crossmodal.io.voc as voc

    def flipped(series):
        image = read_series(series)
        upside_down = sitk.GetImageFromArray(sitk.GetArrayFromImage(image)[:, ::-1, :])
        upside_down.CopyInformation(image)
        return upside_down

    monkeypatch.setattr(voc, "read_series", flipped)
    checks = box_checks(lung_series, LUNG / "Annotation" / "A0001")
    assert len(checks) == 20 and checks["lands_on_tissue"].mean() < 0.5


def test_totalsegmentator_dicom_reader_agrees_with_simpleitk():
    need(TOTALSEG)
    series, problems = scan_dicom_tree(TOTALSEG / "example_ct_dicom")
    assert len(series) == 1 and not problems
    ours = read_series(series[0])
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(TOTALSEG / "example_ct_dicom")))
    theirs = reader.Execute()
    assert ours.GetSize() == theirs.GetSize() == (512, 512, 20)
    np.testing.assert_allclose(ours.GetOrigin(), theirs.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(ours.GetSpacing(), theirs.GetSpacing(), atol=1e-4)
    np.testing.assert_allclose(ours.GetDirection(), theirs.GetDirection(), atol=1e-6)
    np.testing.assert_allclose(sitk.GetArrayFromImage(ours), sitk.GetArrayFromImage(theirs), atol=0.5)


def test_totalsegmentator_dicom_and_nifti_geometry_agree(tmp_path):
    """The DICOM read, written as NIfTI, has the affine nibabel expects (RAS = LPS with x, y
    negated), and the example NIfTI CT and its label share one grid."""
    need(TOTALSEG)
    series, _ = scan_dicom_tree(TOTALSEG / "example_ct_dicom")
    image = read_series(series[0])
    sitk.WriteImage(image, str(tmp_path / "ct.nii.gz"))
    affine = nib.load(tmp_path / "ct.nii.gz").affine
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    lps_to_ras = np.diag([-1.0, -1.0, 1.0])
    np.testing.assert_allclose(affine[:3, :3], lps_to_ras @ direction @ np.diag(image.GetSpacing()), atol=1e-4)
    np.testing.assert_allclose(affine[:3, 3], lps_to_ras @ np.asarray(image.GetOrigin()), atol=1e-3)
    ct = sitk.ReadImage(str(TOTALSEG / "example_ct_sm.nii.gz"))
    seg = sitk.ReadImage(str(TOTALSEG / "example_seg.nii.gz"))
    assert same_grid(ct, seg, tolerance_mm=1e-3)
    nib_ct = nib.load(TOTALSEG / "example_ct_sm.nii.gz")
    np.testing.assert_allclose(nib_ct.affine[:3, 3], lps_to_ras @ np.asarray(ct.GetOrigin()), atol=1e-3)
    # the labelled vertebrae sit inside bone on the NIfTI CT
    ct_hu, labels = sitk.GetArrayFromImage(ct), sitk.GetArrayFromImage(seg)
    assert np.median(ct_hu[labels > 0]) > -200
