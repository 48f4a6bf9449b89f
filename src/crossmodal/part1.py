"""Part 1 imaging stage: align PET to CT, enhance, localise, fuse every input, per case.

One entry point, :func:`run_align_fuse`, turns the ingested cases into the per-slice
detector inputs of every fusion input (the proposed fusion, its ablations and the
baselines) plus the alignment and fusion-quality tables. Artifacts on disk::

    <out>/alignment.csv                 per case: residual error (mm) before/after refinement
    <out>/transforms/<case>.tfm         the refined CT->PET transform (SimpleITK)
    <out>/region_check.csv              per case: lesion voxels inside the localised region
    <out>/slices.csv                    the selected slices: case, z, lesion boxes, hot negative
    <out>/fusion_quality.csv            per case, input and quality slice: EN, SD, SF, MI, SSIM, QABF
    <out>/fused/<input>/<case>.npz      images (n, S, S, 3) uint8, z, boxes in letterbox pixels

An *input* is a fusion method plus two switches, ``refine`` (rigid registration after
geometric resampling) and ``crop`` (localised region vs the whole slice), so the
ablations "no refinement" and "no crop" are the proposed method with a switch off.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import SimpleITK as sitk
from scipy import ndimage

from crossmodal.detect.dataset import boxes_from_mask
from crossmodal.detect.dataset import sample_slices
from crossmodal.imaging.fusion import fuse
from crossmodal.imaging.fusion import fusion_quality
from crossmodal.imaging.fusion import to_gray
from crossmodal.io.case import Case
from crossmodal.parallel import map_jobs
from crossmodal.phantom.pelvis import transform_from_dict
from crossmodal.imaging.preprocess import body_mask_ct
from crossmodal.imaging.preprocess import body_mask_pet
from crossmodal.imaging.preprocess import enhance_ct
from crossmodal.imaging.preprocess import enhance_pet
from crossmodal.imaging.preprocess import letterbox
from crossmodal.imaging.preprocess import region_box_volume
from crossmodal.imaging.register import mask_points_mm
from crossmodal.imaging.register import register_rigid
from crossmodal.imaging.register import resample_to_reference
from crossmodal.imaging.register import transform_error_mm
from crossmodal.report.common import summary_with_ci


@dataclass
class PreparedCase:
    """A case after alignment and enhancement, on the CT grid, ready to be fused."""

    case_id: str
    ct01: np.ndarray  # (z, y, x) enhanced CT in [0, 1]
    suv: dict[str, np.ndarray]  # "refined" / "geometric" -> PET SUV on the CT grid
    pet01: dict[str, np.ndarray]  # same keys, enhanced PET in [0, 1]
    body: np.ndarray  # union of CT and PET body masks per slice
    ct_body: np.ndarray
    pet_body: np.ndarray
    region: tuple[int, int, int, int]  # (y0, y1, x0, x1) localised region, all slices
    label: np.ndarray  # (z, y, x) lesion label
    lesion_ids: np.ndarray  # (z, y, x) 3-D connected lesion id (0 = none)
    alignment: dict[str, Any]


def align(case: Case, cfg: dict[str, Any]) -> tuple[dict[str, sitk.Image], dict[str, Any], sitk.Transform]:
    """PET on the CT grid, by geometry only and refined; residual errors where truth is known."""
    geometric = resample_to_reference(case.pet, case.ct)
    result = register_rigid(case.ct, case.pet, **cfg)
    refined = result.apply(case.pet)
    record: dict[str, Any] = {"case_id": case.case_id, "metric": result.metric_value,
                              "iterations": result.iterations}
    if case.truth and "misregistration" in case.truth:
        truth = transform_from_dict(case.truth["misregistration"])
        body = sitk.BinaryThreshold(case.ct, -500.0, 1e9, 1, 0)
        points = mask_points_mm(body, max_points=5000, seed=0)
        identity = sitk.Transform(3, sitk.sitkIdentity)
        before = transform_error_mm(identity, truth, points)
        after = transform_error_mm(result.transform, truth, points)
        record.update(error_before_mm=float(before.mean()), error_after_mm=float(after.mean()),
                      error_after_max_mm=float(after.max()),
                      pet_voxel_mm=float(max(case.pet.GetSpacing())))
    return {"geometric": geometric, "refined": refined}, record, result.transform


def prepare(case: Case, cfg: dict[str, Any]) -> tuple[PreparedCase, sitk.Transform]:
    """Align, enhance and localise one case (method spec Part 1, steps 2-4)."""
    pets, record, transform = align(case, cfg["register"])
    hu = sitk.GetArrayFromImage(case.ct)
    enh = cfg["enhance"]
    ct01 = enhance_ct(hu, width=enh["ct_window"]["width"], level=enh["ct_window"]["level"],
                      use_clahe=enh["clahe"])
    suv = {k: sitk.GetArrayFromImage(v) for k, v in pets.items()}
    pet01 = {k: enhance_pet(v, suv_max=enh["suv_max"], use_clahe=enh["clahe"]) for k, v in suv.items()}
    loc = cfg["localise"]
    ct_body = np.stack([body_mask_ct(s, threshold_hu=loc["ct_threshold_hu"]) for s in hu])
    pet_body = np.stack([body_mask_pet(s, sigma=loc["pet_sigma"]) for s in suv["refined"]])
    region = region_box_volume(ct_body, pet_body, margin=loc["margin"])
    label = sitk.GetArrayFromImage(case.label)
    lesion_ids, _ = ndimage.label(label > 0, structure=np.ones((3, 3, 3)))
    prepared = PreparedCase(case.case_id, ct01, suv, pet01, ct_body | pet_body, ct_body, pet_body,
                            tuple(int(v) for v in region), label, lesion_ids, record)
    return prepared, transform


def region_check(p: PreparedCase) -> dict[str, Any]:
    """How many lesion voxels lie inside the localised region (must be all of them)."""
    y0, y1, x0, x1 = p.region
    inside = np.zeros(p.label.shape[1:], dtype=bool)
    inside[y0:y1, x0:x1] = True
    lesion = p.label > 0
    return {"case_id": p.case_id, "lesion_voxels": int(lesion.sum()),
            "lesion_voxels_inside": int((lesion & inside[None]).sum()),
            "region_fraction_of_slice": float(inside.mean())}


def select_slices(p: PreparedCase, cfg: dict[str, Any], *, seed: int) -> tuple[list[int], set[int]]:
    """Lesion slices, slices that are hot on PET without a lesion (bladder-like hard
    negatives), and sampled other negatives. Works without any truth sidecar."""
    has_lesion = p.label.reshape(len(p.label), -1).any(axis=1)
    in_body = p.body.reshape(len(p.body), -1).any(axis=1)
    hot = p.suv["refined"].reshape(len(p.label), -1).max(axis=1) >= cfg["hot_negative_suv"]
    lesion_z = [int(z) for z in np.flatnonzero(has_lesion)]
    hot_z = {int(z) for z in np.flatnonzero(hot & ~has_lesion & in_body)}
    others = [int(z) for z in np.flatnonzero(~has_lesion & in_body)]
    chosen = sample_slices(lesion_z, others, negatives_per_positive=cfg["negatives_per_positive"],
                           seed=seed, must_include=sorted(hot_z))
    return [int(z) for z in chosen], hot_z


def fuse_slice(p: PreparedCase, z: int, spec: dict[str, Any], *, size: int, options: dict[str, Any]):
    """One detector input slice for one input spec; returns (image (S,S,3) float, LetterboxInfo)."""
    source = "refined" if spec.get("refine", True) else "geometric"
    fused = fuse(spec["method"], p.ct01[z], p.pet01[source][z], suv=p.suv[source][z],
                 region=p.body[z], **options.get(spec["method"], {}))
    box = p.region if spec.get("crop", True) else None
    return letterbox(fused, size=size, box=box)


def slice_boxes(p: PreparedCase, z: int, info) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lesion boxes of slice z in letterbox pixels, their class (label - 1) and 3-D lesion id."""
    boxes, values = boxes_from_mask(p.label[z], return_labels=True)  # one box per component and class
    if not boxes:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.int16), np.zeros(0, np.int32)
    lesion = []
    for (x0, y0, x1, y1), value in zip(boxes, values):
        ids = p.lesion_ids[z, y0:y1, x0:x1][p.label[z, y0:y1, x0:x1] == value]
        lesion.append(int(np.bincount(ids).argmax()))
    classes = [v - 1 for v in values]
    mapped = info.boxes_to_letterbox(np.asarray(boxes, dtype=np.float64))
    return mapped.astype(np.float32), np.asarray(classes, np.int16), np.asarray(lesion, np.int32)


