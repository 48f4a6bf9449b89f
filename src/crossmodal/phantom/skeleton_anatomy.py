"""Anatomy and findings of the skeletal phantom (Part 2): one patient's analytic body.

:func:`sample_skeletal_anatomy` draws a :class:`SkeletalAnatomy` (trunk, spine, ribs,
pelvis, femora as unions of ellipsoidal lobes; metastases and mimics inside bone) from the
``phantom.skeleton`` parameters; :func:`patient_is_positive` and :func:`patient_modalities`
decide a patient's class and series. Rendering the anatomy on each modality's grid is
:mod:`crossmodal.phantom.skeleton`'s job; the model is described there.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import SimpleITK as sitk

from crossmodal.phantom.pelvis import Ellipsoid
from crossmodal.phantom.skeleton_phenomena import VISIBLE
from crossmodal.phantom.skeleton_phenomena import apply_evidence

__all__ = [
    "GRID_KEYS",
    "LABEL_METASTASIS",
    "METASTASIS_TYPES",
    "MIMIC_FOOLS",
    "MIMIC_TYPES",
    "MODALITIES",
    "TISSUES",
    "Bone",
    "Finding",
    "GridSampler",
    "SkeletalAnatomy",
    "draw_in_range",
    "patient_is_positive",
    "patient_modalities",
    "place_in_lobes",
    "sample_metastases",
    "sample_mimics",
    "sample_skeletal_anatomy",
    "tissue_values",
]

# DICOM Modality codes, in the fixed order used everywhere (the Case image keys).
MODALITIES = ("CT", "MR", "PT")
LABEL_METASTASIS = 1
METASTASIS_TYPES = ("lytic", "sclerotic", "mixed")  # drawn; marrow-only ones become "infiltrative"
MIMIC_TYPES = ("degenerative_sclerosis", "haemangioma", "fracture_uptake", "red_marrow")
# The modality each mimic is designed to fool (the others show it as benign).
MIMIC_FOOLS = {"degenerative_sclerosis": "CT", "haemangioma": "CT", "fracture_uptake": "PT",
               "red_marrow": "MR"}

# Tissue classes of the analytic model; later painting overwrites earlier.
AIR, FAT, SOFT, LUNG, KIDNEY, BLADDER, DISC, CORTEX, MARROW, COUCH = range(10)
TISSUES = {"air": AIR, "fat": FAT, "soft": SOFT, "lung": LUNG, "kidney": KIDNEY,
            "bladder": BLADDER, "disc": DISC, "cortex": CORTEX, "marrow": MARROW, "couch": COUCH}

# The parameters (defaults and the quick profile's overrides) live in params.yaml under
# phantom.skeleton; every function here takes that section as ``p``.

GRID_KEYS = {"CT": ("ct_size", "ct_spacing_mm"), "MR": ("mr_size", "mr_spacing_mm"),
              "PT": ("pet_size", "pet_spacing_mm")}


# --------------------------------------------------------------------------- anatomy


@dataclass
class Bone:
    """A bone: a union of ellipsoidal lobes, a cortical shell around marrow.

    ``marrow_sites`` are the lobes where findings may be placed (e.g. the vertebral body,
    not the spinous process); ``tangents`` (ribs only) give each lobe's arc direction.
    """

    name: str
    group: str  # "vertebra" | "pelvis" | "rib" | "femur"
    lobes: list[Ellipsoid]
    cortex_mm: float
    marrow_sites: list[int]
    tangents: list[tuple[float, float, float]] | None = None

    def marrow_lobe(self, i: int) -> Ellipsoid:
        radii = np.maximum(np.asarray(self.lobes[i].radii) - self.cortex_mm, 0.2)
        return Ellipsoid(self.lobes[i].centre, tuple(map(float, radii)))


@dataclass
class Finding:
    """A metastasis or a benign mimic inside one bone, with its appearance per modality.

    The meaning of ``ct_hu``, ``t1`` and ``suv`` depends on ``type`` (see the module table
    and the ``metastasis_appearance``/``mimic_appearance`` parameters).
    """

    kind: str  # "metastasis" | "mimic"
    type: str
    bone: int  # index into SkeletalAnatomy.bones
    shape: Ellipsoid
    ct_hu: float
    t1: float
    suv: float
    ct_hu_core: float | None = None  # mixed metastasis: lytic core
    line_normal: tuple[float, float, float] | None = None  # fracture line (None: no line)
    evidence: str = "all"  # metastasis: which modalities show it (skeleton_phenomena.EVIDENCE)

    def to_dict(self, bones: list[Bone]) -> dict[str, Any]:
        d = {"kind": self.kind, "type": self.type, "bone": bones[self.bone].name,
             "site": bones[self.bone].group, **self.shape.to_dict()}
        if self.kind == "metastasis":
            # "visible" is the design, for the data card's counts; the label is the same
            # either way (an occult metastasis is still labelled in that modality's series)
            d.update(ct_hu=self.ct_hu, t1=self.t1, suv_max=self.suv, evidence=self.evidence,
                     visible=dict(VISIBLE[self.evidence]))
            if self.ct_hu_core is not None:
                d["ct_hu_core"] = self.ct_hu_core
            return d
        # A mimic is unlabelled: for the data card, its region on an image is its ellipsoid
        # inside the marrow of the lobes it touches (its look is a marrow finding; the cortex
        # around would only add partial volume).
        bone = bones[self.bone]
        lo = np.subtract(self.shape.centre, self.shape.radii)
        hi = np.add(self.shape.centre, self.shape.radii)
        lobes = [bone.marrow_lobe(i).to_dict() for i, lobe in enumerate(bone.lobes)
                 if np.all(np.add(lobe.centre, lobe.radii) >= lo) and np.all(np.subtract(lobe.centre, lobe.radii) <= hi)]
        d.update(fools=MIMIC_FOOLS[self.type], ct_hu=self.ct_hu, t1_factor=self.t1, marrow_lobes=lobes,
                 abnormal_on={m: m == MIMIC_FOOLS[self.type] for m in MODALITIES})
        d["suv_max" if self.type == "fracture_uptake" else "suv_factor"] = self.suv
        if self.line_normal is not None:
            d["line_normal"] = list(self.line_normal)
        return d


@dataclass
class SkeletalAnatomy:
    """One patient's trunk, skeleton, organs and findings, in patient coordinates."""

    body_half_axes: tuple[float, float]
    fat_mm: float
    bones: list[Bone]
    discs: list[Ellipsoid]
    lungs: list[Ellipsoid]
    kidneys: list[Ellipsoid]
    bladder: Ellipsoid
    couch_y_mm: float
    metastases: list[Finding]
    mimics: list[Finding]
    values: dict[str, dict[str, float]]  # modality -> tissue -> value (marrow included)

    def tissue(self, sampler: GridSampler, *, couch: bool) -> np.ndarray:
        """Tissue class at every sample point of ``sampler``."""
        bx, by = self.body_half_axes
        _, y1, x1 = sampler.axes  # the body is a prism along z: one plane suffices
        y, x = y1[:, None], x1[None, :]
        plane = np.full((len(y1), len(x1)), AIR, dtype=np.uint8)
        if couch:
            plane[(y1 > self.couch_y_mm) & (y1 < self.couch_y_mm + 8.0), :] = COUCH
        plane[(x / bx) ** 2 + (y / by) ** 2 <= 1.0] = FAT
        plane[(x / (bx - self.fat_mm)) ** 2 + (y / (by - self.fat_mm)) ** 2 <= 1.0] = SOFT
        t = np.repeat(plane[None], sampler.shape[0], axis=0)
        for organs, cls in ((self.lungs, LUNG), (self.kidneys, KIDNEY), ([self.bladder], BLADDER),
                            (self.discs, DISC)):
            for organ in organs:
                sampler.paint(t, organ, cls)
        for bone in self.bones:
            for lobe in bone.lobes:
                sampler.paint(t, lobe, CORTEX)
            for i in range(len(bone.lobes)):
                sampler.paint(t, bone.marrow_lobe(i), MARROW)
        return t

    def finding_region(self, sampler: GridSampler, finding: Finding):
        """(block, mask) of the finding's ellipsoid inside its own bone, or None."""
        hit = sampler.inside(finding.shape)
        if hit is None:
            return None
        block, in_shape = hit
        pts = sampler.points(block)
        in_bone = np.zeros(in_shape.shape, dtype=bool)
        centre, radii = np.asarray(finding.shape.centre), np.asarray(finding.shape.radii)
        lo, hi = centre - radii, centre + radii
        for lobe in self.bones[finding.bone].lobes:
            c, r = np.asarray(lobe.centre), np.asarray(lobe.radii)
            if np.all(c + r >= lo) and np.all(c - r <= hi):
                in_bone |= lobe.contains(pts)
        return block, in_shape & in_bone


