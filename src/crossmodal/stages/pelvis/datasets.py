"""Stage ``datasets_pelvis``: one YOLO dataset + COCO JSON per fusion input, one patient split.

Every input shares one seeded patient-level split, stratified by lesion burden, so every
comparison between inputs is paired. Outputs under ``out``::

    split.csv                     patient, case_id, stratum, split
    hot_negatives.csv             case_id, z of the hot lesion-free slices (for the figures)
    <input>/                      YOLO layout, data.yaml, coco_<split>.json (inputs some run uses)
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pandas as pd

from crossmodal.detect.dataset import SliceRecord
from crossmodal.detect.dataset import patient_split
from crossmodal.detect.export import export_coco
from crossmodal.detect.export import export_yolo
from crossmodal.parallel import compute_setting
from crossmodal.parallel import map_jobs
from crossmodal.stages.pelvis import load_fused
from crossmodal.stages.pelvis import used_inputs

SPLITS = ("train", "val", "test")


def run(params: dict[str, Any], *, align_dir: str | Path, out: str | Path) -> pd.DataFrame:
    """Export the datasets of every input a planned run uses (params ``detect``; class
    names from ``cohort.pelvis.label_names``)."""
    names = params["cohort"]["pelvis"]["label_names"]
    cfg = {"detectors": params["detect"]["detectors"], "inputs": params["detect"]["inputs"],
           "seeds": params["detect"]["seeds"], "split": params["detect"]["split"],
           "train_slice_stride": params["detect"]["train_slice_stride"]}
    split = export_datasets(align_dir, out, cfg, class_names=[names[k] for k in sorted(names)],
                            jobs=compute_setting(params, "jobs"))
    print(split["split"].value_counts().to_dict())
    return split


def export_datasets(align_dir: str | Path, out_dir: str | Path, cfg: dict[str, Any], *,
                    class_names: list[str], jobs: int | str = 1) -> pd.DataFrame:
    """Write ``<out>/<input>/`` (YOLO layout, data.yaml, coco_<split>.json) for every input,
    on ``jobs`` processes (one input each); return the patient split."""
    align_dir, out = Path(align_dir), Path(out_dir)
    slices = pd.read_csv(align_dir / "slices.csv")
    split = split_patients(slices, fractions=cfg["split"]["fractions"], seed=int(cfg["split"]["seed"]))
    out.mkdir(parents=True, exist_ok=True)
    split.to_csv(out / "split.csv", index=False)
    slices.loc[slices["hot_negative"].astype(bool), ["case_id", "z"]].to_csv(out / "hot_negatives.csv", index=False)
    export = functools.partial(export_input, align_dir=align_dir, out=out,
                               split_of=dict(zip(split["case_id"], split["split"])),
                               stride=int(cfg.get("train_slice_stride", 1)), class_names=class_names)
    map_jobs(export, used_inputs(cfg), jobs=jobs)
    return split


def split_patients(slices: pd.DataFrame, *, fractions, seed: int) -> pd.DataFrame:
    """Patient-level split stratified by lesion burden (slices with boxes: above/below median)."""
    per_patient = slices.groupby("patient").agg(case_id=("case_id", "first"), boxes=("n_boxes", "sum"))
    strata = (per_patient["boxes"] > per_patient["boxes"].median()).astype(int)
    split = patient_split(list(per_patient.index), list(strata), fractions=fractions, seed=seed)
    return pd.DataFrame({"patient": per_patient.index, "case_id": per_patient["case_id"],
                         "stratum": strata.values, "split": [split[p] for p in per_patient.index]})


def records_for_input(fused_dir: Path, case_ids: list[str]) -> list[SliceRecord]:
    """The fused slices of one input as detector dataset records (images back in [0, 1])."""
    records = []
    for case_id in case_ids:
        art = load_fused(fused_dir / f"{case_id}.npz")
        for k, z in enumerate(art["z"]):
            sel = art["box_slice"] == k
            records.append(SliceRecord(case_id=case_id, z=int(z), image=art["images"][k] / 255.0,
                                       boxes=art["boxes"][sel], classes=art["box_class"][sel].astype(int),
                                       lesion_ids=art["box_lesion"][sel].astype(int)))
    return records


def export_input(name: str, align_dir: Path, out: Path, *, split_of: dict[str, str], stride: int,
                 class_names: list[str]) -> None:
    """Write one input's YOLO dataset and COCO JSONs (training slices thinned by ``stride``)."""
    records = [r for i, r in enumerate(records_for_input(align_dir / "fused" / name, sorted(split_of)))
               if split_of[r.case_id] != "train" or i % stride == 0]
    export_yolo(records, out / name, split_of=split_of, class_names=class_names)
    for s in SPLITS:
        export_coco(records, out / name / f"coco_{s}.json", split=s, split_of=split_of, class_names=class_names)
