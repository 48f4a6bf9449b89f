"""Tumour boxes in PASCAL-VOC XML, one file per annotated slice named by its SOPInstanceUID
(the Lung-PET-CT-Dx collection's convention), checked against the CT our reader builds.

:func:`box_checks` is the real-data test of the ingestion geometry: each box is placed on the
slice :func:`~crossmodal.io.dicom.read_series` puts its SOPInstanceUID at, and must land on
tissue denser than the aerated lung around it. A box on the wrong slice, or a reader that
flips rows or columns, puts boxes on air. Rows name series and slices by their position,
never by a DICOM UID: identifiers stay in the ingestion layer.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from crossmodal.io.dicom import DicomSeries
from crossmodal.io.dicom import read_series
from crossmodal.io.dicom import scan_dicom_tree
from crossmodal.io.dicom import slice_instance_uids

__all__ = ["BOX_COLUMNS", "LUNG_PET_CT_DX", "box_checks", "collection_box_checks", "read_voc_boxes"]

#: How to cite the collection whose boxes :func:`collection_box_checks` reads (CC BY 4.0).
LUNG_PET_CT_DX = ("Li P, et al. A Large-Scale CT and PET/CT Dataset for Lung Cancer Diagnosis "
                  "(Lung-PET-CT-Dx). The Cancer Imaging Archive, 2020. doi:10.7937/TCIA.2020.NNC2-0461; "
                  "licence CC BY 4.0")

BOX_COLUMNS = ["series", "slice", "label", "width_mm", "height_mm", "box_hu_mean", "dense_share",
               "lung_hu_mean", "lands_on_tissue"]


def read_voc_boxes(path: str | Path) -> list[dict]:
    """Every ``<object>`` of a PASCAL-VOC file: ``label``, ``xmin``, ``ymin``, ``xmax``,
    ``ymax`` (pixels, columns then rows); a box without its four edges is refused, naming the file."""
    boxes = []
    for obj in ET.parse(path).getroot().iter("object"):
        edges = obj.find("bndbox")
        values = [None if edges is None else edges.findtext(k) for k in ("xmin", "ymin", "xmax", "ymax")]
        if any(v is None for v in values):
            raise ValueError(f"{path}: an <object> without xmin, ymin, xmax and ymax in its <bndbox>")
        xmin, ymin, xmax, ymax = (int(float(v)) for v in values)
        boxes.append({"label": obj.findtext("name"), "xmin": xmin, "ymin": ymin, "xmax": xmax, "ymax": ymax})
    return boxes


def box_checks(series: list[DicomSeries], annotation_dir: str | Path, *, lung_hu: float = -500.0,
               ring_px: int = 20, denser_by_hu: float = 300.0, dense_hu: float = -400.0,
               dense_share: float = 0.3) -> pd.DataFrame:
    """One row per box of ``annotation_dir`` whose slice is in one of ``series``: the box's
    size, its mean HU and share of voxels above ``dense_hu``, the mean HU of the lung
    (below ``lung_hu``) within ``ring_px`` around it, and whether it lands on tissue (at least
    ``denser_by_hu`` denser than that lung, and ``dense_share`` of it above ``dense_hu``)."""
    annotations = {p.stem: p for p in Path(annotation_dir).glob("*.xml")}
    rows = []
    for number, one in enumerate(series, start=1):
        uids = slice_instance_uids(one)
        image = read_series(one)
        volume = sitk.GetArrayFromImage(image)
        sx, sy = image.GetSpacing()[:2]
        for z, uid in enumerate(uids):
            if uid not in annotations:
                continue
            for box in read_voc_boxes(annotations[uid]):
                inside, around = _box_and_ring(volume[z], box, ring_px)
                lung = around[around < lung_hu]
                lung_mean = float(lung.mean()) if lung.size else float("nan")
                share = float((inside > dense_hu).mean())
                rows.append({"series": number, "slice": z, "label": box["label"],
                             "width_mm": (box["xmax"] - box["xmin"]) * sx, "height_mm": (box["ymax"] - box["ymin"]) * sy,
                             "box_hu_mean": float(inside.mean()), "dense_share": share, "lung_hu_mean": lung_mean,
                             "lands_on_tissue": bool(lung.size and inside.mean() > lung_mean + denser_by_hu
                                                     and share >= dense_share)})
    return pd.DataFrame(rows, columns=BOX_COLUMNS)


def collection_box_checks(root: str | Path, **rules) -> pd.DataFrame:
    """:func:`box_checks` for every subject of a Lung-PET-CT-Dx tree: ``<root>/Lung_Dx-<id>/``
    with its boxes in ``<root>/Annotation/<id>/``; rows name the subject by its position
    (``patient``: 1, 2, ...), not by its ID."""
    root, tables = Path(root), []
    boxes = {d: root / "Annotation" / d.name.split("-", 1)[1] for d in sorted(root.glob("Lung_Dx-*"))}
    subjects = [(d, annotations) for d, annotations in boxes.items() if annotations.is_dir()]
    for number, (subject, annotations) in enumerate(subjects, start=1):
        series, problems = scan_dicom_tree(subject)
        if problems:
            raise ValueError(f"{subject}: {len(problems)} file(s) not read: {problems[0]}")
        checks = box_checks(series, annotations, **rules)
        tables.append(checks.assign(patient=number))
    columns = ["patient", *BOX_COLUMNS]
    return pd.concat(tables, ignore_index=True)[columns] if tables else pd.DataFrame(columns=columns)


def _box_and_ring(plane: np.ndarray, box: dict, ring_px: int) -> tuple[np.ndarray, np.ndarray]:
    """The voxels inside ``box`` and those within ``ring_px`` around it (not inside)."""
    y0, y1, x0, x1 = box["ymin"], box["ymax"], box["xmin"], box["xmax"]
    outer = np.zeros(plane.shape, dtype=bool)
    outer[max(y0 - ring_px, 0):y1 + ring_px, max(x0 - ring_px, 0):x1 + ring_px] = True
    inner = np.zeros(plane.shape, dtype=bool)
    inner[y0:y1, x0:x1] = True
    return plane[inner], plane[outer & ~inner]
