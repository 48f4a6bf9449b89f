"""Lesion labels on their series' grid: NIfTI volumes, DICOM SEG and RTSTRUCT.

A labelled series (say a CT) takes its label from exactly one of:

* ``<labels_dir>/<SeriesInstanceUID>.nii.gz``, a NIfTI volume on the series' grid;
* a DICOM SEG or RTSTRUCT anywhere in the cohort tree, in the series' study (hospital
  exports put them beside the images), that references the series (SEG:
  ReferencedSeriesSequence; RTSTRUCT: RTReferencedSeriesSequence) and shares its
  FrameOfReferenceUID. Its file name and folder do not matter.

None is :class:`~crossmodal.io.errors.MissingLabelError`, more than one
:class:`~crossmodal.io.errors.AmbiguousLabelError`: ingestion never picks one silently.

Segment labels (SEG SegmentLabel) and ROI names (RTSTRUCT ROIName) map to label values
through ``label_names`` (``{1: cervical_tumour, 2: lymph_node}``): matching ignores case
and treats spaces, hyphens and underscores alike ("Cervical Tumour" is cervical_tumour).
Every segment and ROI must have a known name.

Nothing is interpolated. A SEG frame must lie on one of the series' slices: same
orientation and pixel spacing, its first pixel on a voxel of the grid within a tenth of a
voxel. A FRACTIONAL frame counts a pixel at half its maximum value or more. An RTSTRUCT
CLOSED_PLANAR contour (patient mm) must lie on a slice within a tenth of the slice spacing
and is filled on it where pixel centres fall inside (:func:`skimage.draw.polygon`). The
contours of one ROI on one slice combine by XOR (even-odd): an inner contour is a hole and
disjoint contours add up. Segments or ROIs of one label value are united; a voxel claimed by
two label values is an error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
import skimage.draw
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_partial
from pydicom.tag import Tag

from crossmodal.io.case import same_grid
from crossmodal.io.dicom import DicomSeries
from crossmodal.io.errors import AmbiguousLabelError
from crossmodal.io.errors import EmptyLabelError
from crossmodal.io.errors import IngestError
from crossmodal.io.errors import LabelGridMismatchError
from crossmodal.io.errors import LabelOffGridError
from crossmodal.io.errors import LabelReferenceError
from crossmodal.io.errors import MissingLabelError
from crossmodal.io.errors import NoLabelContentError
from crossmodal.io.errors import NotDicomError
from crossmodal.io.errors import OverlappingLabelsError
from crossmodal.io.errors import UnknownSegmentError

# A frame or contour is on the grid when it is this many voxels, or fewer, off a voxel.
_OFF_GRID_VOXELS = 0.1
# Tags that say what a SEG or RTSTRUCT refers to; all lie before the contours and frames.
_REFERENCE_TAGS = ["Modality", "FrameOfReferenceUID", "ReferencedSeriesSequence",
                   "StudiesContainingOtherReferencedInstancesSequence",
                   "ReferencedFrameOfReferenceSequence"]
_LAST_REFERENCE_TAG = 0x30060010  # ReferencedFrameOfReferenceSequence
_READ_ERRORS = (InvalidDicomError, OSError, ValueError, EOFError, KeyError)


def read_label(path: Path, reference: sitk.Image, *, require_nonempty: bool) -> sitk.Image:
    """Read a NIfTI label volume and check it lies on its image's grid and is not empty."""
    try:
        label = sitk.ReadImage(str(path))
    except RuntimeError as err:
        raise IngestError(path, f"label unreadable: {err}") from err
    if not same_grid(label, reference, tolerance_mm=1e-2):
        raise LabelGridMismatchError(path, f"label size {label.GetSize()} spacing "
                                     f"{np.round(label.GetSpacing(), 3).tolist()} origin "
                                     f"{np.round(label.GetOrigin(), 2).tolist()} vs image size "
                                     f"{reference.GetSize()} spacing {np.round(reference.GetSpacing(), 3).tolist()} "
                                     f"origin {np.round(reference.GetOrigin(), 2).tolist()}")
    label = sitk.Cast(label, sitk.sitkUInt8)
    label.CopyInformation(reference)  # remove sub-tolerance float noise of other writers
    if require_nonempty and not sitk.GetArrayViewFromImage(label).any():
        raise EmptyLabelError(path, "no lesion voxel in the label volume")
    return label


