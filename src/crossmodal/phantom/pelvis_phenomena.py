"""Phenomena of real pelvic FDG-PET/CT that mimic or hide lesions, for the Part 1 phantom.

:mod:`crossmodal.phantom.pelvis` draws the base anatomy; this module adds what a reader of
real pelvic PET/CT meets and what CT can explain or PET can miss (Kostakoglu et al.,
RadioGraphics 2004; Cook et al., Semin Nucl Med 1996; Sironi et al., Radiology 2006):

* **ureters** on both sides: a tube beside the psoas, over the pelvic brim, down the pelvic
  sidewall and medially forward into the bladder base, drawn as a chain of small spheres.
  CT: fluid lumen in a soft-tissue wall, in a sheath of retroperitoneal fat. PET: low urine
  activity, and in a share of ureters 1-3 hot segments (a urine bolus filling the tube);
* **bowel content and focal bowel uptake**: every loop has a lumen of gas, positive oral
  contrast or fluid (one mix parameter); a share of loops carry a hot focal segment on top
  of their uniform uptake;
* **per-loop bowel shift** between CT and PET (peristalsis), on PET only, foci included;
* **nodes in pelvic-sidewall fat** (a perivascular fat pad around the node, so CT shows it)
  and **PET-faint nodes** (SUVmax well below the hot nodes);
* **tumour abutting or indenting the bladder**: placed against the posterior-inferior wall.

Each phenomenon draws from its own random stream, so switching one off (probability 0,
count 0 or a [0, 0] range) leaves every other draw of the patient unchanged: ablations are
paired. :class:`Ellipsoid` lives here because every phenomenon is built from it; its
``region`` evaluates only the block of a regular grid that can lie inside, which keeps a
chain of hundreds of spheres cheap.

Known limits: a ureter is a chain of overlapping spheres (slightly beaded), of constant
calibre outside its foci, with no peristaltic change between CT and PET; inside a hot
ureter segment the whole tube is urine (no wall); a ureteric focus that cannot keep clear
of the lesions is left out (a few ureters have fewer foci than drawn); the bowel wall and lumen share one uptake
per loop (gas carries activity at PET resolution); a bowel focus is one ellipsoid within
its loop, not a segment following the bowel's course; the bowel shift is a translation of
each loop, neighbours are not deformed; a loop hidden by another organ or a lesion at all
three places a focus may take holds none (``bowel_focus_probability`` is the share among
the loops that can); fat pads are ellipsoids, vessels are not drawn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field

import numpy as np

# A ureter sphere and its neighbour are this fraction of the radius apart: a smooth tube.
CHAIN_STEP = 0.5
CLEARANCE_MM = 3.0  # a mimic keeps at least this distance from a lesion's bounding box


@dataclass
class Ellipsoid:
    """Axis-aligned ellipsoid in patient millimetres."""

    centre: tuple[float, float, float]  # (x, y, z) mm
    radii: tuple[float, float, float]  # (rx, ry, rz) mm

    def region(self, points: np.ndarray, scale: float = 1.0) -> tuple[tuple, np.ndarray]:
        """``(block, inside)``: ``points[block]`` holds every point that can lie inside (a
        sub-block of a regular grid, else all points); ``inside`` is the mask on that block."""
        centre, radii = np.asarray(self.centre), np.asarray(self.radii) * scale
        block = grid_block(points, centre - radii, centre + radii)
        d = (points[block] - centre) / radii
        return block, np.einsum("...i,...i->...", d, d) <= 1.0

    def contains(self, points: np.ndarray, scale: float = 1.0) -> np.ndarray:
        block, inside = self.region(points, scale)
        mask = np.zeros(points.shape[:-1], dtype=bool)
        mask[block] = inside
        return mask

    def shifted(self, offset) -> Ellipsoid:
        return Ellipsoid(tuple(map(float, np.asarray(self.centre) + offset)), self.radii)

    def to_dict(self) -> dict:
        return {"centre_mm": list(map(float, self.centre)), "radii_mm": list(map(float, self.radii))}


def grid_block(points: np.ndarray, low: np.ndarray, high: np.ndarray) -> tuple:
    """Index block of a regular (possibly rotated) grid of points ``(z, y, x, 3)`` that
    covers the box ``[low, high]`` mm, with a one-voxel margin; ``(Ellipsis,)`` (every
    point) for any other array of points."""
    shape = points.shape[:-1]
    if points.ndim != 4 or 0 in shape:
        return (Ellipsis,)
    origin = points[0, 0, 0]
    steps = [points[min(1, shape[0] - 1), 0, 0] - origin, points[0, min(1, shape[1] - 1), 0] - origin,
             points[0, 0, min(1, shape[2] - 1)] - origin]
    for axis, n in enumerate(shape):
        if n == 1:  # any direction off the other two axes will do
            steps[axis] = np.cross(steps[(axis + 1) % 3], steps[(axis + 2) % 3])
    m = np.stack(steps, axis=1)
    try:
        inverse = np.linalg.inv(m)
    except np.linalg.LinAlgError:
        return (Ellipsis,)
    far = origin + m @ (np.asarray(shape) - 1.0)
    if np.abs(far - points[-1, -1, -1]).max() > 1e-3 * (1.0 + np.abs(far).max()):
        return (Ellipsis,)  # not an affine grid
    centre = inverse @ ((np.asarray(low) + high) / 2.0 - origin)
    half = np.abs(inverse) @ ((np.asarray(high) - low) / 2.0)
    start = np.clip(np.floor(centre - half).astype(int) - 1, 0, shape)
    stop = np.clip(np.ceil(centre + half).astype(int) + 2, 0, shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(start, stop))


def clear_of(e: Ellipsoid, others: list[Ellipsoid], margin: float = CLEARANCE_MM) -> bool:
    """True when the bounding box of ``e`` stays ``margin`` mm away from every one of ``others``."""
    for o in others:
        gap = np.abs(np.asarray(e.centre) - o.centre) - np.asarray(e.radii) - o.radii
        if np.all(gap < margin):
            return False
    return True


def _uniform(rng: np.random.Generator, bounds) -> float:
    lo, hi = bounds
    return float(rng.uniform(lo, hi))


def phenomenon_streams(rng: np.random.Generator, names: tuple[str, ...]) -> dict[str, np.random.Generator]:
    """One independent generator per phenomenon, from a single draw of ``rng``."""
    root = np.random.SeedSequence(int(rng.integers(2**62)))
    return {name: np.random.default_rng(s) for name, s in zip(names, root.spawn(len(names)))}


# ------------------------------------------------------------------ ureters


@dataclass
class UreterFocus:
    """A hot segment: spheres ``start:stop`` of its ureter hold a urine bolus of ``suv``."""

    start: int
    stop: int
    suv: float


@dataclass
class Ureter:
    """One ureter: outer-wall spheres along its course, cranial end first."""

    spheres: list[Ellipsoid]
    lumen_fraction: float  # lumen radius / outer radius outside the foci
    fat_mm: float  # periureteric fat sheath
    foci: list[UreterFocus] = field(default_factory=list)

    def in_focus(self, k: int) -> bool:
        return any(f.start <= k < f.stop for f in self.foci)

    def shifted(self, offset) -> Ureter:
        return Ureter([s.shifted(offset) for s in self.spheres], self.lumen_fraction, self.fat_mm, self.foci)


def ureter_course(bx: float, by: float, bladder: Ellipsoid, side: float) -> np.ndarray:
    """Control points ``(k, 3)`` of one ureter (body centred at the origin, posterior +y):
    along the psoas, over the pelvic brim, down the sidewall lateral to the cervix, then
    medially and forward into the posterolateral bladder base."""
    into = np.array([side * 0.55, 0.75, -0.35])
    to_wall = 1.0 / np.sqrt(np.sum((into / np.asarray(bladder.radii)) ** 2))
    entry = np.asarray(bladder.centre) + 0.85 * to_wall * into  # just inside the wall
    return np.array([
        [side * 0.22 * bx, 0.10 * by, 90.0],
        [side * 0.26 * bx, 0.22 * by, 40.0],
        [side * 0.31 * bx, 0.24 * by, 0.0],
        [side * 0.29 * bx, 0.08 * by, -25.0],
        entry,
    ])


def resample_polyline(control: np.ndarray, step: float) -> np.ndarray:
    """Points every ``step`` mm along the polyline through ``control``."""
    seg = np.linalg.norm(np.diff(control, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    s = np.arange(0.0, arc[-1] + 1e-9, step)
    return np.stack([np.interp(s, arc, control[:, i]) for i in range(3)], axis=1)


def sample_ureters(rng: np.random.Generator, p: dict, *, bx: float, by: float, bladder: Ellipsoid,
                   bladder_scale_pet: float, lesions: list[Ellipsoid], z_top: float) -> list[Ureter]:
    """Both ureters; each carries foci with probability ``ureter_focus_probability``.

    Foci lie where the CT shows the ureter (below ``z_top``), outside the bladder as the PET
    sees it, and clear of ``lesions``; a focus that finds no such place is left out.
    """
    ureters = []
    for side in (1.0, -1.0):
        radius = _uniform(rng, p["ureter_radius_mm"])
        centres = resample_polyline(ureter_course(bx, by, bladder, side), CHAIN_STEP * radius)
        spheres = [Ellipsoid(tuple(map(float, c)), (radius, radius, radius)) for c in centres]
        ureter = Ureter(spheres, float(p["ureter_lumen_fraction"]), _uniform(rng, p["ureter_fat_mm"]))
        has_foci = rng.uniform() < p["ureter_focus_probability"]
        n_foci = int(rng.integers(p["ureter_foci"][0], p["ureter_foci"][1] + 1))
        if has_foci and n_foci > 0:
            free = [k for k, s in enumerate(spheres) if s.centre[2] <= z_top - radius
                    and not bladder.contains(np.asarray(s.centre), scale=bladder_scale_pet * 1.1)]
            ureter.foci = _place_ureter_foci(rng, p, spheres, free, n_foci, lesions)
        ureters.append(ureter)
    return ureters


def _place_ureter_foci(rng, p, spheres, free, n_foci, lesions) -> list[UreterFocus]:
    """``n_foci`` non-overlapping runs of spheres, one per equal section of ``free``."""
    if not free:
        return []
    foci = []
    step = max(float(np.linalg.norm(np.subtract(spheres[1].centre, spheres[0].centre))), 1e-6)
    sections = np.array_split(np.asarray(free), n_foci)
    for section in sections:
        length = _uniform(rng, p["ureter_focus_length_mm"])
        suv = _uniform(rng, p["ureter_focus_suv"])
        if len(section) == 0:  # more foci than places for them
            continue
        n = int(min(len(section), max(1, round(length / step) + 1)))
        for _ in range(10):  # a few tries to stay clear of the lesions
            first = int(section[0] + rng.integers(0, len(section) - n + 1))
            if all(clear_of(s, lesions) for s in spheres[first:first + n]):
                foci.append(UreterFocus(first, first + n, suv))
                break
    return foci


# ------------------------------------------------------------------ bowel


@dataclass
class BowelFocus:
    """A focal hot segment inside bowel loop ``loop`` (CT frame)."""

    loop: int
    ellipsoid: Ellipsoid
    suv: float

    def shifted(self, offset) -> BowelFocus:
        return BowelFocus(self.loop, self.ellipsoid.shifted(offset), self.suv)


def sample_bowel_content(rng: np.random.Generator, p: dict,
                         n_loops: int) -> tuple[list[str], list[float], list]:
    """Per loop: lumen content (gas / contrast / fluid by ``bowel_content_mix``), its HU, and
    the loop's PET-only shift (uniform magnitude in ``bowel_shift_mm``, isotropic direction)."""
    names = sorted(p["bowel_content_mix"])
    if set(names) != set(p["bowel_content_hu"]):
        raise ValueError("phantom.pelvis: bowel_content_mix and bowel_content_hu need the same contents")
    weights = np.array([p["bowel_content_mix"][n] for n in names], dtype=float)
    if weights.sum() <= 0:
        raise ValueError("phantom.pelvis.bowel_content_mix: weights must not all be 0")
    content, content_hu, shifts = [], [], []
    for _ in range(n_loops):
        name = names[int(rng.choice(len(names), p=weights / weights.sum()))]
        content.append(name)
        content_hu.append(_uniform(rng, p["bowel_content_hu"][name]))
        direction = rng.normal(size=3)
        magnitude = _uniform(rng, p["bowel_shift_mm"])
        shifts.append(tuple(map(float, magnitude * direction / np.linalg.norm(direction))))
    return content, content_hu, shifts


