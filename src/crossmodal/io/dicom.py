"""Read a DICOM folder tree into validated 3-D series.

``scan_dicom_tree`` walks any folder layout (mixed series and non-DICOM files allowed)
and groups slices by SeriesInstanceUID. ``read_series`` turns one series into a
``SimpleITK.Image`` with full geometry: CT in HU, PET in SUVbw (per-slice rescale and the
QIBA rule of :mod:`crossmodal.io.suv`), MR in its rescaled units. Each rule a series can
break raises an :class:`~crossmodal.io.errors.IngestError` that names the file.

The headers read here carry patient identifiers; they stay inside :mod:`crossmodal.io`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from typing import NamedTuple

import numpy as np
import pydicom
import pydicom.datadict
import SimpleITK as sitk
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_partial
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import Tag

from crossmodal.io import suv as suv_rules
from crossmodal.io.errors import ImplausibleValueError
from crossmodal.io.errors import IngestError
from crossmodal.io.errors import MissingSliceError
from crossmodal.io.errors import MixedOrientationError
from crossmodal.io.errors import NotDicomError
from crossmodal.io.errors import SeriesGeometryError

_HEADER_TAGS = [
    "SeriesInstanceUID", "StudyInstanceUID", "PatientID", "PatientName", "PatientBirthDate",
    "Modality", "FrameOfReferenceUID", "SeriesDescription", "SOPInstanceUID", "InstanceNumber",
    "ImagePositionPatient", "ImageOrientationPatient", "SOPClassUID",
]
# Further identifying fields, read only so that the cohort report can redact them: the
# patient's other IDs and study numbers, and the site's and staff's names.
_STUDY_ID_TAGS = ["OtherPatientIDs", "AccessionNumber", "StudyID"]
_SITE_TAGS = ["InstitutionName", "InstitutionAddress", "ReferringPhysicianName", "PerformingPhysicianName",
              "OperatorsName"]
# Every tag above is at or before FrameOfReferenceUID (0020,0052): the scan stops parsing
# there, before the acquisition and PET sequences, which cost most of a header's parse.
_LAST_HEADER_TAG = 0x00200052
_HEADER_TAG_NUMBERS = [Tag(keyword) for keyword in _HEADER_TAGS + _STUDY_ID_TAGS + _SITE_TAGS]
#: Label objects, not images: the scanner keeps them as series of their own for
#: :mod:`crossmodal.io.labels`, so a hospital export's SEG or RTSTRUCT beside the images is
#: neither read as an image series nor reported as an unreadable slice.
LABEL_OBJECT_MODALITIES = ("SEG", "RTSTRUCT")
# Transfer syntaxes whose pixel data are the raw little-endian samples.
_RAW_LITTLE_ENDIAN = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}


def _read_header(path: Path) -> Dataset:
    """The identifying and geometry tags of one file (:data:`_HEADER_TAGS`), parsed no
    further than the last of them."""
    with open(path, "rb") as fileobj:
        return read_partial(fileobj, stop_when=lambda tag, vr, length: tag > _LAST_HEADER_TAG,
                            specific_tags=_HEADER_TAG_NUMBERS)


@dataclass
class DicomSeries:
    """The files of one series plus the identifying header fields (ingestion-internal)."""

    series_uid: str
    study_uid: str
    patient_id: str
    patient_name: str
    birth_date: str
    modality: str
    description: str
    files: list[Path] = field(default_factory=list)
    study_ids: set[str] = field(default_factory=set)  # other patient IDs, accession numbers, study IDs
    site_names: set[str] = field(default_factory=set)  # institution, its address, physicians, operators

    @property
    def identifiers(self) -> set[str]:
        """The patient's strings that must never leave the ingestion layer."""
        ids = {self.patient_id, self.patient_name, self.birth_date} | self.study_ids
        ids |= {part for part in self.patient_name.split("^") if len(part) > 3}
        return {i for i in ids if i}


def _header_strings(ds: Dataset, keywords: list[str], *, words: bool = True) -> set[str]:
    """The values of ``keywords`` in ``ds`` (each of a multi-valued one), whole and, with
    ``words``, word by word, leaving out those of 3 characters or fewer, which would redact
    ordinary text. Numbers are kept whole: a piece of one ("2021") is not an identifier."""
    strings = set()
    for keyword in keywords:
        value = ds[keyword].value if keyword in ds else None
        for text in map(str, value if isinstance(value, (MultiValue, list)) else [value or ""]):
            strings |= {text, *(re.split(r"[\W_]+", text) if words else [])}
    return {s for s in strings if len(s) > 3}


