"""Stage ``datasets_skeleton``: the leakage plan and one YOLO dataset per (modality, detector).

Reads ``cohort.skeleton`` (modalities, names, label source) and ``part2_detect`` (leakage
rule, channels, slice sampling, seed). Writes under ``out``::

    cohort_series.csv       every ingested series (grid, slices, lesion slices, label)
    assignment.csv          case_id, modality, detector, role (train | val | scored)
    series.csv              one row per scored series: case_id, modality, n_slices, detector, y
    detectors.csv           one row per detector: modality, detector, code, seed, patients and
                            slices (training: tiles) per role, trainable (any lesion box
                            among its training tiles)
    lesion_sizes.csv        per 3-D lesion of every scored series: its largest cross-section
                            in mm and in detector pixels
    learning_curve.csv      fold d0's extra runs on nested shares of its training patients
                            (``part2_detect.learning_curve``): the data yaml of each
    <MOD>/d<k>/             the YOLO export of detector k (index.csv names its patients)

Every scored series is exported whole (its test split); a detector's train and val patients
give tiles (:func:`~crossmodal.detect.series_slices.training_tiles`) of their lesion slices
and of sampled lesion-free ones. Exports run side by side
(``compute.jobs``); each is seeded on its own, so the files do not depend on that setting.
"""

from __future__ import annotations

import functools
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crossmodal.detect.export import INDEX_COLUMNS
from crossmodal.detect.export import export_yolo
from crossmodal.detect.export import read_index
from crossmodal.detect.export import read_split
from crossmodal.detect.leakage import assign_detectors
from crossmodal.detect.leakage import fit_split
from crossmodal.detect.leakage import nested_subsets
from crossmodal.detect.series_slices import detector_slices
from crossmodal.io.case import Case
from crossmodal.io.case import load_cases
from crossmodal.learn.patients import modality_names
from crossmodal.learn.patients import series_table
from crossmodal.parallel import map_jobs
from crossmodal.parallel import patient_workers

LESION_SIZE_COLUMNS = ("case_id", "modality", "lesion", "max_diameter_mm", "max_diameter_px")
LEARNING_CURVE_COLUMNS = ("modality", "detector", "code", "seed", "fraction", "data",
                          "train_patients", "train_slices", "train_boxes", "trainable")


