"""Lesion labels as a hospital exports them: DICOM SEG (highdicom) and RTSTRUCT (pydicom),
written here on a CT series written by the phantom's DICOM writer, read onto the CT grid,
ingested like a NIfTI label, and every broken-label rule."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.dataset import Dataset
from pydicom.dataset import FileDataset
from pydicom.dataset import FileMetaDataset
from pydicom.sr.codedict import codes
from pydicom.uid import ExplicitVRLittleEndian

from crossmodal.io.cohort import ingest_dicom_cohort
from crossmodal.io.dicom import read_series
from crossmodal.io.dicom import scan_dicom_tree
from crossmodal.io.errors import LabelOffGridError
from crossmodal.io.errors import LabelReferenceError
from crossmodal.io.errors import NoLabelContentError
from crossmodal.io.errors import OverlappingLabelsError
from crossmodal.io.errors import UnknownSegmentError
from crossmodal.io.labels import read_rtstruct_label
from crossmodal.io.labels import read_seg_label
from crossmodal.phantom.dicom import uid
from crossmodal.phantom.dicom import write_series

LABEL_NAMES = {1: "cervical_tumour", 2: "lymph_node"}
RTSTRUCT_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
# CT axes (sitk direction columns): axial, and axial turned 90 degrees in-plane.
DIRECTIONS = {"axial": (1, 0, 0, 0, 1, 0, 0, 0, 1), "turned": (0, -1, 0, 1, 0, 0, 0, 0, 1)}


# ------------------------------------------------------------------ writers


def write_ct(folder: Path, *, direction=DIRECTIONS["axial"], size=(32, 24, 8)) -> list[Path]:
    """A small CT series (anisotropic voxels, off-centre origin) in ``folder``."""
    image = sitk.Image(list(size), sitk.sitkFloat32)
    image.SetSpacing((2.0, 2.5, 4.0))
    image.SetOrigin((-30.0, -20.0, 100.0))
    image.SetDirection(direction)
    when = dt.datetime(2021, 3, 4, 9, 30)
    patient = {"PatientName": "Labels^Test", "PatientID": "LT0001", "PatientBirthDate": "19700101"}
    study = {"StudyInstanceUID": uid("labels", "study"), "FrameOfReferenceUID": uid("labels", "frame"),
             "StudyDate": when.strftime("%Y%m%d"), "StudyTime": when.strftime("%H%M%S"), "acquisition_datetime": when}
    return write_series(image, folder, modality="CT", patient=patient, study=study,
                        series_uid=uid("labels", "ct", folder.name), series_number=2, series_description="CT")


def ct_datasets(files: list[Path]) -> list[Dataset]:
    """The CT's datasets in the z order of :func:`read_series`'s volume."""
    datasets = [pydicom.dcmread(f) for f in files]
    normal = np.cross(*np.reshape([float(v) for v in datasets[0].ImageOrientationPatient], (2, 3)))
    return sorted(datasets, key=lambda ds: float(np.dot([float(v) for v in ds.ImagePositionPatient], normal)))


def write_seg(path: Path, ct: list[Dataset], mask: np.ndarray, names: list[str], *, kind: str = "BINARY") -> Path:
    """A SEG of ``mask`` (z, y, x; values 1.. are ``names``, or one float segment when
    FRACTIONAL) drawn on the ``ct`` datasets, written by highdicom."""
    descriptions = [hd.seg.SegmentDescription(
        segment_number=n, segment_label=name, segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Neoplasm, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)
        for n, name in enumerate(names, start=1)]
    seg = hd.seg.Segmentation(
        source_images=ct, pixel_array=mask, segmentation_type=kind, segment_descriptions=descriptions,
        series_instance_uid=uid(path, "series"), series_number=300, sop_instance_uid=uid(path, "sop"),
        instance_number=1, manufacturer="test", manufacturer_model_name="test", software_versions="1",
        device_serial_number="1")
    path.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(path)
    return path


def write_rtstruct(path: Path, ct: list[Dataset], rois: dict[str, list[np.ndarray]]) -> Path:
    """An RTSTRUCT on the ``ct`` series: ROI name -> CLOSED_PLANAR contours, each an (n, 3)
    array of points in patient mm."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = RTSTRUCT_STORAGE, uid(path, "sop")
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = RTSTRUCT_STORAGE, meta.MediaStorageSOPInstanceUID, "RTSTRUCT"
    for key in ("PatientName", "PatientID", "PatientBirthDate", "StudyInstanceUID", "StudyDate", "StudyTime"):
        setattr(ds, key, ct[0].get(key))
    ds.SeriesInstanceUID, ds.SeriesNumber, ds.StructureSetLabel = uid(path, "series"), 400, "lesions"
    frame_uid = str(ct[0].FrameOfReferenceUID)
    series = Dataset()
    series.SeriesInstanceUID = ct[0].SeriesInstanceUID
    series.ContourImageSequence = [_reference(image.SOPClassUID, image.SOPInstanceUID) for image in ct]
    study = _reference("1.2.840.10008.3.1.2.3.1", ct[0].StudyInstanceUID)
    study.RTReferencedSeriesSequence = [series]
    frame = Dataset()
    frame.FrameOfReferenceUID, frame.RTReferencedStudySequence = frame_uid, [study]
    ds.ReferencedFrameOfReferenceSequence = [frame]
    ds.StructureSetROISequence, ds.ROIContourSequence = [], []
    for number, (name, contours) in enumerate(rois.items(), start=1):
        roi = Dataset()
        roi.ROINumber, roi.ReferencedFrameOfReferenceUID, roi.ROIName = number, frame_uid, name
        roi.ROIGenerationAlgorithm = "MANUAL"
        ds.StructureSetROISequence.append(roi)
        item = Dataset()
        item.ReferencedROINumber, item.ROIDisplayColor = number, [255, 0, 0]
        item.ContourSequence = [_contour(points) for points in contours]
        ds.ROIContourSequence.append(item)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def _reference(sop_class: str, sop_instance: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = sop_class, sop_instance
    return item


def _contour(points: np.ndarray) -> Dataset:
    contour = Dataset()
    contour.ContourGeometricType, contour.NumberOfContourPoints = "CLOSED_PLANAR", len(points)
    contour.ContourData = [f"{v:.4f}" for v in np.asarray(points).ravel()]
    return contour


def polygon_mm(image: sitk.Image, k: int, xy: np.ndarray) -> np.ndarray:
    """Points given as (x, y) voxel indices on slice ``k``, in patient mm."""
    return np.asarray([image.TransformContinuousIndexToPhysicalPoint((float(x), float(y), float(k))) for x, y in xy])


def circle_mm(image: sitk.Image, k: int, centre_mm: np.ndarray, radius_mm: float, n: int = 72) -> np.ndarray:
    """A circle of ``radius_mm`` about ``centre_mm`` in slice ``k``'s plane, in patient mm."""
    axes = np.reshape(image.GetDirection(), (3, 3))
    plane_centre = np.asarray(image.TransformContinuousIndexToPhysicalPoint((0.0, 0.0, float(k))))
    centre = centre_mm + axes[:, 2] * np.dot(plane_centre - centre_mm, axes[:, 2])
    angle = np.linspace(0, 2 * np.pi, n, endpoint=False)[:, None]
    return centre + radius_mm * (np.cos(angle) * axes[:, 0] + np.sin(angle) * axes[:, 1])


def voxel_centres_mm(image: sitk.Image) -> np.ndarray:
    """(z, y, x, 3) patient coordinates of every voxel centre."""
    size = image.GetSize()
    z, y, x = np.meshgrid(*(np.arange(n) for n in size[::-1]), indexing="ij")
    index = np.stack([x, y, z], axis=-1).reshape(-1, 3).astype(float)
    axes = np.reshape(image.GetDirection(), (3, 3)) * np.asarray(image.GetSpacing())
    return (index @ axes.T + np.asarray(image.GetOrigin())).reshape(*size[::-1], 3)


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module", params=sorted(DIRECTIONS))
def ct(request, tmp_path_factory):
    """(CT image as ingestion reads it, its datasets in volume order, series UID, frame UID)."""
    files = write_ct(tmp_path_factory.mktemp(f"ct-{request.param}"), direction=DIRECTIONS[request.param])
    datasets = ct_datasets(files)
    return read_series(files), datasets, str(datasets[0].SeriesInstanceUID), str(datasets[0].FrameOfReferenceUID)


def known_mask(image: sitk.Image) -> np.ndarray:
    """Two labels of irregular shape on some slices (z, y, x)."""
    rng = np.random.default_rng(14)
    mask = np.zeros(sitk.GetArrayViewFromImage(image).shape, np.uint8)
    mask[2:5, 4:12, 5:14] = (rng.random((3, 8, 9)) < 0.7).astype(np.uint8)
    mask[6, 15:20, 20:26] = 2
    return mask


def read_seg(path, ct, **changes):
    image, _, series_uid, frame_uid = ct
    kwargs = {"series_uid": series_uid, "frame_of_reference_uid": frame_uid, "label_names": LABEL_NAMES, **changes}
    return read_seg_label(path, image, **kwargs)


def read_rtstruct(path, ct, **changes):
    image, _, series_uid, frame_uid = ct
    kwargs = {"series_uid": series_uid, "frame_of_reference_uid": frame_uid, "label_names": LABEL_NAMES, **changes}
    return read_rtstruct_label(path, image, **kwargs)


# ------------------------------------------------------------------ reading onto the CT grid


@pytest.mark.parametrize("kind", ["BINARY", "LABELMAP"])
def test_seg_reads_exactly_onto_the_ct_grid(tmp_path, ct, kind):
    image, datasets, *_ = ct
    mask = known_mask(image)
    path = write_seg(tmp_path / "seg.dcm", datasets, mask, ["Cervical Tumour", "lymph-node"], kind=kind)
    label = read_seg(path, ct)
    assert label.dtype == np.uint8 and label.shape == mask.shape
    np.testing.assert_array_equal(label, mask)


def test_fractional_seg_counts_a_pixel_from_half(tmp_path, ct):
    image, datasets, *_ = ct
    fraction = np.zeros(sitk.GetArrayViewFromImage(image).shape, np.float32)
    fraction[3, 5:10, 5:10] = 0.8
    fraction[3, 12:15, 5:10] = 0.3  # below half: not lesion
    fraction[4, 5:8, 5:8] = 1.0
    path = write_seg(tmp_path / "seg.dcm", datasets, fraction, ["cervical_tumour"], kind="FRACTIONAL")
    np.testing.assert_array_equal(read_seg(path, ct), (fraction >= 0.5).astype(np.uint8))


def test_rtstruct_circles_fill_within_a_voxel_of_their_edge_and_inner_contours_are_holes(tmp_path, ct):
    image, datasets, *_ = ct
    centre = np.asarray(image.TransformContinuousIndexToPhysicalPoint((14.3, 10.6, 0.0)))
    outer, inner = 14.0, 6.0
    rois = {"CERVICAL_TUMOUR": [circle_mm(image, k, centre, outer) for k in (2, 3, 4)]
                               + [circle_mm(image, 3, centre, inner)],  # a hole on slice 3
            "Lymph Node": [polygon_mm(image, 6, np.array([[25.2, 3.3], [29.6, 3.3], [29.6, 8.8], [25.2, 8.8]]))]}
    label = read_rtstruct(write_rtstruct(tmp_path / "rs.dcm", datasets, rois), ct)

    centres = voxel_centres_mm(image)
    in_plane = centres - centre
    normal = np.reshape(image.GetDirection(), (3, 3))[:, 2]
    distance = np.linalg.norm(in_plane - np.dot(in_plane, normal)[..., None] * normal, axis=-1)
    expected = np.zeros(label.shape, np.uint8)
    expected[2:5][distance[2:5] <= outer] = 1
    expected[3][distance[3] <= inner] = 0
    expected[6, 4:9, 26:30] = 2  # x 25.2..29.6 -> 26..29, y 3.3..8.8 -> 4..8
    wrong = label != expected
    edge = np.max(image.GetSpacing()[:2])
    near_edge = (np.abs(distance - outer) <= edge) | (np.abs(distance - inner) <= edge)
    assert not (wrong & ~near_edge).any(), np.argwhere(wrong & ~near_edge)[:5]
    assert wrong.sum() < 0.1 * (expected == 1).sum()
    assert (label[3][distance[3] < inner - edge] == 0).all() and (label[2][distance[2] < inner - edge] == 1).all()
    np.testing.assert_array_equal(label[6], expected[6])


# ------------------------------------------------------------------ each broken-label rule, read directly


def test_a_seg_or_rtstruct_of_another_series_or_frame_is_refused(tmp_path, ct):
    image, datasets, *_ = ct
    seg = write_seg(tmp_path / "seg.dcm", datasets, known_mask(image), ["cervical_tumour", "lymph_node"])
    rs = write_rtstruct(tmp_path / "rs.dcm", datasets, {"lymph_node": [circle_mm(image, 3, image.GetOrigin(), 9)]})
    for path, read in ((seg, read_seg), (rs, read_rtstruct)):
        with pytest.raises(LabelReferenceError, match=f"{path.name}.*references another series.*does not ref"):
            read(path, ct, series_uid=uid("another series"))
        with pytest.raises(LabelReferenceError, match=f"{path.name}.*FrameOfReferenceUID differs"):
            read(path, ct, frame_of_reference_uid=uid("another frame"))


def test_a_seg_without_frames_and_an_rtstruct_without_contours_are_refused(tmp_path, ct):
    image, datasets, *_ = ct
    seg = write_seg(tmp_path / "seg.dcm", datasets, known_mask(image), ["cervical_tumour", "lymph_node"])
    ds = pydicom.dcmread(seg)
    ds.NumberOfFrames, ds.PerFrameFunctionalGroupsSequence = 0, []
    del ds.PixelData
    ds.save_as(seg)
    with pytest.raises(NoLabelContentError, match="seg.dcm.*SEG has no frames"):
        read_seg(seg, ct)
    rs = write_rtstruct(tmp_path / "rs.dcm", datasets, {"cervical_tumour": [], "lymph_node": []})
    with pytest.raises(NoLabelContentError, match="rs.dcm.*RTSTRUCT has no contours"):
        read_rtstruct(rs, ct)


def test_a_segment_or_roi_name_not_in_label_names_is_refused(tmp_path, ct):
    image, datasets, *_ = ct
    seg = write_seg(tmp_path / "seg.dcm", datasets, known_mask(image), ["cervical_tumour", "bladder"])
    with pytest.raises(UnknownSegmentError, match=r"seg.dcm.*not in label_names.*\['bladder'\]"):
        read_seg(seg, ct)
    rs = write_rtstruct(tmp_path / "rs.dcm", datasets, {"GTV node": [circle_mm(image, 3, image.GetOrigin(), 9)]})
    with pytest.raises(UnknownSegmentError, match=r"rs.dcm.*ROI name\(s\) \['GTV node'\] not in label_names"):
        read_rtstruct(rs, ct)


def test_seg_frames_off_the_ct_slices_are_refused(tmp_path, ct):
    image, datasets, *_ = ct
    seg = write_seg(tmp_path / "seg.dcm", datasets, known_mask(image), ["cervical_tumour", "lymph_node"])
    normal = np.reshape(image.GetDirection(), (3, 3))[:, 2]
    ds = pydicom.dcmread(seg)
    plane = ds.PerFrameFunctionalGroupsSequence[1].PlanePositionSequence[0]
    plane.ImagePositionPatient = (np.asarray(plane.ImagePositionPatient, float) + normal * 2.0).tolist()  # half a slice
    ds.save_as(seg)
    with pytest.raises(LabelOffGridError, match="seg.dcm.*off the image's slices.*frame 2 at .* not on a slice"):
        read_seg(seg, ct)
    ds = pydicom.dcmread(write_seg(tmp_path / "seg2.dcm", datasets, known_mask(image), ["cervical_tumour"] * 2))
    ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing = [1.25, 1.0]
    ds.save_as(tmp_path / "seg2.dcm")
    with pytest.raises(LabelOffGridError, match="seg2.dcm.*pixel spacing"):
        read_seg(tmp_path / "seg2.dcm", ct)


def test_rtstruct_contours_off_the_ct_slices_and_overlapping_labels_are_refused(tmp_path, ct):
    image, datasets, *_ = ct
    normal = np.reshape(image.GetDirection(), (3, 3))[:, 2]
    off = circle_mm(image, 3, np.asarray(image.GetOrigin()), 9) + normal * 1.5
    with pytest.raises(LabelOffGridError, match="off.dcm.*ROI 'lymph_node' contour 1 .*not on a slice"):
        read_rtstruct(write_rtstruct(tmp_path / "off.dcm", datasets, {"lymph_node": [off]}), ct)
    centre = np.asarray(image.TransformContinuousIndexToPhysicalPoint((12.0, 10.0, 0.0)))
    both = {"cervical_tumour": [circle_mm(image, 3, centre, 10)], "lymph_node": [circle_mm(image, 3, centre, 5)]}
    with pytest.raises(OverlappingLabelsError, match=r"both.dcm.*belong to label values \[1, 2\]"):
        read_rtstruct(write_rtstruct(tmp_path / "both.dcm", datasets, both), ct)


# ------------------------------------------------------------------ ingestion


def one_patient_cohort(pelvis_cohort: Path, root: Path) -> tuple[Path, str]:
    """A copy of the tiny cohort with its first patient only; that patient's folder and CT UID."""
    shutil.copytree(pelvis_cohort, root)
    patients = sorted(p for p in root.iterdir() if p.is_dir() and p.name not in {"labels", "truth"})
    for other in patients[1:]:
        shutil.rmtree(other)
    ct_uid = str(pydicom.dcmread(next((patients[0] / "CT").iterdir()), stop_before_pixels=True).SeriesInstanceUID)
    return patients[0], ct_uid


def ingest(root: Path, out: Path):
    return ingest_dicom_cohort(root, out, modalities=["CT", "PT"], salt="test-salt", label_names=LABEL_NAMES)


def assert_same_case_files(out: Path, reference_out: Path) -> None:
    cases = sorted((out / "cases").iterdir())
    assert cases
    for case_dir in cases:
        for path in sorted(p for p in case_dir.rglob("*") if p.is_file()):
            twin = reference_out / "cases" / case_dir.name / path.relative_to(case_dir)
            assert path.read_bytes() == twin.read_bytes(), path.name


def test_a_seg_beside_the_images_ingests_like_its_nifti_label(tmp_path, pelvis_cohort, ingested):
    patient, ct_uid = one_patient_cohort(pelvis_cohort, tmp_path / "cohort")
    nifti = tmp_path / "cohort" / "labels" / f"{ct_uid}.nii.gz"
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(nifti)))
    assert mask.any() and set(np.unique(mask)) <= {0, 1, 2}
    write_seg(patient / "SEG" / "lesions.dcm", ct_datasets(sorted((patient / "CT").iterdir())), mask,
              ["cervical tumour", "Lymph_Node"])
    nifti.unlink()
    series, problems = scan_dicom_tree(patient)
    assert sorted(s.modality for s in series) == ["CT", "PT", "SEG"] and not problems  # not an unreadable slice
    report = ingest(tmp_path / "cohort", tmp_path / "out")
    assert not report.problems and len(report.cases) == 1
    assert_same_case_files(tmp_path / "out", ingested)


