"""Hybrid pelvic PET/CT: a real CT's anatomy, simulated FDG-PET, inserted lesions.

Part 1's question on real anatomy ("does what the detectors learnt transfer to real
anatomy and its real confounders?") needs PET/CT with real organs and known lesions. No
real PET/CT with lesion labels can be fetched here, so each hybrid patient is:

* **CT: real.** The abdomen-and-pelvis CT of the ``totalsegmentator`` source distribution
  (``real_data``), reoriented to LPS (a permutation: no voxel is resampled) and cut to
  the z range of ``crop_structures`` (plus ``crop_margin_mm``). Every voxel outside an
  inserted lesion is the scanner's own value. The patient is male: no cervix.
* **Lesions: simulated, inserted.** A primary mass of the phantom's size, shape, SUVmax
  and CT contrast (:func:`~crossmodal.phantom.pelvis.sample_tumour`) against the
  posterior wall of the lower third of ``primary_beside`` (the bladder base, where a
  cervical tumour meets the bladder), and the phantom's count of nodes
  (:func:`~crossmodal.phantom.pelvis.sample_nodes`) in the soft tissue or fat beside the
  real ``node_beside`` structures (the iliac vessels, where pelvic nodes lie). Inside a
  lesion the CT takes the phantom's tissue value plus the lesion's contrast plus noise of
  ``ct_noise_hu``.
* **PET: simulated** from the real structures (``tissue_structures``: TotalSegmentator
  names, shell patterns allowed; unlabelled voxels by ``hu_tissues``) with the phantom's
  tissue SUVs (``suv``, ``bladder_suv``, ``bowel_suv``) and the organ SUVs the phantom
  lacks (``organ_suv``: kidneys, liver, spleen, blood pool, prostate), then through the
  phantom's scanner (:func:`~crossmodal.phantom.pelvis.scan_pet`: PSF, PET grid,
  counting noise) and its rigid misregistration, centred on the CT.

The same generator serves a real CT of another region (a fork's cohort): without
structures (no ``tissue_structures`` or structure keys) every voxel is classed by HU, the
whole CT is kept, the primary is placed within ``primary_within`` classes (at least
``primary_within_fraction`` of it; e.g. aerated lung) with the CT number of
``primary_hu_tissue``, and no node is inserted unless ``node_beside`` names structures.

Each patient is seeded by ``(seed, index)``: the same real anatomy, other lesions, PET
noise and misregistration. Every value without a source of its own is the phantom's
(``phantom.pelvis``); the sources of the hybrid's own values are
:data:`crossmodal.phantom.sources.HYBRID_PELVIS_PARAMETER_SOURCES`. Known limits: one real patient (every hybrid patient shares
its organs), no bladder fill change or bowel motion between CT and PET, no
partial-volume CT edge at a lesion, uniform uptake per organ.
"""

from __future__ import annotations

import ast
import fnmatch
import json
from dataclasses import dataclass
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from crossmodal.io.geometry import transform_to_dict
from crossmodal.parallel import Workers
from crossmodal.phantom.pelvis import LABEL_NODE
from crossmodal.phantom.pelvis import LABEL_TUMOUR
from crossmodal.phantom.pelvis import Lesion
from crossmodal.phantom.pelvis import SimulatedPatient
from crossmodal.phantom.pelvis import grid_points
from crossmodal.phantom.pelvis import hu_classes
from crossmodal.phantom.pelvis import move_lesion
from crossmodal.phantom.pelvis import nearest_values
from crossmodal.phantom.pelvis import sample_demographics
from crossmodal.phantom.pelvis import sample_misregistration
from crossmodal.phantom.pelvis import sample_nodes
from crossmodal.phantom.pelvis import sample_tumour
from crossmodal.phantom.pelvis import scan_pet

__all__ = ["GENERATOR_VERSION", "RealPelvis", "generate_hybrid_pelvis_cohort", "load_real_pelvis",
           "simulate_hybrid_patient", "structure_names", "tissue_classes"]

GENERATOR_VERSION = "hybrid-pelvis-1"

_PLACEMENT_TRIES = 200


