"""Hybrid skeletal CT/MRI/PET: a real CT's skeleton, simulated MR and PET, inserted findings.

Part 2's question on real anatomy ("do the per-modality detectors and the fused classifier,
trained on the skeletal phantom, hold on a real skeleton?") needs CT, MR and PET of real
bones with known metastases. None can be fetched here, so each hybrid patient is:

* **CT: real.** The abdomen-and-pelvis CT of the ``totalsegmentator`` source distribution
  (``real_data``), reoriented to LPS (no voxel resampled), kept whole. Every voxel outside
  an inserted finding is the scanner's own value. The patient is male.
* **Findings: simulated, inserted** into the real bones (``bone_structures``: site group ->
  TotalSegmentator names, e.g. vertebrae, hips and sacrum, ribs, femurs). The skeletal
  phantom draws them (:func:`~crossmodal.phantom.skeleton_anatomy.sample_metastases`,
  :func:`~crossmodal.phantom.skeleton_anatomy.sample_mimics`, the modality-specific
  evidence of :mod:`~crossmodal.phantom.skeleton_phenomena`): number, type, site, size and
  look per modality are its ranges; only the placement differs (a random marrow voxel of
  a real bone of the site, at least ``edge_margin_mm`` inside the scan). A finding is its
  ellipsoid cut to its real bone. Inside a finding the CT takes the phantom's look
  (:func:`~crossmodal.phantom.skeleton.apply_finding`, the real marrow's median HU as the
  marrow value) plus noise of ``ct_noise_hu``.
* **MR and PET: simulated** from the real tissues: each CT voxel is classed (outside the
  body: air; inside by ``hu_tissues``; ``tissue_structures`` such as kidneys and bladder;
  a bone voxel at or above ``cortex_hu`` cortex, below it marrow) and takes the phantom's
  T1 and SUV of its class, with this patient's marrow, kidney and bladder values; the
  findings are applied as in the phantom; then each modality's scanner on its own grid
  (the phantom's spacing over the CT's field of view) with its positioning shift: MR a
  smooth bias field and Rician noise, PET its PSF and counting noise.

Each patient is seeded by ``(seed, index)``; class (positive or not) and modalities are the
phantom's low-discrepancy draws, so the hybrid cohort is balanced as the phantom is. Known
limits: one real patient (every hybrid patient shares its bones), his real bones may hold
changes of their own (degeneration, an implant) that nobody labelled, MR and PET tissue
values are uniform per class, the CT's own noise is not modelled inside a finding.
"""

from __future__ import annotations

import fnmatch
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from crossmodal.parallel import Workers
from crossmodal.phantom.hybrid_pelvis import RealPelvis
from crossmodal.phantom.hybrid_pelvis import load_real_pelvis
from crossmodal.phantom.hybrid_pelvis import real_anatomy_record
from crossmodal.phantom.pelvis import Ellipsoid
from crossmodal.phantom.pelvis import grid_points
from crossmodal.phantom.pelvis import hu_classes
from crossmodal.phantom.skeleton import SimulatedSkeletalPatient
from crossmodal.phantom.skeleton import apply_finding
from crossmodal.phantom.skeleton import mr_bias_field
from crossmodal.phantom.skeleton_anatomy import GRID_KEYS
from crossmodal.phantom.skeleton_anatomy import LABEL_METASTASIS
from crossmodal.phantom.skeleton_anatomy import MODALITIES
from crossmodal.phantom.skeleton_anatomy import TISSUES
from crossmodal.phantom.skeleton_anatomy import Bone
from crossmodal.phantom.skeleton_anatomy import Finding
from crossmodal.phantom.skeleton_anatomy import GridSampler
from crossmodal.phantom.skeleton_anatomy import draw_in_range
from crossmodal.phantom.skeleton_anatomy import patient_is_positive
from crossmodal.phantom.skeleton_anatomy import patient_modalities
from crossmodal.phantom.skeleton_anatomy import sample_metastases
from crossmodal.phantom.skeleton_anatomy import sample_mimics
from crossmodal.phantom.skeleton_anatomy import tissue_values
from crossmodal.phantom.skeleton_phenomena import apply_evidence

__all__ = ["GENERATOR_VERSION", "RealSkeleton", "generate_hybrid_skeleton_cohort", "load_real_skeleton",
           "simulate_hybrid_skeletal_patient"]