class GridSampler:
    """Sample points of an axis-aligned grid in anatomy coordinates, built block by block.

    The grid's voxel centres (as :func:`~crossmodal.phantom.pelvis.grid_points` would give
    them) minus the modality's positioning shift; since the grids have the identity
    direction, the points are separable and each ellipsoid is evaluated only on the
    points of its bounding block.
    """

    def __init__(self, grid: sitk.Image, shift_mm=(0.0, 0.0, 0.0)):
        if not np.allclose(grid.GetDirection(), np.eye(3).ravel()):
            raise ValueError("the skeletal phantom samples axis-aligned grids only")
        origin, spacing, size = grid.GetOrigin(), grid.GetSpacing(), grid.GetSize()
        x, y, z = (origin[k] + spacing[k] * np.arange(size[k]) - float(shift_mm[k]) for k in range(3))
        self.axes = (z, y, x)
        self.shape = (len(z), len(y), len(x))

    def points(self, block=(slice(None),) * 3) -> np.ndarray:
        """Points ``(z, y, x, 3)`` (x, y, z in mm) of a block of the grid."""
        z, y, x = (ax[b] for ax, b in zip(self.axes, block))
        out = np.empty((len(z), len(y), len(x), 3))
        out[..., 0] = x[None, None, :]
        out[..., 1] = y[None, :, None]
        out[..., 2] = z[:, None, None]
        return out

    def block(self, centre, radii) -> tuple[slice, slice, slice] | None:
        out = []
        for ax, c, r in zip(self.axes, centre[::-1], radii[::-1]):  # (z, y, x) order
            lo, hi = np.searchsorted(ax, c - r, "left"), np.searchsorted(ax, c + r, "right")
            if lo >= hi:
                return None
            out.append(slice(int(lo), int(hi)))
        return tuple(out)

    def inside(self, ell: Ellipsoid, scale: float = 1.0):
        block = self.block(np.asarray(ell.centre), np.asarray(ell.radii) * scale)
        if block is None:
            return None
        return block, ell.contains(self.points(block), scale)

    def paint(self, target: np.ndarray, ell: Ellipsoid, value) -> None:
        hit = self.inside(ell)
        if hit is not None:
            target[hit[0]][hit[1]] = value


