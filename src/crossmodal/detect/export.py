"""YOLO and COCO export of detection slices, and the readers of what was written.

Boxes follow the pixel-edge convention of :mod:`crossmodal.detect.dataset`. An exported
image is called ``<case_id>_z<zzz>.png``, a tile cut from it ``<case_id>_z<zzz>_t<k>.png``
(:func:`image_name`); :func:`export_yolo`
writes the ultralytics layout plus an ``index.csv`` (image -> case, z, split, lesion ids)
that :func:`read_index` and :func:`read_split` read back for evaluation;
:func:`export_coco` writes the same slices as one COCO JSON.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Hashable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from crossmodal.detect.dataset import SPLITS
from crossmodal.detect.dataset import SliceRecord
from crossmodal.detect.matching import GroundTruth
from crossmodal.detect.matching import ground_truth

__all__ = [
    "dataset_ground_truth",
    "export_coco",
    "export_yolo",
    "image_name",
    "read_index",
    "read_split",
    "read_yolo_labels",
]

INDEX_COLUMNS = ("image", "case_id", "z", "split", "width", "height", "n_boxes", "lesion_ids")


def image_name(case_id: str, z: int, *, suffix: str = ".png", tile: int | None = None) -> str:
    """File name of a slice image: ``<case_id>_z<zzz><suffix>``; a tile cut from the slice
    (Part 2's training tiles) adds ``_t<k>``."""
    part = "" if tile is None else f"_t{int(tile)}"
    return f"{case_id}_z{int(z):03d}{part}{suffix}"


def _image_suffix(image_format: str) -> str:
    return {"png": ".png", "tiff": ".tiff", "tif": ".tiff"}[image_format.lower()]


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
        "# crossmodal.detect.export.export_yolo; regenerate rather than edit.\n"
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
        ``case_id -> 'train' | 'val' | 'test'`` (see :func:`~crossmodal.detect.dataset.patient_split`). Records
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
    root = Path(out_dir).absolute()
    suffix = _image_suffix(image_format)
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
        if channels is None:
            channels = image8.shape[2]
        elif image8.shape[2] != channels:
            raise ValueError("all images must have the same number of channels")
        rows.append(_write_yolo_record(record, image8, root, split, suffix, class_names))
        counts[split] = counts.get(split, 0) + 1
    _write_index(root, rows)
    return _write_data_yaml(root, counts, suffix, channels, class_names)


def _write_yolo_record(record, image8, root: Path, split: str, suffix: str, class_names) -> dict:
    """Write one slice's image (``image8``: uint8 H x W x C) and label file; its
    ``index.csv`` row."""
    height, width, _ = image8.shape
    boxes = _check_boxes(record, width, height)
    classes = record.class_array()
    if classes.size and (classes.min() < 0 or classes.max() >= len(class_names)):
        raise ValueError(f"class ids {classes} outside class_names {class_names}")
    name = image_name(record.case_id, record.z, suffix=suffix, tile=getattr(record, "extra", {}).get("tile"))
    _write_image(root / "images" / split / name, image8)
    label_path = (root / "labels" / split / name).with_suffix(".txt")
    lines = _yolo_lines(boxes, classes, width, height)
    label_path.write_text("\n".join(lines) + ("\n" if lines else ""))
    return {
        "image": f"images/{split}/{name}",
        "case_id": record.case_id,
        "z": int(record.z),
        "split": split,
        "width": width,
        "height": height,
        "n_boxes": len(boxes),
        "lesion_ids": " ".join(map(str, record.lesion_array())),
    }


def _write_index(root: Path, rows: list[dict]) -> None:
    with open(root / "index.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(INDEX_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)


def _write_data_yaml(root: Path, counts, suffix: str, channels, class_names) -> Path:
    import yaml

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
    suffix = _image_suffix(image_format)
    images, annotations = [], []
    for record in records:
        record_split = split_of.get(record.case_id) if split_of is not None else None
        if split is not None and record_split != split:
            continue
        image, boxes = _coco_image(record, len(images) + 1, record_split, suffix)
        images.append(image)
        annotations.extend(_coco_annotations(record, boxes, image["id"], len(annotations) + 1))
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


def _coco_image(record, image_id: int, record_split, suffix: str) -> tuple[dict, np.ndarray]:
    """COCO ``images`` entry of one slice, and its checked boxes."""
    height, width = np.asarray(record.image).shape[:2]
    boxes = _check_boxes(record, width, height)
    name = image_name(record.case_id, record.z, suffix=suffix)
    image = {
        "id": image_id,
        "file_name": f"images/{record_split}/{name}" if record_split else name,
        "width": int(width),
        "height": int(height),
        "case_id": record.case_id,
        "z": int(record.z),
    }
    return image, boxes


def _coco_annotations(record, boxes, image_id: int, first_id: int) -> list[dict]:
    """COCO ``annotations`` of one slice, ids counting from ``first_id``."""
    annotations = []
    for box, c, lesion in zip(boxes, record.class_array(), record.lesion_array()):
        x0, y0, x1, y1 = map(float, box)
        annotations.append(
            {
                "id": first_id + len(annotations),
                "image_id": image_id,
                "category_id": int(c) + 1,
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "area": (x1 - x0) * (y1 - y0),
                "iscrowd": 0,
                "lesion_id": int(lesion),
            }
        )
    return annotations


def dataset_ground_truth(dataset_dirs: Sequence[str | os.PathLike], split: str) -> GroundTruth:
    """Boxes, classes, lesion ids and slice indices ``z`` of one split of one or more
    :func:`export_yolo` datasets, as the detection metrics take them."""
    items = [item for folder in dataset_dirs for item in read_split(folder, split)]
    return ground_truth([i["image_id"] for i in items], [i["case_id"] for i in items],
                        [i["boxes"] for i in items], classes=[i["classes"] for i in items],
                        lesion_ids=[i["lesion_ids"] for i in items],
                        z=[i["z"] for i in items])