def scan_dicom_tree(root: str | Path) -> tuple[list[DicomSeries], list[IngestError]]:
    """Group every DICOM image file under ``root`` by SeriesInstanceUID.

    Returns the series (sorted by UID for determinism) and the problems met: files
    that are not DICOM, or DICOM without the identifying tags an image needs. SEG and
    RTSTRUCT files come back as series of modality ``SEG`` / ``RTSTRUCT``
    (:data:`LABEL_OBJECT_MODALITIES`), not image series.
    """
    series: dict[str, DicomSeries] = {}
    problems: list[IngestError] = []
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        if path.suffix.lower() in {".json", ".nii", ".gz", ".csv", ".txt", ".md", ".xml"}:
            continue  # sidecars of known kinds: not candidates for DICOM
        try:
            ds = _read_header(path)
        except (InvalidDicomError, OSError, ValueError, EOFError, KeyError) as err:
            problems.append(NotDicomError(path, f"{type(err).__name__}: {err}"))
            continue
        if "ImagePositionPatient" not in ds and str(getattr(ds, "Modality", "")) not in LABEL_OBJECT_MODALITIES:
            problems.append(NotDicomError(path, "no ImagePositionPatient (not an image slice)"))
            continue
        # Some anonymisers blank the UIDs; the folder then stands for series and study.
        folder_key = f"folder:{path.parent}"
        uid = str(getattr(ds, "SeriesInstanceUID", "") or f"{folder_key}:{getattr(ds, 'Modality', '')}")
        entry = series.get(uid)
        if entry is None:
            entry = series[uid] = DicomSeries(
                series_uid=uid, study_uid=str(getattr(ds, "StudyInstanceUID", "") or folder_key),
                patient_id=str(getattr(ds, "PatientID", "") or folder_key), patient_name=str(getattr(ds, "PatientName", "")),
                birth_date=str(getattr(ds, "PatientBirthDate", "")), modality=str(getattr(ds, "Modality", "")),
                description=str(getattr(ds, "SeriesDescription", "")),
            )
        entry.files.append(path)
        entry.study_ids |= _header_strings(ds, _STUDY_ID_TAGS, words=False)
        entry.site_names |= _header_strings(ds, _SITE_TAGS)
    return [series[k] for k in sorted(series)], problems


class _Slice(NamedTuple):
    path: Path
    ds: Dataset
    pixels: np.ndarray  # stored values
    key: tuple  # equal for two slices only when their pixel format, geometry and SUV tags hold equal values


def _read_slices(files: list[Path]) -> list[_Slice]:
    """Each file parsed once, its pixels decoded now (so that a corrupt payload names its
    file) and its :func:`_same_values_key` taken before anything converts its values."""
    slices, layouts = [], {}
    for path in files:
        try:
            ds = pydicom.dcmread(path)
            key = _same_values_key(ds, _PIXEL_FORMAT_TAGS + _GEOMETRY_TAGS + suv_rules.SUV_TAGS)
            pixel_format = key[: 2 + len(_PIXEL_FORMAT_TAGS)]  # encoding, syntax, format tags
            if pixel_format not in layouts:  # one layout decision per distinct format
                layouts[pixel_format] = raw_pixel_layout(ds)
            plane = stored_pixels(ds, layouts[pixel_format])
        except Exception as err:  # pydicom raises many types for broken payloads
            raise NotDicomError(path, f"pixel data unreadable ({type(err).__name__}: {err})") from err
        slices.append(_Slice(path, ds, plane, key))
    return slices


def _same_values_key(ds: Dataset, tags: tuple[int, ...]) -> tuple:
    """A key that is equal for two datasets only when they hold the same values for ``tags``:
    the file's encoding and transfer syntax, then each value as stored in the file (bytes,
    read without pydicom's conversion, which costs more than the rest of a slice). Take
    it before reading the values: a converted value gives another (still safe) key."""
    values = [_stored_value(ds.get_item(tag)) for tag in tags]
    meta = getattr(ds, "file_meta", None)
    syntax = None if meta is None else meta.get_item(0x00020010)
    return (ds.original_encoding, None if syntax is None else syntax.value, *values)