def sample_bowel_foci(rng: np.random.Generator, p: dict, loops: list[Ellipsoid], lesions: list[Ellipsoid],
                      shows_bowel: Callable[[np.ndarray], np.ndarray]) -> tuple[list[BowelFocus], int]:
    """Focal hot segments, and the number of loops that could hold one.

    A focus is an ellipsoid on its loop's long (x) axis, inside the loop, clear of every
    lesion, with its centre where the CT shows bowel (``shows_bowel`` maps points ``(n, 3)``
    to bools). Of three places along the loop (the drawn one, its mirror, the centre) the
    first that qualifies is used; a loop with none cannot hold a focus. Each loop that can
    holds one with probability ``bowel_focus_probability``.
    """
    draws, candidates = [], []
    for loop in loops:
        present = rng.uniform() < p["bowel_focus_probability"]
        u, r = rng.uniform(-1, 1), _uniform(rng, p["bowel_focus_radius_mm"])
        suv = _uniform(rng, p["bowel_focus_suv"])
        draws.append((present, suv))
        radii = tuple(float(min(r, lr)) for lr in loop.radii)
        reach = max(loop.radii[0] - radii[0], 0.0) * 0.5
        candidates.append([Ellipsoid((loop.centre[0] + a * reach, *loop.centre[1:]), radii)
                           for a in (u, -u, 0.0)])
    flat = [e for places in candidates for e in places]
    shown = shows_bowel(np.array([e.centre for e in flat])) if flat else np.zeros(0, dtype=bool)
    fits = iter(bool(ok) and clear_of(e, lesions) for e, ok in zip(flat, shown))
    foci, n_possible = [], 0
    for i, ((present, suv), places) in enumerate(zip(draws, candidates)):
        place = next((e for e, ok in zip(places, [next(fits) for _ in places]) if ok), None)
        n_possible += place is not None
        if present and place is not None:
            foci.append(BowelFocus(i, place, suv))
    return foci, n_possible


