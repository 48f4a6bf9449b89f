"""Read the autoPET NIfTI layout (FDG-PET-CT-Lesions, TCIA), one folder per study::

    <root>/<patient>/<study>/CTres.nii.gz   CT resampled to the PET grid (HU)
                              SUV.nii.gz     PET in SUVbw
                              SEG.nii.gz     lesion mask (on the same grid)

Cases get pseudonymous IDs from the folder names through the same keyed hash as DICOM.
"""

from __future__ import annotations

from pathlib import Path

import SimpleITK as sitk

from crossmodal.io.case import Case
from crossmodal.io.case import same_grid
from crossmodal.io.labels import read_label
from crossmodal.io.errors import IngestError
from crossmodal.io.errors import LabelGridMismatchError
from crossmodal.io.pseudonym import pseudonym

AUTOPET_FILES = ("CTres.nii.gz", "SUV.nii.gz", "SEG.nii.gz")


def find_autopet_studies(root: str | Path) -> list[Path]:
    """Every folder under ``root`` that holds an autoPET study (has ``SUV.nii.gz``)."""
    return sorted(p.parent for p in Path(root).rglob("SUV.nii.gz"))


def read_autopet_study(folder: str | Path, *, salt: str, require_nonempty_label: bool = False) -> Case:
    """One autoPET study as a :class:`~crossmodal.io.case.Case` (CT, PT and the CT-grid label).

    autoPET includes lesion-free control studies, so an empty mask is allowed by default.
    """
    folder = Path(folder)
    for name in AUTOPET_FILES:
        if not (folder / name).exists():
            raise IngestError(folder / name, "autoPET study lacks this file")
    ct = sitk.Cast(sitk.ReadImage(str(folder / "CTres.nii.gz")), sitk.sitkFloat32)
    suv = sitk.Cast(sitk.ReadImage(str(folder / "SUV.nii.gz")), sitk.sitkFloat32)
    if not same_grid(ct, suv, tolerance_mm=1e-2):
        raise LabelGridMismatchError(folder / "SUV.nii.gz", "SUV is not on the CTres grid")
    label = read_label(folder / "SEG.nii.gz", ct, require_nonempty=require_nonempty_label)
    patient_key, study_key = folder.parent.name, folder.name
    return Case(case_id=pseudonym(salt, patient_key, study_key, prefix="C"),
                patient=pseudonym(salt, patient_key), images={"CT": ct, "PT": suv},
                labels={"CT": label}, meta={"source": "autoPET", "simulated": False})
