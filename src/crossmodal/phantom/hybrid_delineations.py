"""Hybrid PET/CT around real tumour delineations: real CT, real lesion masks, simulated FDG-PET.

A study for another cancer type often starts from real CT scans with real tumour masks and
no PET (the chest CTs of the ``pyradiomics`` source distribution: ``real_data``). Each
hybrid patient is one such scan:

* **CT: real.** Every voxel is the scanner's own (reoriented to LPS, a permutation: nothing
  is resampled or edited).
* **Lesions: real.** The delineation shipped with the scan is the label, with id
  ``label``; nothing is inserted, so the real and the simulated never mix.
* **PET: simulated** from the real CT: each voxel's activity class by HU (``hu_tissues``),
  each class's SUV drawn per patient from ``tissue_suv``, the lesion's uptake uniform inside
  its real shape (SUVmax drawn from ``lesion_suvmax``), then through the scanner and rigid
  misregistration of the phantom named by ``based_on``
  (:func:`~crossmodal.phantom.pelvis.scan_pet`: PSF, PET grid, counting noise).

``cases`` names the scans: ``<case>_ct.nrrd`` and ``<case>_lesion.nrrd`` (NRRD, as PyRadiomics
ships them, on one grid) under the ``real_data`` root; outside the CT's view the PET sees the
first class (air); patient ``i`` is ``cases[i]``,
seeded by ``(seed, i)``. The sources of this generator's own values are
:data:`crossmodal.phantom.sources.HYBRID_DELINEATIONS_PARAMETER_SOURCES`. Known limits: uptake by
HU class only (no heart, liver or brown fat of their own), uniform uptake inside a lesion,
one PET per real scan.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from crossmodal.io.geometry import transform_to_dict
from crossmodal.parallel import Workers
from crossmodal.phantom.pelvis import SimulatedPatient
from crossmodal.phantom.pelvis import hu_classes
from crossmodal.phantom.pelvis import nearest_values
from crossmodal.phantom.pelvis import sample_demographics
from crossmodal.phantom.pelvis import sample_misregistration
from crossmodal.phantom.pelvis import scan_pet

__all__ = ["GENERATOR_VERSION", "RealScan", "generate_hybrid_delineations_cohort", "load_real_scan",
           "simulate_delineation_patient"]

GENERATOR_VERSION = "hybrid-delineations-1"


@dataclass(frozen=True)
class RealScan:
    """One real CT (HU, LPS) and its real lesion mask on the same grid."""

    name: str
    ct: sitk.Image
    lesion: np.ndarray  # (z, y, x) bool


def load_real_scan(p: dict[str, Any], case: str) -> RealScan:
    """``<case>_ct.nrrd`` and ``<case>_lesion.nrrd`` of ``p['real_data']``, reoriented to LPS;
    a missing file, an oblique CT, a mask on another grid or an empty mask is refused, naming
    the file."""
    root = Path(p["real_data"]["root"])
    paths = {kind: root / f"{case}_{kind}.nrrd" for kind in ("ct", "lesion")}
    for path in paths.values():
        if not path.exists():
            raise FileNotFoundError(f"{path}: missing; `crossmodal data` fetches real_data first")
    ct = sitk.DICOMOrient(sitk.ReadImage(str(paths["ct"]), sitk.sitkFloat32), "LPS")
    mask = sitk.DICOMOrient(sitk.ReadImage(str(paths["lesion"])), "LPS")
    if not np.allclose(ct.GetDirection(), np.eye(3).ravel()):
        raise ValueError(f"{paths['ct']}: an oblique CT (direction {ct.GetDirection()}); the hybrid cohort "
                         "needs axis-aligned slices")
    if ct.GetSize() != mask.GetSize() or not (np.allclose(ct.GetOrigin(), mask.GetOrigin(), atol=1e-3)
                                              and np.allclose(ct.GetSpacing(), mask.GetSpacing())):
        raise ValueError(f"{paths['lesion']}: not on the grid of {paths['ct'].name}")
    lesion = sitk.GetArrayFromImage(mask) > 0
    if not lesion.any():
        raise ValueError(f"{paths['lesion']}: an empty lesion mask")
    return RealScan(case, ct, lesion)


def _mm(image: sitk.Image, index_zyx: np.ndarray) -> np.ndarray:
    """LPS mm of voxel indices (n, 3: z, y, x) of an axis-aligned image."""
    return np.asarray(image.GetOrigin()) + index_zyx[:, ::-1] * np.asarray(image.GetSpacing())


def simulate_delineation_patient(index: int, p: dict[str, Any], *, seed: int,
                                 real: RealScan | None = None) -> SimulatedPatient:
    """Hybrid patient ``index``: ``cases[index]``'s real CT and lesion with a simulated PET
    (see the module doc); ``real``: that scan, already loaded."""
    real = real or load_real_scan(p, p["cases"][index])
    rng = np.random.default_rng([seed, index])
    hu = sitk.GetArrayFromImage(real.ct)
    classes = hu_classes(hu, p["hu_tissues"])
    suv_of_class = np.asarray([rng.uniform(*p["tissue_suv"][name]) for name in p["hu_tissues"]], dtype=np.float32)
    lesion_suv = float(rng.uniform(*p["lesion_suvmax"]))
    activity = suv_of_class[classes]
    activity[real.lesion] = lesion_suv

    ct_to_pet = sample_misregistration(rng, p)
    centre = np.asarray(real.ct.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2.0 for n in real.ct.GetSize()]))
    ct_to_pet.SetCenter(tuple(map(float, centre)))
    extent = np.asarray(real.ct.GetSize()) * np.asarray(real.ct.GetSpacing())
    pet_spacing = np.asarray(p["pet_spacing_mm"], dtype=float)
    pet_size = np.ceil(extent / pet_spacing).astype(int) + np.array([2, 2, 0]) * int(p["pet_margin_voxels"])
    pet = scan_pet(lambda points: nearest_values(points, real.ct, activity, suv_of_class[0]), ct_to_pet,
                   {**p, "pet_size": pet_size.tolist()}, rng, centre_mm=centre)

    label = sitk.GetImageFromArray(real.lesion.astype(np.uint8) * np.uint8(p["label"]))
    label.CopyInformation(real.ct)
    voxels = np.argwhere(real.lesion)
    lesion = {"id": 1, "kind": "tumour", "suv_max": lesion_suv, "volume_ml": float(len(voxels)) *
              float(np.prod(real.ct.GetSpacing())) / 1000.0, "centroid_mm": _mm(real.ct, voxels).mean(axis=0).tolist(),
              "site": f"real delineation ({real.name})", "inserted": False}
    return SimulatedPatient(index=index, ct_hu=real.ct, pet_suv=pet, label=label,
                            pet_to_ct_truth=transform_to_dict(ct_to_pet), lesions=[lesion],
                            organs={name: {"suv": float(v)} for name, v in zip(p["hu_tissues"], suv_of_class)},
                            demographics=sample_demographics(rng, p))


def real_delineation_record(source: dict[str, Any], case: str) -> dict[str, Any]:
    """What a hybrid patient's truth says is real and what is simulated."""
    return {"real_anatomy": {"ct": "real", "pet": "simulated from the real CT's tissues",
                             "lesions": "real delineation", "case": case,
                             "source": f"{source['package']}=={source['version']}", "sha256": source["sha256"],
                             "licence": source["licence"], "citation": source["citation"]}}


def write_delineation_patient(index: int, p: dict[str, Any], root: Path, *, seed: int) -> dict[str, Any]:
    """Simulate one hybrid patient and write it as the pelvic phantom's patients are written."""
    from crossmodal.phantom.cohort import write_petct_patient

    case = p["cases"][index]
    return write_petct_patient(
        simulate_delineation_patient(index, p, seed=seed), p, root, seed=seed, sex="O",
        descriptions=("CT (real scan; real lesion delineation)",
                      "PET FDG AC (simulated from the real CT)"),
        truth=real_delineation_record(p["real_data"], case))


def generate_hybrid_delineations_cohort(p: dict[str, Any], root: str | Path, *, progress: bool = False,
                                        jobs: int | str | Workers = 1) -> Path:
    """Write the hybrid patients (``n_patients``: one per ``cases`` entry) as DICOM under
    ``root`` (the pelvic phantom's layout); byte-identical for identical parameters and source."""
    from crossmodal.phantom.cohort import write_cohort

    return write_cohort(p, root, write_delineation_patient,
                        version=GENERATOR_VERSION, desc="hybrid patients", progress=progress, jobs=jobs)
