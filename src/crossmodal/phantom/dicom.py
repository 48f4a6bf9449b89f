"""Write simulated volumes as real DICOM series (CT, PET with every SUV tag, MR).

The phantom plays the hospital: it writes what a scanner export would contain, including
fake patient names, IDs, birth dates, accession numbers, institution and physician names,
so that the ingestion layer and every output can be tested for privacy. Every UID, date and
identifier is derived from the seed, so the same parameters give byte-identical files (and
the same ``data.dvc`` hash).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
from pydicom.dataset import Dataset
from pydicom.dataset import FileDataset
from pydicom.dataset import FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian
from pydicom.uid import generate_uid

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
PET_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.128"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
F18_HALF_LIFE_S = 6586.2
# Further patient and site fields of fake_identity, which write_series sets when given.
_OPTIONAL_IDENTITY_KEYS = ("OtherPatientIDs", "InstitutionName", "InstitutionAddress", "ReferringPhysicianName",
                           "PerformingPhysicianName", "OperatorsName")

# Rare but real-looking names and invented places: a scan that finds one in an output has
# found a leak, not a common word. The two lists keep their lengths: fake_identity's draws
# from the caller's generator (and so every draw after them, images included) stay the same.
_FIRST_NAMES = ["Aurelie", "Beatriz", "Chiamaka", "Dagny", "Eleonore", "Fatoumata", "Gudrun", "Hanako",
                "Ingeborg", "Jolanta"]
_LAST_NAMES = ["Vandersloot", "Okonkwo", "Lindqvist", "Takahashi", "Novakova", "Szczepanski", "Haddadin",
               "Kowalczyk"]
_MIDDLE_NAMES = ["Solveig", "Marisol", "Oluwaseun", "Perpetua", "Radegund", "Saoirse", "Theodora", "Wilhelmina"]
_PHYSICIANS = ["Achterberg^Wendelin", "Brunsvold^Ottoline", "Castellanos^Evaristo", "Dziedzic^Radoslaw",
               "Esterhuizen^Marnix", "Fairweather^Leocadia", "Gwynedd-Pryce^Iorwerth", "Hallengren^Sigvard"]
_SITES = [  # (institution, address)
    ("Quarvendale General Hospital", "14 Brackenbury Lane, Quarvendale QV3 7HX"),
    ("Marrowick University Clinic", "2 Tollemache Square, Marrowick MW1 4RZ"),
    ("Ostervale Cancer Centre", "87 Wyndham-Fosse Road, Ostervale OV9 2LT"),
]


def uid(*parts: Any) -> str:
    """A deterministic DICOM UID from the given parts (seed, patient, series, ...)."""
    return generate_uid(entropy_srcs=[str(p) for p in parts])


def fake_identity(rng: np.random.Generator, *, prefix: str) -> dict[str, Any]:
    """Fake but realistic identifiers of a patient and of the site that scanned them, so that
    privacy leaks are detectable by string: names (several parts), IDs, birth date,
    institution and its address, referring and performing physicians, operator.

    Draws four numbers from ``rng``, as before these fields existed; the rest come from a
    generator spawned from it, which leaves ``rng`` where it was.
    """
    family, given = _LAST_NAMES[rng.integers(len(_LAST_NAMES))], _FIRST_NAMES[rng.integers(len(_FIRST_NAMES))]
    birth = dt.date(1950, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365 * 40)))
    patient_id = f"{prefix}{rng.integers(10**7, 10**8)}"
    more = rng.spawn(1)[0]
    institution, address = _SITES[more.integers(len(_SITES))]
    referring, performing, *operators = (_PHYSICIANS[i] for i in more.permutation(len(_PHYSICIANS))[:4])
    return {
        "PatientName": f"{family}^{given}^{_MIDDLE_NAMES[more.integers(len(_MIDDLE_NAMES))]}",
        "PatientID": patient_id,
        "OtherPatientIDs": f"{prefix}A{more.integers(10**7, 10**8)}",
        "PatientBirthDate": birth.strftime("%Y%m%d"),
        "InstitutionName": institution,
        "InstitutionAddress": address,
        "ReferringPhysicianName": f"{referring}^^Dr",
        "PerformingPhysicianName": f"{performing}^^Dr",
        "OperatorsName": operators,  # two technologists: a multi-valued name
    }


def fake_study_numbers(rng: np.random.Generator) -> dict[str, str]:
    """AccessionNumber and StudyID of one study, from one draw of ``rng``."""
    number = int(rng.integers(10**6, 10**7))
    return {"AccessionNumber": f"ACC{number}", "StudyID": f"STU{number % 10**5:05d}"}


def _base_dataset(sop_class: str, sop_uid: str) -> FileDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = uid("crossmodal", "implementation")
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    return ds


def _slice_geometry(image: sitk.Image, k: int) -> tuple[list[float], list[float]]:
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    position = image.TransformIndexToPhysicalPoint((0, 0, k))
    orientation = list(direction[:, 0]) + list(direction[:, 1])
    return [float(v) for v in position], [float(v) for v in orientation]


def write_series(
    image: sitk.Image,
    out_dir: str | Path,
    *,
    modality: str,
    patient: dict[str, str],
    study: dict[str, Any],
    series_uid: str,
    series_number: int,
    series_description: str,
    pet: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> list[Path]:
    """Write a 3-D image as one DICOM file per slice.

    Parameters
    ----------
    image : CT in HU, PET in SUVbw, or MR in arbitrary units (float).
    modality : "CT", "PT" or "MR".
    patient : PatientName, PatientID, PatientBirthDate, the other fields of
        :func:`fake_identity` if given (+ optional PatientSex, PatientWeight).
    study : StudyInstanceUID, FrameOfReferenceUID, StudyDate, StudyTime, seed (+ optional
        AccessionNumber, StudyID).
    pet : for PT: weight_kg, injected_dose_bq, injection_datetime, series_datetime;
        SUV is converted back to Bq/ml with decay to the series time, stored with a
        per-slice rescale slope, as scanners do.
    extra : any further top-level attributes (used by tests to break series on purpose).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    array = sitk.GetArrayFromImage(image).astype(np.float64)
    sop_class = {"CT": CT_IMAGE_STORAGE, "PT": PET_IMAGE_STORAGE, "MR": MR_IMAGE_STORAGE}[modality]
    if modality == "PT":
        assert pet is not None, "PET series need the dose/time/weight record"
        elapsed = (pet["series_datetime"] - pet["injection_datetime"]).total_seconds()
        decayed_dose = pet["injected_dose_bq"] * 2.0 ** (-elapsed / F18_HALF_LIFE_S)
        array = array * decayed_dose / (pet["weight_kg"] * 1000.0)  # SUVbw -> Bq/ml
    paths = []
    for k in range(array.shape[0]):
        plane = array[k]
        ds = _base_dataset(sop_class, uid(series_uid, k))
        _set_patient_study_series(ds, patient, study, series_uid=series_uid,
                                  series_number=series_number,
                                  series_description=series_description, modality=modality)
        ds.InstanceNumber = k + 1
        _set_geometry(ds, image, k, plane.shape)
        _set_pixels(ds, plane, modality)
        acq = study["acquisition_datetime"]
        ds.SeriesDate, ds.SeriesTime = acq.strftime("%Y%m%d"), acq.strftime("%H%M%S")
        ds.AcquisitionDate, ds.AcquisitionTime = ds.SeriesDate, ds.SeriesTime
        ds.ContentDate, ds.ContentTime = ds.SeriesDate, ds.SeriesTime
        if modality == "PT":
            _add_pet_tags(ds, pet, n_slices=array.shape[0])
        _apply_extra(ds, extra)
        path = out_dir / f"{k + 1:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def _set_patient_study_series(ds: Dataset, patient: dict[str, str], study: dict[str, Any], *,
                              series_uid: str, series_number: int, series_description: str,
                              modality: str) -> None:
    for key in ("PatientName", "PatientID", "PatientBirthDate"):
        setattr(ds, key, patient[key])
    for key in _OPTIONAL_IDENTITY_KEYS:
        if key in patient:
            setattr(ds, key, patient[key])
    ds.PatientSex = patient.get("PatientSex", "F")
    if "PatientWeight" in patient:
        ds.PatientWeight = f"{patient['PatientWeight']:.1f}"
    ds.StudyInstanceUID = study["StudyInstanceUID"]
    ds.StudyDate, ds.StudyTime = study["StudyDate"], study["StudyTime"]
    ds.StudyID = study.get("StudyID", "1")
    ds.AccessionNumber = study.get("AccessionNumber", "")
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.SeriesDescription = series_description
    ds.FrameOfReferenceUID = study["FrameOfReferenceUID"]
    ds.Modality = modality
    ds.Manufacturer = "crossmodal phantom"


