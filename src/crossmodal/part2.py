"""Part 2 stages: bone metastasis from CT, MRI and PET (method spec, Part 2).

Per-modality YOLO detectors turn each series into detections; their confidences are
counted in bins (:mod:`crossmodal.learn.features`); classifiers (:mod:`crossmodal.learn.classify`)
and a C3D early-fusion network (:mod:`crossmodal.learn.c3d`) diagnose the patient. The stage
functions here glue those libraries to the ingested cohort and write every table the
chapter shows. Stage artifacts::

    <detect>/assignment.csv        case_id, modality, detector, role (train | val | scored)
    <detect>/series.csv            one row per scored series: case_id, modality, n_slices, detector
    <detect>/detections.csv        every detection at confidence >= predict.ap_conf on every slice
                                   of every scored series (letterbox pixels)
    <detect>/ap.csv, ap_folds.csv  AP50 / AP50-95 / lesion sensitivity per modality (pooled over
                                   detectors, patient-bootstrap CI) and per detector
    <detect>/training.csv          per detector: images, boxes, seconds, selected epoch
    <detect>/datasets/<MOD>/d<k>/  the YOLO export of detector k (index.csv names its patients)
    <detect>/detectors/<MOD>/d<k>/ weights.pt, detector.json
    <features>/features.csv        one row per patient: 8 bins x modality + has_* flags, y
    <features>/folds.csv           the repeated stratified k-fold shared by classifiers and C3D
    <classify>/oof.csv, metrics.csv, comparisons.csv, delong.csv, roc.csv, pr.csv
    <c3d>/oof.csv, metrics.csv, comparisons.csv, delong.csv, training.csv

The leakage rule (no patient's features from a detector that saw that patient) is
``part2_detect.leakage``: ``cross_fit`` splits the patients into K folds and scores fold
k with the detector trained on the other folds; ``holdout`` trains one detector per
modality on a disjoint subset and scores (and classifies) only the remaining patients.
Modality names: DICOM codes (``CT``, ``MR``, ``PT``) are the image keys of a
:class:`~crossmodal.io.case.Case`; features use ``cohort.skeleton.modality_names``
(``CT``, ``MRI``, ``PET``).
"""

from __future__ import annotations

import json
import shutil
import time
import warnings
from collections.abc import Iterator
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import SimpleITK as sitk

from crossmodal.detect.dataset import SliceRecord
from crossmodal.detect.dataset import boxes_from_mask
from crossmodal.detect.dataset import export_yolo
from crossmodal.detect.dataset import label_lesions_3d
from crossmodal.detect.dataset import patient_split
from crossmodal.detect.dataset import read_index
from crossmodal.detect.dataset import read_split
from crossmodal.detect.dataset import sample_slices
from crossmodal.io.case import Case
from crossmodal.imaging.preprocess import letterbox
from crossmodal.imaging.preprocess import window_ct
from crossmodal.imaging.register import resample_to_reference
from crossmodal.report.common import ci_column
from crossmodal.report.common import format_ci

__all__ = [
    "DEFAULT_MODALITY_NAMES",
    "assign_detectors",
    "c3d_volumes",
    "channel_stack",
    "choices_table",
    "claims_json",
    "claims_table",
    "cohort_table",
    "common_grid",
    "curves_figure",
    "feature_set_folds",
    "normalise_volume",
    "overall_verdict",
    "patient_label",
    "run_c3d",
    "run_classify",
    "run_detect",
    "run_features",
    "series_table",
    "verdict",
    "widen_boxes",
]

DEFAULT_MODALITY_NAMES = {"CT": "CT", "MR": "MRI", "PT": "PET"}
ROLES = ("train", "val", "scored")


def _names(cohort_cfg: Mapping[str, Any] | None) -> dict[str, str]:
    names = (cohort_cfg or {}).get("modality_names") or DEFAULT_MODALITY_NAMES
    codes = (cohort_cfg or {}).get("modalities") or list(names)
    return {code: names[code] for code in codes}


def _write(table: pd.DataFrame, path: Path, **kw) -> pd.DataFrame:
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, **kw)
    return table


def _progress(items, desc: str, progress: bool):
    if not progress:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="item")


# =========================================================================== cohort


def patient_label(case: Case, *, source: str = "truth") -> int:
    """Patient-level bone-metastasis label (1 = metastasis).

    Parameters
    ----------
    case : Case
    source : {"truth", "labels"}
        ``"truth"``: ``case.truth["patient_label"]`` (the phantom's sidecar, or a site's
        own diagnosis sidecar); ``"labels"``: positive when any series' lesion label has
        a voxel.
    """
    if source == "truth":
        if not case.truth or "patient_label" not in case.truth:
            raise ValueError(f"{case.case_id}: no patient_label in the truth sidecar; "
                             "set cohort.skeleton.patient_label: labels")
        return int(case.truth["patient_label"])
    if source == "labels":
        return int(any(sitk.GetArrayViewFromImage(lab).any() for lab in case.labels.values()))
    raise ValueError(f"patient_label source must be 'truth' or 'labels', not {source!r}")


def series_table(cases: list[Case], *, names: Mapping[str, str] = DEFAULT_MODALITY_NAMES,
                 label_source: str = "truth") -> pd.DataFrame:
    """One row per (patient, modality) series: grid, slices, lesion slices, patient label."""
    rows = []
    for case in cases:
        y = patient_label(case, source=label_source)
        for code, name in names.items():
            image = case.images.get(code)
            if image is None:
                continue
            label = case.labels.get(code)
            lab = sitk.GetArrayViewFromImage(label) if label is not None else None
            rows.append({
                "case_id": case.case_id, "code": code, "modality": name, "y": y,
                "n_slices": int(image.GetSize()[2]),
                "size": "x".join(map(str, image.GetSize())),
                "spacing_mm": "x".join(f"{v:.2f}" for v in image.GetSpacing()),
                "lesion_slices": (int(lab.reshape(len(lab), -1).any(axis=1).sum())
                                  if lab is not None else 0),
                "lesion_voxels": int((lab > 0).sum()) if lab is not None else 0,
            })
    return pd.DataFrame(rows)


def cohort_table(series: pd.DataFrame) -> pd.DataFrame:
    """Per modality: patients (positive / negative), slices, lesion slices, grid.

    The last row, ``any``, counts patients with at least one series.
    """
    rows = []
    for modality, group in series.groupby("modality", sort=False):
        rows.append({
            "modality": modality, "patients": group["case_id"].nunique(),
            "positive": int(group.loc[group["y"] == 1, "case_id"].nunique()),
            "negative": int(group.loc[group["y"] == 0, "case_id"].nunique()),
            "slices": int(group["n_slices"].sum()),
            "lesion_slices": int(group["lesion_slices"].sum()),
            "grid (voxels)": ", ".join(sorted(group["size"].unique())),
            "spacing (mm)": ", ".join(sorted(group["spacing_mm"].unique())),
        })
    per_patient = series.groupby("case_id").agg(y=("y", "first"), n=("modality", "size"))
    rows.append({"modality": "any", "patients": len(per_patient),
                 "positive": int((per_patient["y"] == 1).sum()),
                 "negative": int((per_patient["y"] == 0).sum()),
                 "slices": int(series["n_slices"].sum()),
                 "lesion_slices": int(series["lesion_slices"].sum()),
                 "grid (voxels)": "", "spacing (mm)": ""})
    table = pd.DataFrame(rows).set_index("modality")
    counts = per_patient["n"].value_counts().reindex([1, 2, 3], fill_value=0)
    table.attrs["modalities_per_patient"] = {int(k): int(v) for k, v in counts.items()}
    return table


# =========================================================================== images


