"""Detection datasets: boxes from lesion masks, 3-D lesion labels, patient split, slices.

Box convention
--------------
Boxes are ``(x0, y0, x1, y1)`` in pixel-edge coordinates: pixel ``(row i, column j)``
covers ``[j, j + 1) x [i, i + 1)``, so a box is inclusive at ``x0, y0`` and exclusive at
``x1, y1``, and ``x1 - x0`` is the width in pixels. This is the convention of YOLO
(normalised centre/size), COCO (``[x, y, w, h]``) and torchvision, so no ``+1``
appears anywhere.

Slices are identified by ``(case_id, z)``; :class:`SliceRecord` carries one slice's
image and boxes to the YOLO / COCO writers of :mod:`crossmodal.detect.export`. The case id
is the patient id: the split, the bootstrap and lesion ids are all per case.
"""

from __future__ import annotations

from collections.abc import Hashable
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field

import numpy as np
from scipy import ndimage

__all__ = [
    "SPLITS",
    "SliceRecord",
    "boxes_from_mask",
    "label_lesions_3d",
    "patient_split",
    "sample_slices",
]

SPLITS = ("train", "val", "test")

Box = tuple[int, int, int, int]


# --------------------------------------------------------------------------- boxes


def boxes_from_mask(
    mask2d: np.ndarray, *, min_pixels: int = 1, return_labels: bool = False
) -> list[Box] | tuple[list[Box], list[int]]:
    """Bounding boxes of the 8-connected components of a 2-D lesion mask.

    Parameters
    ----------
    mask2d : (H, W) array
        Binary mask, or an integer label map (e.g. 3-D lesion ids from
        :func:`label_lesions_3d` sliced at one ``z``). Each non-zero value is split into
        its own components, so two touching lesions with different ids stay apart.
    min_pixels : int
        Components with fewer pixels are dropped (partial-volume specks).
    return_labels : bool
        Also return, for each box, the mask value it came from (the lesion id).

    Returns
    -------
    boxes : list of (x0, y0, x1, y1)
        Integer pixel-edge boxes, inclusive-exclusive (see module docstring), sorted by
        label, then ``y0``, then ``x0``.
    labels : list of int
        Only with ``return_labels``.

    Examples
    --------
    >>> m = np.zeros((6, 8), bool); m[1:3, 2:5] = True; m[4, 7] = True
    >>> boxes_from_mask(m)
    [(2, 1, 5, 3), (7, 4, 8, 5)]
    """
    mask2d = np.asarray(mask2d)
    if mask2d.ndim != 2:
        raise ValueError(f"mask2d must be 2-D, got shape {mask2d.shape}")
    structure = np.ones((3, 3), dtype=bool)  # 8-connectivity
    values = np.unique(mask2d[mask2d != 0]) if mask2d.dtype != bool else np.array([True])
    boxes: list[Box] = []
    labels: list[int] = []
    for value in values:
        components, n = ndimage.label(mask2d == value, structure=structure)
        if n == 0:
            continue
        sizes = ndimage.sum_labels(np.ones_like(components), components, index=np.arange(1, n + 1))
        found = []
        for size, sl in zip(sizes, ndimage.find_objects(components)):
            if size < min_pixels:
                continue
            rows, cols = sl
            found.append((int(cols.start), int(rows.start), int(cols.stop), int(rows.stop)))
        found.sort(key=lambda b: (b[1], b[0]))
        boxes.extend(found)
        labels.extend([int(value)] * len(found))
    return (boxes, labels) if return_labels else boxes


def label_lesions_3d(mask3d: np.ndarray, *, connectivity: int = 26) -> np.ndarray:
    """Lesion ids: the 3-D connected components of a binary lesion volume.

    Parameters
    ----------
    mask3d : (Z, H, W) array
        Non-zero = lesion.
    connectivity : {6, 18, 26}
        Face, edge or corner neighbours.

    Returns
    -------
    (Z, H, W) int32 array
        0 = background, 1..n = lesion id, numbered in scan order.
    """
    rank = {6: 1, 18: 2, 26: 3}
    if connectivity not in rank:
        raise ValueError(f"connectivity must be 6, 18 or 26, got {connectivity}")
    structure = ndimage.generate_binary_structure(3, rank[connectivity])
    labels, _ = ndimage.label(np.asarray(mask3d) != 0, structure=structure)
    return labels.astype(np.int32)


# --------------------------------------------------------------------------- split / sampling