def referenced_series_uids(ds: Dataset) -> set[str]:
    """SeriesInstanceUIDs a SEG (ReferencedSeriesSequence, also of other studies) or an
    RTSTRUCT (RTReferencedSeriesSequence) says it was drawn on."""
    if str(ds.get("Modality", "")) == "RTSTRUCT":
        items = [series for frame in ds.get("ReferencedFrameOfReferenceSequence", [])
                 for study in frame.get("RTReferencedStudySequence", [])
                 for series in study.get("RTReferencedSeriesSequence", [])]
    else:
        items = list(ds.get("ReferencedSeriesSequence", []))
        for study in ds.get("StudiesContainingOtherReferencedInstancesSequence", []):
            items += list(study.get("ReferencedSeriesSequence", []))
    return {str(item.SeriesInstanceUID) for item in items if "SeriesInstanceUID" in item}


def index_label_objects(files: Iterable[Path], image_series: Iterable[str]
                        ) -> tuple[dict[str, list[Path]], list[IngestError]]:
    """Which of ``image_series`` (SeriesInstanceUIDs) each SEG/RTSTRUCT file references.

    Returns ``{series uid: [label files]}`` and the problems: unreadable files, and files
    that reference none of ``image_series`` (a label drawn on another series).
    """
    wanted, index, problems = set(image_series), {}, []
    for path in files:
        try:
            with open(path, "rb") as fileobj:
                ds = read_partial(fileobj, stop_when=lambda tag, vr, length: tag > _LAST_REFERENCE_TAG,
                                  specific_tags=[Tag(k) for k in _REFERENCE_TAGS])
        except _READ_ERRORS as err:
            problems.append(NotDicomError(path, f"{type(err).__name__}: {err}"))
            continue
        referenced = referenced_series_uids(ds) & wanted
        if not referenced:
            problems.append(LabelReferenceError(path, f"this {ds.get('Modality', 'label')} references no image "
                                                "series of its study"))
        for uid in sorted(referenced):
            index.setdefault(uid, []).append(path)
    return index, problems


def find_label(series_uid: str, *, labels_dir: Path, label_objects: dict[str, list[Path]]) -> Path | None:
    """The one label file of a series, ``None`` when it has none: ``<labels_dir>/<uid>.nii.gz``
    or a SEG/RTSTRUCT that references it (``label_objects``, from :func:`index_label_objects`)."""
    nifti = labels_dir / f"{series_uid}.nii.gz"
    found = ([nifti] if nifti.exists() else []) + sorted(set(label_objects.get(series_uid, [])))
    if len(found) > 1:
        raise AmbiguousLabelError(found[0], f"{len(found)} labels for one series: "
                                  f"{', '.join(p.name for p in found)}; keep one")
    return found[0] if found else None