GENERATOR_VERSION = "hybrid-skeleton-1"

SERIES_DESCRIPTIONS = {"CT": "CT trunk bone (real; findings inserted)",
                       "MR": "MR T1 trunk (simulated from real anatomy)",
                       "PT": "PET FDG AC (simulated from real anatomy)"}


@dataclass(frozen=True)
class RealSkeleton:
    """The real CT, its tissue classes and bones, and where findings may be centred."""

    real: RealPelvis
    tissue: np.ndarray  # (z, y, x) skeletal phantom tissue class (TISSUES) of every CT voxel
    bones: list[Bone]  # one per real bone structure: name and site group (no lobes)
    bone_ids: list[int]  # the structure id of each bone
    marrow_hu: float  # median CT number of the real marrow
    sites: dict[str, tuple[np.ndarray, np.ndarray]]  # group -> (bone index, centre in mm) per candidate

    def bone_mask(self, bone: int, block=(slice(None),) * 3) -> np.ndarray:
        return self.real.structures[block] == self.bone_ids[bone]


def load_real_skeleton(p: dict[str, Any]) -> RealSkeleton:
    """The real CT of ``p['real_data']`` with its structures, classed into the skeletal
    phantom's tissues, and the candidate centres of each site group of ``bone_structures``.
    Raises ``ValueError`` naming a class or group the real scan cannot hold."""
    structures = {**(p.get("tissue_structures") or {}), **p["bone_structures"]}
    real = load_real_pelvis({**p, "tissue_structures": structures})
    unknown = sorted(set(p["hu_tissues"]) - set(TISSUES)) + sorted(set(p.get("tissue_structures") or {}) - set(TISSUES))
    if unknown:
        raise ValueError(f"hybrid skeleton: classes {unknown} are not skeletal phantom tissues {sorted(TISSUES)}")
    hu = sitk.GetArrayFromImage(real.ct)
    body = _body_mask(hu, float(p["body_hu"]))
    names = list(p["hu_tissues"])
    tissue = np.full(hu.shape, TISSUES["air"], dtype=np.uint8)
    classes = hu_classes(hu, p["hu_tissues"])
    for k, name in enumerate(names):
        tissue[body & (classes == k)] = TISSUES[name]
    for name, patterns in (p.get("tissue_structures") or {}).items():
        tissue[real.mask(list(patterns))] = TISSUES[name]
    bones, bone_ids, marrow = [], [], np.zeros(hu.shape, dtype=bool)
    for group, patterns in p["bone_structures"].items():
        for structure_id, name in sorted(real.names.items()):
            inside = real.structures == structure_id
            if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns) and inside.any():
                bones.append(Bone(name, group, lobes=[], cortex_mm=0.0, marrow_sites=[]))
                bone_ids.append(structure_id)
                dense = inside & (hu >= float(p["cortex_hu"]))
                tissue[inside] = TISSUES["marrow"]
                tissue[dense] = TISSUES["cortex"]
                marrow |= inside & ~dense
    if not marrow.any():
        raise ValueError(f"{real.source['root']}: no marrow voxel in bone_structures {p['bone_structures']}")
    sites = _candidate_centres(real, bones, bone_ids, tissue, float(p["edge_margin_mm"]))
    missing = sorted(g for g in {*p["metastasis_sites"], *p["bone_structures"]} if g not in sites)
    if missing:
        raise ValueError(f"hybrid skeleton: no place for a finding in site groups {missing} of {real.source['root']} "
                         f"(bone_structures {p['bone_structures']}, edge_margin_mm {p['edge_margin_mm']})")
    return RealSkeleton(real, tissue, bones, bone_ids, float(np.median(hu[marrow])), sites)


def _body_mask(hu: np.ndarray, threshold: float) -> np.ndarray:
    """The largest connected region above ``threshold`` HU, its holes filled slice by slice
    (the body; a couch or table apart from it is left out)."""
    components, count = ndimage.label(hu > threshold)
    if count == 0:
        return np.zeros(hu.shape, dtype=bool)
    largest = np.argmax(np.bincount(components.ravel())[1:]) + 1
    body = components == largest
    return np.stack([ndimage.binary_fill_holes(plane) for plane in body])