def channel_stack(volume: np.ndarray, spec: Mapping[str, Any]) -> np.ndarray:
    """A modality volume as detector channels in [0, 1].

    Parameters
    ----------
    volume : ndarray, shape (Z, H, W)
        CT in HU, MR in scanner units, PET in SUV.
    spec : mapping
        ``windows``: list of ``[low, high]`` intensity windows, one channel each (the
        detector reads 3); ``scale``: ``"none"`` or ``"percentile"`` (divide by the
        series' ``percentile``-th intensity first, for MR which has no absolute unit).

    Returns
    -------
    ndarray, shape (Z, H, W, len(windows)), float32
    """
    volume = np.asarray(volume, dtype=np.float32)
    if spec.get("scale", "none") == "percentile":
        ref = float(np.percentile(volume, float(spec.get("percentile", 99.0))))
        volume = volume / (ref if ref > 0 else 1.0)
    channels = []
    for low, high in spec["windows"]:
        channels.append(window_ct(volume, width=float(high) - float(low),
                                  level=(float(high) + float(low)) / 2.0))
    return np.stack(channels, axis=-1)


def normalise_volume(volume: np.ndarray, spec: Mapping[str, Any]) -> np.ndarray:
    """One channel in ~[0, 1]: the first window of :func:`channel_stack`'s ``spec``."""
    return channel_stack(volume, {**spec, "windows": [spec["windows"][0]]})[..., 0]


def _series_arrays(case: Case, code: str) -> tuple[np.ndarray, np.ndarray]:
    image = sitk.GetArrayFromImage(case.images[code])
    label = case.labels.get(code)
    lab = sitk.GetArrayFromImage(label) if label is not None else np.zeros(image.shape, np.uint8)
    return image, lab


def body_box(channels: np.ndarray, *, threshold: float, margin: int) -> tuple[int, int, int, int]:
    """``(y0, y1, x0, x1)`` around everything brighter than ``threshold`` in channel 0 of
    any slice (the body, couch included on CT), plus ``margin`` pixels; the whole slice
    when nothing is that bright."""
    mask = channels[..., 0].max(axis=0) > threshold
    if not mask.any():
        return 0, channels.shape[1], 0, channels.shape[2]
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    return (max(int(rows[0]) - margin, 0), min(int(rows[-1]) + 1 + margin, h),
            max(int(cols[0]) - margin, 0), min(int(cols[-1]) + 1 + margin, w))


def widen_boxes(boxes: np.ndarray, *, min_size: float, limit: int) -> np.ndarray:
    """Grow boxes narrower (or lower) than ``min_size`` to that size about their centre.

    YOLO's finest feature map has a stride of 8 pixels and its task-aligned assigner only
    learns from anchors inside a box, so a lesion a few pixels wide gives it (almost) no
    training signal; the widened box marks "a lesion is here" instead. Boxes are shifted
    back inside ``[0, limit]`` where widening crosses the border.
    """
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4).copy()
    if not len(boxes) or min_size <= 0:
        return boxes
    size = min(float(min_size), float(limit))
    for lo, hi in ((0, 2), (1, 3)):
        width = boxes[:, hi] - boxes[:, lo]
        grow = np.maximum(size - width, 0.0) / 2.0
        boxes[:, lo] -= grow
        boxes[:, hi] += grow
        shift = np.clip(-boxes[:, lo], 0, None) - np.clip(boxes[:, hi] - limit, 0, None)
        shift = np.where(grow > 0, shift, 0.0)  # only widened boxes move
        boxes[:, lo] += shift
        boxes[:, hi] += shift
    return boxes


def series_slices(case: Case, code: str, spec: Mapping[str, Any], *, imgsz: int,
                  zs: list[int] | None = None, min_box_pixels: int = 1,
                  min_box_size: float = 0.0) -> Iterator[SliceRecord]:
    """Letterboxed detector slices of one series with their lesion boxes.

    Each slice is cropped to the series' body box (:func:`body_box` with
    ``spec["body_threshold"]`` and ``spec["margin"]``, when given), so the same field of
    view is magnified to ``imgsz`` for every slice of the series. Boxes are the 2-D
    connected components of each 3-D lesion (ids from
    :func:`~crossmodal.detect.dataset.label_lesions_3d`) with at least ``min_box_pixels``
    pixels in the native slice, mapped to letterbox pixels and widened to at least
    ``min_box_size`` pixels there (:func:`widen_boxes`).
    """
    image, lab = _series_arrays(case, code)
    channels = channel_stack(image, spec)
    crop = None
    if spec.get("body_threshold") is not None:
        crop = body_box(channels, threshold=float(spec["body_threshold"]),
                        margin=int(spec.get("margin", 2)))
    lesions = label_lesions_3d(lab > 0)
    for z in range(len(image)) if zs is None else zs:
        resized, info = letterbox(channels[z], size=int(imgsz), box=crop)
        boxes, ids = boxes_from_mask(lesions[z], min_pixels=int(min_box_pixels), return_labels=True)
        mapped = info.boxes_to_letterbox(np.asarray(boxes, float)) if boxes else np.zeros((0, 4))
        mapped = widen_boxes(mapped, min_size=min_box_size, limit=int(imgsz))
        yield SliceRecord(case_id=case.case_id, z=int(z), image=resized, boxes=mapped,
                          lesion_ids=ids)


# =========================================================================== leakage rule


def assign_detectors(case_ids, labels, *, leakage: str, n_folds: int = 3,
                     holdout_fraction: float = 0.4, seed: int = 0) -> pd.DataFrame:
    """Which detector scores each patient, and which detectors may train on it.

    Parameters
    ----------
    case_ids, labels : sequences
        Patients and their labels (the split is stratified by label).
    leakage : {"cross_fit", "holdout"}
        ``cross_fit``: K label-stratified patient folds; detector k trains on every fold
        but k and scores fold k, so every patient is scored exactly once, by a detector
        that never saw it. ``holdout``: one detector trains on a ``holdout_fraction`` of
        the patients and scores the rest; only those are classified.
    n_folds, holdout_fraction, seed
        As above; ``seed`` seeds the patient split.

    Returns
    -------
    DataFrame
        ``case_id, detector, role`` with role ``fit`` (may train detector) or ``scored``;
        one row per patient per detector. The train / validation split of the ``fit``
        patients is drawn per modality later (:func:`_fit_split`).
    """
    case_ids = list(case_ids)
    labels = list(labels)
    if leakage == "cross_fit":
        if n_folds < 2:
            raise ValueError(f"cross_fit needs n_folds >= 2, got {n_folds}")
        names = [f"d{k}" for k in range(n_folds)]
        fold_of = patient_split(case_ids, labels, fractions=[1.0] * n_folds, seed=seed, names=names)
        rows = [{"case_id": c, "detector": d, "role": "scored" if fold_of[c] == d else "fit"}
                for c in case_ids for d in names]
    elif leakage == "holdout":
        if not 0 < holdout_fraction < 1:
            raise ValueError(f"holdout_fraction must be in (0, 1), got {holdout_fraction}")
        part = patient_split(case_ids, labels, fractions=[holdout_fraction, 1 - holdout_fraction],
                             seed=seed, names=["fit", "scored"])
        rows = [{"case_id": c, "detector": "d0", "role": part[c]} for c in case_ids]
    else:
        raise ValueError(f"part2_detect.leakage must be 'cross_fit' or 'holdout', not {leakage!r}")
    return pd.DataFrame(rows)


def _fit_split(fit_cases: list[str], labels: Mapping[str, int], *, val_fraction: float,
               seed: int) -> dict[str, str]:
    """Train / validation split of a detector's fit patients (stratified, seeded)."""
    if len(fit_cases) < 2 or val_fraction <= 0:
        return {c: "train" for c in fit_cases}
    return patient_split(fit_cases, [labels[c] for c in fit_cases],
                         fractions=[1 - val_fraction, val_fraction, 0.0], seed=seed)


# =========================================================================== detection stage