@dataclass(frozen=True)
class RealPelvis:
    """The real CT (HU, LPS, cut to the pelvis) and its structures, with their names."""

    ct: sitk.Image
    structures: np.ndarray  # (z, y, x) TotalSegmentator ids on the CT grid
    names: dict[int, str]
    source: dict[str, Any]  # the ``real_data`` entry (package, version, sha256, ...)

    def mask(self, patterns: list[str]) -> np.ndarray:
        """Voxels of every structure whose name matches one of ``patterns``."""
        ids = [i for i, name in self.names.items() if any(fnmatch.fnmatchcase(name, pat) for pat in patterns)]
        return np.isin(self.structures, ids)


def structure_names(path: str | Path) -> dict[int, str]:
    """``class_map["total"]`` of TotalSegmentator's ``map_to_binary.py``, read as a literal
    (the file is data here: nothing of it is executed)."""
    tree = ast.parse(Path(path).read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "class_map" for t in node.targets) \
                and isinstance(node.value, ast.Dict):
            for key, value in zip(node.value.keys, node.value.values):
                if key is not None and ast.literal_eval(key) == "total":
                    return {int(k): str(v) for k, v in ast.literal_eval(value).items()}
    raise ValueError(f"{path}: no class_map['total'] literal")


def load_real_pelvis(p: dict[str, Any]) -> RealPelvis:
    """The real CT and structures of ``p['real_data']`` (files ``ct.nii.gz``,
    ``structures.nii.gz``, ``structure_names.py`` under its ``root``), reoriented to LPS and
    cut to the z extent of ``crop_structures`` +- ``crop_margin_mm``. A section naming no
    structures reads the CT alone (no structure, every voxel classed by HU) and keeps it whole."""
    source = p["real_data"]
    root = Path(source["root"])
    # A CT without structures (a source that ships none) is classed by HU alone.
    needed = ["ct.nii.gz"] + (["structures.nii.gz", "structure_names.py"] if _uses_structures(p) else [])
    for name in needed:
        if not (root / name).exists():
            raise FileNotFoundError(f"{root / name}: missing; `crossmodal data` fetches real_data first")
    ct = sitk.DICOMOrient(sitk.ReadImage(str(root / "ct.nii.gz"), sitk.sitkFloat32), "LPS")
    if not np.allclose(ct.GetDirection(), np.eye(3).ravel()):
        raise ValueError(f"{root / 'ct.nii.gz'}: an oblique CT (direction {ct.GetDirection()}); the hybrid "
                         "cohort needs axis-aligned slices")
    if not _uses_structures(p):
        return RealPelvis(ct, np.zeros(sitk.GetArrayViewFromImage(ct).shape, dtype=np.uint8), {}, source)
    structures = sitk.DICOMOrient(sitk.ReadImage(str(root / "structures.nii.gz")), "LPS")
    if ct.GetSize() != structures.GetSize() or not (np.allclose(ct.GetOrigin(), structures.GetOrigin())
                                                    and np.allclose(ct.GetSpacing(), structures.GetSpacing())
                                                    and np.allclose(ct.GetDirection(), structures.GetDirection())):
        raise ValueError(f"{root}: ct.nii.gz and structures.nii.gz are not on one grid")
    names = structure_names(root / "structure_names.py")
    whole = RealPelvis(ct, sitk.GetArrayFromImage(structures), names, source)
    for key in STRUCTURE_KEYS:
        if p.get(key) and not whole.mask(list(p[key])).any():
            raise ValueError(f"{root / 'structures.nii.gz'}: no voxel of the hybrid phantom's {key} "
                             f"{list(p[key])}")
    if not p.get("crop_structures"):
        return whole
    slices = np.flatnonzero(whole.mask(list(p["crop_structures"])).any(axis=(1, 2)))
    margin = int(np.ceil(float(p["crop_margin_mm"]) / ct.GetSpacing()[2]))
    z0, z1 = max(0, slices[0] - margin), min(ct.GetSize()[2], slices[-1] + margin + 1)
    cut = ct[:, :, int(z0):int(z1)]
    return RealPelvis(cut, whole.structures[z0:z1].copy(), names, source)


#: The keys naming real structures; a section with none of them needs no structures file.
STRUCTURE_KEYS = ("crop_structures", "primary_beside", "node_beside")


def _uses_structures(p: dict[str, Any]) -> bool:
    return bool(p.get("tissue_structures")) or any(p.get(key) for key in STRUCTURE_KEYS)


