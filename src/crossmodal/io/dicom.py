"""Read a DICOM folder tree into validated 3-D series.

``scan_dicom_tree`` walks any folder layout (mixed series and non-DICOM files allowed)
and groups slices by SeriesInstanceUID. ``read_series`` turns one series into a
``SimpleITK.Image`` with full geometry: CT in HU, PET in SUVbw (per-slice rescale and the
QIBA rule of :mod:`crossmodal.io.suv`), MR in its rescaled units. Each rule a series can
break raises an :class:`~crossmodal.io.errors.IngestError` that names the file.

The headers read here carry patient identifiers; they stay inside :mod:`crossmodal.io`.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from crossmodal.io import suv as suv_rules
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

    @property
    def identifiers(self) -> set[str]:
        """Strings that must never leave the ingestion layer."""
        ids = {self.patient_id, self.patient_name, self.birth_date}
        ids |= {part for part in self.patient_name.split("^") if len(part) > 3}
        return {i for i in ids if i}


def scan_dicom_tree(root: str | Path) -> tuple[list[DicomSeries], list[IngestError]]:
    """Group every DICOM image file under ``root`` by SeriesInstanceUID.

    Returns the series (sorted by UID for determinism) and the problems met: files
    that are not DICOM, or DICOM without the identifying tags an image needs.
    """
    series: dict[str, DicomSeries] = {}
    problems: list[IngestError] = []
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        if path.suffix.lower() in {".json", ".nii", ".gz", ".csv", ".txt", ".md", ".xml"}:
            continue  # sidecars of known kinds: not candidates for DICOM
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=_HEADER_TAGS)
        except (InvalidDicomError, OSError, ValueError, EOFError, KeyError) as err:
            problems.append(NotDicomError(path, f"{type(err).__name__}: {err}"))
            continue
        if "ImagePositionPatient" not in ds:
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
    return [series[k] for k in sorted(series)], problems


def _read_slices(files: list[Path]) -> list[tuple[Path, Dataset]]:
    slices = []
    for path in files:
        try:
            ds = pydicom.dcmread(path)
            _ = ds.pixel_array  # decode now so a corrupt pixel payload names its file
        except Exception as err:  # pydicom raises many types for broken payloads
            raise NotDicomError(path, f"pixel data unreadable ({type(err).__name__}: {err})") from err
        slices.append((path, ds))
    return slices


def _orientation(ds: Dataset, path: Path) -> np.ndarray:
    iop = getattr(ds, "ImageOrientationPatient", None)
    if iop is None or len(iop) != 6:
        raise SeriesGeometryError(path, "ImageOrientationPatient missing or malformed")
    return np.asarray([float(v) for v in iop])


def sort_and_check_geometry(
    slices: list[tuple[Path, Dataset]], *, max_gap_ratio: float = 1.5, spacing_tolerance_mm: float = 0.05
) -> tuple[list[tuple[Path, Dataset]], dict]:
    """Sort slices along the normal and check a regular grid.

    Rules: one orientation for all slices; same rows/columns and pixel spacing; at least
    two slices; no duplicate positions; no gap above ``max_gap_ratio`` x the median
    spacing (missing slices); every spacing within ``spacing_tolerance_mm`` of the median.
    """
    if len(slices) < 2:
        raise SeriesGeometryError(slices[0][0] if slices else "<empty>", "a volume needs at least two slices")
    first_path, first = slices[0]
    iop0 = _orientation(first, first_path)
    for path, ds in slices[1:]:
        if not np.allclose(_orientation(ds, path), iop0, atol=1e-4):
            raise MixedOrientationError(path, f"orientation {list(ds.ImageOrientationPatient)} differs from "
                                              f"{list(first.ImageOrientationPatient)} of {first_path.name}")
        if (ds.Rows, ds.Columns) != (first.Rows, first.Columns):
            raise SeriesGeometryError(path, f"size {ds.Rows}x{ds.Columns} differs from {first.Rows}x{first.Columns}")
        if not np.allclose([float(v) for v in ds.PixelSpacing], [float(v) for v in first.PixelSpacing], atol=1e-4):
            raise SeriesGeometryError(path, "PixelSpacing differs within the series")
    row, col = iop0[:3], iop0[3:]
    normal = np.cross(row, col)
    positions = []
    for path, ds in slices:
        ipp = getattr(ds, "ImagePositionPatient", None)
        if ipp is None:
            raise SeriesGeometryError(path, "ImagePositionPatient missing")
        positions.append(float(np.dot([float(v) for v in ipp], normal)))
    order = np.argsort(positions, kind="stable")
    slices = [slices[i] for i in order]
    pos = np.asarray(positions)[order]
    gaps = np.diff(pos)
    if np.any(gaps < 1e-3):
        k = int(np.argmin(gaps))
        raise SeriesGeometryError(slices[k + 1][0], f"duplicate slice position {pos[k + 1]:.2f} mm "
                                                    f"(also {slices[k][0].name})")
    median = float(np.median(gaps))
    worst = int(np.argmax(np.abs(gaps - median)))
    if gaps[worst] > max_gap_ratio * median:
        raise MissingSliceError(slices[worst + 1][0], f"gap of {gaps[worst]:.2f} mm before this slice "
                                f"(median spacing {median:.2f} mm): slices are missing")
    if abs(gaps[worst] - median) > spacing_tolerance_mm:
        raise MissingSliceError(slices[worst + 1][0], f"spacing {gaps[worst]:.3f} mm differs from the "
                                f"median {median:.3f} mm by more than {spacing_tolerance_mm} mm")
    pixel_spacing = [float(v) for v in first.PixelSpacing]  # (row spacing, column spacing)
    geometry = {
        "origin": [float(v) for v in slices[0][1].ImagePositionPatient],
        "spacing": [pixel_spacing[1], pixel_spacing[0], median],
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
    earliest = None
    if modality == "PT":
        times = [t for t in (suv_rules.acquisition_datetime(ds) for _, ds in slices) if t is not None]
        earliest = min(times) if times else None
    planes = []
    for path, ds in slices:
        slope = float(getattr(ds, "RescaleSlope", 1.0) or 1.0)
        intercept = float(getattr(ds, "RescaleIntercept", 0.0) or 0.0)
        plane = ds.pixel_array.astype(np.float64) * slope + intercept  # per-slice rescale
        if modality == "PT":
            plane *= suv_rules.suv_factor(ds, str(path), earliest_acquisition=earliest)
        planes.append(plane.astype(np.float32))
    image = sitk.GetImageFromArray(np.stack(planes))
    image.SetOrigin(geometry["origin"])
    image.SetSpacing(geometry["spacing"])
    image.SetDirection(geometry["direction"])
    return image



def slice_instance_uids(series: DicomSeries | list[Path], **rules) -> list[str]:
    """SOPInstanceUID of each slice, in the z order of :func:`read_series`'s volume.

    Annotations that name slices by SOPInstanceUID (e.g. PASCAL-VOC boxes) map to the
    volume's slice index through this list.
    """
    files = series.files if isinstance(series, DicomSeries) else list(series)
    headers = [(p, pydicom.dcmread(p, stop_before_pixels=True)) for p in files]
    ordered, _ = sort_and_check_geometry(headers, **rules)
    return [str(ds.SOPInstanceUID) for _, ds in ordered]