def _stored_value(element) -> Any:
    """An element's value as stored (bytes) where pydicom has not converted it; a
    sequence (parsed at read time when its length is undefined) item by item, element by
    element; else the converted value's ``repr``, which shows all of it for the value
    types a header holds (numbers, strings, lists of them)."""
    if element is None:
        return None
    value = element.value
    if isinstance(value, bytes):
        return value
    if isinstance(value, DicomSequence):
        return tuple(tuple((tag, _stored_value(item.get_item(tag))) for tag in item.keys()) for item in value)
    return repr(value)


_PIXEL_FORMAT_TAGS = (0x00280002, 0x00280008, 0x00280010, 0x00280011, 0x00280100, 0x00280101, 0x00280103)
_GEOMETRY_TAGS = (0x00200037, 0x00280010, 0x00280011, 0x00280030)  # orientation, rows, columns, spacing


def raw_pixel_layout(ds: Dataset) -> tuple[np.dtype, int, int] | None:
    """``(dtype, rows, columns)`` when the pixel data are the raw samples of a one-frame
    greyscale image: uncompressed little endian, samples filling their bits. ``None``
    otherwise (compressed, big endian, multi-frame, colour, packed bits)."""
    bits = int(getattr(ds, "BitsAllocated", 0) or 0)
    raw = (
        str(ds.file_meta.get("TransferSyntaxUID", "")) in _RAW_LITTLE_ENDIAN
        and bits in (8, 16, 32)
        and int(getattr(ds, "BitsStored", 0) or 0) == bits
        and int(getattr(ds, "SamplesPerPixel", 1) or 1) == 1
        and int(getattr(ds, "NumberOfFrames", 1) or 1) == 1
    )
    if not raw:
        return None
    dtype = np.dtype(f"<{'i' if int(getattr(ds, 'PixelRepresentation', 0) or 0) else 'u'}{bits // 8}")
    return dtype, int(ds.Rows), int(ds.Columns)


def stored_pixels(ds: Dataset, layout: tuple[np.dtype, int, int] | None | str = "find") -> np.ndarray:
    """The stored values of a one-frame greyscale image, as ``ds.pixel_array`` gives them.

    Raw samples (:func:`raw_pixel_layout`; ``layout`` is its result for this dataset,
    found here by default) are viewed straight from the file's bytes, several times
    faster than pydicom's pixel handlers; anything else goes through ``ds.pixel_array``.
    """
    if isinstance(layout, str):
        layout = raw_pixel_layout(ds)
    if layout is None or "PixelData" not in ds:
        return ds.pixel_array
    dtype, rows, columns = layout
    data = ds.PixelData
    if len(data) < rows * columns * dtype.itemsize:
        raise ValueError(f"{len(data)} bytes of pixel data for {rows}x{columns} {dtype.itemsize * 8}-bit samples")
    return np.frombuffer(data, dtype=dtype, count=rows * columns).reshape(rows, columns)


def _decimals(ds: Dataset, tag: int, path: Path) -> list[float] | None:
    """A decimal-string element's numbers, parsed from the file's bytes where pydicom has
    not converted them yet; ``None`` when absent or empty. A value that is not a number
    raises :class:`SeriesGeometryError` naming the file and the tag."""
    element = ds.get_item(tag)
    if element is None or element.value is None:
        return None
    value = element.value
    try:
        if isinstance(value, bytes):
            text = value.strip(b" \x00")
            return [float(v) for v in text.split(b"\\")] if text else None
        if value == "":
            return None
        return [float(v) for v in value] if isinstance(value, (MultiValue, list, tuple)) else [float(value)]
    except ValueError as err:
        raise SeriesGeometryError(path, f"{pydicom.datadict.keyword_for_tag(tag)} is not a number ({err})") from err


#: Row and column direction cosines of ImageOrientationPatient: each of unit length and the two
#: perpendicular within this (scanners write 6 or more decimals; 1 % off is a broken header).
ORIENTATION_TOLERANCE = 1e-2
#: Pixel and slice spacing, mm: micro-CT voxels (~10 um) to 100 mm (twenty coarse PET voxels);
#: a spacing written in metres or micrometres falls outside.
SPACING_MM = (0.01, 100.0)


