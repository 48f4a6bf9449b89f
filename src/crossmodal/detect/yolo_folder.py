"""A YOLO dataset folder as the trainers see it: ``data.yaml``, image lists, label paths.

:func:`dataset_view` mirrors an exported dataset (:mod:`crossmodal.detect.export`) as
symbolic links, so that training never writes into the DVC-tracked export.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from crossmodal.detect.dataset import SPLITS

__all__ = ["IMG_FORMATS", "class_names", "dataset_view", "label_path", "read_yaml", "split_images"]


def read_yaml(path: Path) -> dict:
    """A YAML file as a dict."""
    import yaml

    with open(path) as fh:
        return yaml.safe_load(fh)


# ultralytics.data.utils.IMG_FORMATS, copied: importing ultralytics here would fix its
# config folder before configure_ultralytics() runs.
IMG_FORMATS = {
    "avif",
    "bmp",
    "dng",
    "heic",
    "heif",
    "jp2",
    "jpeg",
    "jpg",
    "mpo",
    "png",
    "tif",
    "tiff",
    "webp",
}


def split_images(data: Mapping, split: str) -> list[Path]:
    """Sorted image files of one split of a ``data.yaml`` dict (``[]`` when absent): a
    folder's images, or those a listing file names (ultralytics reads a line starting
    with ``./`` relative to the listing's folder)."""
    if not data.get(split):
        return []
    entry = Path(data["path"]) / data[split]
    if entry.is_file():
        lines = entry.read_text().split()
        return sorted(entry.parent / line[2:] if line.startswith("./") else Path(line)
                      for line in lines)
    if not entry.is_dir():
        return []
    return sorted(p for p in entry.rglob("*") if p.suffix.lower().lstrip(".") in IMG_FORMATS)


def label_path(image_path: Path) -> Path:
    """The YOLO label file of an image file."""
    # ultralytics' rule (data/utils.py::img2label_paths): last /images/ -> /labels/, .txt
    head, _, tail = str(image_path).rpartition(f"{os.sep}images{os.sep}")
    return Path(f"{head}{os.sep}labels{os.sep}{tail}").with_suffix(".txt")


def dataset_view(data_yaml: str | os.PathLike, view_dir: str | os.PathLike) -> Path:
    """Mirror a YOLO dataset as symbolic links and return the mirror's ``data.yaml``.

    Ultralytics writes ``labels/<split>.cache`` beside the labels; training from the
    mirror keeps the source folder (a DVC output of the export stage) unchanged.
    Falls back to copying where links are not allowed.
    """
    import yaml

    data_yaml = Path(data_yaml).absolute()
    data = read_yaml(data_yaml)
    root = Path(data.get("path") or data_yaml.parent)
    if not root.is_absolute():
        root = (data_yaml.parent / root).resolve()
    data["path"] = str(root)
    view = Path(view_dir).absolute()
    if view.exists():
        shutil.rmtree(view)
    for split in SPLITS:
        if not data.get(split):
            continue
        for image in split_images(data, split):
            inner = image.relative_to(root)
            targets = [(image, view / inner)]
            if label_path(image).exists():
                targets.append((label_path(image), label_path(view / inner)))
            for source, target in targets:
                if target.is_symlink() or target.exists():  # mirrored by an earlier split
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.symlink(source, target)
                except OSError:
                    shutil.copyfile(source, target)
        entry = root / data[split]
        if entry.is_file():  # a listing: the same relative lines name the mirrored images
            shutil.copyfile(entry, view / data[split])
        else:
            (view / data[split]).mkdir(parents=True, exist_ok=True)  # empty splits stay valid
    data["path"] = str(view)
    out = view / "data.yaml"
    out.write_text(
        f"# Link mirror of {data_yaml} (label caches land here)\n"
        + yaml.safe_dump(data, sort_keys=False)
    )
    return out


def class_names(data: Mapping) -> list[str]:
    """Class names of a ``data.yaml`` dict in class-id order (``names`` as dict or list)."""
    names = data["names"]
    return [names[k] for k in sorted(names)] if isinstance(names, dict) else list(names)