def detector_jobs(series: pd.DataFrame, assignment: pd.DataFrame, names: dict[str, str],
                  cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """One job per (modality, detector): its patients' roles (``train``, ``val``, ``test`` =
    scored) among the patients who have that modality, and its seed."""
    labels = series.groupby("case_id")["y"].first().to_dict()
    seed = int(cfg["seed"])
    jobs = []
    for code, name in names.items():
        have = set(series.loc[series["code"] == code, "case_id"])
        for detector in sorted(assignment["detector"].unique()):
            rows = assignment[(assignment["detector"] == detector)
                              & assignment["case_id"].isin(have)]
            k = int(detector[1:])
            split = fit_split(sorted(rows.loc[rows["role"] == "fit", "case_id"]), labels,
                              val_fraction=float(cfg["val_fraction"]),
                              seed=seed + 100 * k + list(names).index(code))
            split.update({c: "test" for c in sorted(rows.loc[rows["role"] == "scored", "case_id"])})
            jobs.append({"code": code, "modality": name, "detector": detector, "seed": seed + k,
                         "split": split, "labels": {c: labels[c] for c in split}})
    return jobs


def _validate_on_train(data_yaml: Path) -> None:
    """Point ``val`` at the training slices (tiny cohorts without a validation patient)."""
    import yaml

    text = Path(data_yaml).read_text()
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    data = yaml.safe_load(text)
    data["val"] = data["train"]
    Path(data_yaml).write_text(header + "# val: no validation slice, checkpoint chosen on train\n"
                               + yaml.safe_dump(data, sort_keys=False))


def _lesion_size_tap(records, sizes: list, split: dict[str, str]):
    """Pass ``records`` on; note each scored lesion cross-section's larger side (detector
    pixels and mm) in ``sizes``."""
    for record in records:
        if split.get(record.case_id) == "test":
            boxes = np.asarray(record.boxes, float).reshape(-1, 4)
            sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
            sizes += [(record.case_id, int(lesion), float(side),
                       float(side) * float(record.extra["mm_per_px"]))
                      for lesion, side in zip(record.lesion_array(), sides)]
        yield record


def lesion_size_table(sizes: list, modality: str) -> pd.DataFrame:
    """One row per 3-D lesion of a series: its largest cross-section side in mm and in
    detector pixels."""
    frame = pd.DataFrame(sizes, columns=["case_id", "lesion", "max_diameter_px", "max_diameter_mm"])
    frame = frame.groupby(["case_id", "lesion"], as_index=False)[
        ["max_diameter_mm", "max_diameter_px"]].max()
    return frame.assign(modality=modality)[list(LESION_SIZE_COLUMNS)]


def subset_data_yaml(data_yaml: Path, images: list[str], name: str) -> Path:
    """A copy of ``data_yaml`` whose training set is only ``images`` (relative to the
    dataset root), listed in ``<name>.txt`` beside it; ``<name>.yaml`` is returned."""
    import yaml

    root = data_yaml.parent
    listing = root / f"{name}.txt"
    # "./" lines are relative to the listing's folder (ultralytics), so the files do not
    # depend on where the dataset lies
    listing.write_text("".join(f"./{image}\n" for image in images))
    data = yaml.safe_load(data_yaml.read_text())
    if data.get("val") == data["train"]:  # validated on its training set: on the share's only
        data["val"] = listing.name
    data["train"] = listing.name  # relative to the dataset root, data["path"]
    out = root / f"{name}.yaml"
    out.write_text(f"# training tiles of {name}: {len(images)} (learning curve)\n"
                   + yaml.safe_dump(data, sort_keys=False))
    return out


def learning_curve_plans(job: dict[str, Any], index: pd.DataFrame, data_yaml: Path,
                         fractions, *, seed: int) -> list[dict[str, Any]]:
    """Fold ``d0``'s runs on nested shares of its training patients (same tiles, same
    scored patients); one plan row per share."""
    train = index[index["split"] == "train"]
    patients = sorted(train["case_id"].unique())
    subsets = nested_subsets(patients, job["labels"], fractions, seed=seed)
    plans = []
    for fraction, chosen in sorted(subsets.items()):
        rows = train[train["case_id"].isin(chosen)]
        name = f"learning_curve_{round(100 * fraction):03d}"
        subset_data_yaml(data_yaml, rows["image"].tolist(), name)
        plans.append({"modality": job["modality"], "detector": job["detector"],
                      "code": job["code"], "seed": job["seed"], "fraction": fraction,
                      "data": f"{name}.yaml", "train_patients": len(chosen),
                      "train_slices": len(rows), "train_boxes": int(rows["n_boxes"].sum()),
                      "trainable": int(rows["n_boxes"].sum()) > 0})
    return plans


def export_detector_dataset(job: dict[str, Any], *, ingest_dir: Path, out: Path,
                            cfg: dict[str, Any], class_names: list[str]) -> dict[str, Any]:
    """Write one detector's YOLO dataset; return its ``detectors.csv`` row, scored series,
    lesion sizes and (fold ``d0``) learning-curve plans."""
    split, name, detector = job["split"], job["modality"], job["detector"]
    cases = {c: Case.load(ingest_dir / "cases" / c) for c in split}
    dataset = out / name / detector
    shutil.rmtree(dataset, ignore_errors=True)
    sizes: list = []
    records = detector_slices(cases, job["code"], split, cfg["channels"][job["code"]],
                              size=tuple(cfg["slice_size"]), tile_size=int(cfg["tile_size"]),
                              seed=job["seed"],
                              negatives_per_positive=float(cfg["negatives_per_positive"]),
                              min_box_pixels=int(cfg.get("min_box_pixels", 1)))
    data_yaml = export_yolo(_lesion_size_tap(records, sizes, split), dataset, split_of=split,
                            class_names=class_names)
    index = pd.DataFrame(read_index(dataset), columns=list(INDEX_COLUMNS))
    train = index["split"] == "train"
    trainable = int(index.loc[train, "n_boxes"].sum()) > 0
    if trainable and not (index["split"] == "val").any():
        _validate_on_train(data_yaml)
    test_rows = read_split(dataset, "test")
    scored = [c for c, role in split.items() if role == "test"]
    n_slices = pd.Series([r["case_id"] for r in test_rows]).value_counts()
    patients_in = index.groupby("split")["case_id"].nunique()
    row = {"modality": name, "detector": detector, "code": job["code"], "seed": job["seed"],
           "train_patients": int(patients_in.get("train", 0)),
           "val_patients": int(patients_in.get("val", 0)), "scored_patients": len(scored),
           "train_slices": int(train.sum()), "train_boxes": int(index.loc[train, "n_boxes"].sum()),
           "scored_slices": len(test_rows), "trainable": trainable}
    series = [{"case_id": c, "modality": name, "n_slices": int(n_slices.get(c, 0)),
               "detector": detector, "y": job["labels"][c]} for c in sorted(scored)]
    curve = (learning_curve_plans(job, index, data_yaml, cfg.get("learning_curve") or [],
                                  seed=job["seed"]) if detector == "d0" else [])
    return {"detector": row, "series": series, "lesions": lesion_size_table(sizes, name),
            "learning_curve": curve}


def run(params: dict[str, Any], *, ingest_dir: str | Path,
        out: str | Path) -> dict[str, pd.DataFrame]:
    """Plan the detectors under the leakage rule and export their datasets (see module doc)."""
    cfg, cohort = params["part2_detect"], params["cohort"]["skeleton"]
    ingest_dir, out = Path(ingest_dir), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = modality_names(cohort)
    series = series_table(load_cases(ingest_dir), names=names,
                          label_source=cohort.get("patient_label", "truth"))
    labels = series.groupby("case_id")["y"].first().to_dict()
    assignment = assign_detectors(sorted(labels), [labels[c] for c in sorted(labels)],
                                  leakage=cfg["leakage"], n_folds=int(cfg["n_folds"]),
                                  holdout_fraction=float(cfg["holdout_fraction"]),
                                  seed=int(cfg["seed"]))
    jobs = detector_jobs(series, assignment, names, cfg)
    label_names = cohort.get("label_names") or {1: "metastasis"}
    class_names = [str(label_names[k]) for k in sorted(label_names, key=int)]  # label 1 -> class 0
    export = functools.partial(export_detector_dataset, ingest_dir=ingest_dir, out=out, cfg=cfg,
                               class_names=class_names)
    results = map_jobs(export, jobs, jobs=patient_workers(params), progress=True,
                       desc="part 2 detector datasets", unit="dataset")
    roles = [{"case_id": c, "modality": job["modality"], "detector": job["detector"],
              "role": "scored" if s == "test" else s}
             for job in jobs for c, s in job["split"].items()]
    curve = [plan for r in results for plan in r["learning_curve"]]
    tables = {"assignment": pd.DataFrame(roles),
              "series": pd.DataFrame([s for r in results for s in r["series"]]),
              "detectors": pd.DataFrame([r["detector"] for r in results]),
              "cohort_series": series,
              "lesion_sizes": pd.concat([r["lesions"] for r in results], ignore_index=True),
              "learning_curve": pd.DataFrame(curve, columns=list(LEARNING_CURVE_COLUMNS))}
    for key, table in tables.items():
        table.to_csv(out / f"{key}.csv", index=False)
    return tables