def _detector_records(cases: dict[str, Case], code: str, split: dict[str, str],
                      spec: Mapping[str, Any], *, imgsz: int, negatives_per_positive: float,
                      seed: int, min_box_pixels: int = 1, min_box_size: float = 0.0
                      ) -> Iterator[SliceRecord]:
    """Every slice of scored (test) patients; for train and val patients, each split on its
    own: every lesion slice plus ``negatives_per_positive`` lesion-free slices per lesion
    slice, drawn from all of that split's patients (at least one slice per split)."""
    chosen: dict[str, list[int]] = {}
    for role in ("train", "val"):
        lesion, other = [], []
        for case_id in sorted(c for c, r in split.items() if r == role):
            _, lab = _series_arrays(cases[case_id], code)
            has = lab.reshape(len(lab), -1).any(axis=1)
            lesion += [(case_id, int(z)) for z in np.flatnonzero(has)]
            other += [(case_id, int(z)) for z in np.flatnonzero(~has)]
        picked = sample_slices(lesion, other, negatives_per_positive=negatives_per_positive,
                               seed=seed)
        if not picked and other:  # lesion-free patients only: keep one slice so the split exists
            picked = [other[int(np.random.default_rng(seed).integers(len(other)))]]
        for case_id, z in picked:
            chosen.setdefault(case_id, []).append(z)
    for case_id, role in sorted(split.items()):
        zs = None if role == "test" else chosen.get(case_id, [])
        if zs == []:
            continue
        yield from series_slices(cases[case_id], code, spec, imgsz=imgsz, zs=zs,
                                 min_box_pixels=min_box_pixels, min_box_size=min_box_size)


def _trainer_options(train: Mapping[str, Any], det_dir: Path) -> dict[str, Any]:
    """Trainer keyword options. Ultralytics' augmentation ``scale`` shares its name with
    :func:`~crossmodal.detect.train.train_detector`'s model ``scale``, so it travels in an
    ultralytics ``cfg`` file instead (keyword arguments still take precedence over it)."""
    options = dict(train.get("options") or {})
    if "scale" in options:
        import yaml

        det_dir.mkdir(parents=True, exist_ok=True)
        path = det_dir / "augment.yaml"
        path.write_text(yaml.safe_dump({"scale": float(options.pop("scale"))}))
        options["cfg"] = str(path.absolute())
    return options


def _validate_on_train(data_yaml: Path) -> None:
    import yaml

    text = Path(data_yaml).read_text()
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    data = yaml.safe_load(text)
    data["val"] = data["train"]
    Path(data_yaml).write_text(header + "# val: no validation slice, checkpoint chosen on train\n"
                               + yaml.safe_dump(data, sort_keys=False))


def _tidy_detector_folder(out_dir: Path) -> None:
    """Drop what the detector does not need afterwards: the symbolic-link dataset view
    and ultralytics' duplicate checkpoints (``weights.pt`` is the selected one)."""
    shutil.rmtree(out_dir / "dataset", ignore_errors=True)
    shutil.rmtree(out_dir / "ultralytics" / "weights", ignore_errors=True)


def _ground_truth(dataset_dirs: list[Path]):
    from crossmodal.detect import metrics as ev

    ids, patients, boxes, classes, lesions = [], [], [], [], []
    for dataset in dataset_dirs:
        for row in read_split(dataset, "test"):
            ids.append(row["image_id"])
            patients.append(row["case_id"])
            boxes.append(row["boxes"])
            classes.append(row["classes"])
            lesions.append(row["lesion_ids"])
    return ev.ground_truth(ids, patients, boxes, classes=classes, lesion_ids=lesions)


def detection_metrics(gt, preds: pd.DataFrame, *, conf: float, n_boot: int, seed: int) -> dict:
    """AP50, AP50-95 and lesion sensitivity at ``conf`` with patient-bootstrap CIs."""
    from functools import partial

    from crossmodal.detect import metrics as ev

    out: dict[str, Any] = {"patients": len(gt.patients), "slices": len(gt.images),
                           "lesion_boxes": len(gt.boxes)}
    metrics = {"ap50": ev.ap50, "ap50_95": ev.ap50_95,
               "lesion_sensitivity": partial(ev.lesion_sensitivity, conf=conf, rule="center")}
    for name, fn in metrics.items():
        estimate, lo, hi = ev.patient_bootstrap(fn, gt, preds, n_boot=n_boot, seed=seed)
        out.update({name: estimate, f"{name}_ci_low": lo, f"{name}_ci_high": hi})
    out["fp_per_slice"] = float(ev.false_positives_per_slice(gt, preds, conf))
    return out