def test_an_rtstruct_beside_the_images_ingests_like_its_nifti_label(tmp_path, pelvis_cohort):
    patient, ct_uid = one_patient_cohort(pelvis_cohort, tmp_path / "rt")
    image = read_series(sorted((patient / "CT").iterdir()))
    # Rectangles a little inside voxel edges: their filling is known exactly.
    boxes = {"cervical_tumour": (8, [(30, 40, 25, 33), (31, 41, 26, 34)]), "lymph_node": (12, [(50, 55, 44, 49)])}
    rois, mask = {}, np.zeros(sitk.GetArrayViewFromImage(image).shape, np.uint8)
    for name, (k0, rectangles) in boxes.items():
        rois[name] = []
        for k, (x0, x1, y0, y1) in enumerate(rectangles, start=k0):
            corners = np.array([[x0 - 0.4, y0 - 0.4], [x1 + 0.4, y0 - 0.4], [x1 + 0.4, y1 + 0.4], [x0 - 0.4, y1 + 0.4]])
            rois[name].append(polygon_mm(image, k, corners))
            mask[k, y0:y1 + 1, x0:x1 + 1] = 1 if name == "cervical_tumour" else 2
    write_rtstruct(patient / "RTSTRUCT" / "structures.dcm", ct_datasets(sorted((patient / "CT").iterdir())), rois)
    shutil.copytree(tmp_path / "rt", tmp_path / "nifti")
    shutil.rmtree(tmp_path / "nifti" / patient.name / "RTSTRUCT")
    label = sitk.GetImageFromArray(mask)
    label.CopyInformation(image)
    sitk.WriteImage(label, str(tmp_path / "nifti" / "labels" / f"{ct_uid}.nii.gz"), useCompression=True)
    (tmp_path / "rt" / "labels" / f"{ct_uid}.nii.gz").unlink()
    report = ingest(tmp_path / "rt", tmp_path / "out-rt")
    assert not report.problems and len(report.cases) == 1
    assert not ingest(tmp_path / "nifti", tmp_path / "out-nifti").problems
    assert_same_case_files(tmp_path / "out-rt", tmp_path / "out-nifti")


