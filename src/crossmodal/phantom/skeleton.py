"""Seeded skeletal CT/MRI/PET phantom of a breast-cancer patient screened for bone metastasis.

This is the Part 2 cohort of the method spec ("Skeletal CT/MRI/PET"). Like the pelvic
phantom (:mod:`crossmodal.phantom.pelvis`, whose :class:`~crossmodal.phantom.pelvis.Ellipsoid`,
:func:`~crossmodal.phantom.pelvis.make_grid` and :func:`~crossmodal.phantom.pelvis.grid_points`
are reused here) the anatomy is analytic, in patient coordinates (DICOM LPS, mm: +x left,
+y posterior, +z superior), so every modality is sampled on its own grid and the lesion
label is exact on each of them.

Anatomy (a trunk compressed along z, so that small grids hold it: the lower thoracic spine
to the proximal femora spans ~270 mm instead of ~450 mm)

* trunk: elliptic body outline with a subcutaneous fat layer, soft tissue/muscle inside,
  the lung bases at the top, kidneys, a bladder; a couch under the body (CT only);
* spine: ``n_thoracic + n_lumbar`` vertebrae (vertebral body, pedicles, lamina, spinous and
  transverse processes) separated by discs;
* ribs: one pair per thoracic vertebra, each a chain of small ellipsoids along an arc that
  descends anteriorly;
* pelvis: sacrum, iliac wings, pubis/acetabular rami; proximal femora (head, neck/trochanter,
  shaft);
* every bone is a union of ellipsoidal lobes with a cortical shell of ``cortex_mm`` around
  trabecular marrow.

Findings (all inside bone; their appearance is a parameter table)

=========================  ===========================  =======================  ===============
finding                    CT (HU)                      MRI T1                   PET (SUV)
=========================  ===========================  =======================  ===============
metastasis, lytic          soft tissue, below marrow    dark in bright marrow    hot
metastasis, sclerotic      very dense                   very dark                hot (less avid)
metastasis, mixed          sclerotic rim, lytic core    dark                     hot
degenerative sclerosis     dense (fools CT)             near marrow              near marrow
haemangioma                coarse polka-dot (fools CT)  brighter (fatty)         cold
fracture/arthritis uptake  near normal, sclerotic line  mildly dark (oedema)     hot (fools PET)
focal red marrow           near normal                  intermediate (fools MR)  mildly raised
=========================  ===========================  =======================  ===============

Only metastases are labelled (``1``); mimics appear in both classes and are never
labelled. A positive patient (bone metastasis) has 1..N metastases of random type and site.
Each mimic fools exactly the modality of ``MIMIC_FOOLS`` (degenerative sclerosis and
haemangioma CT, fracture/arthritis uptake PET, red marrow MRI; the truth records it as
``fools`` and ``abnormal_on``). Some metastases are missed by one or two modalities
(PET-occult sclerotic, MRI-only and CT-occult marrow lesions,
:mod:`crossmodal.phantom.skeleton_phenomena`); they stay labelled in every series, and
the truth records each one's ``evidence`` and ``visible`` per modality.

Modalities: each patient has a non-empty subset of CT, MR and PT (probabilities in the
parameters; drawn so that availability is the same in both classes, see
:func:`patient_modalities`), each on its own grid (CT fine, MR intermediate with thicker
slices, PET coarse) and each with its own small patient-positioning shift (the CT is the
reference).
Physics per modality:

* CT: HU, partial volume by oversampling, Gaussian noise;
* MR: T1-like arbitrary units (fat and fatty marrow bright, muscle intermediate, cortex,
  lung and air dark; never negative, no HU), a smooth multiplicative bias field,
  Rician noise;
* PET: SUV, activity oversampled, blurred by a Gaussian PSF, binned to the coarse grid,
  Poisson counting noise (the pelvic phantom's scanner model).

Known limits (also in the book's phantom card): ellipsoid shapes; z is compressed; one
T1-like MR contrast only (no STIR/DWI); no MR chemical shift or PET reconstruction
correlations; metastases have uniform uptake; no soft-tissue metastases; in the quick
profile's coarsest grids a rare small rib metastasis can miss every sample of a modality
(its ``label_voxels`` in the truth is then 0 there).

The anatomy and the findings are drawn in :mod:`crossmodal.phantom.skeleton_anatomy`;
functions here render them and return arrays and :class:`SimulatedSkeletalPatient`;
writing DICOM is :mod:`crossmodal.phantom.skeleton_cohort`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from typing import Any

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from crossmodal.phantom.pelvis import grid_points
from crossmodal.phantom.pelvis import make_grid
from crossmodal.phantom.skeleton_anatomy import GRID_KEYS
from crossmodal.phantom.skeleton_anatomy import LABEL_METASTASIS
from crossmodal.phantom.skeleton_anatomy import MODALITIES
from crossmodal.phantom.skeleton_anatomy import TISSUES
from crossmodal.phantom.skeleton_anatomy import Finding
from crossmodal.phantom.skeleton_anatomy import GridSampler
from crossmodal.phantom.skeleton_anatomy import SkeletalAnatomy
from crossmodal.phantom.skeleton_anatomy import draw_in_range
from crossmodal.phantom.skeleton_anatomy import patient_is_positive
from crossmodal.phantom.skeleton_anatomy import patient_modalities
from crossmodal.phantom.skeleton_anatomy import sample_skeletal_anatomy
from crossmodal.phantom.skeleton_phenomena import INFILTRATIVE

__all__ = [
    "SimulatedSkeletalPatient",
    "apply_finding",
    "mr_bias_field",
    "render_ideal",
    "simulate_skeletal_patient",
]


# --------------------------------------------------------------------------- rendering


def apply_finding(modality: str, f: Finding, values: np.ndarray, pts: np.ndarray, region: np.ndarray,
                   p: dict, marrow: float) -> None:
    """Write finding ``f``'s appearance into ``values`` (a block view of ``modality``'s
    tissue values, ``pts`` its points in mm) where ``region``; ``marrow``: the patient's
    marrow value in that modality."""
    v = values  # view of the block
    if f.kind == "metastasis":
        if modality == "CT":
            if f.type == INFILTRATIVE:  # marrow replaced, trabeculae and cortex intact
                v[region] = np.where(v[region] > marrow + 300.0, v[region], f.ct_hu)
                return
            v[region] = f.ct_hu
            if f.type == "mixed":
                v[region & f.shape.contains(pts, scale=0.6)] = f.ct_hu_core
        elif modality == "MR":
            v[region] = f.t1
        else:
            v[region] = f.suv
        return
    if modality == "CT":
        if f.type == "degenerative_sclerosis":
            v[region] = np.maximum(v[region], f.ct_hu)
        elif f.type == "haemangioma":  # fatty marrow between thickened vertical trabeculae
            period = float(p["haemangioma_period_mm"])
            x, y = pts[..., 0], pts[..., 1]
            dots = (np.cos(2 * np.pi * x / period) * np.cos(2 * np.pi * y / period)) > 0.3
            texture = marrow - 60.0 + f.ct_hu * dots
            v[region] = np.where(v[region] > marrow + 300.0, v[region], texture[region])
        elif f.type == "fracture_uptake" and f.line_normal is not None:
            dist = np.abs((pts - np.asarray(f.shape.centre)) @ np.asarray(f.line_normal))
            line = region & (dist <= 0.5 * float(p["fracture_line_mm"]))
            v[line] += f.ct_hu
        elif f.type == "fracture_uptake":  # arthritis: mild subchondral sclerosis
            v[region] += 0.3 * f.ct_hu
        else:  # red marrow: slightly denser than fatty marrow
            v[region] += f.ct_hu
    elif modality == "MR":
        v[region] *= f.t1
    else:
        v[region] = f.suv if f.type == "fracture_uptake" else v[region] * f.suv


def render_ideal(anatomy: SkeletalAnatomy, modality: str, grid: sitk.Image, p: dict, *,
                 shift_mm=(0.0, 0.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free tissue values of one modality at the voxel centres of ``grid``.

    Before any scanner effect (no partial volume, bias field, PSF or noise): the truth the
    simulated images are made from, also handy for figures and tests.

    Parameters
    ----------
    anatomy : from :func:`sample_skeletal_anatomy`.
    modality : "CT" (HU), "MR" (T1-like, fat = 1) or "PT" (SUV).
    grid : an axis-aligned image whose geometry is sampled.
    p : ``phantom.skeleton`` parameters (finding textures).
    shift_mm : the modality's positioning shift (anatomy at ``x`` appears at ``x + shift``).

    Returns
    -------
    values : (z, y, x) float32
    metastasis_ids : (z, y, x) uint8, 1-based index into ``anatomy.metastases`` (0 = none)
    """
    sampler = GridSampler(grid, shift_mm)
    t = anatomy.tissue(sampler, couch=(modality == "CT"))
    lut = np.zeros(len(TISSUES), dtype=np.float32)
    for name, cls in TISSUES.items():
        lut[cls] = anatomy.values[modality].get(name, 0.0)
    values = lut[t]
    marrow = anatomy.values[modality]["marrow"]
    ids = np.zeros(t.shape, dtype=np.uint8)
    for k, f in enumerate(anatomy.mimics + anatomy.metastases):
        hit = anatomy.finding_region(sampler, f)
        if hit is None:
            continue
        block, region = hit
        apply_finding(modality, f, values[block], sampler.points(block), region, p, marrow)
        if f.kind == "metastasis":
            ids[block][region] = k - len(anatomy.mimics) + 1
    return values, ids