def run_detect(cases: list[Case], out_dir: str | Path, cfg: Mapping[str, Any], *,
               cohort_cfg: Mapping[str, Any] | None = None, feature_conf: float = 0.2,
               progress: bool = False) -> dict[str, pd.DataFrame]:
    """Train the per-modality detectors under the leakage rule and score every series.

    Parameters
    ----------
    cases : ingested skeletal cases
    out_dir : stage output folder (see the module docstring for its files)
    cfg : params section ``part2_detect``
    cohort_cfg : params section ``cohort.skeleton`` (modalities, names, label source)
    feature_conf : ``features.conf``; lesion sensitivity and FP per slice are reported there
    """
    from crossmodal.detect import metrics as ev
    from crossmodal.detect.train import predict
    from crossmodal.detect.train import train_detector

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = _names(cohort_cfg)
    label_source = (cohort_cfg or {}).get("patient_label", "truth")
    by_id = {c.case_id: c for c in cases}
    series = series_table(cases, names=names, label_source=label_source)
    labels = series.groupby("case_id")["y"].first().to_dict()
    assignment = assign_detectors(sorted(labels), [labels[c] for c in sorted(labels)],
                                  leakage=cfg["leakage"], n_folds=int(cfg["n_folds"]),
                                  holdout_fraction=float(cfg["holdout_fraction"]),
                                  seed=int(cfg["seed"]))
    imgsz, seed = int(cfg["imgsz"]), int(cfg["seed"])
    label_names = (cohort_cfg or {}).get("label_names") or {1: "metastasis"}
    class_names = [str(label_names[k]) for k in sorted(label_names, key=int)]  # label 1 -> class 0
    train = cfg["train"]
    pred = cfg["predict"]
    roles, trained, series_rows, det_rows, ap_rows, gt_dirs = [], [], [], [], [], {}
    jobs = [(code, d) for code in names for d in sorted(assignment["detector"].unique())]
    for code, detector in _progress(jobs, "part 2 detectors", progress):
        name = names[code]
        have = set(series.loc[series["code"] == code, "case_id"])
        rows = assignment[(assignment["detector"] == detector) & assignment["case_id"].isin(have)]
        fit = sorted(rows.loc[rows["role"] == "fit", "case_id"])
        scored = sorted(rows.loc[rows["role"] == "scored", "case_id"])
        k = int(detector[1:])
        split = _fit_split(fit, labels, val_fraction=float(cfg["val_fraction"]),
                           seed=seed + 100 * k + list(names).index(code))
        split.update({c: "test" for c in scored})
        roles += [{"case_id": c, "modality": name, "detector": detector,
                   "role": "scored" if s == "test" else s} for c, s in split.items()]
        dataset = out / "datasets" / name / detector
        shutil.rmtree(dataset, ignore_errors=True)
        data_yaml = export_yolo(
            _detector_records(by_id, code, split, cfg["channels"][code], imgsz=imgsz,
                              negatives_per_positive=float(cfg["negatives_per_positive"]),
                              seed=seed + k, min_box_pixels=int(cfg.get("min_box_pixels", 1)),
                              min_box_size=float(cfg.get("min_box_size", 0.0))),
            dataset, split_of=split, class_names=class_names)
        index = pd.DataFrame(read_index(dataset), columns=["image", "case_id", "z", "split",
                                                            "width", "height", "n_boxes",
                                                            "lesion_ids"])
        det_dir = out / "detectors" / name / detector
        test_rows = read_split(dataset, "test")
        trainable = int(index.loc[index["split"] == "train", "n_boxes"].sum()) > 0
        start = time.perf_counter()
        if trainable:
            if not (index["split"] == "val").any():  # tiny cohorts: select on the training slices
                _validate_on_train(data_yaml)
            model = train_detector(cfg["detector"], data_yaml, det_dir, epochs=int(train["epochs"]),
                                   imgsz=imgsz, batch=int(train["batch"]), seed=seed + k,
                                   device=cfg.get("device"), workers=int(train.get("workers", 0)),
                                   scale=cfg.get("scale"), **_trainer_options(train, det_dir))
            _tidy_detector_folder(det_dir)
        seconds = time.perf_counter() - start
        start = time.perf_counter()
        if trainable:
            detections = predict(model, [r["image_path"] for r in test_rows],
                                 conf=float(pred["ap_conf"]), batch=int(pred["batch"]),
                                 max_det=int(pred["max_det"]), iou=float(pred["iou"]),
                                 device=cfg.get("device"))
        else:  # no lesion among this detector's training patients: nothing to learn, nothing found
            detections = [np.zeros((0, 6)) for _ in test_rows]
        predict_seconds = time.perf_counter() - start
        patients_in = index.groupby("split")["case_id"].nunique()
        trained.append({"modality": name, "detector": detector,
                        "train_patients": int(patients_in.get("train", 0)),
                        "val_patients": int(patients_in.get("val", 0)),
                        "scored_patients": len(scored),
                        "train_slices": int((index["split"] == "train").sum()),
                        "train_boxes": int(index.loc[index["split"] == "train", "n_boxes"].sum()),
                        "scored_slices": len(test_rows), "epochs": int(train["epochs"]),
                        "selected": (model.record.get("selected") if trainable
                                     else "not trained: no lesion"),
                        "train_seconds": round(seconds, 1),
                        "predict_seconds": round(predict_seconds, 1)})
        for row, det in zip(test_rows, detections):
            for x0, y0, x1, y1, score, cls in det:
                det_rows.append((name, detector, row["case_id"], row["z"], row["image_id"],
                                 x0, y0, x1, y1, score, int(cls)))
        n_slices = pd.Series([r["case_id"] for r in test_rows]).value_counts()
        series_rows += [{"case_id": c, "modality": name, "n_slices": int(n_slices.get(c, 0)),
                         "detector": detector, "y": labels[c]} for c in scored]
        if not test_rows:
            continue
        gt_dirs.setdefault(name, []).append(dataset)
        # per-detector AP without CI (the pooled table below has the CIs)
        gt = _ground_truth([dataset])
        preds = _predictions_of(det_rows, name, detector)
        ap_rows.append({"modality": name, "detector": detector, "patients": len(gt.patients),
                        "ap50": float(ev.ap50(gt, preds)), "ap50_95": float(ev.ap50_95(gt, preds))})
    detections = pd.DataFrame(det_rows, columns=["modality", "detector", "case_id", "z", "image_id",
                                                 "x0", "y0", "x1", "y1", "confidence", "class_id"])
    pooled = []
    for name, dirs in gt_dirs.items():
        gt = _ground_truth(dirs)
        preds = _predictions_of(det_rows, name, None)
        pooled.append({"modality": name, **detection_metrics(
            gt, preds, conf=float(feature_conf), n_boot=int(cfg["n_boot"]), seed=seed)})
    tables = {
        "assignment": pd.DataFrame(roles),
        "series": pd.DataFrame(series_rows),
        "detections": detections,
        "training": pd.DataFrame(trained),
        "ap": pd.DataFrame(pooled),
        "ap_folds": pd.DataFrame(ap_rows),
        "cohort_series": series,
    }
    for key, table in tables.items():
        _write(table, out / f"{key}.csv", index=False)
    return tables


def _predictions_of(det_rows: list[tuple], modality: str, detector: str | None) -> pd.DataFrame:
    rows = [r for r in det_rows if r[0] == modality and (detector is None or r[1] == detector)]
    frame = pd.DataFrame([(r[4], r[5], r[6], r[7], r[8], r[9], r[10]) for r in rows],
                         columns=["image_id", "x0", "y0", "x1", "y1", "score", "class_id"])
    frame["class_id"] = frame["class_id"].astype(int)
    return frame


# =========================================================================== features stage