# ------------------------------------------------------------------ nodes and tumour


def sample_node_phenomena(rng: np.random.Generator, p: dict, nodes: list) -> list[Ellipsoid]:
    """Mark each node as sitting in a perivascular fat pad (``node_fat_probability``) and/or
    PET-faint (``node_faint_probability``: SUVmax from ``node_faint_suvmax``); return the pads."""
    pads = []
    for node in nodes:
        in_fat, margin = rng.uniform() < p["node_fat_probability"], _uniform(rng, p["node_fat_margin_mm"])
        faint, faint_suv = rng.uniform() < p["node_faint_probability"], _uniform(rng, p["node_faint_suvmax"])
        if in_fat:
            node.site = "fat"
            lobe = node.lobes[0]
            pads.append(Ellipsoid(lobe.centre, tuple(float(r + margin) for r in lobe.radii)))
        if faint:
            node.pet_faint, node.suv_max = True, faint_suv
    return pads


def abut_bladder(rng: np.random.Generator, p: dict, tumour, bladder: Ellipsoid) -> None:
    """With probability ``tumour_abuts_bladder_probability`` move the whole tumour so that its
    main lobe touches the posterior-inferior bladder wall, pushed in by a fraction
    (``tumour_bladder_indent``) of its own extent."""
    abuts = rng.uniform() < p["tumour_abuts_bladder_probability"]
    indent = _uniform(rng, p["tumour_bladder_indent"])
    if not abuts:
        return
    d = np.array([0.0, 1.0, -0.4]) / np.linalg.norm([0.0, 1.0, -0.4])  # posterior-inferior
    main = tumour.lobes[0]
    wall = np.asarray(bladder.centre) + d / np.sqrt(np.sum((d / np.asarray(bladder.radii)) ** 2))
    extent = 1.0 / np.sqrt(np.sum((d / np.asarray(main.radii)) ** 2))
    offset = wall + d * extent * (1.0 - indent) - np.asarray(main.centre)
    tumour.lobes = [lobe.shifted(offset) for lobe in tumour.lobes]
    if tumour.necrotic_core is not None:
        tumour.necrotic_core = tumour.necrotic_core.shifted(offset)
    tumour.abuts_bladder = True


