"""Detection datasets: boxes from lesion masks, patient split, YOLO and COCO export.

Box convention
--------------
Boxes are ``(x0, y0, x1, y1)`` in pixel-edge coordinates: pixel ``(row i, column j)``
covers ``[j, j + 1) x [i, i + 1)``, so a box is inclusive at ``x0, y0`` and exclusive at
``x1, y1``, and ``x1 - x0`` is the width in pixels. This is the convention of YOLO
(normalised centre/size), COCO (``[x, y, w, h]``) and torchvision, so no ``+1``
appears anywhere.

Slices are identified by ``(case_id, z)``; an exported image is called
``<case_id>_z<zzz>.png``. The case id is the patient id: the split, the bootstrap and
lesion ids are all per case.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Hashable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import numpy as np
from scipy import ndimage

__all__ = [
    "SPLITS",
    "SliceRecord",
    "boxes_from_mask",
    "export_coco",
    "export_yolo",
    "image_name",
    "label_lesions_3d",
    "patient_split",
    "read_index",
    "read_split",
    "read_yolo_labels",
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


# --------------------------------------------------------------------------- records / export


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


def image_name(case_id: str, z: int, *, suffix: str = ".png") -> str:
    """File name of a slice image: ``<case_id>_z<zzz><suffix>``."""
    return f"{case_id}_z{int(z):03d}{suffix}"


def _to_uint8(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 2:
        image = image[..., None]
    if not np.all(np.isfinite(image)):
        raise ValueError("image contains NaN or inf")
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def _write_image(path: Path, image8: np.ndarray) -> None:
    import cv2

    channels = image8.shape[2]
    if path.suffix == ".png":
        if channels != 3:
            raise ValueError("PNG export needs 3 channels; use image_format='tiff' for others")
        # Stored as RGB = (ch0, ch1, ch2); cv2 writes BGR, ultralytics and our reader swap back.
        if not cv2.imwrite(str(path), image8[..., ::-1]):
            raise OSError(f"could not write {path}")
    else:
        import tifffile

        if channels == 3:
            # ultralytics reads 3-channel data with IMREAD_COLOR, which sees only the first
            # page of a multi-page TIFF: store one RGB page, read back like the PNG.
            tifffile.imwrite(path, image8, photometric="rgb")
        else:
            # Other channel counts: one page per channel, which ultralytics stacks.
            tifffile.imwrite(
                path, np.ascontiguousarray(np.moveaxis(image8, 2, 0)), photometric="minisblack"
            )


def _yolo_lines(boxes: np.ndarray, classes: np.ndarray, width: int, height: int) -> list[str]:
    lines = []
    for (x0, y0, x1, y1), c in zip(boxes, classes):
        cx, cy = (x0 + x1) / 2 / width, (y0 + y1) / 2 / height
        w, h = (x1 - x0) / width, (y1 - y0) / height
        lines.append(f"{int(c)} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
    return lines


def _check_boxes(record, width: int, height: int) -> np.ndarray:
    boxes = np.asarray(record.boxes, dtype=float).reshape(-1, 4)
    if len(boxes) and (
        np.any(boxes[:, 2] <= boxes[:, 0])
        or np.any(boxes[:, 3] <= boxes[:, 1])
        or np.any(boxes[:, :2] < 0)
        or np.any(boxes[:, 2] > width)
        or np.any(boxes[:, 3] > height)
    ):
        raise ValueError(
            f"{record.case_id} z={record.z}: boxes outside the image or empty: {boxes}"
        )
    return boxes


def _yaml_header(root: Path, counts: Mapping[str, int], suffix: str) -> str:
    n = " / ".join(str(counts.get(split, 0)) for split in SPLITS)
    return (
        "# crossmodal 2-D lesion detection dataset in ultralytics YOLO format, written by\n"
        "# crossmodal.detect.dataset.export_yolo; regenerate rather than edit.\n"
        "# Documentation: https://docs.ultralytics.com/datasets/detect/\n"
        f"# Example usage: yolo train data={root / 'data.yaml'} model=yolov8n.yaml amp=False\n"
        "# Channels: (R, G, B) of each image = model channels 0, 1, 2 (e.g. CT, PET, fused).\n"
        "# Labels: one line per box, 'class cx cy w h', normalised; empty = negative slice.\n"
        "#\n"
        f"# {root.name}/\n"
        "# ├── data.yaml\n"
        "# ├── index.csv                  # image -> case (patient), z, split, lesion ids\n"
        f"# ├── images/{{train,val,test}}/   # <case>_z<zzz>{suffix}  ({n} slices)\n"
        "# └── labels/{train,val,test}/   # <case>_z<zzz>.txt\n"
        "\n"
    )


def export_yolo(
    records: Iterable[SliceRecord],
    out_dir: str | os.PathLike,
    *,
    split_of: Mapping[Hashable, str],
    class_names: Sequence[str] = ("lesion",),
    image_format: str = "png",
) -> Path:
    """Write slices as an ultralytics YOLO detection dataset.

    Parameters
    ----------
    records : iterable of SliceRecord
        Any objects with ``case_id, z, image, boxes`` (and optionally ``classes``,
        ``lesion_ids``).
    out_dir : path-like
        Dataset root. Gets ``images/{train,val,test}/``, ``labels/{train,val,test}/``,
        ``data.yaml`` and ``index.csv``.
    split_of : mapping
        ``case_id -> 'train' | 'val' | 'test'`` (see :func:`patient_split`). Records
        of cases not in it are skipped.
    class_names : sequence of str
        Class names, index = class id.
    image_format : {'png', 'tiff'}
        PNG (8-bit, 3 channels) or multi-page TIFF (8-bit, any channel count).

    Returns
    -------
    pathlib.Path
        Path of ``data.yaml`` (absolute ``path:``, ``channels:`` from the images).

    Notes
    -----
    Every split folder is created, empty or not, because ultralytics requires ``train``
    and ``val``. Negative slices get an empty label file (ultralytics counts them as
    backgrounds rather than as missing labels). Do not create a ``masks/`` folder in
    the root: ultralytics would switch to semantic segmentation.
    """
    import yaml

    root = Path(out_dir).absolute()
    suffix = {"png": ".png", "tiff": ".tiff", "tif": ".tiff"}[image_format.lower()]
    for kind in ("images", "labels"):
        for split in SPLITS:
            (root / kind / split).mkdir(parents=True, exist_ok=True)
    rows = []
    counts: dict[str, int] = {}
    channels = None
    for record in records:
        split = split_of.get(record.case_id)
        if split is None:
            continue
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r} for case {record.case_id!r}")
        image8 = _to_uint8(record.image)
        height, width, c = image8.shape
        if channels is None:
            channels = c
        elif c != channels:
            raise ValueError("all images must have the same number of channels")
        boxes = _check_boxes(record, width, height)
        classes = record.class_array()
        if classes.size and (classes.min() < 0 or classes.max() >= len(class_names)):
            raise ValueError(f"class ids {classes} outside class_names {class_names}")
        name = image_name(record.case_id, record.z, suffix=suffix)
        image_path = root / "images" / split / name
        _write_image(image_path, image8)
        label_path = (root / "labels" / split / name).with_suffix(".txt")
        lines = _yolo_lines(boxes, classes, width, height)
        label_path.write_text("\n".join(lines) + ("\n" if lines else ""))
        counts[split] = counts.get(split, 0) + 1
        rows.append(
            {
                "image": f"images/{split}/{name}",
                "case_id": record.case_id,
                "z": int(record.z),
                "split": split,
                "width": width,
                "height": height,
                "n_boxes": len(boxes),
                "lesion_ids": " ".join(map(str, record.lesion_array())),
            }
        )
    with open(root / "index.csv", "w", newline="") as fh:
        writer = csv.DictWriter(
            fh,
            fieldnames=[
                "image",
                "case_id",
                "z",
                "split",
                "width",
                "height",
                "n_boxes",
                "lesion_ids",
            ],
        )
        writer.writeheader()
        writer.writerows(rows)
    data = {
        "path": str(root),
        "train": "images/train",
        "val": "images/val",
        "test": "images/test",
        "channels": int(channels or 3),
        "names": {i: str(n) for i, n in enumerate(class_names)},
    }
    yaml_path = root / "data.yaml"
    yaml_path.write_text(_yaml_header(root, counts, suffix) + yaml.safe_dump(data, sort_keys=False))
    return yaml_path


def read_index(dataset_dir: str | os.PathLike) -> list[dict]:
    """Rows of ``index.csv`` written by :func:`export_yolo` (``z``, sizes as int)."""
    with open(Path(dataset_dir) / "index.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        for key in ("z", "width", "height", "n_boxes"):
            row[key] = int(row[key])
        row["lesion_ids"] = [int(v) for v in row["lesion_ids"].split()]
    return rows


def read_split(dataset_dir: str | os.PathLike, split: str) -> list[dict]:
    """Everything needed to evaluate one split of an :func:`export_yolo` dataset.

    Returns
    -------
    list of dict
        One per image, in ``index.csv`` order: ``image_path`` (absolute),
        ``image_id`` (the relative path, unique), ``case_id``, ``z``, ``width``,
        ``height``, ``boxes`` ((n, 4) pixels), ``classes``, ``lesion_ids``.
        ``crossmodal.detect.metrics.ground_truth`` takes these lists directly.
    """
    root = Path(dataset_dir).absolute()
    out = []
    for row in read_index(root):
        if row["split"] != split:
            continue
        image_path = root / row["image"]
        label_path = (root / "labels" / Path(row["image"]).relative_to("images")).with_suffix(
            ".txt"
        )
        boxes, classes = read_yolo_labels(label_path, row["width"], row["height"])
        lesion_ids = np.asarray(row["lesion_ids"], int)
        if len(lesion_ids) != len(boxes):
            raise ValueError(
                f"{label_path}: {len(boxes)} boxes but {len(lesion_ids)} lesion ids in index.csv"
            )
        out.append(
            {
                "image_path": image_path,
                "image_id": row["image"],
                "case_id": row["case_id"],
                "z": row["z"],
                "width": row["width"],
                "height": row["height"],
                "boxes": boxes,
                "classes": classes,
                "lesion_ids": lesion_ids,
            }
        )
    return out


def read_yolo_labels(
    label_path: str | os.PathLike, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """Read a YOLO label file back into pixel boxes.

    Parameters
    ----------
    label_path : path-like
        ``labels/<split>/<name>.txt``; a missing file means no boxes.
    width, height : int
        Image size in pixels.

    Returns
    -------
    boxes : (n, 4) float array
        ``(x0, y0, x1, y1)``, pixel-edge convention.
    classes : (n,) int array
    """
    path = Path(label_path)
    text = path.read_text() if path.exists() else ""
    values = np.array([line.split() for line in text.splitlines() if line.strip()], dtype=float)
    if values.size == 0:
        return np.zeros((0, 4)), np.zeros(0, int)
    if values.shape[1] != 5:
        raise ValueError(f"{path}: expected 5 columns (class cx cy w h), got {values.shape[1]}")
    cx, cy = values[:, 1] * width, values[:, 2] * height
    w, h = values[:, 3] * width, values[:, 4] * height
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    return boxes, values[:, 0].astype(int)


def export_coco(
    records: Iterable[SliceRecord],
    path: str | os.PathLike,
    *,
    split: str | None = None,
    split_of: Mapping[Hashable, str] | None = None,
    class_names: Sequence[str] = ("lesion",),
    image_format: str = "png",
) -> Path:
    """Write the same slices and boxes as a COCO detection JSON.

    Parameters
    ----------
    records : iterable of SliceRecord
    path : path-like
        Output JSON file.
    split : str, optional
        Keep only records of this split (requires ``split_of``); recorded in ``info``.
    split_of : mapping, optional
        ``case_id -> split`` as for :func:`export_yolo`.
    class_names : sequence of str
        Category ``k`` gets COCO id ``k + 1`` (COCO ids start at 1).
    image_format : {'png', 'tiff'}
        Only for the ``file_name`` field, which matches the YOLO export.

    Returns
    -------
    pathlib.Path

    Notes
    -----
    Images without boxes are included (they carry the false positives). Image ids are
    1..n in record order; each image also stores ``case_id``, ``z`` and the YOLO-relative
    ``file_name``; annotations store ``lesion_id``. ``bbox`` is ``[x0, y0, w, h]`` and
    ``area = w * h``, exactly as pycocotools computes the IoU.
    """
    if split is not None and split_of is None:
        raise ValueError("split needs split_of")
    suffix = {"png": ".png", "tiff": ".tiff", "tif": ".tiff"}[image_format.lower()]
    images, annotations = [], []
    for record in records:
        record_split = split_of.get(record.case_id) if split_of is not None else None
        if split is not None and record_split != split:
            continue
        height, width = np.asarray(record.image).shape[:2]
        boxes = _check_boxes(record, width, height)
        image_id = len(images) + 1
        name = image_name(record.case_id, record.z, suffix=suffix)
        images.append(
            {
                "id": image_id,
                "file_name": f"images/{record_split}/{name}" if record_split else name,
                "width": int(width),
                "height": int(height),
                "case_id": record.case_id,
                "z": int(record.z),
            }
        )
        for box, c, lesion in zip(boxes, record.class_array(), record.lesion_array()):
            x0, y0, x1, y1 = map(float, box)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": int(c) + 1,
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": (x1 - x0) * (y1 - y0),
                    "iscrowd": 0,
                    "lesion_id": int(lesion),
                }
            )
    coco = {
        "info": {"description": "crossmodal lesion detection", "split": split},
        "images": images,
        "annotations": annotations,
        "categories": [
            {"id": i + 1, "name": str(n), "supercategory": "lesion"}
            for i, n in enumerate(class_names)
        ],
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(coco, indent=1))
    return path