def _set_geometry(ds: Dataset, image: sitk.Image, k: int, shape: tuple[int, int]) -> None:
    """Slice position, orientation, spacing and size of slice ``k``."""
    spacing = image.GetSpacing()
    position, orientation = _slice_geometry(image, k)
    ds.ImagePositionPatient = [f"{v:.4f}" for v in position]
    ds.ImageOrientationPatient = [f"{v:.6f}" for v in orientation]
    ds.PixelSpacing = [f"{spacing[1]:.4f}", f"{spacing[0]:.4f}"]  # row, column spacing
    ds.SliceThickness = f"{spacing[2]:.4f}"
    ds.Rows, ds.Columns = shape


def _set_pixels(ds: Dataset, plane: np.ndarray, modality: str) -> None:
    """int16 pixel data with the modality's rescale (HU for CT, per-slice slope otherwise)."""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    if modality == "CT":
        slope, intercept = 1.0, -1024.0
        ds.RescaleType = "HU"
    elif modality == "PT":
        # Per-slice slope keeps full int16 precision for every slice (as scanners do).
        slope, intercept = max(float(plane.max()), 1e-6) / 32000.0, 0.0
    else:
        slope, intercept = max(float(np.abs(plane).max()), 1e-6) / 32000.0, 0.0
    stored = np.clip(np.round((plane - intercept) / slope), -32768, 32767).astype(np.int16)
    ds.RescaleSlope = f"{slope:.10g}"
    ds.RescaleIntercept = f"{intercept:.10g}"
    ds.PixelData = stored.tobytes()