def draw_in_range(rng: np.random.Generator, bounds) -> float:
    """A uniform draw from ``bounds = (low, high)``."""
    lo, hi = bounds
    return float(rng.uniform(lo, hi))


def _choice(rng: np.random.Generator, weights: dict[str, float]) -> str:
    names = sorted(weights)
    w = np.asarray([weights[n] for n in names], dtype=float)
    return names[int(rng.choice(len(names), p=w / w.sum()))]


def _vertebra(name: str, group_level: str, zc: float, h: float, yc: float, rx: float, ry: float,
              cortex: float) -> Bone:
    """Vertebral body (marrow site) plus pedicles, lamina, spinous and transverse processes."""
    back = yc + ry
    lobes = [
        Ellipsoid((0.0, yc, zc), (rx, ry, h / 2)),                       # body
        Ellipsoid((0.6 * rx, back + 5.0, zc), (4.5, 7.0, 0.3 * h)),      # pedicles
        Ellipsoid((-0.6 * rx, back + 5.0, zc), (4.5, 7.0, 0.3 * h)),
        Ellipsoid((0.0, back + 19.0, zc), (0.65 * rx, 4.5, 0.35 * h)),   # lamina
        Ellipsoid((0.0, back + 29.0, zc - 0.1 * h), (4.5, 10.0, 0.3 * h)),  # spinous process
    ]
    if group_level == "lumbar":  # long transverse processes (thoracic ones meet the ribs)
        lobes += [Ellipsoid((s * (rx + 10.0), back + 9.0, zc), (12.0, 4.0, 0.2 * h)) for s in (-1, 1)]
    return Bone(name, "vertebra", lobes, cortex, marrow_sites=[0])