def read_series_label(series: DicomSeries, image: sitk.Image, *, labels_dir: Path,
                      label_objects: dict[str, list[Path]], label_names: dict[int, str] | None,
                      require_nonempty: bool) -> sitk.Image:
    """The label of ``series`` (read into ``image``) on ``image``'s grid, from whichever
    format :func:`find_label` finds."""
    path = find_label(series.series_uid, labels_dir=labels_dir, label_objects=label_objects)
    if path is None:
        raise MissingLabelError(series.files[0].parent, f"expected {labels_dir.name}/<SeriesInstanceUID>.nii.gz "
                                f"for this {series.modality} series, or a DICOM SEG or RTSTRUCT in its study "
                                "that references it")
    if path.name.endswith(".nii.gz"):
        return read_label(path, image, require_nonempty=require_nonempty)
    if not label_names:
        raise UnknownSegmentError(path, "no label_names given to map segment or ROI names to label values")
    header = pydicom.dcmread(series.files[0], stop_before_pixels=True, specific_tags=["FrameOfReferenceUID"])
    try:
        modality = str(pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Modality"]).get("Modality", ""))
        reader = read_rtstruct_label if modality == "RTSTRUCT" else read_seg_label
        array = reader(path, image, series_uid=series.series_uid,
                       frame_of_reference_uid=str(header.get("FrameOfReferenceUID", "")), label_names=label_names)
    except IngestError:
        raise
    except Exception as err:  # a malformed export breaks pydicom in many ways; the cohort goes on
        raise NotDicomError(path, f"malformed label object ({type(err).__name__}: {err})") from err
    if require_nonempty and not array.any():
        raise EmptyLabelError(path, f"no lesion voxel in the {modality}")
    label = sitk.GetImageFromArray(array)
    label.CopyInformation(image)
    return label


def read_seg_label(path: str | Path, reference: sitk.Image, *, series_uid: str, frame_of_reference_uid: str,
                   label_names: dict[int, str]) -> np.ndarray:
    """A DICOM SEG (BINARY, FRACTIONAL or LABELMAP) as a uint8 label array on
    ``reference``'s grid (z, y, x), values from ``label_names``.

    Raises :class:`~crossmodal.io.errors.LabelReferenceError` (another series or frame of reference),
    :class:`~crossmodal.io.errors.NoLabelContentError` (no frames), :class:`~crossmodal.io.errors.UnknownSegmentError`,
    :class:`~crossmodal.io.errors.LabelOffGridError` (a frame off the series' slices) or
    :class:`~crossmodal.io.errors.OverlappingLabelsError`.
    """
    import highdicom  # half a second to import, and only SEG labels need it

    path = Path(path)
    ds = _read_dataset(path, "SEG")
    check_references(path, ds, series_uid=series_uid, frame_of_reference_uid=frame_of_reference_uid)
    n_frames = int(ds.get("NumberOfFrames", 0) or 0)
    if n_frames == 0 or "PixelData" not in ds:
        raise NoLabelContentError(path, "the SEG has no frames")
    segment_values = label_values(path, {int(s.SegmentNumber): str(s.get("SegmentLabel", ""))
                                         for s in ds.get("SegmentSequence", [])
                                         if int(s.SegmentNumber) > 0},  # a LABELMAP's 0 is its background
                                  label_names, what="segment")
    try:
        seg = highdicom.seg.Segmentation.from_dataset(ds, copy=False)
    except Exception as err:  # highdicom and pydicom raise many types for a malformed SEG
        raise NotDicomError(path, f"not a readable SEG ({type(err).__name__}: {err})") from err
    label = np.zeros(sitk.GetArrayViewFromImage(reference).shape, np.uint8)
    for i in range(n_frames):  # one frame at a time: a whole SEG decoded at once can take gigabytes
        groups = [ds.PerFrameFunctionalGroupsSequence[i], *ds.get("SharedFunctionalGroupsSequence", [])]
        try:
            frame = seg.get_stored_frame(i + 1)
        except Exception as err:
            raise NotDicomError(path, f"SEG frame {i + 1} unreadable ({type(err).__name__}: {err})") from err
        where = _frame_slot(path, i, groups, frame.shape, reference)
        paint(label, where, _frame_values(path, i, frame, groups, seg, segment_values), path)
    return label


def _frame_values(path: Path, i: int, frame: np.ndarray, groups: list[Dataset], seg,
                  segment_values: dict[int, int]) -> np.ndarray:
    """A SEG frame's stored values as label values (uint8, 0 outside every segment)."""
    kind = seg.segmentation_type.value
    if kind == "LABELMAP":  # the stored values are segment numbers
        lookup = np.zeros(max([int(frame.max()), *segment_values]) + 1, np.uint8)
        lookup[list(segment_values)] = list(segment_values.values())
        if np.any((lookup[frame] == 0) & (frame > 0)):
            raise UnknownSegmentError(path, f"frame {i + 1} holds a segment number that SegmentSequence lacks")
        return lookup[frame]
    number = int(_functional(groups, "SegmentIdentificationSequence", "ReferencedSegmentNumber", path, i))
    if number not in segment_values:
        raise UnknownSegmentError(path, f"frame {i + 1} is of segment {number}, which SegmentSequence lacks")
    threshold = int(seg.get("MaximumFractionalValue", 1)) / 2 if kind == "FRACTIONAL" else 1
    return np.where(frame >= threshold, segment_values[number], 0).astype(np.uint8)


def read_rtstruct_label(path: str | Path, reference: sitk.Image, *, series_uid: str, frame_of_reference_uid: str,
                        label_names: dict[int, str]) -> np.ndarray:
    """An RTSTRUCT's CLOSED_PLANAR contours filled on ``reference``'s grid: a uint8 label
    array (z, y, x), values from ``label_names`` (see the module notes on holes).

    Raises :class:`~crossmodal.io.errors.LabelReferenceError`, :class:`~crossmodal.io.errors.NoLabelContentError` (no contours),
    :class:`~crossmodal.io.errors.UnknownSegmentError`, :class:`~crossmodal.io.errors.LabelOffGridError` (a contour off the series'
    slices) or :class:`~crossmodal.io.errors.OverlappingLabelsError`.
    """
    path = Path(path)
    ds = _read_dataset(path, "RTSTRUCT")
    check_references(path, ds, series_uid=series_uid, frame_of_reference_uid=frame_of_reference_uid)
    names = {int(roi.ROINumber): str(roi.get("ROIName", "")) for roi in ds.get("StructureSetROISequence", [])}
    roi_values = label_values(path, names, label_names, what="ROI")
    contours = {int(item.ReferencedROINumber): list(item.get("ContourSequence", []))
                for item in ds.get("ROIContourSequence", [])}
    if not any(contours.values()):
        raise NoLabelContentError(path, "the RTSTRUCT has no contours")
    label = np.zeros(sitk.GetArrayViewFromImage(reference).shape, np.uint8)
    for number, items in sorted(contours.items()):
        if items and number not in roi_values:
            raise UnknownSegmentError(path, f"contours of ROI number {number}, which StructureSetROISequence lacks")
        for k, plane in _fill_roi(path, names.get(number, ""), items, reference).items():
            paint(label, (k,), plane.astype(np.uint8) * roi_values[number], path)
    return label


def check_references(path: Path, ds: Dataset, *, series_uid: str, frame_of_reference_uid: str) -> None:
    """A SEG or RTSTRUCT must reference ``series_uid`` and lie in its frame of reference."""
    if series_uid not in referenced_series_uids(ds):
        raise LabelReferenceError(path, f"this {ds.get('Modality', 'label')} does not reference the labelled "
                                  "series (it was drawn on another)")
    if str(ds.get("Modality", "")) == "RTSTRUCT":
        frames = {str(roi.get("ReferencedFrameOfReferenceUID", ""))
                  for roi in ds.get("StructureSetROISequence", [])}
    else:
        frames = {str(ds.get("FrameOfReferenceUID", ""))}
    if frame_of_reference_uid and frames - {frame_of_reference_uid}:
        raise LabelReferenceError(path, "its FrameOfReferenceUID differs from the labelled series'")


def label_values(path: Path, names: dict[int, str], label_names: dict[int, str], *, what: str) -> dict[int, int]:
    """Segment or ROI number -> label value, by name (see :func:`normalise_name`)."""
    by_name = {normalise_name(name): int(value) for value, name in label_names.items()}
    unknown = sorted({name for name in names.values() if normalise_name(name) not in by_name})
    if unknown:
        raise UnknownSegmentError(path, f"{what} name(s) {unknown} not in label_names "
                                  f"{sorted(map(str, label_names.values()))}")
    return {number: by_name[normalise_name(name)] for number, name in names.items()}


def normalise_name(name: str) -> str:
    """Case-folded, with runs of spaces, hyphens and underscores as one underscore."""
    return re.sub(r"[\s_\-]+", "_", str(name).strip()).casefold()


def paint(label: np.ndarray, where: tuple, values: np.ndarray, path: Path) -> None:
    """Write the non-zero ``values`` into ``label[where]``; a voxel that already holds
    another label value raises :class:`~crossmodal.io.errors.OverlappingLabelsError`."""
    region = label[where]
    clash = (region != 0) & (values != 0) & (region != values)
    if clash.any():
        raise OverlappingLabelsError(path, f"{int(clash.sum())} voxel(s) belong to label values "
                                     f"{sorted({int(region[clash][0]), int(values[clash][0])})}")
    region[values != 0] = values[values != 0]


def _read_dataset(path: Path, modality: str) -> Dataset:
    try:
        ds = pydicom.dcmread(path)
    except _READ_ERRORS as err:
        raise NotDicomError(path, f"{type(err).__name__}: {err}") from err
    if str(ds.get("Modality", "")) != modality:
        raise NotDicomError(path, f"Modality {ds.get('Modality', '')!r}, not {modality}")
    return ds


def _functional(groups: list[Dataset], sequence: str, keyword: str, path: Path, frame: int):
    """A functional-group attribute of one frame: its per-frame value, else the shared one."""
    for group in groups:
        if sequence in group and group[sequence].value and keyword in group[sequence][0]:
            return group[sequence][0][keyword].value
    raise LabelOffGridError(path, f"frame {frame + 1} has no {keyword}")


def _frame_slot(path: Path, frame: int, groups: list[Dataset], shape: tuple[int, int],
                reference: sitk.Image) -> tuple[int, slice, slice]:
    """Where a SEG frame goes in the (z, y, x) label array; :class:`~crossmodal.io.errors.LabelOffGridError` when
    it does not fall on one of ``reference``'s slices."""
    orientation = np.asarray(_functional(groups, "PlaneOrientationSequence", "ImageOrientationPatient", path, frame),
                             float)
    row_col_spacing = [float(v) for v in _functional(groups, "PixelMeasuresSequence", "PixelSpacing", path, frame)]
    position = [float(v) for v in _functional(groups, "PlanePositionSequence", "ImagePositionPatient", path, frame)]
    axes = np.reshape(reference.GetDirection(), (3, 3))
    if not np.allclose(orientation, np.r_[axes[:, 0], axes[:, 1]], atol=1e-4):
        raise LabelOffGridError(path, f"frame {frame + 1}: orientation {orientation.round(4).tolist()} is not the "
                                f"series' {np.r_[axes[:, 0], axes[:, 1]].round(4).tolist()}")
    if not np.allclose(row_col_spacing[::-1], reference.GetSpacing()[:2], rtol=1e-3):
        raise LabelOffGridError(path, f"frame {frame + 1}: pixel spacing {row_col_spacing} mm is not the series' "
                                f"{list(reference.GetSpacing()[1::-1])} mm")
    index = np.asarray(reference.TransformPhysicalPointToContinuousIndex(position))
    x, y, k = np.round(index).astype(int)
    size = reference.GetSize()
    inside = 0 <= k < size[2] and 0 <= x and x + shape[1] <= size[0] and 0 <= y and y + shape[0] <= size[1]
    if np.abs(index - np.round(index)).max() > _OFF_GRID_VOXELS or not inside:
        raise LabelOffGridError(path, f"frame {frame + 1} at {np.round(position, 2).tolist()} mm is not on a "
                                f"slice of the series (voxel index {np.round(index, 2).tolist()})")
    return int(k), slice(int(y), int(y) + shape[0]), slice(int(x), int(x) + shape[1])


def _fill_roi(path: Path, name: str, contours: list[Dataset], reference: sitk.Image) -> dict[int, np.ndarray]:
    """Slice index -> filled (y, x) mask of one ROI's contours, combined by XOR."""
    size = reference.GetSize()
    to_index = np.linalg.inv(np.reshape(reference.GetDirection(), (3, 3)) * np.asarray(reference.GetSpacing()))
    origin = np.asarray(reference.GetOrigin())
    planes: dict[int, np.ndarray] = {}
    for n, contour in enumerate(contours, start=1):
        kind = str(contour.get("ContourGeometricType", ""))
        if kind != "CLOSED_PLANAR":
            raise NoLabelContentError(path, f"ROI {name!r} contour {n} is {kind or 'untyped'}; a lesion needs "
                                      "CLOSED_PLANAR contours")
        points = np.asarray(contour.ContourData, float).reshape(-1, 3)
        index = (points - origin) @ to_index.T  # (x, y, z) voxel indices
        k = int(np.round(index[0, 2]))
        if np.abs(index[:, 2] - k).max() > _OFF_GRID_VOXELS or not 0 <= k < size[2]:
            raise LabelOffGridError(path, f"ROI {name!r} contour {n} at z index "
                                    f"{np.round(index[:, 2].min(), 2)}..{np.round(index[:, 2].max(), 2)} is not on "
                                    "a slice of the series")
        rows, cols = skimage.draw.polygon(index[:, 1], index[:, 0], shape=(size[1], size[0]))
        plane = planes.setdefault(k, np.zeros((size[1], size[0]), bool))
        filled = np.zeros_like(plane)
        filled[rows, cols] = True
        plane ^= filled
    return planes
