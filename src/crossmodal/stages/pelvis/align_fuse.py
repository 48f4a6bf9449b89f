"""Stage ``align_fuse_pelvis``: align PET to CT, enhance, localise and fuse every input.

Turns the ingested cases into the per-slice detector inputs of every fusion input (the
proposed fusion, its ablations and the baselines), plus the tables and figure data of the
step's page. Artifacts under ``out``::

    alignment.csv                 per case: residual error (mm) before/after refinement
    transforms/<case>.tfm         the refined CT->PET transform (SimpleITK)
    region_check.csv              per case: lesion voxels inside the localised region
    slices.csv                    the selected slices: case, z, lesion boxes, hot negative
    fusion_quality.csv            per case, input and quality slice: EN, SD, SF, MI, SSIM, QABF
    lesions.csv                   per case: slices, lesions, volume (ml), SUVmax on the CT grid
    fused/<input>/<case>.npz      images (n, S, S, 3) uint8, z, boxes in letterbox pixels; only
                                  the inputs some detector trains on (detect.detectors)
    lesion_summary.csv            median [IQR], range and totals of lesions.csv
    alignment_summary.csv         mean ± sd [patient-bootstrap CI] of the alignment errors
    fusion_quality_summary.csv    the same per input, slices averaged per patient first
    figures/montage/<case>.npz    largest lesion slice of the first cases: CT (HU), PET (SUV,
                                  geometry only) and label, for the cohort montage
    figures/figure_case.npz       the case shown step by step (``align_fuse.figure_case``):
                                  its slices at each step, PET on the CT grid before/after
                                  refinement (through the saved transform) and every input
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import SimpleITK as sitk

from crossmodal.imaging.fusion import fusion_quality
from crossmodal.imaging.fusion import to_gray
from crossmodal.imaging.petct import PreparedCase
from crossmodal.imaging.petct import fuse_slice
from crossmodal.imaging.petct import lesion_and_hot_slices
from crossmodal.imaging.petct import lesion_stats
from crossmodal.imaging.petct import prepare
from crossmodal.imaging.petct import region_check
from crossmodal.imaging.petct import select_slices
from crossmodal.imaging.petct import slice_boxes
from crossmodal.imaging.preprocess import edges
from crossmodal.imaging.preprocess import letterbox
from crossmodal.io.case import Case
from crossmodal.io.case import load_cases
from crossmodal.parallel import Workers
from crossmodal.parallel import map_jobs
from crossmodal.parallel import patient_workers
from crossmodal.stages.pelvis import used_inputs
from crossmodal.stats.bootstrap import bootstrap_mean_ci

TABLES = ("alignment", "region_check", "slices", "fusion_quality", "lesions")
ALIGNMENT_COLUMNS = ["error_before_mm", "error_after_mm", "error_after_max_mm", "pet_voxel_mm"]
QUALITY_METRICS = ["EN", "SD", "SF", "MI_CT", "MI_PET", "SSIM_CT", "SSIM_PET", "QABF"]
LESION_COLUMNS = ["ct_slices", "pet_slices", "lesion_slices", "lesions", "lesion_volume_ml", "lesion_suvmax",
                  "lesion_suvmax_simulated"]


def run(params: dict[str, Any], *, ingest_dir: str | Path, out: str | Path, test_ingest_dir: str | Path | None = None,
        test_out: str | Path | None = None) -> dict[str, pd.DataFrame]:
    """Align and fuse every ingested case (params ``align_fuse``; the number of montage
    cases from ``cohort_report.montage_patients``); write the artifacts and summaries.
    With ``test_ingest_dir``, also the locked test cohort into ``test_out``: every slice
    of every case, so the detectors are tested on whole volumes."""
    cfg = params["align_fuse"]
    jobs = patient_workers(params)
    tested = used_inputs(params["detect"])  # the inputs some detector trains on (detect.detectors)
    tables = run_align_fuse(load_cases(ingest_dir), out, cfg, progress=True, jobs=jobs,
                            montage_cases=int(params["cohort_report"]["montage_patients"]), export=tested)
    tables.update(write_summaries(tables, out, seed=int(cfg["seed"])))
    if test_ingest_dir is not None:  # only the inputs some detector is tested on
        test_cfg = {**cfg, "inputs": {k: v for k, v in cfg["inputs"].items() if k in tested}}
        test = run_align_fuse(load_cases(test_ingest_dir), test_out, test_cfg, progress=True, jobs=jobs,
                              every_slice=True)
        tables.update({f"test_{name}": table for name, table in test.items()})
        tables["test_alignment_summary"] = alignment_summary(test["alignment"], seed=int(cfg["seed"]))
        tables["test_alignment_summary"].to_csv(Path(test_out) / "alignment_summary.csv")
    alignment = tables["alignment"]
    if "error_after_mm" in alignment:
        print(f"alignment error: {alignment['error_before_mm'].mean():.2f} mm before, "
              f"{alignment['error_after_mm'].mean():.2f} mm after refinement")
    return tables


def run_align_fuse(cases: list[Case], out_dir: str | Path, cfg: dict[str, Any], *, progress: bool = False,
                   jobs: int | str | Workers = 1, montage_cases: int = 0, every_slice: bool = False,
                   export: list[str] | None = None) -> dict[str, pd.DataFrame]:
    """Align and fuse ``cases`` (params section ``align_fuse``) on ``jobs`` processes (the
    outputs do not depend on ``jobs``: registration is single-threaded and seeded, and slice
    sampling is seeded by case position); write the per-case artifacts and tables.
    ``every_slice``: fuse every slice (a test cohort) instead of the sampled training slices,
    without fusion-quality rows or figures. ``export``: the inputs whose slices are written
    (default every input); the others get fusion-quality rows only."""
    out = Path(out_dir)
    export = list(cfg["inputs"]) if export is None else [name for name in cfg["inputs"] if name in export]
    for folder in ["transforms", "figures/montage", *(f"fused/{name}" for name in export)]:
        (out / folder).mkdir(parents=True, exist_ok=True)
    figure_index = -1 if every_slice else min(int(cfg["figure_case"]), len(cases) - 1)
    per_case = map_jobs(functools.partial(align_fuse_case, out=out, cfg=cfg, montage_cases=montage_cases,
                                          figure_index=figure_index, every_slice=every_slice, export=export),
                        enumerate(cases), jobs=jobs, progress=progress, desc="align + fuse", unit="case")
    tables = {name: pd.DataFrame([row for rows in per_case for row in rows[name]]) for name in TABLES}
    for name, table in tables.items():
        table.to_csv(out / f"{name}.csv", index=False)
    return tables


def align_fuse_case(item: tuple[int, Case], out: Path, cfg: dict[str, Any], *, montage_cases: int = 0,
                    figure_index: int = -1, every_slice: bool = False,
                    export: list[str] | None = None) -> dict[str, list[dict]]:
    """Align, localise and fuse one case (``item`` = its position in the cohort, which seeds
    its slice sampling, and the case); write its transform, one ``fused/<input>/`` file per
    exported input (``export``, default all) and its figure data; return its rows of the
    stage tables. ``every_slice``: every slice of the volume, no quality rows."""
    i, case = item
    p, transform = prepare(case, cfg)
    sitk.WriteTransform(transform, str(out / "transforms" / f"{case.case_id}.tfm"))
    rows: dict[str, list[dict]] = {"alignment": [p.alignment], "region_check": [region_check(p)],
                                   "lesions": [lesion_stats(case, p)], "slices": [], "fusion_quality": []}
    chosen, hot_z = select_slices(p, cfg["slices"], seed=int(cfg["seed"]) + i)
    if every_slice:
        chosen = list(range(len(p.label)))
    lesion_z = [z for z in chosen if p.label[z].any()]
    n_quality = 0 if every_slice else cfg["quality_slices_per_case"]
    quality_z = set(lesion_z[:: max(1, len(lesion_z) // n_quality)][:n_quality]) if n_quality else set()
    for k, (name, spec) in enumerate(cfg["inputs"].items()):
        written = export is None or name in export
        if not written and k > 0:  # only its fusion-quality slices are needed
            quality, _ = fuse_input(p, name, spec, [z for z in chosen if z in quality_z], None, cfg=cfg,
                                    quality_z=quality_z)
            rows["fusion_quality"] += quality
            continue
        quality, slices = fuse_input(p, name, spec, chosen, out / "fused" / name / f"{case.case_id}.npz"
                                     if written else None, cfg=cfg, quality_z=quality_z)
        rows["fusion_quality"] += quality
        if k == 0:
            rows["slices"] = [{"case_id": case.case_id, "patient": case.patient, "z": z, "n_boxes": n,
                               "hot_negative": z in hot_z} for z, n in slices]
    if i < montage_cases:
        write_montage_slice(case, p, out / "figures" / "montage" / f"{case.case_id}.npz")
    if i == figure_index:
        write_figure_case(case, p, transform, out / "figures" / "figure_case.npz", cfg)
    return rows


def fuse_input(p: PreparedCase, name: str, spec: dict[str, Any], chosen: list[int], path: Path | None, *,
               cfg: dict[str, Any], quality_z: set[int]) -> tuple[list[dict], list[tuple[int, int]]]:
    """Fuse the chosen slices of one case for one input; write them with their lesion boxes
    to ``path`` (``None``: not written); return the fusion-quality rows and (z, number of
    boxes) per slice."""
    size = cfg["image_size"]
    images, boxes, box_slice, box_class, box_lesion, quality = [], [], [], [], [], []
    for k, z in enumerate(chosen):
        image, info = fuse_slice(p, z, spec, size=size, options=cfg["method_options"])
        images.append(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))
        slice_box, classes, lesion = slice_boxes(p, z, info)
        boxes.append(slice_box)
        box_slice.append(np.full(len(slice_box), k, np.int32))
        box_class.append(classes)
        box_lesion.append(lesion)
        if z in quality_z:
            source = "refined" if spec.get("refine", True) else "geometric"
            box = p.region if spec.get("crop", True) else None
            ct_l, _ = letterbox(p.ct01[z], size=size, box=box)
            pet_l, _ = letterbox(p.pet01[source][z], size=size, box=box)
            quality.append({"case_id": p.case_id, "input": name, "z": z,
                            **fusion_quality(ct_l, pet_l, to_gray(image))})
    if path is None:
        return quality, [(z, len(b)) for z, b in zip(chosen, boxes)]
    np.savez_compressed(path, images=np.stack(images), z=np.asarray(chosen, np.int32),
                        boxes=np.concatenate(boxes), box_slice=np.concatenate(box_slice),
                        box_class=np.concatenate(box_class), box_lesion=np.concatenate(box_lesion))
    return quality, [(z, len(b)) for z, b in zip(chosen, boxes)]


def write_montage_slice(case: Case, p: PreparedCase, path: Path) -> None:
    """CT (HU), PET (SUV, resampled through the DICOM geometry only) and label at the
    largest lesion slice: any misregistration stays visible in the montage."""
    z = int(np.argmax((p.label > 0).sum(axis=(1, 2))))
    np.savez_compressed(path, case_id=case.case_id, z=z, ct_hu=sitk.GetArrayFromImage(case.ct)[z],
                        pet_suv=p.suv["geometric"][z], label=p.label[z])


def write_figure_case(case: Case, p: PreparedCase, transform: sitk.Transform, path: Path,
                      cfg: dict[str, Any]) -> None:
    """Everything the step-by-step figures of one case show, computed here so the page
    only draws: the steps at its largest lesion slice, the volumes of the registration
    figure (PET on the CT grid before and after the saved refinement) and every input at
    the lesion slice and at the hottest lesion-free slice."""
    lesion_z, hot_z = lesion_and_hot_slices(p)
    pet_native = sitk.GetArrayFromImage(case.pet)
    pz = min(int(round(lesion_z * pet_native.shape[0] / len(p.ct01))), len(pet_native) - 1)
    rows = [lesion_z] if hot_z is None else [lesion_z, hot_z]
    images, boxes, box_row, box_input = [], [], [], []
    for r, z in enumerate(rows):
        for k, spec in enumerate(cfg["inputs"].values()):
            image, info = fuse_slice(p, z, spec, size=cfg["image_size"], options=cfg["method_options"])
            images.append(image.astype(np.float32))
            found = slice_boxes(p, z, info)[0]
            boxes.append(found)
            box_row += [r] * len(found)
            box_input += [k] * len(found)
    np.savez_compressed(
        path, case_id=case.case_id, lesion_z=lesion_z, hot_z=-1 if hot_z is None else hot_z,
        ct01=p.ct01[lesion_z], pet_native=pet_native[pz],
        edges=region_edges(sitk.GetArrayFromImage(case.ct)[lesion_z], p.ct_body[lesion_z], cfg["localise"]),
        ct_body=p.ct_body[lesion_z], pet_body=p.pet_body[lesion_z], region=np.asarray(p.region),
        ct_hu=sitk.GetArrayFromImage(case.ct), spacing=np.asarray(case.ct.GetSpacing()),
        pet_geometric=p.suv["geometric"], pet_refined=p.suv["refined"],
        inputs=np.asarray(list(cfg["inputs"])), rows=np.asarray(rows),
        input_images=np.stack(images).reshape(len(rows), len(cfg["inputs"]), *images[0].shape),
        boxes=np.concatenate(boxes).reshape(-1, 4), box_row=np.asarray(box_row, np.int32),
        box_input=np.asarray(box_input, np.int32))


def region_edges(hu: np.ndarray, body: np.ndarray, localise: dict[str, Any]) -> np.ndarray:
    """The Canny edges a slice contributes to the localised region: the body outline's,
    and the bones' inside the body (``localise.region: edges``)."""
    low, high = localise["bone_window"]
    bone = np.clip((np.where(body, hu, low) - low) / (high - low), 0.0, 1.0)
    return edges(body.astype(np.float64)) | (edges(bone) & body)