def _orientation(ds: Dataset, path: Path) -> np.ndarray:
    iop = _decimals(ds, 0x00200037, path)
    if iop is None or len(iop) != 6:
        raise SeriesGeometryError(path, "ImageOrientationPatient missing or malformed")
    iop = np.asarray(iop)
    row, col = iop[:3], iop[3:]
    worst = max(abs(np.linalg.norm(row) - 1.0), abs(np.linalg.norm(col) - 1.0), abs(float(row @ col)))
    if not worst <= ORIENTATION_TOLERANCE:  # NaN fails too
        raise ImplausibleValueError(path, f"ImageOrientationPatient {iop.tolist()} is not two perpendicular unit "
                                          f"vectors (tolerance {ORIENTATION_TOLERANCE:g})")
    return iop


def _check_spacing(name: str, values: list[float], path: Path) -> None:
    low, high = SPACING_MM
    if not all(low <= v <= high for v in values):  # NaN fails too
        raise ImplausibleValueError(path, f"{name} {values} mm is outside the plausible {low:g}..{high:g} mm")


def _pixel_spacing(ds: Dataset, path: Path) -> list[float]:
    spacing = _decimals(ds, 0x00280030, path)
    if spacing is None or len(spacing) != 2:
        raise SeriesGeometryError(path, "PixelSpacing missing or malformed")
    _check_spacing("PixelSpacing", spacing, path)
    return spacing


def sort_and_check_geometry(
    slices: list[tuple], *, max_gap_ratio: float = 1.5, spacing_tolerance_mm: float = 0.05
) -> tuple[list[tuple], dict]:
    """Sort slices along the normal and check a regular grid.

    ``slices`` are tuples whose first two items are the file's path and its dataset
    (further items travel with them, e.g. the decoded pixels).

    Rules: one orientation for all slices; same rows/columns and pixel spacing; at least
    two slices; no duplicate positions; no gap above ``max_gap_ratio`` x the median
    spacing (missing slices); every spacing within ``spacing_tolerance_mm`` of the median.
    """
    if len(slices) < 2:
        raise SeriesGeometryError(slices[0][0] if slices else "<empty>", "a volume needs at least two slices")
    # Slices whose geometry tags hold the first slice's stored values need no comparison.
    keys = [item.key if isinstance(item, _Slice) else _same_values_key(item[1], _GEOMETRY_TAGS) for item in slices]
    first_path, first = slices[0][:2]
    iop0 = _orientation(first, first_path)
    first_spacing = _pixel_spacing(first, first_path)
    for (path, ds, *_), key in zip(slices[1:], keys[1:]):
        if key == keys[0]:
            continue
        if not np.allclose(_orientation(ds, path), iop0, atol=1e-4):
            raise MixedOrientationError(path, f"orientation {list(ds.ImageOrientationPatient)} differs from "
                                              f"{list(first.ImageOrientationPatient)} of {first_path.name}")
        if (ds.Rows, ds.Columns) != (first.Rows, first.Columns):
            raise SeriesGeometryError(path, f"size {ds.Rows}x{ds.Columns} differs from {first.Rows}x{first.Columns}")
        if not np.allclose(_pixel_spacing(ds, path), first_spacing, atol=1e-4):
            raise SeriesGeometryError(path, "PixelSpacing differs within the series")
    row, col = iop0[:3], iop0[3:]
    normal = np.cross(row, col)
    positions = []
    for path, ds, *_ in slices:
        ipp = _decimals(ds, 0x00200032, path)
        if ipp is None or len(ipp) != 3:
            raise SeriesGeometryError(path, "ImagePositionPatient missing or malformed")
        if not np.all(np.isfinite(ipp)):
            raise ImplausibleValueError(path, f"ImagePositionPatient {ipp} is not finite")
        positions.append(float(np.dot(ipp, normal)))
    order = np.argsort(positions, kind="stable")
    slices = [slices[i] for i in order]
    pos = np.asarray(positions)[order]
    gaps = np.diff(pos)
    if np.any(gaps < 1e-3):
        k = int(np.argmin(gaps))
        raise SeriesGeometryError(slices[k + 1][0], f"duplicate slice position {pos[k + 1]:.2f} mm "
                                                    f"(also {slices[k][0].name})")
    median = float(np.median(gaps))
    _check_spacing("slice spacing", [round(median, 6)], slices[0][0])
    worst = int(np.argmax(np.abs(gaps - median)))
    if gaps[worst] > max_gap_ratio * median:
        raise MissingSliceError(slices[worst + 1][0], f"gap of {gaps[worst]:.2f} mm before this slice "
                                f"(median spacing {median:.2f} mm): slices are missing")
    if abs(gaps[worst] - median) > spacing_tolerance_mm:
        raise MissingSliceError(slices[worst + 1][0], f"spacing {gaps[worst]:.3f} mm differs from the "
                                f"median {median:.3f} mm by more than {spacing_tolerance_mm} mm")
    geometry = {  # PixelSpacing is (row spacing, column spacing)
        "origin": [float(v) for v in slices[0][1].ImagePositionPatient],
        "spacing": [first_spacing[1], first_spacing[0], median],
        "direction": np.column_stack([row, col, normal]).ravel().tolist(),
    }
    return slices, geometry