def _rib(name: str, side: float, z0: float, drop: float, a: float, b: float, r: float,
         cortex: float) -> Bone:
    """A rib: ellipsoids along an elliptic arc from beside the spine to the anterior wall."""
    theta0, theta1 = np.deg2rad(22.0), np.deg2rad(150.0)
    # lobes overlap (step 0.6 r) so that the marrow inside stays continuous
    n = max(int(np.ceil((theta1 - theta0) * 0.5 * (a + b) / (0.6 * r))), 2)
    lobes, tangents = [], []
    for th in np.linspace(theta0, theta1, n):
        c = (side * a * np.sin(th), b * np.cos(th), z0 - drop * (th - theta0) / (theta1 - theta0))
        t = np.array([side * a * np.cos(th), -b * np.sin(th), -drop / (theta1 - theta0)])
        lobes.append(Ellipsoid(tuple(map(float, c)), (r, r, 0.85 * r)))
        tangents.append(tuple(map(float, t / np.linalg.norm(t))))
    return Bone(name, "rib", lobes, cortex, marrow_sites=list(range(n)), tangents=tangents)


def _build_skeleton(rng: np.random.Generator, p: dict, bx: float, by: float, fat: float):
    """Spine, ribs, pelvis and femora; returns bones, discs and landmarks."""
    h = draw_in_range(rng, p["vertebra_height_mm"])
    d = draw_in_range(rng, p["disc_mm"])
    rx, ry = draw_in_range(rng, p["vertebra_half_width_mm"]), draw_in_range(rng, p["vertebra_half_depth_mm"])
    cortex = draw_in_range(rng, p["cortex_mm"])
    yc = min(0.3 * by, by - fat - ry - 50.0)  # the spine sits posterior, under the back muscles
    n_t, n_l = int(p["n_thoracic"]), int(p["n_lumbar"])
    z_sacrum_top = -45.0  # the column grows upward from the sacrum
    bones, discs = [], []
    names = [f"T{12 - n_t + 1 + k}" for k in range(n_t)] + [f"L{k + 1}" for k in range(n_l)]
    n = len(names)
    z_centres = {}
    for k, name in enumerate(names):  # k = 0 is the top vertebra
        zc = z_sacrum_top + d + h / 2 + (n - 1 - k) * (h + d)
        thoracic = name.startswith("T")
        scale = 0.88 if thoracic else 1.0
        bones.append(_vertebra(name, "thoracic" if thoracic else "lumbar", zc, h,
                               yc, rx * scale, ry * scale, cortex))
        discs.append(Ellipsoid((0.0, yc, zc - h / 2 - d / 2), (rx * scale, ry * scale, d / 2 + 0.5)))
        z_centres[name] = zc
    # Ribs: one pair per thoracic vertebra, descending anteriorly.
    a, b = bx - fat - 12.0, by - fat - 10.0
    r_rib = draw_in_range(rng, p["rib_radius_mm"])
    for name in names[:n_t]:
        drop = draw_in_range(rng, (25.0, 40.0))
        for side, tag in ((1.0, "L"), (-1.0, "R")):
            bones.append(_rib(f"rib_{name}_{tag}", side, z_centres[name], drop, a, b, r_rib, cortex))
    # Pelvis: sacrum, iliac wings, pubic/acetabular rami; femora.
    z_hip = z_sacrum_top - 60.0
    bones.append(Bone("sacrum", "pelvis", [Ellipsoid((0.0, yc + 8.0, z_sacrum_top - 28.0),
                                                      (0.9 * rx + 10.0, 0.9 * ry, 30.0))],
                      cortex, marrow_sites=[0]))
    for s, tag in ((1.0, "L"), (-1.0, "R")):
        ilium = Ellipsoid((s * 0.55 * bx, yc - 2.0, z_sacrum_top - 18.0), (11.0, 0.3 * by, 30.0))
        bones.append(Bone(f"ilium_{tag}", "pelvis", [ilium], cortex, marrow_sites=[0]))
        bones.append(Bone(f"pubis_{tag}", "pelvis",
                          [Ellipsoid((s * 0.38 * bx, -0.35 * by, z_hip - 2.0), (0.2 * bx, 11.0, 11.0)),
                           Ellipsoid((s * 0.5 * bx, -0.02 * by, z_hip + 8.0), (14.0, 16.0, 15.0))],
                          cortex, marrow_sites=[0, 1]))
        r_head = draw_in_range(rng, (19.0, 23.0))
        head_x = s * (0.45 * bx + 15.0)
        bones.append(Bone(f"femur_{tag}", "femur",
                          [Ellipsoid((head_x, -0.03 * by, z_hip), (r_head, r_head, r_head)),
                           Ellipsoid((head_x + s * 22.0, -0.03 * by, z_hip - 14.0), (18.0, 15.0, 20.0)),
                           Ellipsoid((head_x + s * 28.0, -0.03 * by, z_hip - 80.0), (13.0, 13.0, 60.0))],
                          cortex + 1.0, marrow_sites=[0, 1]))
    landmarks = {"z_hip": z_hip, "z_sacrum_top": z_sacrum_top, "spine_y": yc,
                 "vertebra_half_axes": (rx, ry), "vertebra_height": h, "disc": d,
                 "z_vertebrae": z_centres}
    return bones, discs, landmarks


