"""One PET/CT case on the CT grid, ready to fuse: align, enhance, localise, pick slices.

These are the per-case pieces of the Part 1 imaging step (method spec Part 1, steps 2-6);
the stage :mod:`crossmodal.stages.pelvis.align_fuse` runs them over the cohort and writes
the artifacts. An *input* spec is a fusion method plus two switches, ``refine`` (rigid
registration after geometric resampling) and ``crop`` (localised region vs the whole
slice).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import SimpleITK as sitk

from crossmodal.detect.dataset import boxes_from_mask
from crossmodal.detect.dataset import label_lesions_3d
from crossmodal.detect.dataset import sample_slices
from crossmodal.imaging.fusion import fuse
from crossmodal.imaging.fusion import to_gray
from crossmodal.imaging.preprocess import body_mask_ct
from crossmodal.imaging.preprocess import body_mask_pet
from crossmodal.imaging.preprocess import enhance_ct
from crossmodal.imaging.preprocess import enhance_pet
from crossmodal.imaging.preprocess import letterbox
from crossmodal.imaging.preprocess import edge_region_box
from crossmodal.imaging.preprocess import region_box_volume
from crossmodal.imaging.register import mask_points_mm
from crossmodal.imaging.register import register_rigid
from crossmodal.imaging.register import transform_error_mm
from crossmodal.io.case import Case
from crossmodal.io.geometry import resample_to_reference
from crossmodal.io.geometry import transform_from_dict


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
    """Align, enhance and localise one case (params section ``align_fuse``)."""
    pets, record, transform = align(case, cfg["register"])
    hu = sitk.GetArrayFromImage(case.ct)
    enh = cfg["enhance"]
    ct01 = enhance_ct(hu, window=enh["ct_window"],
                      use_clahe=enh["clahe"])
    suv = {k: sitk.GetArrayFromImage(v) for k, v in pets.items()}
    pet01 = {k: enhance_pet(v, suv_max=enh["suv_max"], use_clahe=enh["clahe"]) for k, v in suv.items()}
    loc = cfg["localise"]
    ct_body = np.stack([body_mask_ct(s, threshold_hu=loc["ct_threshold_hu"]) for s in hu])
    pet_body = np.stack([body_mask_pet(s, sigma=loc["pet_sigma"]) for s in suv["refined"]])
    if loc["region"] == "edges":
        region = edge_region_box(hu, ct_body, bone_window=loc["bone_window"], margin=loc["margin"])
    else:  # the union body box of both modalities
        region = region_box_volume(ct_body, pet_body, margin=loc["margin"])
    label = sitk.GetArrayFromImage(case.label)
    lesion_ids = label_lesions_3d(label)
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
            "region_fraction_of_slice": float(inside.mean()),
            "region_y0": y0, "region_y1": y1, "region_x0": x0, "region_x1": x1}


def lesion_stats(case: Case, p: PreparedCase) -> dict[str, Any]:
    """Per-case lesion statistics on the CT grid; SUVmax from PET resampled through the
    DICOM geometry only (no registration). Lesions are 3-D connected components. On a
    simulated case, ``lesion_suvmax_simulated`` is the highest uptake the phantom gave a
    lesion (before PET blur and noise; NaN without a truth sidecar): a measured SUVmax above
    it is activity from outside the lesion, such as urine beside the bladder wall."""
    label = p.label > 0
    simulated = [float(lesion["suv_max"]) for lesion in (case.truth or {}).get("lesions", []) if "suv_max" in lesion]
    voxel_ml = float(np.prod(case.ct.GetSpacing())) / 1000.0
    return {
        "case_id": case.case_id,
        "patient": case.patient,
        "ct_slices": case.ct.GetSize()[2],
        "pet_slices": case.pet.GetSize()[2],
        "lesion_slices": int(label.any(axis=(1, 2)).sum()),
        "lesions": int(p.lesion_ids.max()),
        "lesion_volume_ml": float(label.sum()) * voxel_ml,
        "lesion_suvmax": float(p.suv["geometric"][label].max()) if label.any() else float("nan"),
        "lesion_suvmax_simulated": max(simulated) if simulated else float("nan"),
        "simulated": bool(case.meta.get("simulated", False)),
    }


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


def lesion_and_hot_slices(p: PreparedCase) -> tuple[int, int | None]:
    """The largest lesion slice and the hottest lesion-free slice (the bladder on the phantom)."""
    area = (p.label > 0).reshape(len(p.label), -1).sum(axis=1)
    hot = np.where(area == 0, p.suv["refined"].reshape(len(area), -1).max(axis=1), -np.inf)
    hot_z = int(np.argmax(hot)) if np.isfinite(hot.max()) else None
    return int(np.argmax(area)), hot_z


def fuse_slice(p: PreparedCase, z: int, spec: dict[str, Any], *, size: int, options: dict[str, Any]):
    """One detector input slice for one input spec; returns (image (S,S,3) float, LetterboxInfo).

    ``spec["layout"]``: ``method`` (default) takes the method's own three channels;
    ``ct_pet_fused`` makes the control ``[CT, PET, grey(method)]``, which has the same two
    modality channels as the proposed input, so that the channel count and the fusion rule
    are compared apart."""
    source = "refined" if spec.get("refine", True) else "geometric"
    ct, pet = p.ct01[z], p.pet01[source][z]
    fused = fuse(spec["method"], ct, pet, suv=p.suv[source][z], region=p.body[z],
                 **options.get(spec["method"], {}))
    if spec.get("layout", "method") == "ct_pet_fused":
        fused = np.stack([ct, pet, to_gray(fused)], axis=-1).astype(np.float32)
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