def read_series(
    series: DicomSeries | list[Path], *, max_gap_ratio: float = 1.5, spacing_tolerance_mm: float = 0.05
) -> sitk.Image:
    """Read one series into a float32 ``SimpleITK.Image`` (CT: HU, PT: SUVbw, MR: rescaled).

    Raises
    ------
    IngestError
        Naming the file and the rule broken (see :mod:`crossmodal.io.errors`).
    """
    files = series.files if isinstance(series, DicomSeries) else list(series)
    slices, geometry = sort_and_check_geometry(
        _read_slices(files), max_gap_ratio=max_gap_ratio, spacing_tolerance_mm=spacing_tolerance_mm)
    modality = str(getattr(slices[0][1], "Modality", ""))
    values = _rescaled(slices)
    if modality == "PT":
        times = [t for t in (suv_rules.acquisition_datetime(item.ds, str(item.path)) for item in slices)
                 if t is not None]
        earliest = min(times) if times else None
        factors: dict[tuple, float] = {}  # one computation per distinct set of SUV tag values
        for k, (path, ds, _, key) in enumerate(slices):
            if key not in factors:
                factors[key] = suv_rules.suv_factor(ds, str(path), earliest_acquisition=earliest)
            values[k] *= factors[key]
    with np.errstate(over="ignore"):  # float32 overflow gives inf, refused just below
        planes = values.astype(np.float32)
    finite = np.isfinite(planes).all(axis=(1, 2))
    if not finite.all():
        raise ImplausibleValueError(slices[int(np.argmin(finite))].path, "pixel values not finite (NaN or inf) "
                                    "after rescale" + (" and SUV" if modality == "PT" else ""))
    image = sitk.GetImageFromArray(planes)
    image.SetOrigin(geometry["origin"])
    image.SetSpacing(geometry["spacing"])
    image.SetDirection(geometry["direction"])
    return image


def _rescaled(slices: list[_Slice]) -> np.ndarray:
    """Stored values x RescaleSlope + RescaleIntercept, slice by slice (slopes may differ between
    slices, as PET's do). A slope must be a finite positive number, an intercept finite."""
    scale, offset = np.ones(len(slices)), np.zeros(len(slices))
    for k, (path, ds, *_) in enumerate(slices):
        scale[k] = (_decimals(ds, 0x00281053, path) or [1.0])[0]
        offset[k] = (_decimals(ds, 0x00281052, path) or [0.0])[0]
        if not (0 < scale[k] < np.inf and np.isfinite(offset[k])):
            raise ImplausibleValueError(path, f"RescaleSlope {scale[k]:g} or RescaleIntercept {offset[k]:g}: the "
                                              "slope must be finite and positive, the intercept finite")
    stored = np.stack([item.pixels for item in slices])
    return stored * scale[:, None, None] + offset[:, None, None]


def slice_instance_uids(series: DicomSeries | list[Path], **rules) -> list[str]:
    """SOPInstanceUID of each slice, in the z order of :func:`read_series`'s volume.

    Annotations that name slices by SOPInstanceUID (e.g. PASCAL-VOC boxes) map to the
    volume's slice index through this list.
    """
    files = series.files if isinstance(series, DicomSeries) else list(series)
    headers = [(p, pydicom.dcmread(p, stop_before_pixels=True)) for p in files]
    ordered, _ = sort_and_check_geometry(headers, **rules)
    return [str(ds.SOPInstanceUID) for _, ds in ordered]