def run_features(detect_dir: str | Path, out_dir: str | Path, cfg: Mapping[str, Any], *,
                 cv: Mapping[str, Any], cohort_cfg: Mapping[str, Any] | None = None
                 ) -> dict[str, pd.DataFrame]:
    """Confidence-bin features of every scored patient, and the shared CV folds.

    Parameters
    ----------
    detect_dir : output of :func:`run_detect` (``detections.csv``, ``series.csv``)
    out_dir : writes ``features.csv`` (index ``case_id``; bins, flags, ``y``),
        ``detections_featurised.csv`` (the detections that were counted) and ``folds.csv``
    cfg : params section ``features`` (``conf``, ``high``, ``n_bins``, ``normalise``,
        ``presence_flags``)
    cv : params ``classify.cv`` (``n_splits``, ``n_repeats``, ``seed``): the folds are drawn
        once here, so the classifiers and C3D see the same splits
    """
    from crossmodal.learn.classify import fold_assignments
    from crossmodal.learn.features import confidence_bins
    from crossmodal.learn.features import patient_feature_table

    detect_dir, out = Path(detect_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = list(_names(cohort_cfg).values())
    detections = pd.read_csv(detect_dir / "detections.csv")
    series = pd.read_csv(detect_dir / "series.csv")
    counted = detections[detections["confidence"] >= float(cfg["conf"])]
    edges = confidence_bins(low=float(cfg["conf"]), high=float(cfg["high"]),
                            n_bins=int(cfg["n_bins"]))
    table = patient_feature_table(counted, series, modalities=names, normalise=cfg["normalise"],
                                  presence_flags=bool(cfg["presence_flags"]), edges=edges)
    table["y"] = series.groupby("case_id")["y"].first().reindex(table.index).astype(int)
    folds = fold_assignments(table["y"], n_splits=int(cv["n_splits"]),
                             n_repeats=int(cv["n_repeats"]), seed=int(cv["seed"]))
    _write(table, out / "features.csv")
    _write(counted, out / "detections_featurised.csv", index=False)
    _write(folds, out / "folds.csv", index=False)
    return {"features": table, "folds": folds, "detections": counted}


def feature_set_folds(folds: pd.DataFrame, case_ids) -> pd.DataFrame:
    """The shared fold table restricted to a subset of patients, re-indexed to its rows.

    A patient keeps the test fold it has in the full table, so two feature sets are
    trained and tested on the same partition of their shared patients.
    """
    position = {c: i for i, c in enumerate(case_ids)}
    sub = folds[folds["case_id"].isin(position)].copy()
    sub["index"] = sub["case_id"].map(position).astype(int)
    return sub.reset_index(drop=True)


# =========================================================================== classify stage


def _feature_sets(table: pd.DataFrame, names: list[str]) -> dict[str, pd.DataFrame]:
    from crossmodal.learn.features import feature_columns
    from crossmodal.learn.features import modality_mask

    sets = {}
    for fs in [*names, "fused"]:
        rows = modality_mask(table, fs) if fs != "fused" else pd.Series(True, index=table.index)
        sets[fs] = table.loc[rows, feature_columns(table, fs)]
    return sets


def run_classify(features_dir: str | Path, out_dir: str | Path, cfg: Mapping[str, Any], *,
                 cohort_cfg: Mapping[str, Any] | None = None, progress: bool = False
                 ) -> dict[str, pd.DataFrame]:
    """Classifiers x feature sets on the shared folds; metrics, paired comparisons, DeLong.

    Single-modality sets are scored on the patients who have that modality (their folds
    are the shared folds restricted to them, :func:`feature_set_folds`); the fused set on
    everyone. Comparisons (fused minus single, per classifier and averaged over
    classifiers) and DeLong run on the patients both sets scored.

    Writes ``oof.csv``, ``metrics.csv``, ``comparisons.csv``, ``delong.csv``, ``roc.csv``,
    ``pr.csv`` under ``out_dir``.
    """
    from crossmodal.learn.classify import compare_with_ci
    from crossmodal.learn.classify import cross_validated_scores
    from crossmodal.learn.classify import delong_oof
    from crossmodal.learn.classify import make_classifiers
    from crossmodal.learn.classify import mean_difference_with_ci
    from crossmodal.learn.classify import metrics_with_ci
    from crossmodal.learn.classify import oof_mean
    from crossmodal.learn.classify import roc_pr_curves

    features_dir, out = Path(features_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = list(_names(cohort_cfg).values())
    table = pd.read_csv(features_dir / "features.csv", index_col="case_id")
    folds = pd.read_csv(features_dir / "folds.csv")
    y = table["y"].astype(int)
    seed = int(cfg["cv"]["seed"])
    zoo = make_classifiers(seed)
    chosen = list(cfg.get("classifiers") or zoo)
    unknown = sorted(set(chosen) - set(zoo))
    if unknown:
        raise ValueError(f"unknown classifiers {unknown}; known: {sorted(zoo)}")
    boot = {"n_boot": int(cfg["n_boot"]), "seed": int(cfg["boot_seed"]),
            "threshold": float(cfg["threshold"])}
    sets = _feature_sets(table, names)
    oofs: dict[tuple[str, str], pd.DataFrame] = {}
    skipped = []
    jobs = [(clf, fs) for clf in chosen for fs in sets]
    for clf, fs in _progress(jobs, "classifiers x feature sets", progress):
        X = sets[fs]
        sub_folds = feature_set_folds(folds, X.index)
        reason = _unfit_reason(y.loc[X.index].to_numpy(), sub_folds)
        if reason is None:
            try:
                with warnings.catch_warnings():  # degenerate folds are reported in `skipped`
                    warnings.simplefilter("ignore", RuntimeWarning)
                    warnings.simplefilter("ignore", UserWarning)
                    oof = cross_validated_scores(X, y.loc[X.index], classifier=zoo[clf],
                                                 folds=sub_folds)
                if np.isfinite(oof["prob"]).all():
                    oofs[clf, fs] = oof
                else:  # e.g. naive Bayes on features without any variance
                    reason = "non-finite probabilities (features without variance?)"
            except ValueError as err:  # e.g. more neighbours or inner folds than patients
                reason = f"{type(err).__name__}: {err}"
        if reason is not None:
            skipped.append({"classifier": clf, "feature_set": fs, "patients": len(X),
                            "reason": reason})
    metric_rows, comparison_rows, delong_rows, roc_rows, pr_rows = [], [], [], [], []
    for (clf, fs), oof in oofs.items():
        m = metrics_with_ci(oof, **boot).reset_index()
        metric_rows.append(m.assign(classifier=clf, feature_set=fs, n=oof["case_id"].nunique(),
                                    n_pos=int(oof.drop_duplicates("case_id")["y"].sum())))
        mean = oof_mean(oof)
        curves = roc_pr_curves(mean["y"], mean["prob"])
        roc_rows.append(curves["roc"].assign(classifier=clf, feature_set=fs))
        pr_rows.append(curves["pr"].assign(classifier=clf, feature_set=fs))
    for single in names:
        pairs = [(clf, oofs[clf, "fused"], oofs[clf, single]) for clf in chosen
                 if (clf, "fused") in oofs and (clf, single) in oofs]
        for clf, fused, alone in pairs:
            c = compare_with_ci(fused, alone, **boot).reset_index()
            comparison_rows.append(c.assign(classifier=clf, single=single))
            d = delong_oof(fused, alone)
            delong_rows.append({"classifier": clf, "single": single, **d})
        if pairs:
            c = mean_difference_with_ci([p[1] for p in pairs], [p[2] for p in pairs], **boot)
            comparison_rows.append(c.reset_index().assign(classifier="mean over classifiers",
                                                          single=single))
    tables = {
        "oof": pd.concat([o.assign(classifier=c, feature_set=f) for (c, f), o in oofs.items()],
                         ignore_index=True),
        "metrics": pd.concat(metric_rows, ignore_index=True),
        "comparisons": pd.concat(comparison_rows, ignore_index=True) if comparison_rows else
        pd.DataFrame(columns=["metric", "classifier", "single"]),
        "delong": pd.DataFrame(delong_rows),
        "roc": pd.concat(roc_rows, ignore_index=True),
        "pr": pd.concat(pr_rows, ignore_index=True),
        "skipped": pd.DataFrame(skipped,
                                columns=["classifier", "feature_set", "patients", "reason"]),
    }
    for key, t in tables.items():
        _write(t, out / f"{key}.csv", index=False)
    return tables


def _unfit_reason(y: np.ndarray, folds: pd.DataFrame) -> str | None:
    """Why a feature set cannot be cross-validated on these folds (None: it can)."""
    from crossmodal.learn.classify import iter_folds

    if len(y) == 0:
        return "no patient has this modality"
    if len(np.unique(y)) < 2:
        return "only one class among the patients with this modality"
    for repeat, fold, train, _ in iter_folds(folds):
        if len(np.unique(y[train])) < 2:
            return f"repeat {repeat}, fold {fold}: training patients of one class only"
    return None


def _json_number(value) -> float | None:
    """A rounded float, or None where JSON has no number (NaN, inf)."""
    value = float(value)
    return round(value, 4) if np.isfinite(value) else None


def claims_json(claims: pd.DataFrame) -> dict[str, Any]:
    """DVC ``metrics`` of the claims table: each claim's verdict and each interval row's
    estimate, under the stable ``key`` of :func:`claims_table`."""
    measured = claims[claims["ci_low"].notna()]
    return {"verdict": {claim: group["claim verdict"].iloc[0]
                        for claim, group in claims.groupby("claim")},
            "estimate": {k: _json_number(v) for k, v in zip(measured["key"], measured["ours"])}}


def write_dvc_metrics(tables: Mapping[str, pd.DataFrame], metrics_json: str | Path,
                      plots_dir: str | Path | None = None, *, prefix: str = "") -> dict:
    """DVC ``metrics`` JSON (estimates per model and feature set) and ``plots`` files.

    ``plots_dir`` gets ``roc/<classifier>_<feature_set>.json`` and ``pr/...`` as lists of
    records (DVC's data-series format).
    """
    metrics = tables["metrics"]
    out: dict[str, Any] = {}
    for (clf, fs), group in metrics.groupby(["classifier", "feature_set"], sort=False):
        values = group.set_index("metric")["estimate"]
        out.setdefault(f"{prefix}{fs}", {})[clf] = {k: _json_number(v) for k, v in values.items()}
    comparisons = tables.get("comparisons")
    if comparisons is not None and len(comparisons):
        mean = comparisons[comparisons["classifier"] == "mean over classifiers"]
        for single, group in mean.groupby("single", sort=False):
            values = group.set_index("metric")["estimate"]
            out.setdefault("fused_minus_single", {})[single] = {
                k: _json_number(values[k]) for k in ("accuracy", "auc", "pr_auc") if k in values}
    path = Path(metrics_json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1, sort_keys=True))
    if plots_dir is not None:
        plots = Path(plots_dir)
        shutil.rmtree(plots, ignore_errors=True)
        for kind in ("roc", "pr"):
            (plots / kind).mkdir(parents=True, exist_ok=True)
            for (clf, fs), group in tables[kind].groupby(["classifier", "feature_set"], sort=False):
                records = group.drop(columns=["classifier", "feature_set"]).round(6)
                (plots / kind / f"{clf}_{fs}.json").write_text(
                    json.dumps(records.to_dict("records")))
    return out


# =========================================================================== C3D stage


def common_grid(reference: sitk.Image, size) -> sitk.Image:
    """A grid over the same physical box as ``reference`` with ``size`` (x, y, z) voxels.

    The outer voxel edges stay where they are, so the box is unchanged and only the
    sampling differs; direction is kept.
    """
    old_size = np.asarray(reference.GetSize(), float)
    old_spacing = np.asarray(reference.GetSpacing(), float)
    new_size = np.asarray(size, int)
    if new_size.shape != (3,) or np.any(new_size < 1):
        raise ValueError(f"size must be three positive ints, got {size}")
    new_spacing = old_spacing * old_size / new_size
    direction = np.asarray(reference.GetDirection(), float).reshape(3, 3)
    shift = direction @ ((new_spacing - old_spacing) / 2)
    origin = np.asarray(reference.GetOrigin(), float) + shift
    grid = sitk.Image([int(v) for v in new_size], sitk.sitkFloat32)
    grid.SetSpacing([float(v) for v in new_spacing])
    grid.SetOrigin([float(v) for v in origin])
    grid.SetDirection(reference.GetDirection())
    return grid


def _on_grid(image: sitk.Image, grid: sitk.Image, *, fill: float, antialias: bool) -> np.ndarray:
    image = sitk.Cast(image, sitk.sitkFloat32)
    if antialias:
        ratio = np.asarray(grid.GetSpacing()) / np.asarray(image.GetSpacing())
        sigma = [float(0.5 * s) if r > 1 else 0.0 for s, r in zip(grid.GetSpacing(), ratio)]
        if any(sigma):
            image = sitk.SmoothingRecursiveGaussian(image, [max(s, 1e-3) for s in sigma])
    return sitk.GetArrayFromImage(resample_to_reference(image, grid, default_value=fill))


def c3d_volumes(cases: list[Case], cfg: Mapping[str, Any], *,
                names: Mapping[str, str] = DEFAULT_MODALITY_NAMES) -> np.ndarray:
    """Every patient's modalities stacked as channels on one grid, each in ~[0, 1].

    The grid of a patient is :func:`common_grid` of its first present modality in
    ``cfg["reference"]`` order, at ``cfg["grid_size"]`` voxels; every modality is
    resampled onto it through patient coordinates (linear, Gaussian anti-aliasing when
    coarser), normalised with ``cfg["channels"][code]`` (:func:`normalise_volume`), and
    a missing modality is a channel of zeros.

    Returns
    -------
    ndarray, shape (n_cases, len(names), D, H, W), float32
    """
    from crossmodal.learn.c3d import stack_modalities

    out = []
    for case in cases:
        ref_code = next(c for c in cfg["reference"] if c in case.images)
        grid = common_grid(case.images[ref_code], cfg["grid_size"])
        arrays = {}
        for code, name in names.items():
            if code not in case.images:
                continue
            spec = cfg["channels"][code]
            raw = _on_grid(case.images[code], grid, fill=float(spec.get("fill", 0.0)),
                           antialias=bool(cfg.get("antialias", True)))
            arrays[name] = normalise_volume(raw, spec)
        out.append(stack_modalities(arrays, modalities=list(names.values())))
    return np.stack(out)


def run_c3d(cases: list[Case], features_dir: str | Path, out_dir: str | Path,
            cfg: Mapping[str, Any], *, cohort_cfg: Mapping[str, Any] | None = None,
            n_boot: int = 1000, boot_seed: int = 0, threshold: float = 0.5
            ) -> dict[str, pd.DataFrame]:
    """C3D early fusion on the classifiers' patients and folds (first ``cfg["n_repeats"]``).

    Writes ``oof.csv``, ``metrics.csv`` and ``channels.png`` (one patient's stacked
    channels) under ``out_dir``.
    """
    from crossmodal.learn.c3d import c3d_cross_validated
    from crossmodal.learn.classify import metrics_with_ci

    features_dir, out = Path(features_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = _names(cohort_cfg)
    table = pd.read_csv(features_dir / "features.csv", index_col="case_id")
    folds = pd.read_csv(features_dir / "folds.csv")
    folds = folds[folds["repeat"] < int(cfg["n_repeats"])]
    by_id = {c.case_id: c for c in cases}
    missing = sorted(set(table.index) - set(by_id))
    if missing:
        raise ValueError(f"{len(missing)} feature patients are not in the ingested cohort: "
                         f"{missing[:3]}")
    ordered = [by_id[c] for c in table.index]
    start = time.perf_counter()
    volumes = c3d_volumes(ordered, cfg, names=names)
    prep_seconds = time.perf_counter() - start
    train = dict(cfg["train"])
    start = time.perf_counter()
    oof = c3d_cross_validated(volumes, table["y"].to_numpy(), folds.assign(
        case_id=table.index.to_numpy()[folds["index"].to_numpy()]), seed=int(cfg["seed"]),
        device=cfg.get("device"), **train)
    train_seconds = time.perf_counter() - start
    metrics = metrics_with_ci(oof, n_boot=n_boot, seed=boot_seed, threshold=threshold).reset_index()
    metrics = metrics.assign(classifier="c3d", feature_set="stacked volumes", n=len(table),
                             n_pos=int(table["y"].sum()))
    timing = pd.DataFrame([{"patients": len(table), "channels": volumes.shape[1],
                            "grid (z, y, x)": "x".join(map(str, volumes.shape[2:])),
                            "models": int(folds.groupby(["repeat", "fold"]).ngroups),
                            "volume_seconds": round(prep_seconds, 1),
                            "train_seconds": round(train_seconds, 1)}])
    fig = channels_figure(volumes, table, list(names.values()))
    fig.savefig(out / "channels.png", dpi=100)
    tables = {"oof": oof, "metrics": metrics, "training": timing}
    for key, t in tables.items():
        _write(t, out / f"{key}.csv", index=False)
    return tables


def channels_figure(volumes: np.ndarray, table: pd.DataFrame, names: list[str]):
    """Middle slice of each stacked channel for one positive and one negative patient."""
    from matplotlib.figure import Figure

    picks = []
    for label in (1, 0):
        rows = np.flatnonzero(table["y"].to_numpy() == label)
        if len(rows):
            # the patient with the most modalities (first such) shows the stacking best
            peak = volumes[rows].reshape(len(rows), volumes.shape[1], -1).max(axis=2)
            present = (peak > 0).sum(axis=1)
            picks.append((label, rows[int(np.argmax(present))]))
    fig = Figure(figsize=(2.4 * len(names), 2.5 * max(len(picks), 1)), layout="constrained")
    axes = fig.subplots(max(len(picks), 1), len(names), squeeze=False)
    for row, (label, i) in zip(axes, picks):
        z = volumes.shape[2] // 2
        for ax, c in zip(row, range(len(names))):
            ax.imshow(volumes[i, c, z], cmap="gray", vmin=0, vmax=1)
            ax.set_title(f"{names[c]} ({'positive' if label else 'negative'})", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    return fig


# =========================================================================== claims and report


def verdict(estimate: float, low: float, high: float) -> str:
    """Verdict of a claimed improvement from its estimate and 95 % CI.

    ``supported``: the CI lies above 0; ``contradicted``: below 0; ``inconclusive``: it
    contains 0; ``not measurable``: no finite interval.
    """
    if not all(np.isfinite([estimate, low, high])):
        return "not measurable"
    if low > 0:
        return "supported"
    if high < 0:
        return "contradicted"
    return "inconclusive"


def overall_verdict(verdicts: list[str]) -> str:
    """A claim's verdict from its rows: ``supported`` / ``contradicted`` only when every
    measurable row is; ``mixed`` when some rows are supported and others contradicted;
    otherwise ``inconclusive`` (or ``not measurable`` without any measurable row)."""
    measured = [v for v in verdicts if v != "not measurable"]
    if not measured:
        return "not measurable"
    if all(v == "supported" for v in measured):
        return "supported"
    if all(v == "contradicted" for v in measured):
        return "contradicted"
    if "supported" in measured and "contradicted" in measured:
        return "mixed"
    return "inconclusive"


def c3d_comparisons(classify_oof: pd.DataFrame, classify_metrics: pd.DataFrame,
                    c3d_oof: pd.DataFrame, *, n_boot: int, seed: int, threshold: float
                    ) -> pd.DataFrame:
    """Fused-feature classifiers (best, median by fused AUC, and each one) minus C3D."""
    from crossmodal.learn.classify import compare_with_ci
    from crossmodal.learn.classify import delong_oof

    fused_auc = (classify_metrics["feature_set"] == "fused") & (classify_metrics["metric"] == "auc")
    auc = classify_metrics[fused_auc].set_index("classifier")["estimate"]
    ranked = auc.sort_values(ascending=False, kind="mergesort")
    roles = {ranked.index[0]: "best", ranked.index[(len(ranked) - 1) // 2]: "median"}
    rows = []
    for clf in ranked.index:
        fused = classify_oof[(classify_oof["classifier"] == clf)
                             & (classify_oof["feature_set"] == "fused")]
        c = compare_with_ci(fused, c3d_oof, n_boot=n_boot, seed=seed, threshold=threshold)
        d = delong_oof(fused, c3d_oof)
        for metric, r in c.iterrows():
            rows.append({"classifier": clf, "role": roles.get(clf, ""), "metric": metric,
                         "classifier_value": r["a"], "c3d_value": r["b"],
                         "difference": r["estimate"],
                         "ci_low": r["ci_low"], "ci_high": r["ci_high"], "n": r["n"],
                         "delong_p": d["p_value"] if metric == "auc" else np.nan})
    return pd.DataFrame(rows)


def claims_table(comparisons: pd.DataFrame, delong: pd.DataFrame, c3d_vs: pd.DataFrame,
                 cfg: Mapping[str, Any], *, alpha: float = 0.05) -> pd.DataFrame:
    """The claimed-vs-reproduced table for C5-C7, every verdict by :func:`verdict`.

    Parameters
    ----------
    comparisons : ``comparisons.csv`` of :func:`run_classify` (fused minus single, per
        classifier and ``mean over classifiers``)
    delong : ``delong.csv`` of :func:`run_classify`
    c3d_vs : :func:`c3d_comparisons`
    cfg : ``classify.claims`` (thesis numbers)
    alpha : DeLong significance level for the per-classifier count
    """
    rows = []
    mean = comparisons[comparisons["classifier"] == "mean over classifiers"]

    def add(key, quantity, thesis, est, low, high, n, how):
        rows.append({"claim": key.split(".")[0], "key": key, "quantity": quantity, "thesis": thesis,
                     "ours": est, "ci_low": low, "ci_high": high, "patients": n,
                     "verdict": verdict(est, low, high), "how": how})

    for metric, thesis_key in (("accuracy", "thesis_c5_accuracy"), ("auc", "thesis_c5_auc")):
        for _, r in mean[mean["metric"] == metric].iterrows():
            add(f"C5.{metric}.{r['single']}", f"{metric}: fused - {r['single']}",
                cfg.get(thesis_key), r["estimate"], r["ci_low"], r["ci_high"], r["n"],
                "mean over classifiers, patients with that modality")
    if len(delong):
        favour = ((delong["p_value"] < alpha) & (delong["auc_a"] > delong["auc_b"])).sum()
        against = ((delong["p_value"] < alpha) & (delong["auc_a"] < delong["auc_b"])).sum()
        total = len(delong)
        rows.append({"claim": "C5", "key": "C5.delong",
                     "quantity": f"DeLong p < {alpha}: fused better / worse, of pairs",
                     "thesis": None, "ours": f"{favour} / {against} of {total}", "ci_low": np.nan,
                     "ci_high": np.nan, "patients": np.nan,
                     "verdict": ("supported" if favour > total / 2 else
                                 "contradicted" if against > total / 2 else "inconclusive"),
                     "how": ("classifier x single modality pairs; "
                             "more than half significant decides")})
    for role in ("best", "median"):
        sub = c3d_vs[c3d_vs["role"] == role]
        for metric in ("auc", "accuracy"):
            r = sub[sub["metric"] == metric]
            if len(r):
                r = r.iloc[0]
                add(f"C6.{role}.{metric}",
                    f"{metric}: {role} classifier ({r['classifier']}, fused) - C3D", None,
                    r["difference"], r["ci_low"], r["ci_high"], r["n"],
                    "paired patient bootstrap on the shared folds")
    for _, r in mean[mean["metric"] == "pr_auc"].iterrows():
        add(f"C7.pr_auc.{r['single']}", f"PR-AUC: fused - {r['single']}", None, r["estimate"],
            r["ci_low"], r["ci_high"], r["n"], "mean over classifiers (ROC: see the C5 AUC rows)")
    per = comparisons[comparisons["classifier"] != "mean over classifiers"]
    if len(per):
        wide = per[per["metric"].isin(["auc", "pr_auc"])].pivot_table(
            index=["classifier", "single"], columns="metric", values="estimate")
        dominated = int(((wide["auc"] > 0) & (wide["pr_auc"] > 0)).sum())
        rows.append({"claim": "C7", "key": "C7.dominance",
                     "quantity": "pairs where fused has the larger ROC-AUC and PR-AUC",
                     "thesis": None, "ours": f"{dominated} of {len(wide)}", "ci_low": np.nan,
                     "ci_high": np.nan, "patients": np.nan,
                     "verdict": "supported" if dominated > len(wide) / 2 else "inconclusive",
                     "how": "classifier x single modality pairs (point estimates)"})
    table = pd.DataFrame(rows)
    overall = {claim: overall_verdict(list(group["verdict"]))
               for claim, group in table[table["ci_low"].notna()].groupby("claim")}
    table["claim verdict"] = table["claim"].map(overall).fillna("not measurable")
    return table


def choices_table(params: Mapping[str, Any]) -> pd.DataFrame:
    """"Thesis says" vs "our choice" for Part 2, with every number read from ``params``."""
    det, feat, clf, c3d = (params["part2_detect"], params["features"], params["classify"],
                           params["c3d"])
    cohort = params["cohort"]["skeleton"]
    phantom = params.get("phantom", {}).get("skeleton", {})
    if det["leakage"] == "cross_fit":
        leakage = (f"cross-fitting: {det['n_folds']} label-stratified patient folds; "
                   "each patient's series are scored by the detector trained on the other folds")
    else:
        leakage = (f"disjoint subset: {det['holdout_fraction']:.0%} of the patients train the "
                   "detectors, only the others are scored and classified")
    cv = clf["cv"]
    from crossmodal.learn.classify import make_classifiers

    classifiers = list(clf.get("classifiers") or make_classifiers(0))
    n_classifiers = len(classifiers)
    rows = [
        ("cohort", "233 patients; CT, MRI and PET series (1-3 per patient)",
         f"{cohort['source']} cohort: {phantom.get('n_patients', '?')} patients, "
         f"{cohort['cancer']}; modalities {', '.join(_names(cohort).values())}"),
        ("detectors", "one YOLO per modality",
         f"{det['detector']}{det.get('scale') or ''} from scratch, "
         f"{det['imgsz']} px letterboxed slices, "
         f"{det['train']['epochs']} epochs; lesion slices + {det['negatives_per_positive']} "
         "lesion-free slice per lesion slice; lesion boxes widened to at least "
         f"{det.get('min_box_size', 0)} px"),
        ("leakage", "(not stated)", leakage),
        ("featurisation", "confidence >= 0.2, 8 bins, per-series counts",
         f"confidence >= {feat['conf']}, {feat['n_bins']} equal bins on "
         f"[{feat['conf']}, {feat['high']}], "
         f"normalised by {'slice count' if feat['normalise'] == 'slices' else 'total detections'}"
         + (", presence flag per modality" if feat["presence_flags"] else "")),
        ("classifiers", "several machine-learning classifiers",
         f"{n_classifiers} scikit-learn pipelines ({', '.join(classifiers)}), "
         "fixed hyperparameters"),
        ("evaluation", "(not stated)",
         f"{cv['n_repeats']} x repeated stratified {cv['n_splits']}-fold CV on patients; "
         f"patient-bootstrap CIs (B = {clf['n_boot']}); DeLong on mean OOF scores"),
        ("early fusion", "C3D on the stacked modalities",
         f"reduced-width C3D (width {c3d['train']['width']}, BatchNorm, global pooling), "
         f"grid {'x'.join(map(str, c3d['grid_size']))} voxels, {c3d['train']['epochs']} epochs, "
         f"first {c3d['n_repeats']} repeat(s) of the same folds"),
    ]
    return pd.DataFrame(rows, columns=["step", "thesis says", "our choice"]).set_index("step")


def metric_table(metrics: pd.DataFrame, metric_names=("accuracy", "auc"), *, digits: int = 2
                 ) -> pd.DataFrame:
    """Classifier x feature set, ``estimate [low, high]`` per metric (the chapter's table)."""
    fmt = f"{{:.{digits}f}} [{{:.{digits}f}}, {{:.{digits}f}}]"
    sub = metrics[metrics["metric"].isin(metric_names)].copy()
    sub["value"] = [fmt.format(e, lo, hi) if np.isfinite(e) else "n/a"
                    for e, lo, hi in zip(sub["estimate"], sub["ci_low"], sub["ci_high"])]
    wide = sub.pivot_table(index="classifier", columns=["metric", "feature_set"], values="value",
                           aggfunc="first", sort=False)
    return wide.reindex(columns=list(metric_names), level=0).fillna("skipped")


def leakage_table(assignment: pd.DataFrame) -> pd.DataFrame:
    """Patients per detector and role, plus how many were scored by a detector that trained
    or validated on them (the leakage rule says 0)."""
    table = assignment.pivot_table(index=["modality", "detector"], columns="role", values="case_id",
                                   aggfunc="nunique", fill_value=0)
    seen = assignment[assignment["role"] != "scored"]
    scored = assignment[assignment["role"] == "scored"]
    overlap = seen.merge(scored, on=["modality", "detector", "case_id"])
    table["patients scored by a detector that saw them"] = (
        overlap.groupby(["modality", "detector"]).size().reindex(table.index, fill_value=0))
    return table


def detector_ap_table(ap: pd.DataFrame) -> pd.DataFrame:
    """Pooled per-modality detector metrics (``ap.csv``) with CI cells."""
    return pd.DataFrame({
        "modality": ap["modality"], "patients": ap["patients"], "slices": ap["slices"],
        "lesion boxes": ap["lesion_boxes"],
        "AP50": ci_column(ap, "ap50", "ap50_ci_low", "ap50_ci_high"),
        "AP50-95": ci_column(ap, "ap50_95", "ap50_95_ci_low", "ap50_95_ci_high"),
        "lesion sensitivity": ci_column(ap, "lesion_sensitivity", "lesion_sensitivity_ci_low",
                                        "lesion_sensitivity_ci_high"),
        "FP per slice": ap["fp_per_slice"].round(3),
    }).set_index("modality")


def fused_vs_single_table(comparisons: pd.DataFrame, metrics=("accuracy", "auc", "pr_auc")) -> pd.DataFrame:
    """Classifier x (metric, single modality): fused minus single ``estimate [CI]``."""
    diff = comparisons[comparisons["metric"].isin(metrics)].copy()
    diff["fused - single"] = ci_column(diff, "estimate", "ci_low", "ci_high")
    return diff.pivot_table(index="classifier", columns=["metric", "single"], values="fused - single",
                            aggfunc="first", sort=False)


def delong_table(delong: pd.DataFrame) -> pd.DataFrame:
    """Classifier x single modality: DeLong p-value of fused vs that modality."""
    return delong.pivot_table(index="classifier", columns="single", values="p_value", sort=False)


def c3d_difference_table(vs_c3d: pd.DataFrame, metrics=("accuracy", "auc")) -> pd.DataFrame:
    """(classifier, role) x metric: classifier minus C3D ``difference [CI]``."""
    shown = vs_c3d[vs_c3d["metric"].isin(metrics)].copy()
    shown["classifier - C3D"] = ci_column(shown, "difference", "ci_low", "ci_high")
    return shown.pivot_table(index=["classifier", "role"], columns="metric", values="classifier - C3D",
                             aggfunc="first", sort=False)


def c3d_metric_table(c3d_metrics: pd.DataFrame) -> pd.DataFrame:
    """One column ``C3D``: each metric's ``estimate [CI]``."""
    return pd.DataFrame({"C3D": ci_column(c3d_metrics, "estimate", "ci_low", "ci_high")},
                        index=c3d_metrics["metric"])


def claims_view(claims: pd.DataFrame) -> pd.DataFrame:
    """The claimed-vs-reproduced table as the chapter shows it."""
    shown = claims.copy()
    shown["ours [95 % CI]"] = [format_ci(o, lo, hi, digits=3) if pd.notna(lo) else o
                               for o, lo, hi in shown[["ours", "ci_low", "ci_high"]].to_numpy()]
    shown["thesis"] = shown["thesis"].map(lambda v: f"+{v:.3f}" if pd.notna(v) else "(direction only)")
    return shown[["claim", "quantity", "thesis", "ours [95 % CI]", "patients", "verdict",
                  "claim verdict", "how"]].set_index(["claim", "quantity"])


def curves_figure(roc: pd.DataFrame, pr: pd.DataFrame, *, columns: int = 2):
    """ROC and PR curves per classifier, one line per feature set."""
    from matplotlib.figure import Figure

    classifiers = list(dict.fromkeys(roc["classifier"]))
    rows = int(np.ceil(len(classifiers) / columns))
    fig = Figure(figsize=(5.2 * columns, 2.6 * rows), layout="constrained")
    axes = fig.subplots(rows, 2 * columns, squeeze=False)
    for ax in axes.ravel()[2 * len(classifiers):]:
        ax.set_axis_off()
    for i, clf in enumerate(classifiers):
        row, col = i // columns, 2 * (i % columns)
        ax_roc, ax_pr = axes[row, col], axes[row, col + 1]
        for fs, group in roc[roc["classifier"] == clf].groupby("feature_set", sort=False):
            ax_roc.plot(group["fpr"], group["tpr"], lw=2.0 if fs == "fused" else 1.0, label=fs,
                        drawstyle="steps-post")
        for fs, group in pr[pr["classifier"] == clf].groupby("feature_set", sort=False):
            ax_pr.plot(group["recall"], group["precision"], lw=2.0 if fs == "fused" else 1.0,
                       label=fs, drawstyle="steps-post")
        ax_roc.plot([0, 1], [0, 1], color="grey", lw=0.5, ls=":")
        ax_roc.set_title(f"{clf.replace('_', ' ')}: ROC", fontsize=8)
        ax_pr.set_title(f"{clf.replace('_', ' ')}: PR", fontsize=8)
        ax_roc.set_xlabel("1 - specificity", fontsize=7)
        ax_roc.set_ylabel("sensitivity", fontsize=7)
        ax_pr.set_xlabel("recall", fontsize=7)
        ax_pr.set_ylabel("precision", fontsize=7)
        for ax in (ax_roc, ax_pr):
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1.02)
            ax.tick_params(labelsize=6)
        if i == 0:
            ax_roc.legend(fontsize=6, loc="lower right")
    return fig