def _random_point_in(rng: np.random.Generator, ell: Ellipsoid, fraction: float) -> np.ndarray:
    u = rng.normal(size=3)
    u *= rng.uniform() ** (1.0 / 3.0) / np.linalg.norm(u)
    return np.asarray(ell.centre) + fraction * u * np.asarray(ell.radii)


# Irrational steps of the per-patient low-discrepancy draws (rationally independent).
_WEYL_STEP = {"label": 0.6180339887498949, "CT": 0.4142135623730951, "MR": 0.7320508075688772,
              "PT": 0.6457513110645907}  # golden ratio, sqrt(2), sqrt(3), sqrt(7) mod 1


def _weyl(index: int, key: str, seed: int) -> float:
    """Point ``index`` of a Weyl sequence ``(offset + index * step) mod 1`` with a seeded offset."""
    offset = np.random.default_rng([int(seed), 99, list(_WEYL_STEP).index(key)]).uniform()
    return float((offset + index * _WEYL_STEP[key]) % 1.0)


def patient_is_positive(index: int, positive_fraction: float, *, seed: int) -> bool:
    """Bone-metastasis status of patient ``index``.

    A low-discrepancy (golden-ratio Weyl) draw: the share of positives among the first
    ``n`` patients stays within about ``1/n`` of ``positive_fraction`` for every ``n``, so
    small cohorts are balanced too, and a patient's status does not depend on the cohort
    size.
    """
    return _weyl(index, "label", seed) < positive_fraction