# ----------------------------------------------------------------------------- summaries


def write_summaries(tables: dict[str, pd.DataFrame], out: str | Path, *, seed: int) -> dict[str, pd.DataFrame]:
    """The page's summary tables (bootstrap CIs and quantiles are computed here, not on the page)."""
    summaries = {"lesion_summary": describe_distribution(tables["lesions"], LESION_COLUMNS),
                 "alignment_summary": alignment_summary(tables["alignment"], seed=seed),
                 "fusion_quality_summary": fusion_quality_summary(tables["fusion_quality"], seed=seed)}
    for name, table in summaries.items():
        table.to_csv(Path(out) / f"{name}.csv")
    return summaries


def describe_distribution(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Median [IQR] and range of each column, plus totals where a sum makes sense."""
    rows = []
    for col in columns:
        values = table[col].dropna()
        rows.append({
            "quantity": col,
            "total": values.sum() if col.endswith(("slices", "lesions")) else np.nan,
            "median": values.median(),
            "q1": values.quantile(0.25),
            "q3": values.quantile(0.75),
            "min": values.min(),
            "max": values.max(),
        })
    return pd.DataFrame(rows).set_index("quantity")


def summary_with_ci(table: pd.DataFrame, columns: list[str], *, by: str | None = None,
                    n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """``mean ± sd [95 % CI]`` per column (and per group), one row per unit in ``table``."""
    groups = table.groupby(by, sort=False) if by else [("all", table)]
    rows = []
    for key, group in groups:
        row = {by or "group": key, "n": len(group)}
        for col in columns:
            mean, lo, hi = bootstrap_mean_ci(group[col], n_boot=n_boot, seed=seed)
            row[col] = f"{mean:.3g} ± {group[col].std(ddof=1):.2g} [{lo:.3g}, {hi:.3g}]"
        rows.append(row)
    return pd.DataFrame(rows).set_index(by or "group")


def alignment_summary(alignment: pd.DataFrame, *, seed: int) -> pd.DataFrame:
    """Alignment errors (those known: phantom truth) as mean ± sd [patient-bootstrap CI]."""
    return summary_with_ci(alignment, [c for c in ALIGNMENT_COLUMNS if c in alignment], seed=seed)


def fusion_quality_summary(quality: pd.DataFrame, *, seed: int) -> pd.DataFrame:
    """Fusion metrics per input: slices averaged per patient first, so the bootstrap CI is
    over patients, not slices."""
    per_patient = quality.groupby(["input", "case_id"], sort=False)[QUALITY_METRICS].mean().reset_index()
    return summary_with_ci(per_patient, QUALITY_METRICS, by="input", seed=seed)