def _candidate_centres(real: RealPelvis, bones: list[Bone], bone_ids: list[int], tissue: np.ndarray,
                       margin_mm: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per site group: the marrow voxels one voxel inside their bone and ``margin_mm`` inside
    the scan, as (bone index, point in mm)."""
    spacing = np.asarray(real.ct.GetSpacing())[::-1]  # (z, y, x)
    edge = np.ones(tissue.shape, dtype=bool)
    for axis, (n, step) in enumerate(zip(tissue.shape, spacing)):
        keep = int(np.ceil(margin_mm / step))
        index = [slice(None)] * 3
        index[axis] = np.r_[0:min(keep, n), max(n - keep, 0):n].astype(int)
        edge[tuple(index)] = False
    points = grid_points(real.ct)
    sites: dict[str, list] = {}
    for b, (bone, structure_id) in enumerate(zip(bones, bone_ids)):
        interior = ndimage.binary_erosion(real.structures == structure_id)
        where = interior & edge & (tissue == TISSUES["marrow"])
        if where.any():
            sites.setdefault(bone.group, []).append((np.full(int(where.sum()), b), points[where]))
    return {group: (np.concatenate([b for b, _ in found]), np.concatenate([c for _, c in found]))
            for group, found in sites.items()}


def place_in_real_bone(rng: np.random.Generator, group: str, radius: float, *, skeleton: RealSkeleton,
                       where: str = "marrow") -> tuple[int, int, Ellipsoid]:
    """A finding's bone, lobe (0) and shape centred on a random candidate marrow voxel of
    ``group``; ``where="endplate"`` flattens it along z as the phantom's endplate findings."""
    bone_of, centres = skeleton.sites[group]
    k = int(rng.integers(len(centres)))
    radii = (np.array([radius, radius, 0.5 * radius]) if where == "endplate"
             else radius * rng.uniform(0.8, 1.2, 3))
    return int(bone_of[k]), 0, Ellipsoid(tuple(map(float, centres[k])), tuple(map(float, radii)))


def _finding_regions(skeleton: RealSkeleton, findings: list[Finding]) -> list[tuple[tuple, np.ndarray] | None]:
    """(block, mask) of each finding's ellipsoid inside its real bone on the CT grid."""
    sampler = GridSampler(skeleton.real.ct)
    regions = []
    for f in findings:
        hit = sampler.inside(f.shape)
        regions.append(None if hit is None else (hit[0], hit[1] & skeleton.bone_mask(f.bone, hit[0])))
    return regions


def _on_ct_grid(skeleton: RealSkeleton, modality: str, values: dict[str, dict[str, float]], findings: list[Finding],
                regions, p: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    """One modality's noise-free values on the real CT grid (the CT: its real numbers) with
    the findings applied (the CT's with noise inside them)."""
    if modality == "CT":
        array = sitk.GetArrayFromImage(skeleton.real.ct).astype(np.float32)
    else:
        lut = np.zeros(len(TISSUES), dtype=np.float32)
        for name, cls in TISSUES.items():
            lut[cls] = values[modality].get(name, 0.0)
        array = lut[skeleton.tissue]
    sampler = GridSampler(skeleton.real.ct)
    for f, region in zip(findings, regions):
        if region is None:
            continue
        block, mask = region
        apply_finding(modality, f, array[block], sampler.points(block), mask, p, values[modality]["marrow"])
        if modality == "CT" and p["ct_noise_hu"] > 0:
            view = array[block]
            view[mask] += rng.normal(0.0, p["ct_noise_hu"], int(mask.sum())).astype(np.float32)
    return array


def modality_grid(ct: sitk.Image, spacing_mm) -> sitk.Image:
    """An axis-aligned grid of ``spacing_mm`` covering the CT's field of view, same centre."""
    spacing = np.asarray(spacing_mm, dtype=float)
    extent = np.asarray(ct.GetSize()) * np.asarray(ct.GetSpacing())
    size = np.maximum(np.round(extent / spacing).astype(int), 1)
    centre = np.asarray(ct.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2.0 for n in ct.GetSize()]))
    grid = sitk.Image([int(n) for n in size], sitk.sitkFloat32)
    grid.SetSpacing([float(s) for s in spacing])
    grid.SetOrigin([float(c) for c in centre - (size - 1) * spacing / 2.0])
    return grid