def _apply_extra(ds: Dataset, extra: dict[str, Any] | None) -> None:
    """Set (or, for ``None`` values, delete) further top-level attributes."""
    for key, value in (extra or {}).items():
        if value is None:
            if key in ds:
                delattr(ds, key)
        else:
            setattr(ds, key, value)


def _add_pet_tags(ds: Dataset, pet: dict[str, Any], *, n_slices: int) -> None:
    sdt = pet["series_datetime"]
    ds.SeriesDate, ds.SeriesTime = sdt.strftime("%Y%m%d"), sdt.strftime("%H%M%S")
    ds.AcquisitionDate, ds.AcquisitionTime = ds.SeriesDate, ds.SeriesTime
    ds.Units = "BQML"
    ds.DecayCorrection = "START"
    ds.CorrectedImage = ["ATTN", "DECY", "SCAT", "DTIM", "RAN", "NORM"]
    ds.NumberOfSlices = n_slices
    ds.PatientWeight = f"{pet['weight_kg']:.1f}"
    ds.SeriesType = ["STATIC", "IMAGE"]
    drug = Dataset()
    drug.Radiopharmaceutical = "Fludeoxyglucose"
    inj = pet["injection_datetime"]
    drug.RadiopharmaceuticalStartTime = inj.strftime("%H%M%S")
    drug.RadiopharmaceuticalStartDateTime = inj.strftime("%Y%m%d%H%M%S")
    drug.RadionuclideTotalDose = f"{pet['injected_dose_bq']:.1f}"
    drug.RadionuclideHalfLife = f"{F18_HALF_LIFE_S}"
    drug.RadionuclidePositronFraction = "0.9673"
    ds.RadiopharmaceuticalInformationSequence = Sequence([drug])


def save_label(label: sitk.Image, path: str | Path) -> Path:
    """Write a label volume (NIfTI) on its CT grid."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(label, str(path), useCompression=True)
    return path