# ------------------------------------------------------------------ truth


def _inside(e: Ellipsoid, fov: tuple[np.ndarray, np.ndarray]) -> bool:
    return bool(np.all(np.asarray(e.centre) >= fov[0]) and np.all(np.asarray(e.centre) <= fov[1]))


def mimic_truth(anatomy, fov: tuple[np.ndarray, np.ndarray]) -> list[dict]:
    """Every hot physiological structure a detector could take for a lesion, in the CT frame:
    the bladder, each ureteric focus and each bowel focus, as axis-aligned ellipsoids whose
    centres lie in the CT field of view ``fov = (low, high)`` mm (others are left out)."""
    found = [("bladder", anatomy.suv["bladder"], anatomy.hu["bladder"], [anatomy.bladder])]
    for ureter in anatomy.ureters:
        for focus in ureter.foci:
            found.append(("ureter_focus", focus.suv, anatomy.hu["ureter_lumen"],
                          ureter.spheres[focus.start:focus.stop]))
    for focus in anatomy.bowel_foci:
        hu = anatomy.bowel_content_hu[focus.loop] if anatomy.bowel_lumen_fraction > 0 else anatomy.hu["bowel"]
        found.append(("bowel_focus", focus.suv, hu, [focus.ellipsoid]))
    mimics = []
    for kind, suv, hu, ellipsoids in found:
        seen = [e.to_dict() for e in ellipsoids if _inside(e, fov)]
        if seen:
            mimics.append({"id": len(mimics) + 1, "kind": kind, "suv_max": float(suv), "ct_hu": float(hu),
                           "ellipsoids": seen})
    return mimics


def phenomena_truth(anatomy, mimics: list[dict]) -> dict:
    """Per-patient counts of each phenomenon as the images show it."""
    nodes = [lesion for lesion in anatomy.lesions if lesion.kind == "node"]
    shifts = [float(np.linalg.norm(s)) for s in anatomy.bowel_shift_pet]
    return {
        "ureter_foci": sum(m["kind"] == "ureter_focus" for m in mimics),
        "bowel_foci": sum(m["kind"] == "bowel_focus" for m in mimics),
        "bowel_loops": len(anatomy.bowel),
        "bowel_focus_sites": anatomy.bowel_focus_sites,
        "nodes": len(nodes),
        "fat_nodes": sum(n.site == "fat" for n in nodes),
        "pet_faint_nodes": sum(n.pet_faint for n in nodes),
        "tumour_abuts_bladder": any(lesion.abuts_bladder for lesion in anatomy.lesions),
        "bowel_shift_mm": max(shifts, default=0.0),
    }
