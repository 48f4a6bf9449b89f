"""Stage ``datasets_pelvis``: one YOLO dataset + COCO JSON per fusion input, one patient split.

Every input shares one seeded patient-level split, stratified by lesion burden, so every
comparison between inputs is paired. With a locked test cohort (``test_align_dir``) the
development patients split into train and val only, and the test split is that cohort:
every slice of every volume. Outputs under ``out``::

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
from crossmodal.parallel import Workers
from crossmodal.parallel import map_jobs
from crossmodal.parallel import patient_workers
from crossmodal.params import study_cohort
from crossmodal.stages.pelvis import load_fused
from crossmodal.stages.pelvis import used_inputs

SPLITS = ("train", "val", "test")


def run(params: dict[str, Any], *, align_dir: str | Path, out: str | Path,
        test_align_dir: str | Path | None = None) -> pd.DataFrame:
    """Export the datasets of every input a planned run uses (params ``detect``; class
    names from the study's ``cohort`` entry); the test split from ``test_align_dir``."""
    names = study_cohort(params)["label_names"]
    cfg = {"detectors": params["detect"]["detectors"], "inputs": params["detect"]["inputs"],
           "reference": params["detect"].get("reference"),
           "seeds": params["detect"]["seeds"], "split": params["detect"]["split"],
           "train_slice_stride": params["detect"]["train_slice_stride"]}
    split = export_datasets(align_dir, out, cfg, class_names=[names[k] for k in sorted(names)],
                            jobs=patient_workers(params), test_align_dir=test_align_dir)
    print(split["split"].value_counts().to_dict())
    return split


def export_datasets(align_dir: str | Path, out_dir: str | Path, cfg: dict[str, Any], *,
                    class_names: list[str], jobs: int | str | Workers = 1,
                    test_align_dir: str | Path | None = None) -> pd.DataFrame:
    """Write ``<out>/<input>/`` (YOLO layout, data.yaml, coco_<split>.json) for every input,
    on ``jobs`` processes (one input each); return the patient split. ``test_align_dir``:
    the locked test cohort's align_fuse output, which becomes the test split."""
    align_dir, out = Path(align_dir), Path(out_dir)
    slices = pd.read_csv(align_dir / "slices.csv")
    split = split_patients(slices, fractions=cfg["split"]["fractions"], seed=int(cfg["split"]["seed"]),
                           names=SPLITS[:len(cfg["split"]["fractions"])])
    if test_align_dir is not None:
        test_slices = pd.read_csv(Path(test_align_dir) / "slices.csv")
        split = pd.concat([split, locked_test_split(slices, test_slices)], ignore_index=True)
        slices = pd.concat([slices, test_slices], ignore_index=True)
    write_datasets(slices, split, (align_dir, Path(test_align_dir or align_dir)), out, cfg, class_names=class_names,
                   jobs=jobs)
    return split


def export_test_datasets(align_dir: str | Path, out_dir: str | Path, cfg: dict[str, Any], *,
                         class_names: list[str], dev_align_dir: str | Path, jobs: int | str | Workers = 1
                         ) -> pd.DataFrame:
    """Every case of ``align_dir`` as a test patient (a cohort the detectors are only tested
    on), in the layout of :func:`export_datasets`; refuses a patient also in the development
    cohort of ``dev_align_dir``."""
    slices = pd.read_csv(Path(align_dir) / "slices.csv")
    split = locked_test_split(pd.read_csv(Path(dev_align_dir) / "slices.csv"), slices)
    write_datasets(slices, split, (Path(align_dir), Path(align_dir)), Path(out_dir), cfg, class_names=class_names,
                   jobs=jobs)
    return split


def write_datasets(slices: pd.DataFrame, split: pd.DataFrame, align_dirs: tuple[Path, Path], out: Path,
                   cfg: dict[str, Any], *, class_names: list[str], jobs: int | str | Workers = 1) -> None:
    """``split.csv``, ``hot_negatives.csv`` and every used input's dataset (:func:`export_input`)."""
    out.mkdir(parents=True, exist_ok=True)
    split.to_csv(out / "split.csv", index=False)
    slices.loc[slices["hot_negative"].astype(bool), ["case_id", "z"]].to_csv(out / "hot_negatives.csv", index=False)
    export = functools.partial(export_input, align_dirs=align_dirs, out=out,
                               split_of=dict(zip(split["case_id"], split["split"])),
                               stride=int(cfg.get("train_slice_stride", 1)), class_names=class_names)
    map_jobs(export, used_inputs(cfg), jobs=jobs)


def split_patients(slices: pd.DataFrame, *, fractions, seed: int, names=SPLITS) -> pd.DataFrame:
    """Patient-level split stratified by lesion burden (slices with boxes: above/below median)."""
    per_patient = slices.groupby("patient").agg(case_id=("case_id", "first"), boxes=("n_boxes", "sum"))
    strata = (per_patient["boxes"] > per_patient["boxes"].median()).astype(int)
    split = patient_split(list(per_patient.index), list(strata), fractions=fractions, seed=seed, names=names)
    return pd.DataFrame({"patient": per_patient.index, "case_id": per_patient["case_id"],
                         "stratum": strata.values, "split": [split[p] for p in per_patient.index]})


def locked_test_split(dev_slices: pd.DataFrame, test_slices: pd.DataFrame) -> pd.DataFrame:
    """Every case of the locked test cohort as the test split; refuses a patient or case
    that is also in the development cohort."""
    shared = sorted(set(dev_slices["patient"]) & set(test_slices["patient"]))
    shared += sorted(set(dev_slices["case_id"]) & set(test_slices["case_id"]))
    if shared:
        raise ValueError(f"the locked test cohort shares patients or cases with the development cohort: {shared[:5]}")
    per_patient = test_slices.groupby("patient").agg(case_id=("case_id", "first"))
    return pd.DataFrame({"patient": per_patient.index, "case_id": per_patient["case_id"], "stratum": -1,
                         "split": "test"})


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


def export_input(name: str, align_dirs: tuple[Path, Path], out: Path, *, split_of: dict[str, str], stride: int,
                 class_names: list[str]) -> None:
    """Write one input's YOLO dataset and COCO JSONs (training slices thinned by ``stride``);
    ``align_dirs`` = (development, test) align_fuse outputs (the same folder without a
    locked test cohort)."""
    dev_dir, test_dir = align_dirs
    records = []
    for folder, wanted in ((dev_dir, lambda s: s != "test"), (test_dir, lambda s: s == "test")):
        cases = sorted(c for c, s in split_of.items() if wanted(s))
        records += [r for r in records_for_input(folder / "fused" / name, cases)]
    records = [r for i, r in enumerate(records) if split_of[r.case_id] != "train" or i % stride == 0]
    export_yolo(records, out / name, split_of=split_of, class_names=class_names)
    for s in SPLITS:
        export_coco(records, out / name / f"coco_{s}.json", split=s, split_of=split_of, class_names=class_names)