def _allocate(want: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Split n items so that counts track ``want`` (greedy largest deficit)."""
    counts = np.zeros(len(want), dtype=int)
    for _ in range(n):
        deficit = want - counts
        best = np.flatnonzero(np.isclose(deficit, deficit.max()))
        counts[rng.choice(best)] += 1  # random tie-break: no split wins the odd case by rule
    return counts


def patient_split(
    case_ids: Sequence[Hashable],
    strata: Sequence[Hashable],
    *,
    fractions: Sequence[float] = (0.6, 0.2, 0.2),
    seed: int,
    names: Sequence[str] = SPLITS,
) -> dict[Hashable, str]:
    """Stratified, seeded split of cases (patients) into train / val / test.

    Parameters
    ----------
    case_ids : sequence
        Case ids; repeats are allowed (e.g. one entry per slice) if their stratum agrees.
    strata : sequence
        Stratum of each entry (e.g. tumour-size class, scanner), same length.
    fractions : sequence of float
        Target share of each split, normalised to sum 1.
    seed : int
        The same seed and input give the same split, whatever the input order.
    names : sequence of str
        Split names, one per fraction.

    Returns
    -------
    dict
        ``case_id -> split name``.

    Notes
    -----
    Within each stratum the cases are shuffled and dealt to the split furthest below its
    target; the rounding left over is carried to the next stratum, so that many small
    strata still give the global fractions. Afterwards every split with a positive
    fraction is made non-empty, when there are enough cases, by moving one case out of
    the largest split (from its largest stratum).
    """
    if len(case_ids) != len(strata):
        raise ValueError("case_ids and strata must have the same length")
    fractions = np.asarray(fractions, dtype=float)
    if len(fractions) != len(names) or np.any(fractions < 0) or fractions.sum() <= 0:
        raise ValueError(f"fractions {fractions} do not match names {names}")
    fractions = fractions / fractions.sum()
    stratum_of: dict[Hashable, Hashable] = {}
    for case, stratum in zip(case_ids, strata):
        if stratum_of.setdefault(case, stratum) != stratum:
            raise ValueError(f"case {case!r} appears with two strata")
    rng = np.random.default_rng(seed)
    by_stratum: dict[Hashable, list] = {}
    for case in sorted(stratum_of, key=repr):  # input order must not matter
        by_stratum.setdefault(stratum_of[case], []).append(case)
    members: dict[str, dict[Hashable, list]] = {name: {} for name in names}
    carry = np.zeros(len(names))  # rounding left over from earlier strata
    for stratum in sorted(by_stratum, key=repr):
        cases = list(by_stratum[stratum])
        rng.shuffle(cases)
        want = fractions * len(cases) + carry
        counts = _allocate(want, len(cases), rng)
        carry = want - counts
        start = 0
        for name, count in zip(names, counts):
            members[name][stratum] = cases[start : start + count]
            start += count
    wanted = [name for name, f in zip(names, fractions) if f > 0]
    for name in wanted:
        if sum(map(len, members[name].values())) > 0:
            continue
        donor = max(names, key=lambda s: sum(map(len, members[s].values())))
        if sum(map(len, members[donor].values())) <= 1:
            break  # too few cases to fill every split
        stratum = max(members[donor], key=lambda k: (len(members[donor][k]), repr(k)))
        members[name].setdefault(stratum, []).append(members[donor][stratum].pop())
    return {case: name for name in names for cases in members[name].values() for case in cases}


def sample_slices(
    lesion_slices: Iterable[Hashable],
    other_slices: Iterable[Hashable],
    *,
    negatives_per_positive: float,
    seed: int,
    must_include: Iterable[Hashable] = (),
) -> list:
    """Choose the slices to export: every lesion slice plus sampled negatives.

    Parameters
    ----------
    lesion_slices : iterable
        Slice ids with at least one lesion box (all kept), e.g. ``(case_id, z)``.
    other_slices : iterable
        Candidate negative slices.
    negatives_per_positive : float
        Negative budget ``round(ratio * n_lesion_slices)``; ``inf`` keeps all.
    seed : int
        Seed of the draw.
    must_include : iterable
        Negatives that are always kept (hard negatives such as bladder slices, which are
        hot on PET). They count towards the budget; when they exceed it they are all
        kept anyway.

    Returns
    -------
    list
        Sorted selected slice ids, without duplicates.
    """
    positives = set(lesion_slices)
    others = _sorted(set(other_slices) - positives)  # fixed order before the seeded draw
    forced = set(must_include) & set(others)
    rest = [s for s in others if s not in forced]
    if np.isinf(negatives_per_positive):
        budget = len(others)
    else:
        budget = int(round(negatives_per_positive * len(positives)))
    n_draw = int(np.clip(budget - len(forced), 0, len(rest)))
    rng = np.random.default_rng(seed)
    drawn = [rest[i] for i in rng.choice(len(rest), size=n_draw, replace=False)]
    return _sorted(positives | forced | set(drawn))


def _sorted(items) -> list:
    try:
        return sorted(items)
    except TypeError:  # mixed id types: any fixed order will do
        return sorted(items, key=repr)


# --------------------------------------------------------------------------- records


@dataclass
class SliceRecord:
    """One 2-D slice to export.

    Attributes
    ----------
    case_id : str
        Patient / case id (no path separators).
    z : int
        Slice index in the case volume.
    image : (H, W, C) float array in [0, 1]
        Channels in model order (e.g. ``[CT, PET, fused]``); C = 3 for PNG.
    boxes : sequence of (x0, y0, x1, y1)
        Pixel-edge boxes (see module docstring).
    classes : sequence of int, optional
        Class id per box; default all 0.
    lesion_ids : sequence of int, optional
        3-D lesion id per box (for lesion-level sensitivity); default -1 (unknown).
    """

    case_id: str
    z: int
    image: np.ndarray
    boxes: Sequence[Sequence[float]] = ()
    classes: Sequence[int] | None = None
    lesion_ids: Sequence[int] | None = None
    extra: dict = field(default_factory=dict)

    def class_array(self) -> np.ndarray:
        n = len(self.boxes)
        return np.zeros(n, int) if self.classes is None else np.asarray(self.classes, int)

    def lesion_array(self) -> np.ndarray:
        n = len(self.boxes)
        return np.full(n, -1, int) if self.lesion_ids is None else np.asarray(self.lesion_ids, int)
