"""Seeded pelvic PET/CT phantom of a cervical-cancer patient.

The phantom is analytic: every organ is a (possibly lobulated) ellipsoid in patient
coordinates (DICOM LPS, millimetres), so CT and PET can be sampled on their own grids and
the PET can be placed through an exact, known rigid misregistration. Everything the
method spec lists under "Pelvic PET/CT" is modelled and switchable by a parameter:

* body outline of varying size with a subcutaneous fat layer; couch under the body (CT);
* pelvic bones (sacrum, iliac wings, femoral heads), muscle;
* bladder: water on CT, very hot on PET (urinary FDG) with a fill change between the
  CT and the later PET acquisition;
* rectum with gas; bowel loops with physiological uptake;
* uterus and cervix; the cervical tumour is near-isodense on CT and hot on PET, with
  varying size, lobulated shape, SUVmax and an optional necrotic core;
* hot metastatic lymph nodes;
* PET physics: PSF blur (FWHM), coarser grid, Poisson-like counting noise;
* CT noise; PET<->CT misregistration (shift and small rotation).

On top, :mod:`crossmodal.phantom.pelvis_phenomena` adds what makes real pelvic PET/CT hard
and CT useful: ureters with focal urinary uptake, bowel content (gas, oral contrast,
fluid) with focal bowel uptake and a per-loop bowel shift on PET, nodes in sidewall fat
and PET-faint nodes, and tumours abutting the bladder. Every hot physiological structure
a detector could take for a lesion is listed in the truth sidecar as a ``mimic``.

Known limits (also in the book's phantom card): shapes are ellipsoids, not segmented
anatomy; the pelvic cavity is muscle-density apart from the fat drawn around nodes and
ureters; no partial-volume modelling on CT; PET noise is voxel-wise Poisson after blur
(no reconstruction-correlated noise); no attenuation/scatter; no respiratory motion;
bladder fill change is a radial scale, not a deformation of neighbours; the non-rigid
PET-CT mismatch is only the bladder fill and a translation per bowel loop. The
phenomena's own limits are in :mod:`crossmodal.phantom.pelvis_phenomena`.

Functions here return arrays and :class:`SimulatedPatient`; writing DICOM is
:mod:`crossmodal.phantom.dicom`'s job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from typing import Any

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from crossmodal.io.geometry import transform_to_dict
from crossmodal.phantom.pelvis_phenomena import BowelFocus
from crossmodal.phantom.pelvis_phenomena import Ellipsoid
from crossmodal.phantom.pelvis_phenomena import Ureter
from crossmodal.phantom.pelvis_phenomena import abut_bladder
from crossmodal.phantom.pelvis_phenomena import mimic_truth
from crossmodal.phantom.pelvis_phenomena import phenomena_truth
from crossmodal.phantom.pelvis_phenomena import phenomenon_streams
from crossmodal.phantom.pelvis_phenomena import sample_bowel_content
from crossmodal.phantom.pelvis_phenomena import sample_bowel_foci
from crossmodal.phantom.pelvis_phenomena import sample_node_phenomena
from crossmodal.phantom.pelvis_phenomena import sample_ureters

# Tissue classes of the analytic model; later classes overwrite earlier ones.
(AIR, FAT, MUSCLE, BONE, BLADDER, RECTUM_WALL, RECTUM_GAS, BOWEL, UTERUS, TUMOUR, NECROSIS, NODE, COUCH,
 URETER_WALL, URETER_LUMEN, BOWEL_LUMEN) = range(16)

LABEL_TUMOUR = 1
LABEL_NODE = 2

__all__ = ["Ellipsoid", "Lesion", "PelvisAnatomy", "SimulatedPatient", "sample_anatomy", "simulate_patient",
           "grid_points", "make_grid", "field_of_view", "sample_misregistration", "inverse_rigid_points", "scan_pet",
           "sample_tumour", "sample_nodes", "move_lesion", "sample_demographics", "nearest_values", "hu_classes"]


@dataclass
class Lesion:
    """A lesion: a union of lobes, optionally with a necrotic core."""

    kind: str  # "tumour" | "node"
    lobes: list[Ellipsoid]
    suv_max: float
    ct_delta_hu: float
    necrotic_core: Ellipsoid | None = None
    site: str = "muscle"  # "cervix" | "fat" | "muscle": the tissue around it
    pet_faint: bool = False
    abuts_bladder: bool = False

    def contains(self, points: np.ndarray) -> np.ndarray:
        inside = np.zeros(points.shape[:-1], dtype=bool)
        for lobe in self.lobes:
            inside |= lobe.contains(points)
        return inside


def _paint(target: np.ndarray, points: np.ndarray, e: Ellipsoid, value, *, scale: float = 1.0,
           tissue: np.ndarray | None = None, only: tuple[int, ...] = ()) -> None:
    """Set ``target`` to ``value`` inside ``e`` (where ``tissue`` is one of ``only``, if given)."""
    block, inside = e.region(points, scale)
    if tissue is not None:
        inside &= np.isin(tissue[block], only)
    target[block][inside] = value


@dataclass
class PelvisAnatomy:
    """All organs of one simulated patient, in patient coordinates (the CT frame)."""

    body: Ellipsoid  # infinite along z: only x/y radii are used
    fat_mm: float
    bones: list[Ellipsoid]
    bladder: Ellipsoid
    bladder_fill_scale_pet: float
    rectum: Ellipsoid
    bowel: list[Ellipsoid]
    bowel_suv: list[float]
    uterus: Ellipsoid
    lesions: list[Lesion]
    couch_y_mm: float
    suv: dict[str, float]
    hu: dict[str, float]
    fat_pads: list[Ellipsoid] = field(default_factory=list)  # perivascular fat around nodes
    ureters: list[Ureter] = field(default_factory=list)
    bowel_lumen_fraction: float = 0.0
    bowel_content: list[str] = field(default_factory=list)  # per loop: gas | contrast | fluid
    bowel_content_hu: list[float] = field(default_factory=list)
    bowel_shift_pet: list[tuple[float, float, float]] = field(default_factory=list)
    bowel_foci: list[BowelFocus] = field(default_factory=list)
    bowel_focus_sites: int = 0  # loops that could hold a focus (the CT shows them there)

    def loops(self, *, pet: bool = False) -> list[Ellipsoid]:
        """The bowel loops where CT (or, ``pet``, the later PET) sees them."""
        if not pet or not self.bowel_shift_pet:
            return self.bowel
        return [loop.shifted(s) for loop, s in zip(self.bowel, self.bowel_shift_pet)]

    def tissue(self, points: np.ndarray, *, pet: bool = False) -> np.ndarray:
        """Tissue class at each point (…, 3) in mm; ``pet`` applies the PET bladder fill and bowel shift."""
        x, y = points[..., 0], points[..., 1]
        bx, by = self.body.radii[0], self.body.radii[1]
        cx, cy = self.body.centre[0], self.body.centre[1]
        r_body = ((x - cx) / bx) ** 2 + ((y - cy) / by) ** 2
        r_muscle = ((x - cx) / (bx - self.fat_mm)) ** 2 + ((y - cy) / (by - self.fat_mm)) ** 2
        t = np.full(points.shape[:-1], AIR, dtype=np.uint8)
        if not pet:  # the couch attenuates on CT only; it carries no activity
            t[(y > self.couch_y_mm) & (y < self.couch_y_mm + 8.0)] = COUCH
        t[r_body <= 1.0] = FAT
        t[r_muscle <= 1.0] = MUSCLE
        for pad in self.fat_pads:
            _paint(t, points, pad, FAT)
        for ureter in self.ureters:
            for sphere in ureter.spheres:
                _paint(t, points, sphere, FAT, scale=1.0 + ureter.fat_mm / sphere.radii[0])
        for bone in self.bones:
            _paint(t, points, bone, BONE)
        for loop in self.loops(pet=pet):
            _paint(t, points, loop, BOWEL)
            if self.bowel_lumen_fraction > 0:
                _paint(t, points, loop, BOWEL_LUMEN, scale=self.bowel_lumen_fraction)
        self._paint_ureters(t, points)
        _paint(t, points, self.uterus, UTERUS)
        _paint(t, points, self.rectum, RECTUM_WALL)
        _paint(t, points, self.rectum, RECTUM_GAS, scale=0.6)
        _paint(t, points, self.bladder, BLADDER, scale=self.bladder_fill_scale_pet if pet else 1.0)
        for lesion in self.lesions:
            inside = lesion.contains(points)
            t[inside] = TUMOUR if lesion.kind == "tumour" else NODE
            if lesion.necrotic_core is not None:
                t[inside & lesion.necrotic_core.contains(points)] = NECROSIS
        return t

    def _paint_ureters(self, t: np.ndarray, points: np.ndarray) -> None:
        for ureter in self.ureters:  # every wall first, so no sphere's wall covers its neighbour's lumen
            for sphere in ureter.spheres:
                _paint(t, points, sphere, URETER_WALL)
        for ureter in self.ureters:
            for k, sphere in enumerate(ureter.spheres):  # a urine bolus fills the whole tube
                scale = 1.0 if ureter.in_focus(k) else ureter.lumen_fraction
                _paint(t, points, sphere, URETER_LUMEN, scale=scale)

    def lesion_index(self, points: np.ndarray) -> np.ndarray:
        """1-based index of the lesion at each point (0 = none)."""
        idx = np.zeros(points.shape[:-1], dtype=np.int16)
        for i, lesion in enumerate(self.lesions, start=1):
            idx[lesion.contains(points)] = i
        return idx

    def ct_hu(self, points: np.ndarray) -> np.ndarray:
        t = self.tissue(points)
        hu = np.zeros(t.shape, dtype=np.float32)
        for name, cls in _CLASS_NAMES.items():
            if name in self.hu:  # lesion and bowel-content values are set one by one below
                hu[t == cls] = self.hu[name]
        if self.bowel_lumen_fraction > 0:
            for loop, value in zip(self.bowel, self.bowel_content_hu):
                _paint(hu, points, loop, value, scale=self.bowel_lumen_fraction, tissue=t,
                       only=(BOWEL_LUMEN,))
        lesion_at = self.lesion_index(points)
        for i, lesion in enumerate(self.lesions, start=1):
            core = (lesion_at == i) & (t != NECROSIS)
            hu[core] = self.hu["uterus" if lesion.kind == "tumour" else "muscle"] + lesion.ct_delta_hu
        return hu

    def pet_suv(self, points: np.ndarray) -> np.ndarray:
        t = self.tissue(points, pet=True)
        suv = np.zeros(t.shape, dtype=np.float32)
        for name, cls in _CLASS_NAMES.items():
            if name in self.suv:
                suv[t == cls] = self.suv[name]
        bowel = (BOWEL, BOWEL_LUMEN)  # uptake is uniform over a loop, wall and content alike
        for loop, value in zip(self.loops(pet=True), self.bowel_suv):
            _paint(suv, points, loop, value, tissue=t, only=bowel)
        shifts = self.bowel_shift_pet or [(0.0, 0.0, 0.0)] * len(self.bowel)
        for focus in self.bowel_foci:
            _paint(suv, points, focus.ellipsoid.shifted(shifts[focus.loop]), focus.suv, tissue=t, only=bowel)
        for ureter in self.ureters:
            for focus in ureter.foci:
                for sphere in ureter.spheres[focus.start:focus.stop]:
                    _paint(suv, points, sphere, focus.suv, tissue=t, only=(URETER_LUMEN,))
        lesion_at = self.lesion_index(points)
        for i, lesion in enumerate(self.lesions, start=1):
            hot = (lesion_at == i) & (t != NECROSIS)
            suv[hot] = lesion.suv_max
        return suv


_CLASS_NAMES = {
    "air": AIR, "fat": FAT, "muscle": MUSCLE, "bone": BONE, "bladder": BLADDER,
    "rectum_wall": RECTUM_WALL, "rectum_gas": RECTUM_GAS, "bowel": BOWEL, "uterus": UTERUS,
    "tumour": TUMOUR, "necrosis": NECROSIS, "node": NODE, "couch": COUCH,
    "ureter_wall": URETER_WALL, "ureter_lumen": URETER_LUMEN,
}


@dataclass
class SimulatedPatient:
    """One simulated patient: CT (HU), PET (SUV) and label on the CT grid, plus truth."""

    index: int
    ct_hu: sitk.Image
    pet_suv: sitk.Image
    label: sitk.Image
    pet_to_ct_truth: dict[str, Any]
    lesions: list[dict[str, Any]]
    organs: dict[str, Any]
    demographics: dict[str, Any] = field(default_factory=dict)
    mimics: list[dict[str, Any]] = field(default_factory=list)
    phenomena: dict[str, Any] = field(default_factory=dict)

    def truth(self) -> dict[str, Any]:
        """The evaluation-only sidecar (never used by the methods themselves).

        ``lesions``: id, kind, suv_max, ct_delta_hu, necrotic, volume_ml, centroid_mm, lobes,
        site (cervix | fat | muscle), pet_faint, abuts_bladder. ``mimics``: id, kind (bladder |
        ureter_focus | bowel_focus), suv_max, ct_hu, ellipsoids (axis-aligned, CT frame, LPS mm).
        ``phenomena``: this patient's count of each phenomenon.
        """
        return {
            "misregistration": self.pet_to_ct_truth,
            "lesions": self.lesions,
            "organs": self.organs,
            "mimics": self.mimics,
            "phenomena": self.phenomena,
        }


def _uniform(rng: np.random.Generator, bounds) -> float:
    lo, hi = bounds
    return float(rng.uniform(lo, hi))


def sample_anatomy(rng: np.random.Generator, p: dict) -> PelvisAnatomy:
    """Draw one patient's anatomy from the ranges in ``p`` (``phantom.pelvis`` params).

    The base anatomy comes from ``rng``; each phenomenon of
    :mod:`crossmodal.phantom.pelvis_phenomena` from its own stream seeded by one draw of
    ``rng``, so switching a phenomenon off changes nothing else of the patient.
    """
    bx, by = _uniform(rng, p["body_half_width_mm"]), _uniform(rng, p["body_half_depth_mm"])
    body = Ellipsoid((0.0, 0.0, 0.0), (bx, by, 1e9))
    fat = _uniform(rng, p["fat_mm"])
    # Posterior is +y in LPS. Organs sit relative to the body size.
    sacrum = Ellipsoid((0.0, 0.62 * by, 20.0), (0.22 * bx, 0.14 * by, 70.0))
    iliac_l = Ellipsoid((0.55 * bx, 0.25 * by, 40.0), (0.12 * bx, 0.35 * by, 45.0))
    iliac_r = Ellipsoid((-0.55 * bx, 0.25 * by, 40.0), (0.12 * bx, 0.35 * by, 45.0))
    femur_l = Ellipsoid((0.48 * bx, 0.05 * by, -70.0), (24.0, 24.0, 24.0))
    femur_r = Ellipsoid((-0.48 * bx, 0.05 * by, -70.0), (24.0, 24.0, 24.0))
    bladder_r = _uniform(rng, p["bladder_radius_mm"])
    bladder = Ellipsoid((0.0, -0.35 * by, -30.0), (bladder_r * 1.2, bladder_r * 0.9, bladder_r))
    uterus = Ellipsoid((0.0, 0.05 * by, 5.0), (32.0, 24.0, 45.0))
    rectum = Ellipsoid((0.0, 0.38 * by, -10.0), (16.0, 14.0, 60.0))
    bowel, bowel_suv = [], []
    for _ in range(int(rng.integers(p["bowel_loops"][0], p["bowel_loops"][1] + 1))):
        c = (rng.uniform(-0.6, 0.6) * bx, rng.uniform(-0.6, 0.1) * by, rng.uniform(10.0, 70.0))
        r = rng.uniform(10.0, 18.0)
        bowel.append(Ellipsoid(c, (r * rng.uniform(1.0, 2.0), r, r * rng.uniform(0.8, 1.5))))
        bowel_suv.append(_uniform(rng, p["bowel_suv"]))
    lesions = [sample_tumour(rng, p, by), *sample_nodes(rng, p, bx, by)]
    suv = dict(p["suv"])
    suv["bladder"] = _uniform(rng, p["bladder_suv"])
    # Patients do not lie centred in the field of view: the whole anatomy moves at the end.
    offset = np.array([*(rng.uniform(-1, 1, 2) * np.asarray(p["body_offset_mm"], dtype=float)), 0.0])
    anatomy = PelvisAnatomy(
        body=body, fat_mm=fat, bones=[sacrum, iliac_l, iliac_r, femur_l, femur_r], bladder=bladder,
        bladder_fill_scale_pet=_uniform(rng, p["bladder_fill_change"]), rectum=rectum,
        bowel=bowel, bowel_suv=bowel_suv, uterus=uterus, lesions=lesions,
        couch_y_mm=by + 6.0, suv=suv, hu=dict(p["hu"]),
    )
    _add_phenomena(anatomy, rng, p)
    return _moved(anatomy, offset)


def sample_tumour(rng: np.random.Generator, p: dict, by: float) -> Lesion:
    """Cervical tumour: at the inferior uterus, lobulated, near-isodense on CT."""
    t_r = _uniform(rng, p["tumour_radius_mm"])
    tc = np.array([rng.uniform(-8, 8), 0.05 * by + rng.uniform(-6, 6), -25.0 + rng.uniform(-6, 6)])
    lobes = [Ellipsoid(tuple(tc), (t_r * rng.uniform(0.8, 1.2), t_r * rng.uniform(0.7, 1.1), t_r))]
    for _ in range(int(rng.integers(0, 3))):  # extra lobes make the shape irregular
        offset = rng.normal(0, 0.5 * t_r, 3)
        lobes.append(Ellipsoid(tuple(tc + offset), tuple(t_r * rng.uniform(0.4, 0.7, 3))))
    core = None
    if rng.uniform() < p["necrosis_probability"] and t_r > 12:
        core = Ellipsoid(tuple(tc), (0.45 * t_r, 0.45 * t_r, 0.45 * t_r))
    return Lesion("tumour", lobes, _uniform(rng, p["tumour_suvmax"]), _uniform(rng, p["tumour_ct_delta_hu"]),
                  core, site="cervix")


def sample_nodes(rng: np.random.Generator, p: dict, bx: float, by: float) -> list[Lesion]:
    """Hot metastatic nodes along the pelvic side walls, in muscle until a phenomenon moves them."""
    nodes = []
    for _ in range(int(rng.integers(p["nodes"][0], p["nodes"][1] + 1))):
        side = rng.choice([-1.0, 1.0])
        nc = (side * rng.uniform(0.3, 0.45) * bx, rng.uniform(-0.1, 0.2) * by, rng.uniform(-20, 50))
        nr = _uniform(rng, p["node_radius_mm"])
        nodes.append(Lesion("node", [Ellipsoid(nc, (nr, nr * 0.9, nr * 1.1))],
                            _uniform(rng, p["node_suvmax"]), float(rng.uniform(-5, 10))))
    return nodes


def _add_phenomena(anatomy: PelvisAnatomy, rng: np.random.Generator, p: dict) -> None:
    """Tumour against the bladder, node site and faintness, bowel content and shift,
    ureters, bowel foci (last: a focus goes only where the CT shows bowel)."""
    streams = phenomenon_streams(rng, ("tumour", "nodes", "bowel", "bowel_foci", "ureters"))
    abut_bladder(streams["tumour"], p, anatomy.lesions[0], anatomy.bladder)
    nodes = [lesion for lesion in anatomy.lesions if lesion.kind == "node"]
    anatomy.fat_pads = sample_node_phenomena(streams["nodes"], p, nodes)
    anatomy.bowel_lumen_fraction = float(p["bowel_lumen_fraction"])
    anatomy.bowel_content, anatomy.bowel_content_hu, anatomy.bowel_shift_pet = sample_bowel_content(
        streams["bowel"], p, len(anatomy.bowel))
    lobes = [lobe for lesion in anatomy.lesions for lobe in lesion.lobes]
    ureters = streams["ureters"]
    anatomy.hu["ureter_lumen"] = _uniform(ureters, p["ureter_lumen_hu"])
    anatomy.suv["ureter_lumen"] = _uniform(ureters, p["ureter_suv"])
    anatomy.ureters = sample_ureters(
        ureters, p, bx=anatomy.body.radii[0], by=anatomy.body.radii[1], bladder=anatomy.bladder,
        bladder_scale_pet=anatomy.bladder_fill_scale_pet, lesions=lobes, z_top=field_of_view(p)[1][2])
    anatomy.bowel_foci, anatomy.bowel_focus_sites = sample_bowel_foci(
        streams["bowel_foci"], p, anatomy.bowel, lobes,
        shows_bowel=lambda points: _shows_bowel(anatomy, points))


def _shows_bowel(anatomy: PelvisAnatomy, points: np.ndarray) -> np.ndarray:
    """Whether the CT shows bowel (wall or content, no other organ) at each of ``points`` (n, 3)."""
    return np.isin(anatomy.tissue(np.asarray(points, dtype=float)), (BOWEL, BOWEL_LUMEN))


def move_lesion(lesion: Lesion, offset) -> Lesion:
    """Translate ``lesion`` (its lobes and necrotic core) by ``offset`` mm, in place."""
    lesion.lobes = [e.shifted(offset) for e in lesion.lobes]
    if lesion.necrotic_core is not None:
        lesion.necrotic_core = lesion.necrotic_core.shifted(offset)
    return lesion


def _moved(anatomy: PelvisAnatomy, offset: np.ndarray) -> PelvisAnatomy:
    """The whole anatomy translated by ``offset`` mm (lesions are moved in place)."""
    for lesion in anatomy.lesions:
        move_lesion(lesion, offset)
    moved = {name: getattr(anatomy, name).shifted(offset) for name in ("body", "bladder", "rectum", "uterus")}
    moved |= {name: [e.shifted(offset) for e in getattr(anatomy, name)]
              for name in ("bones", "bowel", "fat_pads", "ureters", "bowel_foci")}
    return replace(anatomy, couch_y_mm=anatomy.couch_y_mm + float(offset[1]), **moved)


def grid_points(image: sitk.Image) -> np.ndarray:
    """Physical coordinates (z, y, x, 3) of every voxel centre of ``image``."""
    nx, ny, nz = image.GetSize()
    # column i of ``steps`` is one voxel along index axis i (x, y, z) in mm
    steps = np.asarray(image.GetDirection()).reshape(3, 3) * np.asarray(image.GetSpacing())
    points = np.empty((nz, ny, nx, 3))
    points[...] = np.asarray(image.GetOrigin()) + np.arange(nz)[:, None, None, None] * steps[:, 2]
    points += np.arange(ny)[None, :, None, None] * steps[:, 1]
    points += np.arange(nx)[None, None, :, None] * steps[:, 0]
    return points


def nearest_values(points: np.ndarray, image: sitk.Image, array: np.ndarray, outside) -> np.ndarray:
    """Nearest-voxel value of ``array`` (on ``image``'s LPS-oriented grid) at ``points`` (…, 3)."""
    index = np.rint((points - np.asarray(image.GetOrigin())) / np.asarray(image.GetSpacing())).astype(int)
    size = np.asarray(image.GetSize())
    valid = np.all((index >= 0) & (index < size), axis=-1)
    out = np.full(points.shape[:-1], outside, dtype=array.dtype)
    out[valid] = array[index[valid][:, 2], index[valid][:, 1], index[valid][:, 0]]
    return out


def hu_classes(hu: np.ndarray, hu_tissues: dict[str, list[float]]) -> np.ndarray:
    """Index into ``hu_tissues`` of each voxel's class ([low, high) HU; later classes win;
    a value in no range takes the first class)."""
    classes = np.zeros(hu.shape, dtype=np.int16)
    for k, (low, high) in enumerate(hu_tissues.values()):
        classes[(hu >= low) & (hu < high)] = k
    return classes


def make_grid(size_xyz, spacing_xyz, centre_mm=(0.0, 0.0, 0.0)) -> sitk.Image:
    """An empty float image of the given size/spacing centred on ``centre_mm``."""
    image = sitk.Image([int(s) for s in size_xyz], sitk.sitkFloat32)
    image.SetSpacing([float(s) for s in spacing_xyz])
    extent = (np.asarray(size_xyz) - 1) * np.asarray(spacing_xyz)
    image.SetOrigin(list(np.asarray(centre_mm) - extent / 2.0))
    return image


def field_of_view(p: dict) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)`` corners (x, y, z mm) of the CT voxel centres that :func:`make_grid` lays out."""
    half = (np.asarray(p["ct_size"]) - 1) * np.asarray(p["ct_spacing_mm"], dtype=float) / 2.0
    return -half, half


def _array_image(array: np.ndarray, like: sitk.Image) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(like)
    return image


def sample_misregistration(rng: np.random.Generator, p: dict) -> sitk.Euler3DTransform:
    """Rigid CT->PET transform (SimpleITK fixed=CT, moving=PET convention)."""
    t = rng.uniform(-1, 1, 3) * np.asarray(p["misregistration_shift_mm"], dtype=float)
    a = np.deg2rad(rng.uniform(-1, 1, 3) * np.asarray(p["misregistration_rotation_deg"], dtype=float))
    transform = sitk.Euler3DTransform()
    transform.SetCenter((0.0, 0.0, 0.0))
    transform.SetRotation(*map(float, a))
    transform.SetTranslation(tuple(map(float, t)))
    return transform


def simulate_patient(index: int, p: dict, *, seed: int) -> SimulatedPatient:
    """Simulate one patient's CT, PET and lesion label from ``phantom.pelvis`` params.

    The patient's generator is seeded by ``(seed, index)`` so patients are independent
    of cohort size and order.
    """
    rng = np.random.default_rng([seed, index])
    anatomy = sample_anatomy(rng, p)

    ct_grid = make_grid(p["ct_size"], p["ct_spacing_mm"])
    ct_points = grid_points(ct_grid)
    hu = anatomy.ct_hu(ct_points)
    if p["ct_noise_hu"] > 0:
        hu = hu + rng.normal(0.0, p["ct_noise_hu"], hu.shape).astype(np.float32)
    label = np.zeros(hu.shape, dtype=np.uint8)
    for lesion in anatomy.lesions:
        label[lesion.contains(ct_points)] = LABEL_TUMOUR if lesion.kind == "tumour" else LABEL_NODE

    ct_to_pet = sample_misregistration(rng, p)
    pet = scan_pet(anatomy.pet_suv, ct_to_pet, p, rng)

    lesions = _lesion_truth(anatomy, ct_points, voxel_ml=float(np.prod(p["ct_spacing_mm"])) / 1000.0)
    b = anatomy.bladder
    organs = {
        "bladder": {**b.to_dict(), "z_range_mm": [b.centre[2] - b.radii[2], b.centre[2] + b.radii[2]],
                    "suv": anatomy.suv["bladder"], "fill_scale_pet": anatomy.bladder_fill_scale_pet},
        "body_half_axes_mm": list(anatomy.body.radii[:2]), "fat_mm": anatomy.fat_mm,
    }
    mimics = mimic_truth(anatomy, field_of_view(p))
    demographics = sample_demographics(rng, p)
    return SimulatedPatient(
        index=index,
        ct_hu=_array_image(hu.astype(np.float32), ct_grid),
        pet_suv=pet,
        label=_array_image(label, ct_grid),
        pet_to_ct_truth=transform_to_dict(ct_to_pet),
        lesions=lesions,
        organs=organs,
        demographics=demographics,
        mimics=mimics,
        phenomena=phenomena_truth(anatomy, mimics),
    )


def sample_demographics(rng: np.random.Generator, p: dict) -> dict[str, Any]:
    """Weight (``weight_kg`` range, kg, one decimal) and age (30-75 years) of one patient."""
    return {"weight_kg": round(_uniform(rng, p["weight_kg"]), 1), "age": int(rng.integers(30, 76))}


def scan_pet(suv_at: Callable[[np.ndarray], np.ndarray], ct_to_pet: sitk.Euler3DTransform, p: dict,
             rng: np.random.Generator, *, centre_mm=(0.0, 0.0, 0.0)) -> sitk.Image:
    """The PET (SUV) a scanner of ``p`` records of the activity ``suv_at(points)`` (points in
    the CT frame, LPS mm), seen through the rigid ``ct_to_pet`` misregistration.

    Activity on a grid ``pet_oversample`` times finer in the PET frame, blurred by the PSF
    (``pet_fwhm_mm``), then binned to the ``pet_size`` x ``pet_spacing_mm`` grid centred on
    ``centre_mm`` (the blur happens before sampling, as in a scanner), then Poisson counting
    noise at ``pet_counts_per_suv`` counts per SUV unit (0: none), drawn from ``rng``.
    """
    pet_size = np.asarray(p["pet_size"])
    pet_spacing = np.asarray(p["pet_spacing_mm"], dtype=float)
    oversample = int(p["pet_oversample"])
    fine = make_grid(pet_size * oversample, pet_spacing / oversample, centre_mm)
    suv_fine = suv_at(inverse_rigid_points(ct_to_pet, grid_points(fine)))
    sigma_vox = p["pet_fwhm_mm"] / 2.3548 / (pet_spacing[::-1] / oversample)
    suv_fine = ndimage.gaussian_filter(suv_fine, sigma=sigma_vox, mode="constant")
    z, y, x = (pet_size[::-1]).tolist()
    suv = suv_fine.reshape(z, oversample, y, oversample, x, oversample).mean(axis=(1, 3, 5))
    if p["pet_counts_per_suv"] > 0:  # Poisson counting noise at a given count level
        lam = np.clip(suv, 0, None) * p["pet_counts_per_suv"]
        suv = rng.poisson(lam).astype(np.float32) / p["pet_counts_per_suv"]
    return _array_image(suv.astype(np.float32), make_grid(p["pet_size"], p["pet_spacing_mm"], centre_mm))


def _lesion_truth(anatomy: PelvisAnatomy, ct_points: np.ndarray, *, voxel_ml: float) -> list[dict[str, Any]]:
    """Per lesion: what it is, how hot and dense, where, and the phenomena it shows."""
    lesions = []
    for i, lesion in enumerate(anatomy.lesions, start=1):
        mask = lesion.contains(ct_points)
        centroid = ct_points[mask].mean(axis=0).tolist() if mask.any() else None
        lesions.append({
            "id": i, "kind": lesion.kind, "suv_max": lesion.suv_max,
            "ct_delta_hu": lesion.ct_delta_hu, "necrotic": lesion.necrotic_core is not None,
            "volume_ml": float(mask.sum()) * voxel_ml, "centroid_mm": centroid,
            "lobes": [lobe.to_dict() for lobe in lesion.lobes],
            "site": lesion.site, "pet_faint": lesion.pet_faint, "abuts_bladder": lesion.abuts_bladder,
        })
    return lesions


def inverse_rigid_points(transform: sitk.Euler3DTransform, points: np.ndarray) -> np.ndarray:
    """Apply the inverse of a rigid ``T(x) = R (x - c) + c + t`` to (…, 3) points, vectorised.

    A PET point q shows the anatomy found at ``T^-1(q)`` on CT.
    """
    rotation = np.asarray(transform.GetMatrix()).reshape(3, 3)
    centre = np.asarray(transform.GetCenter())
    shift = np.asarray(transform.GetTranslation())
    return (points - centre - shift) @ rotation + centre  # row-vector form of R^T (q - c - t)