def tissue_classes(real: RealPelvis, p: dict[str, Any]) -> tuple[np.ndarray, list[str]]:
    """Each CT voxel's activity class: ``hu_tissues`` by HU, then ``tissue_structures`` by
    structure (later entries win). Returns the class index array and the class names."""
    structures = p.get("tissue_structures") or {}
    names = list(p["hu_tissues"]) + [n for n in structures if n not in p["hu_tissues"]]
    wanted = [*(p.get("node_tissues") or []), *(p.get("primary_within") or [])]
    missing = [n for n in wanted if n not in names]
    if missing:
        raise ValueError(f"hybrid phantom: activity classes {missing} (node_tissues, primary_within) "
                         f"are not among hu_tissues or tissue_structures {names}")
    classes = hu_classes(sitk.GetArrayFromImage(real.ct), p["hu_tissues"])  # the hu_tissues come first in names
    for name, patterns in structures.items():
        classes[real.mask(list(patterns))] = names.index(name)
    return classes, names


def tissue_suv(rng: np.random.Generator, p: dict[str, Any], names: list[str]) -> np.ndarray:
    """This patient's SUV of each activity class: the phantom's tissue values, a bladder and
    a bowel value drawn from its ranges, the organ values drawn from ``organ_suv``."""
    drawn = {"bladder": float(rng.uniform(*p["bladder_suv"])), "bowel": float(rng.uniform(*p["bowel_suv"]))}
    drawn |= {name: float(rng.uniform(*bounds)) for name, bounds in sorted(p["organ_suv"].items())}
    values = []
    for name in names:
        if name in drawn:
            values.append(drawn[name])
        elif name in p["suv"]:
            values.append(float(p["suv"][name]))
        else:
            raise ValueError(f"activity class {name!r} has no SUV (phantom suv, bladder, bowel or organ_suv)")
    return np.asarray(values, dtype=np.float32)