def _to_grid(array: np.ndarray, ct: sitk.Image, grid: sitk.Image, shift_mm, *, blur_sigma_mm=None) -> np.ndarray:
    """``array`` (on the CT grid) seen on ``grid`` with the anatomy moved by ``shift_mm``:
    blurred by ``blur_sigma_mm`` (a PSF) or, by default, by the new voxel (partial volume),
    then linearly interpolated."""
    source_spacing = np.asarray(ct.GetSpacing())[::-1]
    if blur_sigma_mm is None:
        target = np.asarray(grid.GetSpacing())[::-1]
        sigma = np.where(target > source_spacing, 0.4 * target / source_spacing, 0.0)
    else:
        sigma = float(blur_sigma_mm) / source_spacing
    image = sitk.GetImageFromArray(ndimage.gaussian_filter(array.astype(np.float32), sigma, mode="nearest"))
    image.CopyInformation(ct)
    # Resample maps a grid point y to the anatomy point y - shift (anatomy at x appears at x + shift).
    moved = sitk.TranslationTransform(3, tuple(-float(s) for s in shift_mm))
    return sitk.GetArrayFromImage(sitk.Resample(image, grid, moved, sitk.sitkLinear, 0.0, sitk.sitkFloat32))


def _labels_on_grid(ids: np.ndarray, n: int, ct: sitk.Image, grid: sitk.Image, shift_mm) -> tuple[np.ndarray, list[int]]:
    """The metastasis label on ``grid``: voxels at least half covered by a metastasis, and
    each metastasis's best-covered voxel at least (as the phantom's labels)."""
    label = np.zeros(sitk.GetArrayViewFromImage(grid).shape, dtype=bool)
    counts = []
    for i in range(1, n + 1):
        cover = _to_grid((ids == i).astype(np.float32), ct, grid, shift_mm, blur_sigma_mm=0.0)
        mine = cover >= 0.5
        if not mine.any() and cover.max() > 0:
            mine = cover == cover.max()
        label |= mine
        counts.append(int(mine.sum()))
    return label.astype(np.uint8) * LABEL_METASTASIS, counts


def _image(array: np.ndarray, like: sitk.Image) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(like)
    return image