def patient_modalities(index: int, probability: dict[str, float], positive_fraction: float, *,
                       seed: int) -> list[str]:
    """The modalities of patient ``index`` (DICOM codes, fixed order), never empty.

    One low-discrepancy draw per modality (as :func:`patient_is_positive`), so each
    modality's share stays close to its probability even in small cohorts and the
    thesis's slice ratio holds. The draws run over the patient's rank *within its class*,
    so the k-th positive and the k-th negative patient have the same modalities: which
    series a patient has says nothing about the label (the presence flags of the
    cross-modal feature vector cannot leak it). A patient who draws none gets the
    modality whose draw came closest to its probability.
    """
    positive = patient_is_positive(index, positive_fraction, seed=seed)
    rank = sum(patient_is_positive(j, positive_fraction, seed=seed) == positive for j in range(index))
    u = {m: _weyl(rank, m, seed) for m in MODALITIES}
    prob = {m: float(probability.get(m, 0.0)) for m in MODALITIES}
    present = [m for m in MODALITIES if u[m] < prob[m]]
    if not present:
        present = [min((m for m in MODALITIES if prob[m] > 0), key=lambda m: u[m] - prob[m])]
    return present


def _field_of_view(p: dict, shifts: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Box (in anatomy mm) seen by every modality's grid, whatever the patient has."""
    lo, hi = np.full(3, -np.inf), np.full(3, np.inf)
    for m, (size_key, spacing_key) in GRID_KEYS.items():
        half = (np.asarray(p[size_key]) - 1) * np.asarray(p[spacing_key]) / 2.0
        lo = np.maximum(lo, -half - shifts[m])
        hi = np.minimum(hi, half - shifts[m])
    return lo, hi


def _site_lobes(bones: list[Bone], group: str) -> list[tuple[int, int]]:
    return [(b, i) for b, bone in enumerate(bones) if bone.group == group for i in bone.marrow_sites]


def place_in_lobes(rng, group, radius, *, bones, fov, where="marrow"):
    """A bone index, lobe index and shape for a finding in a random marrow site of
    ``group`` (a :class:`Bone` group) inside ``fov``; ``where="endplate"``: flattened,
    against a vertebral endplate. Any function of this signature places the findings of
    :func:`sample_metastases` and :func:`sample_mimics` (a real skeleton's:
    :mod:`crossmodal.phantom.hybrid_skeleton`)."""
    sites = _site_lobes(bones, group)
    for _ in range(200):
        b, i = sites[int(rng.integers(len(sites)))]
        bone = bones[b]
        marrow = bone.marrow_lobe(i)
        if group == "rib":  # a segment of the rib, centred on the rib axis
            centre = np.asarray(marrow.centre)
            radii = np.full(3, radius)
        elif where == "endplate":
            c, r = np.asarray(marrow.centre), np.asarray(marrow.radii)
            side = rng.choice([-1.0, 1.0])  # upper or lower endplate, inside the marrow
            rho, phi = 0.5 * np.sqrt(rng.uniform()), rng.uniform(0, 2 * np.pi)
            offset = np.array([rho * np.cos(phi), rho * np.sin(phi), side * 0.8])
            centre = c + offset * r
            radii = np.array([radius, radius, 0.5 * radius])
        else:
            centre = _random_point_in(rng, marrow, 0.6)
            radii = radius * rng.uniform(0.8, 1.2, 3)
        margin = np.minimum(radii, 0.5 * np.asarray(fov[1] - fov[0]))
        if np.all(centre - 0.5 * margin >= fov[0]) and np.all(centre + 0.5 * margin <= fov[1]):
            return b, i, Ellipsoid(tuple(map(float, centre)), tuple(map(float, radii)))
    raise RuntimeError(f"no {group} site inside the common field of view: grids too small?")


def _overlaps(shape: Ellipsoid, others: list[Finding]) -> bool:
    for o in others:
        gap = np.linalg.norm(np.subtract(shape.centre, o.shape.centre))
        if gap < max(shape.radii) + max(o.shape.radii):
            return True
    return False


def sample_skeletal_anatomy(
    rng: np.random.Generator, p: dict, *, positive: bool, shifts: dict[str, np.ndarray] | None = None,
    evidence_rng: np.random.Generator | None = None,
) -> tuple[SkeletalAnatomy, dict]:
    """Draw one patient's anatomy and findings from the ranges in ``p``.

    Parameters
    ----------
    rng : the patient's generator.
    p : ``phantom.skeleton`` parameters.
    positive : whether the patient has bone metastases (1..N of them are placed).
    shifts : each modality's positioning shift (mm); findings are placed where every
        modality's grid sees them. Default: no shifts.
    evidence_rng : the generator of the metastases' modality-specific evidence
        (:func:`~crossmodal.phantom.skeleton_phenomena.apply_evidence`), apart from ``rng``
        so that its draws shift no other. Default: a child spawned from ``rng`` (which
        leaves ``rng``'s own draws unchanged).

    Returns
    -------
    anatomy : the analytic patient.
    summary : JSON-ready description for the truth sidecar.
    """
    shifts = shifts or {m: np.zeros(3) for m in MODALITIES}
    bx, by = draw_in_range(rng, p["body_half_width_mm"]), draw_in_range(rng, p["body_half_depth_mm"])
    fat = draw_in_range(rng, p["fat_mm"])
    bones, discs, lm = _build_skeleton(rng, p, bx, by, fat)
    lungs, kidneys, bladder = _organs(rng, p, bx, by, lm)
    values = tissue_values(rng, p)
    fov = _field_of_view(p, shifts)
    place = functools.partial(place_in_lobes, bones=bones, fov=fov)
    metastases = sample_metastases(rng, p, place) if positive else []
    evidence_rng = evidence_rng if evidence_rng is not None else rng.spawn(1)[0]
    apply_evidence(evidence_rng, p, metastases, {m: values[m]["marrow"] for m in MODALITIES})
    mimics = sample_mimics(rng, p, place, metastases, tangents=[bone.tangents for bone in bones])
    anatomy = SkeletalAnatomy(
        body_half_axes=(bx, by), fat_mm=fat, bones=bones, discs=discs, lungs=lungs, kidneys=kidneys,
        bladder=bladder, couch_y_mm=by + 6.0, metastases=metastases, mimics=mimics, values=values)
    summary = {"body_half_axes_mm": [bx, by], "fat_mm": fat,
               "vertebral_body_centres_mm": {k: [0.0, lm["spine_y"], z]
                                             for k, z in lm["z_vertebrae"].items()},
               "vertebra_height_mm": lm["vertebra_height"], "disc_mm": lm["disc"],
               "marrow": {m: values[m]["marrow"] for m in MODALITIES},
               "bladder": {**bladder.to_dict(), "suv": values["PT"]["bladder"]},
               "kidney_suv": values["PT"]["kidney"]}
    return anatomy, summary


def _organs(rng: np.random.Generator, p: dict, bx: float, by: float, lm: dict):
    """Lung bases, kidneys and bladder around the drawn skeleton (landmarks ``lm``)."""
    z_top_t = max(lm["z_vertebrae"].values())
    lungs = [Ellipsoid((s * 0.42 * bx, -0.05 * by, z_top_t + 70.0), (0.34 * bx, 0.55 * by, 110.0))
             for s in (-1.0, 1.0)]
    rx = lm["vertebra_half_axes"][0]
    z_kidney = lm["z_vertebrae"].get("L2", z_top_t) + 10.0
    kidneys = [Ellipsoid((s * (rx + 42.0), lm["spine_y"] + 4.0, z_kidney), (20.0, 26.0, 38.0))
               for s in (-1.0, 1.0)]
    r_bl = draw_in_range(rng, p["bladder_radius_mm"])
    bladder = Ellipsoid((0.0, -0.45 * by + r_bl * 0.5, lm["z_hip"] + 22.0),
                        (1.2 * r_bl, 0.9 * r_bl, r_bl))
    return lungs, kidneys, bladder


def tissue_values(rng: np.random.Generator, p: dict) -> dict[str, dict[str, float]]:
    """Tissue value per modality: the parameter tables plus this patient's marrow and organs."""
    values = {"CT": {k: float(v) for k, v in p["hu"].items()},
              "MR": {k: float(v) for k, v in p["t1"].items()},
              "PT": {k: float(v) for k, v in p["suv"].items()}}
    values["CT"]["marrow"] = draw_in_range(rng, p["marrow_hu"])
    values["MR"]["marrow"] = draw_in_range(rng, p["marrow_t1"])
    values["PT"]["marrow"] = draw_in_range(rng, p["marrow_suv"])
    values["PT"]["kidney"] = draw_in_range(rng, p["kidney_suv"])
    values["PT"]["bladder"] = draw_in_range(rng, p["bladder_suv"])
    return values


def sample_metastases(rng: np.random.Generator, p: dict, place) -> list[Finding]:
    """1..N metastases of random type and site, separate from one another, each placed by
    ``place(rng, group, radius) -> (bone, lobe, shape)`` (:func:`place_in_lobes`)."""
    metastases: list[Finding] = []
    lo, hi = p["metastases"]
    for _ in range(int(rng.integers(max(int(lo), 1), int(hi) + 1))):
        kind = _choice(rng, p["metastasis_types"])
        site = _choice(rng, p["metastasis_sites"])
        for _attempt in range(50):  # separate lesions, so each keeps its own appearance
            b, _, shape = place(rng, site, draw_in_range(rng, p["metastasis_radius_mm"]))
            if not _overlaps(shape, metastases):
                break
        else:
            continue  # no free place: one metastasis fewer (the first always fits)
        look = p["metastasis_appearance"][kind]
        metastases.append(Finding(
            "metastasis", kind, b, shape, ct_hu=draw_in_range(rng, look["ct_hu"]),
            t1=draw_in_range(rng, look["t1"]), suv=draw_in_range(rng, look["suv"]),
            ct_hu_core=draw_in_range(rng, look["ct_hu_core"]) if "ct_hu_core" in look else None))
    return metastases


def sample_mimics(rng: np.random.Generator, p: dict, place, metastases: list[Finding], *,
                  tangents: list | None = None) -> list[Finding]:
    """Benign look-alikes (any class), clear of the metastases and of one another, placed
    by ``place`` (:func:`sample_metastases`); ``tangents``: each bone's lobe directions
    (:attr:`Bone.tangents`), which orient a rib fracture's line (none: no line)."""
    mimics: list[Finding] = []
    lo, hi = p["mimics"]
    for _ in range(int(rng.integers(int(lo), int(hi) + 1))):
        kind = _choice(rng, p["mimic_types"])
        look = p["mimic_appearance"][kind]
        for _attempt in range(50):
            b, shape, normal = _place_mimic(rng, p, place, kind, tangents)
            if not _overlaps(shape, metastases + mimics):
                break
        else:
            continue  # no free place: this patient has one mimic fewer
        mimics.append(Finding("mimic", kind, b, shape, ct_hu=draw_in_range(rng, look["ct_hu"]),
                              t1=draw_in_range(rng, look["t1_factor"]), suv=draw_in_range(rng, look["suv"]),
                              line_normal=normal))
    return mimics


def _place_mimic(rng: np.random.Generator, p: dict, place, kind: str, tangents: list | None):
    """One placement attempt for a mimic of ``kind``: bone index, shape, fracture-line normal."""
    radius = draw_in_range(rng, p["mimic_radius_mm"])
    normal = None
    if kind == "degenerative_sclerosis":
        b, _, shape = place(rng, "vertebra", radius, where="endplate")
    elif kind == "haemangioma":
        b, _, shape = place(rng, "vertebra", radius)
    elif kind == "red_marrow":
        site = _choice(rng, {"vertebra": 0.6, "pelvis": 0.4})
        b, _, shape = place(rng, site, radius)
    else:  # fracture (rib, vertebral endplate) or arthritis (femoral head): hot on PET
        site = _choice(rng, {"rib": 0.4, "vertebra": 0.3, "femur": 0.3})
        b, i, shape = place(rng, site, radius, where="endplate" if site == "vertebra" else "marrow")
        if site == "rib" and tangents and tangents[b]:
            normal = tangents[b][i]  # a rib's marrow sites are all its lobes
        elif site == "vertebra":
            normal = (0.0, 0.0, 1.0)
    return b, shape, normal