def _bin(array: np.ndarray, o: int) -> np.ndarray:
    """Mean over o x o x o blocks (fine grid -> modality grid)."""
    a = array.astype(np.float32)
    if o == 1:
        return a
    z, y, x = (s // o for s in array.shape)
    a = a.reshape(z, o, y, o, x, o).sum(axis=5).sum(axis=3).sum(axis=1)
    return a / np.float32(o ** 3)


def _label_from_ids(ids: np.ndarray, n: int, o: int) -> tuple[np.ndarray, list[int]]:
    """Lesion label on the modality grid: voxels at least half covered by a metastasis.

    A metastasis too small to half-fill any voxel still gets its best-covered voxel, so
    that every sampled metastasis has a box on every modality.
    """
    label = _bin(ids > 0, o) >= 0.5
    fine = np.nonzero(ids)
    owner = ids[fine]
    coarse = np.ravel_multi_index(tuple(a // o for a in fine), label.shape)
    flat = label.reshape(-1)  # a view: setting it sets the label
    counts = []
    for i in range(1, n + 1):
        voxels, hits = np.unique(coarse[owner == i], return_counts=True)
        if len(voxels) and not flat[voxels].any():
            flat[voxels[np.argmax(hits)]] = True  # the best-covered voxel
        counts.append(int(flat[voxels].sum()))
    return label.astype(np.uint8) * LABEL_METASTASIS, counts


def _image(array: np.ndarray, like: sitk.Image) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(like)
    return image


def mr_bias_field(grid: sitk.Image, coefficients: np.ndarray, amplitude: float) -> np.ndarray:
    """Smooth multiplicative bias field ``exp(sum c_k b_k)`` on the MR grid, its log within +-``amplitude``."""
    pts = grid_points(grid)
    half = np.maximum(np.abs(pts).reshape(-1, 3).max(axis=0), 1e-6)
    u, v, w = (pts[..., k] / half[k] for k in range(3))
    basis = [u, v, w, u * u - 1.0 / 3.0, v * v - 1.0 / 3.0, u * v]
    c = np.asarray(coefficients, dtype=float)
    log_field = sum(ck * bk for ck, bk in zip(c, basis)) * amplitude / max(np.abs(c).sum(), 1e-9)
    return np.exp(log_field).astype(np.float32)


def _simulate_modality(anatomy: SkeletalAnatomy, modality: str, p: dict, shift: np.ndarray,
                       rng: np.random.Generator, bias_coefficients: np.ndarray):
    size_key, spacing_key = GRID_KEYS[modality]
    size, spacing = np.asarray(p[size_key]), np.asarray(p[spacing_key], dtype=float)
    o = int(p["oversample"][modality])
    grid = make_grid(size, spacing)
    fine = make_grid(size * o, spacing / o)
    values, ids = render_ideal(anatomy, modality, fine, p, shift_mm=shift)
    label, voxels = _label_from_ids(ids, len(anatomy.metastases), o)
    if modality == "CT":
        image = _bin(values, o)
        if p["ct_noise_hu"] > 0:
            image = image + rng.normal(0.0, p["ct_noise_hu"], image.shape).astype(np.float32)
    elif modality == "MR":
        signal = _bin(values, o) * mr_bias_field(grid, bias_coefficients, float(p["mr_bias_amplitude"]))
        sigma = float(p["mr_noise"])
        if sigma > 0:  # Rician: magnitude of a complex signal with Gaussian noise
            signal = np.hypot(signal + rng.normal(0.0, sigma, signal.shape),
                              rng.normal(0.0, sigma, signal.shape))
        image = (signal * float(p["mr_scale"])).astype(np.float32)
    else:
        sigma_vox = p["pet_fwhm_mm"] / 2.3548 / (spacing[::-1] / o)  # (z, y, x)
        image = _bin(ndimage.gaussian_filter(values, sigma=sigma_vox, mode="constant"), o)
        if p["pet_counts_per_suv"] > 0:
            lam = np.clip(image, 0, None) * p["pet_counts_per_suv"]
            image = (rng.poisson(lam) / p["pet_counts_per_suv"]).astype(np.float32)
    return _image(image.astype(np.float32), grid), _image(label, grid), voxels


# --------------------------------------------------------------------------- patient


@dataclass
class SimulatedSkeletalPatient:
    """One simulated patient: 1-3 modalities on their own grids, labels, and the truth.

    ``images`` and ``labels`` are keyed by DICOM Modality code (``"CT"`` in HU, ``"MR"``
    in T1-like arbitrary units, ``"PT"`` in SUVbw); only the patient's modalities appear.
    """

    index: int
    patient_label: int
    images: dict[str, sitk.Image]
    labels: dict[str, sitk.Image]
    lesions: list[dict[str, Any]]
    mimics: list[dict[str, Any]]
    offsets_mm: dict[str, list[float]]
    anatomy: dict[str, Any]
    demographics: dict[str, Any] = field(default_factory=dict)

    @property
    def modalities(self) -> list[str]:
        return [m for m in MODALITIES if m in self.images]

    def truth(self) -> dict[str, Any]:
        """The evaluation-only sidecar (never used by the methods themselves)."""
        return {
            "patient_label": self.patient_label,
            "diagnosis": "bone metastasis" if self.patient_label else "no bone metastasis",
            "modalities": self.modalities,
            "lesions": self.lesions,
            "mimics": self.mimics,
            "modality_offset_mm": self.offsets_mm,
            "offset_convention": ("anatomy at patient point x (CT frame) appears at x + offset "
                                  "in that modality"),
            "anatomy": self.anatomy,
        }


def simulate_skeletal_patient(index: int, p: dict, *, seed: int) -> SimulatedSkeletalPatient:
    """Simulate one patient's CT/MR/PET series, metastasis labels and truth.

    Parameters
    ----------
    index : patient number; the generator is seeded by ``(seed, index)`` so patients are
        independent of cohort size and order.
    p : the ``phantom.skeleton`` section of ``params.yaml`` (profile applied).
    seed : cohort seed.

    Returns
    -------
    SimulatedSkeletalPatient
        Images and labels (uint8, 1 = metastasis, mimics unlabelled) per present modality.

    Examples
    --------
    >>> from crossmodal.params import load_params
    >>> p = load_params("params.yaml", "quick")["phantom"]["skeleton"]
    >>> patient = simulate_skeletal_patient(0, p, seed=1)
    >>> set(patient.images) == set(patient.labels) and len(patient.images) >= 1
    True
    """
    rng = np.random.default_rng([seed, index])
    positive = patient_is_positive(index, float(p["positive_fraction"]), seed=seed)
    present = patient_modalities(index, p["modality_probability"], float(p["positive_fraction"]),
                                 seed=seed)
    limit = np.asarray(p["modality_shift_mm"], dtype=float)
    shifts = {"CT": np.zeros(3)}
    for m in ("MR", "PT"):
        shifts[m] = rng.uniform(-1, 1, 3) * limit
    # The evidence kinds draw from a stream of their own: switching a phenomenon on or off
    # moves no other draw of the patient.
    evidence_rng = np.random.default_rng([seed, index, 300])
    anatomy, summary = sample_skeletal_anatomy(rng, p, positive=positive, shifts=shifts,
                                               evidence_rng=evidence_rng)
    bias = rng.uniform(-1, 1, 6)
    demographics = {"weight_kg": round(draw_in_range(rng, p["weight_kg"]), 1), "age": int(rng.integers(35, 81)),
                    "sex": "F"}

    images, labels, voxels = {}, {}, {}
    for k, m in enumerate(MODALITIES):
        if m not in present:
            continue
        noise_rng = np.random.default_rng([seed, index, 100 + k])  # independent of other modalities
        images[m], labels[m], voxels[m] = _simulate_modality(anatomy, m, p, shifts[m], noise_rng, bias)
    lesions = []
    for i, f in enumerate(anatomy.metastases):
        lesions.append({"id": i + 1, **f.to_dict(anatomy.bones),
                        "label_voxels": {m: voxels[m][i] for m in images}})
    mimics = [{"id": i + 1, **f.to_dict(anatomy.bones)} for i, f in enumerate(anatomy.mimics)]
    summary["mr_bias_coefficients"] = bias.tolist()
    return SimulatedSkeletalPatient(
        index=index, patient_label=int(positive), images=images, labels=labels, lesions=lesions,
        mimics=mimics, offsets_mm={m: shifts[m].tolist() for m in MODALITIES}, anatomy=summary,
        demographics=demographics)