def _seg_of_another_series(patient, ct_uid, root):
    ds = pydicom.dcmread(patient / "SEG" / "lesions.dcm")
    ds.ReferencedSeriesSequence[0].SeriesInstanceUID = uid("a series not in this study")
    ds.save_as(patient / "SEG" / "lesions.dcm")


def _seg_with_unknown_segment(patient, ct_uid, root):
    ds = pydicom.dcmread(patient / "SEG" / "lesions.dcm")
    ds.SegmentSequence[1].SegmentLabel = "bladder"
    ds.save_as(patient / "SEG" / "lesions.dcm")


def _seg_beside_its_nifti(patient, ct_uid, root):
    shutil.copy(root.parent / "nifti.nii.gz", root / "labels" / f"{ct_uid}.nii.gz")


def _seg_truncated(patient, ct_uid, root):
    path = patient / "SEG" / "lesions.dcm"
    path.write_bytes(path.read_bytes()[:-200])


BROKEN = [
    # breaker, rule of the problem that names the SEG, action, rule of the CT series' problem
    (_seg_of_another_series, "label references another series", "ignored label", "no label volume"),
    (_seg_truncated, "not a readable DICOM file", "CT series skipped", None),
    (_seg_with_unknown_segment, "segment or ROI name not in label_names", "CT series skipped", None),
    (_seg_beside_its_nifti, "more than one label for a series", "CT series skipped", None),
]


@pytest.mark.parametrize("breaker, rule, action, then", BROKEN, ids=[b[0].__name__.strip("_") for b in BROKEN])
def test_a_broken_dicom_label_is_reported_and_its_case_skipped(tmp_path, pelvis_cohort, breaker, rule, action, then):
    root = tmp_path / "cohort"
    patient, ct_uid = one_patient_cohort(pelvis_cohort, root)
    nifti = root / "labels" / f"{ct_uid}.nii.gz"
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(nifti)))
    write_seg(patient / "SEG" / "lesions.dcm", ct_datasets(sorted((patient / "CT").iterdir())), mask,
              ["cervical_tumour", "lymph_node"])
    shutil.move(nifti, tmp_path / "nifti.nii.gz")
    breaker(patient, ct_uid, root)
    report = ingest(root, tmp_path / "out")
    assert not report.cases
    named = [p for p in report.problems if p["rule"] == rule]
    assert named and named[0]["action"] == action, report.problems
    assert "lesions.dcm" in named[0]["where"] or "nii.gz" in named[0]["where"]
    assert patient.name not in named[0]["where"]  # pseudonymised like every other problem
    if then:
        assert any(p["rule"].startswith(then) and p["action"] == "CT series skipped" for p in report.problems)