def simulate_hybrid_skeletal_patient(index: int, p: dict[str, Any], *, seed: int,
                                     skeleton: RealSkeleton | None = None) -> SimulatedSkeletalPatient:
    """One hybrid patient (see the module doc) from ``phantom.skeleton_real_anatomy`` params
    (merged over ``phantom.skeleton``); ``skeleton``: the loaded anatomy, to load it once."""
    skeleton = skeleton or load_real_skeleton(p)
    rng = np.random.default_rng([seed, index])
    positive = patient_is_positive(index, float(p["positive_fraction"]), seed=seed)
    present = patient_modalities(index, p["modality_probability"], float(p["positive_fraction"]), seed=seed)
    limit = np.asarray(p["modality_shift_mm"], dtype=float)
    shifts = {"CT": np.zeros(3), **{m: rng.uniform(-1, 1, 3) * limit for m in ("MR", "PT")}}
    values = tissue_values(rng, p)
    values["CT"]["marrow"] = skeleton.marrow_hu  # the real marrow: occult findings match it
    place = functools.partial(place_in_real_bone, skeleton=skeleton)
    metastases = sample_metastases(rng, p, place) if positive else []
    apply_evidence(np.random.default_rng([seed, index, 300]), p, metastases,
                   {m: values[m]["marrow"] for m in MODALITIES})
    mimics = sample_mimics(rng, p, place, metastases)
    bias = rng.uniform(-1, 1, 6)
    demographics = {"weight_kg": round(draw_in_range(rng, p["weight_kg"]), 1), "age": int(rng.integers(35, 81)),
                    "sex": p.get("sex", "M")}

    findings = mimics + metastases  # metastases last: where they meet a mimic, they win
    regions = _finding_regions(skeleton, findings)
    ct = skeleton.real.ct
    ids = np.zeros(skeleton.tissue.shape, dtype=np.uint8)
    for k, region in enumerate(regions[len(mimics):], start=1):
        if region is not None:
            ids[region[0]][region[1]] = k
    images, labels, voxels = {}, {}, {}
    for k, m in enumerate(MODALITIES):
        if m not in present:
            continue
        noise_rng = np.random.default_rng([seed, index, 100 + k])
        ideal = _on_ct_grid(skeleton, m, values, findings, regions, p, noise_rng)
        if m == "CT":
            images[m] = _image(ideal, ct)
            labels[m] = _image((ids > 0).astype(np.uint8) * LABEL_METASTASIS, ct)
            voxels[m] = [int((ids == i).sum()) for i in range(1, len(metastases) + 1)]
            continue
        grid = modality_grid(ct, p[GRID_KEYS[m][1]])
        if m == "MR":
            signal = _to_grid(ideal, ct, grid, shifts[m]) * mr_bias_field(grid, bias, float(p["mr_bias_amplitude"]))
            sigma = float(p["mr_noise"])
            if sigma > 0:  # Rician: magnitude of a complex signal with Gaussian noise
                signal = np.hypot(signal + noise_rng.normal(0.0, sigma, signal.shape),
                                  noise_rng.normal(0.0, sigma, signal.shape))
            array = signal * float(p["mr_scale"])
        else:
            array = _to_grid(ideal, ct, grid, shifts[m], blur_sigma_mm=float(p["pet_fwhm_mm"]) / 2.3548)
            if p["pet_counts_per_suv"] > 0:
                array = noise_rng.poisson(np.clip(array, 0, None) * p["pet_counts_per_suv"]) / p["pet_counts_per_suv"]
        images[m] = _image(np.asarray(array, dtype=np.float32), grid)
        label, voxels[m] = _labels_on_grid(ids, len(metastases), ct, grid, shifts[m])
        labels[m] = _image(label, grid)
    lesions = [{"id": i + 1, **f.to_dict(skeleton.bones), "label_voxels": {m: voxels[m][i] for m in images},
                "inserted": True} for i, f in enumerate(metastases)]
    mimic_truth = [{"id": i + 1, **f.to_dict(skeleton.bones), "inserted": True} for i, f in enumerate(mimics)]
    summary = {"marrow": {m: values[m]["marrow"] for m in MODALITIES}, "kidney_suv": values["PT"]["kidney"],
               "bladder_suv": values["PT"]["bladder"], "mr_bias_coefficients": bias.tolist()}
    return SimulatedSkeletalPatient(
        index=index, patient_label=int(positive), images=images, labels=labels, lesions=lesions,
        mimics=mimic_truth, offsets_mm={m: shifts[m].tolist() for m in MODALITIES}, anatomy=summary,
        demographics=demographics)


def write_hybrid_skeletal_patient(index: int, p: dict[str, Any], root: Path, *, seed: int) -> dict[str, Any]:
    """Simulate one hybrid patient and write it as the skeletal phantom's patients are written."""
    from crossmodal.phantom.skeleton_cohort import write_skeletal_series

    record = real_anatomy_record(p["real_data"], p.get("sex", "M"))
    record["real_anatomy"].update(mr="simulated from the real structures", lesions="simulated, inserted into real bones")
    return write_skeletal_series(simulate_hybrid_skeletal_patient(index, p, seed=seed, skeleton=_load_once(p)),
                                 p, root, seed=seed, descriptions=SERIES_DESCRIPTIONS, truth=record)


_LOADED: dict[str, RealSkeleton] = {}


def _load_once(p: dict[str, Any]) -> RealSkeleton:
    """The real skeleton of ``p``, loaded once per worker process."""
    key = json.dumps([p["real_data"], p["bone_structures"], p.get("tissue_structures"), p["hu_tissues"],
                      p["cortex_hu"], p["body_hu"], p["edge_margin_mm"], p["metastasis_sites"]], sort_keys=True)
    if key not in _LOADED:
        _LOADED.clear()
        _LOADED[key] = load_real_skeleton(p)
    return _LOADED[key]


def generate_hybrid_skeleton_cohort(p: dict[str, Any], root: str | Path, *, progress: bool = False,
                                    jobs: int | str | Workers = 1) -> Path:
    """Write the hybrid skeletal cohort of ``phantom.skeleton_real_anatomy`` as DICOM under
    ``root`` (the skeletal phantom's layout); byte-identical for identical parameters and source."""
    from crossmodal.phantom.cohort import write_cohort

    return write_cohort(p, root, write_hybrid_skeletal_patient, version=GENERATOR_VERSION,
                        desc="hybrid skeletal patients", progress=progress, jobs=jobs)