def align_fuse_case(item: tuple[int, Case], out: Path, cfg: dict[str, Any]) -> dict[str, list[dict]]:
    """Align, localise and fuse one case (``item`` = its position in the cohort, which seeds
    its slice sampling, and the case); write its transform and one ``fused/<input>/`` file
    per input; return its rows of the stage tables."""
    i, case = item
    inputs: dict[str, dict] = cfg["inputs"]
    p, transform = prepare(case, cfg)
    sitk.WriteTransform(transform, str(out / "transforms" / f"{case.case_id}.tfm"))
    rows: dict[str, list[dict]] = {"alignment": [p.alignment], "region_check": [region_check(p)],
                                   "slices": [], "fusion_quality": []}
    chosen, hot_z = select_slices(p, cfg["slices"], seed=int(cfg["seed"]) + i)
    lesion_z = [z for z in chosen if p.label[z].any()]
    quality_z = set(lesion_z[:: max(1, len(lesion_z) // cfg["quality_slices_per_case"])][: cfg["quality_slices_per_case"]])
    for name, spec in inputs.items():
        images, box_rows = [], {"boxes": [], "slice": [], "cls": [], "lesion": []}
        for k, z in enumerate(chosen):
            image, info = fuse_slice(p, z, spec, size=cfg["image_size"], options=cfg["method_options"])
            images.append(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))
            boxes, classes, lesion = slice_boxes(p, z, info)
            box_rows["boxes"].append(boxes)
            box_rows["slice"].append(np.full(len(boxes), k, np.int32))
            box_rows["cls"].append(classes)
            box_rows["lesion"].append(lesion)
            if z in quality_z:
                source = "refined" if spec.get("refine", True) else "geometric"
                box = p.region if spec.get("crop", True) else None
                ct_l, _ = letterbox(p.ct01[z], size=cfg["image_size"], box=box)
                pet_l, _ = letterbox(p.pet01[source][z], size=cfg["image_size"], box=box)
                q = fusion_quality(ct_l, pet_l, to_gray(image))
                rows["fusion_quality"].append({"case_id": case.case_id, "input": name, "z": z, **q})
            if name == next(iter(inputs)):
                rows["slices"].append({"case_id": case.case_id, "patient": case.patient, "z": z,
                                       "n_boxes": len(boxes), "hot_negative": z in hot_z})
        np.savez_compressed(
            out / "fused" / name / f"{case.case_id}.npz", images=np.stack(images),
            z=np.asarray(chosen, np.int32), boxes=np.concatenate(box_rows["boxes"]),
            box_slice=np.concatenate(box_rows["slice"]), box_class=np.concatenate(box_rows["cls"]),
            box_lesion=np.concatenate(box_rows["lesion"]))
    return rows


def run_align_fuse(cases: list[Case], out_dir: str | Path, cfg: dict[str, Any], *,
                   progress: bool = False, jobs: int | str = 1) -> dict[str, pd.DataFrame]:
    """Run the whole Part 1 imaging stage over ``cases`` (params section ``align_fuse``),
    on ``jobs`` processes (the outputs do not depend on ``jobs``: registration is
    single-threaded and seeded, and slice sampling is seeded by case position)."""
    out = Path(out_dir)
    (out / "transforms").mkdir(parents=True, exist_ok=True)
    for name in cfg["inputs"]:
        (out / "fused" / name).mkdir(parents=True, exist_ok=True)
    per_case = map_jobs(functools.partial(align_fuse_case, out=out, cfg=cfg), enumerate(cases), jobs=jobs,
                        progress=progress, desc="align + fuse", unit="case")
    tables = {name: pd.DataFrame([row for rows in per_case for row in rows[name]])
              for name in ("alignment", "region_check", "slices", "fusion_quality")}
    for name, table in tables.items():
        table.to_csv(out / f"{name}.csv", index=False)
    return tables


ALIGNMENT_COLUMNS = ["error_before_mm", "error_after_mm", "error_after_max_mm", "pet_voxel_mm"]
QUALITY_METRICS = ["EN", "SD", "SF", "MI_CT", "MI_PET", "SSIM_CT", "SSIM_PET", "QABF"]


def alignment_summary(alignment: pd.DataFrame, *, seed: int) -> pd.DataFrame:
    """Alignment errors (those known: phantom truth) as mean ± sd [patient-bootstrap CI]."""
    return summary_with_ci(alignment, [c for c in ALIGNMENT_COLUMNS if c in alignment], seed=seed)


def region_summary(region: pd.DataFrame) -> pd.DataFrame:
    """One row: lesion voxels in all, those inside the localised region, mean region share."""
    return pd.DataFrame({
        "cases": [len(region)],
        "lesion voxels": [int(region["lesion_voxels"].sum())],
        "inside the region": [int(region["lesion_voxels_inside"].sum())],
        "region share of slice (mean)": [round(float(region["region_fraction_of_slice"].mean()), 3)],
    })


def fusion_quality_summary(quality: pd.DataFrame, *, seed: int) -> pd.DataFrame:
    """Fusion metrics per input: slices averaged per patient first, so the bootstrap CI is
    over patients, not slices."""
    per_patient = quality.groupby(["input", "case_id"], sort=False)[QUALITY_METRICS].mean().reset_index()
    return summary_with_ci(per_patient, QUALITY_METRICS, by="input", seed=seed)


def load_fused(path: str | Path) -> dict[str, np.ndarray]:
    """Read one ``fused/<input>/<case>.npz`` artifact."""
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def lesion_and_hot_slices(p: PreparedCase) -> tuple[int, int | None]:
    """The largest lesion slice and the hottest lesion-free slice (the bladder on the phantom)."""
    area = (p.label > 0).reshape(len(p.label), -1).sum(axis=1)
    hot = np.where(area == 0, p.suv["refined"].reshape(len(area), -1).max(axis=1), -np.inf)
    hot_z = int(np.argmax(hot)) if np.isfinite(hot.max()) else None
    return int(np.argmax(area)), hot_z


def step_figure(p: PreparedCase, pet_native: np.ndarray, z: int):
    """Raw CT, raw PET, body contours with Canny edges, and the localised crop of one slice."""
    import matplotlib.pyplot as plt

    from crossmodal.imaging.preprocess import edges

    fig, ax = plt.subplots(1, 4, figsize=(13, 3.4))
    ax[0].imshow(p.ct01[z], cmap="gray")
    ax[0].set_title("CT, soft-tissue window")
    pz = int(round(z * pet_native.shape[0] / len(p.ct01)))
    ax[1].imshow(pet_native[min(pz, len(pet_native) - 1)], cmap="magma")
    ax[1].set_title("PET (own grid, SUV)")
    ax[2].imshow(edges(p.ct01[z]) | edges(p.pet01["refined"][z]), cmap="gray")
    ax[2].contour(p.ct_body[z], levels=[0.5], colors="cyan", linewidths=1)
    ax[2].contour(p.pet_body[z], levels=[0.5], colors="orange", linewidths=1)
    y0, y1, x0, x1 = p.region
    ax[2].add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="lime", lw=1.5))
    ax[2].set_title("edges; body CT (cyan), PET (orange); region")
    ax[3].imshow(p.ct01[z][y0:y1, x0:x1], cmap="gray")
    ax[3].set_title("localised crop")
    for a in ax:
        a.set_xticks([])
        a.set_yticks([])
    fig.tight_layout()
    return fig


def inputs_figure(p: PreparedCase, inputs: dict[str, dict], zs: dict[str, int], *, size: int,
                  options: dict[str, Any]):
    """Every input side by side (RGB = its three channels) at the given slices."""
    import matplotlib.pyplot as plt

    names = list(inputs)
    fig, axes = plt.subplots(len(zs), len(names), figsize=(1.9 * len(names), 2.1 * len(zs)), squeeze=False)
    for row, (title, z) in zip(axes, zs.items()):
        for ax, name in zip(row, names):
            image, info = fuse_slice(p, z, inputs[name], size=size, options=options)
            ax.imshow(np.clip(image, 0, 1))
            boxes, _, _ = slice_boxes(p, z, info)
            for x0, y0, x1, y1 in boxes:
                ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="lime", lw=0.8))
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(name.replace("_", " "), fontsize=7)
        row[0].set_ylabel(title, fontsize=8)
    fig.tight_layout()
    return fig