def _lower_posterior_wall(mask: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The point (mm) on the posterior (+y) wall of the lower third of ``mask``."""
    inside = points[mask]
    z_low, z_high = inside[:, 2].min(), inside[:, 2].max()
    lower = inside[inside[:, 2] <= z_low + (z_high - z_low) / 3.0]
    back = lower[lower[:, 1] >= lower[:, 1].max() - 3.0]
    return np.array([lower[:, 0].mean(), lower[:, 1].max(), back[:, 2].mean()])


def insert_lesions(rng: np.random.Generator, p: dict[str, Any], real: RealPelvis, classes: np.ndarray,
                   names: list[str], points: np.ndarray) -> list[Lesion]:
    """The primary mass (at the wall of ``primary_beside``, or within the ``primary_within``
    classes) and the nodes beside the ``node_beside`` structures (see the module doc); a
    node that finds no free ``node_tissues`` voxels in its tries is dropped."""
    tumour = sample_tumour(rng, p, 0.0)
    if p.get("primary_within"):
        tumour = _place_within(rng, tumour, p, classes, names, points)
    else:
        wall = _lower_posterior_wall(real.mask(list(p["primary_beside"])), points)
        # Behind the wall by most of its own depth, so it presses on it; the jitter is the
        # phantom's own tumour position jitter (sample_tumour: +-8 mm across, +-6 mm along z).
        centre = wall + np.array([rng.uniform(-8, 8), 0.6 * tumour.lobes[0].radii[1], rng.uniform(-6, 6)])
        move_lesion(tumour, centre - np.asarray(tumour.lobes[0].centre))
        tumour.site = f"{p['primary_beside'][0]} base (posterior wall)"
    lesions, taken = [tumour], tumour.contains(points)  # voxels a placed lesion holds
    if not p.get("node_beside"):
        return lesions
    vessels = points[real.mask(list(p["node_beside"]))]
    free = [names.index(n) for n in p["node_tissues"]]
    for node in sample_nodes(rng, p, 0.0, 0.0):
        radius = max(node.lobes[0].radii)
        for _ in range(_PLACEMENT_TRIES):
            angle = rng.uniform(0.0, 2.0 * np.pi)
            gap = radius + float(rng.uniform(*p["node_gap_mm"]))
            centre = vessels[rng.integers(len(vessels))] + gap * np.array([np.cos(angle), np.sin(angle), 0.0])
            trial = move_lesion(replace(node), centre - np.asarray(node.lobes[0].centre))
            where = trial.contains(points)
            clear = not taken[where].any()
            if where.any() and clear and np.isin(classes[where], free).all():
                trial.site = "beside " + "/".join(p["node_beside"])
                lesions.append(trial)
                taken |= where
                break
    return lesions


def _place_within(rng: np.random.Generator, tumour: Lesion, p: dict[str, Any], classes: np.ndarray,
                  names: list[str], points: np.ndarray) -> Lesion:
    """``tumour`` moved to a random voxel of the ``primary_within`` classes such that at least
    ``primary_within_fraction`` of it lies in them (a lung tumour in aerated lung, its
    vessels allowed); ``ValueError`` when no try fits."""
    inside = np.isin(classes, [names.index(n) for n in p["primary_within"]])
    candidates = points[inside]
    if not len(candidates):
        raise ValueError(f"hybrid phantom: no voxel of the real CT is in primary_within {p['primary_within']} "
                         f"(hu_tissues {p['hu_tissues']})")
    fraction = float(p.get("primary_within_fraction", 0.9))
    for _ in range(_PLACEMENT_TRIES):
        centre = candidates[rng.integers(len(candidates))]
        trial = move_lesion(replace(tumour), centre - np.asarray(tumour.lobes[0].centre))
        where = trial.contains(points)
        if where.any() and inside[where].mean() >= fraction:
            trial.site = "within " + "/".join(p["primary_within"])
            return trial
    raise ValueError(f"hybrid phantom: no place for a primary of radius "
                     f"{max(tumour.lobes[0].radii):.0f} mm with {fraction:.0%} of it in {p['primary_within']} "
                     f"after {_PLACEMENT_TRIES} tries")


def simulate_hybrid_patient(index: int, p: dict[str, Any], *, seed: int,
                            real: RealPelvis | None = None) -> SimulatedPatient:
    """One hybrid patient (see the module doc) from ``phantom.pelvis_real_anatomy`` params
    (merged over ``phantom.pelvis``); ``real``: the loaded anatomy, to load it once."""
    real = real or load_real_pelvis(p)
    rng = np.random.default_rng([seed, index])
    ct_points = grid_points(real.ct)
    classes, names = tissue_classes(real, p)
    suv_of_class = tissue_suv(rng, p, names)
    lesions = insert_lesions(rng, p, real, classes, names, ct_points)

    hu = sitk.GetArrayFromImage(real.ct).copy()
    label = np.zeros(hu.shape, dtype=np.uint8)
    masks = [lesion.contains(ct_points) for lesion in lesions]
    for lesion, inside in zip(lesions, masks):
        necrotic = lesion.necrotic_core.contains(ct_points) & inside if lesion.necrotic_core else np.zeros_like(inside)
        tissue = p.get("primary_hu_tissue", "uterus") if lesion.kind == "tumour" else "muscle"
        base = p["hu"][tissue] + lesion.ct_delta_hu
        hu[inside] = np.where(necrotic[inside], p["hu"]["necrosis"], base)
        hu[inside] += rng.normal(0.0, p["ct_noise_hu"], int(inside.sum())).astype(np.float32)
        label[inside] = LABEL_TUMOUR if lesion.kind == "tumour" else LABEL_NODE
    activity = suv_of_class[classes]

    def suv_at(points: np.ndarray) -> np.ndarray:
        suv = nearest_values(points, real.ct, activity, np.float32(p["suv"]["air"]))
        for lesion in lesions:
            hot = lesion.contains(points)
            if lesion.necrotic_core is not None:
                hot &= ~lesion.necrotic_core.contains(points)
            suv[hot] = lesion.suv_max
        return suv

    ct_to_pet = sample_misregistration(rng, p)
    centre = np.asarray(real.ct.TransformContinuousIndexToPhysicalPoint(
        [(n - 1) / 2.0 for n in real.ct.GetSize()]))
    ct_to_pet.SetCenter(tuple(map(float, centre)))
    extent = np.asarray(real.ct.GetSize()) * np.asarray(real.ct.GetSpacing())
    pet_spacing = np.asarray(p["pet_spacing_mm"], dtype=float)
    pet_size = np.ceil(extent / pet_spacing).astype(int) + np.array([2, 2, 0]) * int(p["pet_margin_voxels"])
    pet = scan_pet(suv_at, ct_to_pet, {**p, "pet_size": pet_size.tolist()}, rng, centre_mm=centre)

    ct_image = sitk.GetImageFromArray(hu.astype(np.float32))
    ct_image.CopyInformation(real.ct)
    label_image = sitk.GetImageFromArray(label)
    label_image.CopyInformation(real.ct)
    voxel_ml = float(np.prod(real.ct.GetSpacing())) / 1000.0
    lesion_truth = []
    for i, (lesion, mask) in enumerate(zip(lesions, masks), start=1):
        lesion_truth.append({"id": i, "kind": lesion.kind, "suv_max": lesion.suv_max,
                             "ct_delta_hu": lesion.ct_delta_hu, "necrotic": lesion.necrotic_core is not None,
                             "volume_ml": float(mask.sum()) * voxel_ml,
                             "centroid_mm": ct_points[mask].mean(axis=0).tolist(), "site": lesion.site,
                             "inserted": True})
    organs = {}
    if p.get("primary_beside") and "bladder" in names:
        bladder = ct_points[real.mask(list(p["primary_beside"]))]
        organs["bladder"] = {"z_range_mm": [float(bladder[:, 2].min()), float(bladder[:, 2].max())],
                             "suv": float(suv_of_class[names.index("bladder")])}
    return SimulatedPatient(
        index=index, ct_hu=ct_image, pet_suv=pet, label=label_image,
        pet_to_ct_truth=transform_to_dict(ct_to_pet), lesions=lesion_truth, organs=organs,
        demographics=sample_demographics(rng, p),
    )


SEX_WORDS = {"M": "male", "F": "female", "O": "not stated by the source"}


def real_anatomy_record(source: dict[str, Any], sex: str = "M", *, structures: bool = True) -> dict[str, Any]:
    """What a hybrid patient's truth says is real and what is simulated."""
    pet = "simulated from the real structures" if structures else "simulated from the real CT's tissues by CT number"
    return {"real_anatomy": {"ct": "real", "pet": pet,
                             "lesions": "simulated, inserted", "sex": SEX_WORDS[sex],
                             "source": f"{source['package']}=={source['version']}", "sha256": source["sha256"],
                             "licence": source["licence"], "citation": source["citation"]}}


def write_hybrid_patient(index: int, p: dict[str, Any], root: Path, *, seed: int) -> dict[str, Any]:
    """Simulate one hybrid patient and write it as the pelvic phantom's patients are written."""
    from crossmodal.phantom.cohort import write_petct_patient

    sex, region = p.get("sex", "M"), p.get("region", "abdomen-pelvis")
    return write_petct_patient(
        simulate_hybrid_patient(index, p, seed=seed, real=_load_once(p)), p, root, seed=seed, sex=sex,
        descriptions=(f"CT {region} (real; lesions inserted)", "PET FDG AC (simulated from real anatomy)"),
        truth=real_anatomy_record(p["real_data"], sex, structures=_uses_structures(p)))


_LOADED: dict[str, RealPelvis] = {}


def _load_once(p: dict[str, Any]) -> RealPelvis:
    """The real anatomy of ``p``, loaded once per worker process."""
    key = json.dumps([p["real_data"], p.get("crop_structures"), p.get("crop_margin_mm"), _uses_structures(p)],
                     sort_keys=True)
    if key not in _LOADED:
        _LOADED.clear()
        _LOADED[key] = load_real_pelvis(p)
    return _LOADED[key]


def generate_hybrid_pelvis_cohort(p: dict[str, Any], root: str | Path, *, progress: bool = False,
                                  jobs: int | str | Workers = 1) -> Path:
    """Write the hybrid cohort of ``phantom.pelvis_real_anatomy`` as DICOM under ``root``
    (the pelvic phantom's layout); byte-identical for identical parameters and source."""
    from crossmodal.phantom.cohort import write_cohort

    return write_cohort(p, root, write_hybrid_patient, version=GENERATOR_VERSION,
                        desc="hybrid patients", progress=progress, jobs=jobs)
