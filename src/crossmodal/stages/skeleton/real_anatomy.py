"""Stage ``real_anatomy_skeleton``: Part 2's detectors and classifiers, trained on the
skeletal phantom, tested on the hybrid cohort of a real skeleton (real CT, simulated MR and
PET, inserted metastases and mimics: :mod:`crossmodal.phantom.hybrid_skeleton`).

The cohort ``cohort.skeleton_real_anatomy`` goes through Part 2 unchanged and nothing is
trained or chosen on it:

1. ingestion by its cohort rules (refused if a patient is also a phantom patient);
2. every series exported whole as the detectors' scored series are
   (:func:`~crossmodal.detect.series_slices.detector_slices`), each modality detected by its
   fold-``d0`` detector (trained on the phantom patients of the other folds);
3. detection metrics per modality (AP50, AP50-95, lesion sensitivity, with patient-bootstrap
   CIs: :func:`~crossmodal.stages.skeleton.evaluate.detection_metrics`);
4. the confidence-bin features of ``features_skeleton``;
5. per feature set (each modality on the patients who have it, fused on everyone), the
   classifier nested CV chose most often for the fused features on the phantom
   (``classify_skeleton``'s ``nested_choices.csv``), fitted on every phantom patient's
   features, scores these patients; metrics with CIs and fused minus each single modality
   on the patients who have it (paired bootstrap).

Writes under ``out``: ``ingest/``, ``datasets/<MOD>/``, ``findings.csv`` (the inserted
metastases and mimics of the ingested patients), ``series.csv``, ``detections.csv``,
``ap.csv``, ``features.csv``, ``classifier.csv`` (the one used and why), ``scores.csv``,
``metrics.csv`` and ``comparisons.csv``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from crossmodal.detect.env import configure_ultralytics
from crossmodal.detect.export import dataset_ground_truth
from crossmodal.detect.export import export_yolo
from crossmodal.detect.export import read_split
from crossmodal.detect.series_slices import detector_slices
from crossmodal.io.case import Case
from crossmodal.io.case import load_cases
from crossmodal.learn.classify import boot_options
from crossmodal.learn.classify import make_classifiers
from crossmodal.learn.features import confidence_bins
from crossmodal.learn.features import feature_columns
from crossmodal.learn.features import modality_mask
from crossmodal.learn.features import patient_feature_table
from crossmodal.learn.metrics import compare_with_ci
from crossmodal.learn.metrics import metrics_with_ci
from crossmodal.learn.patients import modality_names
from crossmodal.learn.patients import series_table
from crossmodal.stages.ingest import check_disjoint
from crossmodal.stages.ingest import ingest_tree
from crossmodal.stages.skeleton.evaluate import detection_metrics
from crossmodal.stages.skeleton.evaluate import predictions_of
from crossmodal.stages.skeleton.train import DETECTION_COLUMNS

COHORT = "skeleton_real_anatomy"
DETECTOR = "d0"  # the fold detector that scores this cohort (any fold's saw none of it)


def run(params: dict[str, Any], *, ingest_dir: str | Path, datasets_dir: str | Path, runs_dir: str | Path,
        features_dir: str | Path, classify_dir: str | Path, out: str | Path) -> dict[str, pd.DataFrame]:
    """Test Part 2's phantom-trained detectors (``runs_dir``) and classifiers (fitted on
    ``features_dir``, chosen from ``classify_dir``) on ``cohort.skeleton_real_anatomy``;
    ``ingest_dir``: the phantom's ingestion, which must share no patient (see the module doc)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ingest_tree(params, COHORT, params["cohort"][COHORT]["root"], out / "ingest")
    check_disjoint(ingest_dir, out / "ingest")
    cases = {case.case_id: case for case in load_cases(out / "ingest")}
    names = modality_names(params["cohort"]["skeleton"])
    series = series_table(list(cases.values()), names=names,
                          label_source=params["cohort"][COHORT].get("patient_label", "truth"))
    findings = inserted_findings(cases.values())
    detections = detect(params, cases, series, names, datasets_dir=Path(datasets_dir), runs_dir=Path(runs_dir),
                        out=out / "datasets")
    ap = detection_table(params, detections, out / "datasets", names)
    scored = series.assign(detector=DETECTOR)[["case_id", "modality", "n_slices", "detector", "y"]]
    table = feature_table(params, detections, scored)
    phantom = pd.read_csv(Path(features_dir) / "features.csv", index_col="case_id")
    classifier = pre_specified_classifier(Path(classify_dir) / "nested_choices.csv")
    scores = score_feature_sets(phantom, table, list(names.values()), classifier["classifier"],
                                seed=int(params["classify"]["cv"]["seed"]))
    tables = {"findings": findings, "series": scored, "detections": detections, "ap": ap, "features": table,
              "classifier": pd.DataFrame([classifier]), "scores": scores,
              **classification_tables(scores, list(names.values()), boot_options(params["classify"]),
                                      classifier=classifier["classifier"])}
    for key, frame in tables.items():
        frame.to_csv(out / f"{key}.csv", index=key == "features")
    return tables


def inserted_findings(cases) -> pd.DataFrame:
    """One row per inserted metastasis and mimic of every ingested patient (its truth):
    case_id, kind, type, site, bone, evidence (metastases) or fools (mimics)."""
    rows = []
    for case in cases:
        truth = case.truth or {}
        for finding in truth.get("lesions", []) + truth.get("mimics", []):
            rows.append({"case_id": case.case_id, **{k: finding.get(k) for k in ("kind", "type", "site", "bone",
                                                                                   "evidence", "fools")}})
    return pd.DataFrame(rows, columns=["case_id", "kind", "type", "site", "bone", "evidence", "fools"])


def detect(params: dict[str, Any], cases: dict[str, Case], series: pd.DataFrame, names: dict[str, str], *,
           datasets_dir: Path, runs_dir: Path, out: Path) -> pd.DataFrame:
    """Every slice of every series, exported as the phantom's scored series (its detector's
    class names) and detected by that modality's ``d0`` run; columns of ``detections.csv``."""
    from crossmodal.detect.train import load_detector
    from crossmodal.detect.train import predict

    configure_ultralytics()
    detect_cfg, pred = params["part2_detect"], params["part2_detect"]["predict"]
    found = []
    for code, name in names.items():
        have = sorted(series.loc[series["code"] == code, "case_id"])
        if not have:
            continue
        split = {case_id: "test" for case_id in have}
        dataset = out / name
        shutil.rmtree(dataset, ignore_errors=True)
        records = detector_slices(cases, code, split, detect_cfg["channels"][code],
                                  size=tuple(detect_cfg["slice_size"]), tile_size=int(detect_cfg["tile_size"]),
                                  seed=int(detect_cfg["seed"]),
                                  negatives_per_positive=float(detect_cfg["negatives_per_positive"]),
                                  min_box_pixels=int(detect_cfg.get("min_box_pixels", 1)))
        export_yolo(records, dataset, split_of=split, class_names=_class_names(datasets_dir, name))
        rows = read_split(dataset, "test")
        model = load_detector(runs_dir / name / DETECTOR)
        boxes = predict(model, [r["image_path"] for r in rows], conf=float(pred["ap_conf"]),
                        batch=int(pred["batch"]), max_det=int(pred["max_det"]), iou=float(pred["iou"]),
                        device=detect_cfg.get("device"), imgsz=list(detect_cfg["slice_size"]))
        found += [(name, DETECTOR, r["case_id"], r["z"], r["image_id"], x0, y0, x1, y1, score, int(cls))
                  for r, det in zip(rows, boxes) for x0, y0, x1, y1, score, cls in det]
    return pd.DataFrame(found, columns=DETECTION_COLUMNS)


def _class_names(datasets_dir: Path, modality: str) -> list[str]:
    """The class names the phantom's detector of ``modality`` was trained with."""
    import yaml

    names = yaml.safe_load((datasets_dir / modality / DETECTOR / "data.yaml").read_text())["names"]
    return [names[k] for k in sorted(names)] if isinstance(names, dict) else list(names)


def detection_table(params: dict[str, Any], detections: pd.DataFrame, datasets: Path,
                    names: dict[str, str]) -> pd.DataFrame:
    """AP50, AP50-95 and lesion sensitivity per modality with patient-bootstrap CIs, as
    ``evaluate_skeleton`` reports the phantom's."""
    evaluation = params["part2_detect"]
    boot = {"conf": float(params["features"]["conf"]), "n_boot": int(evaluation["n_boot"]),
            "seed": int(evaluation["seed"]), "ci": float(evaluation["ci"]), "lesion_hit": evaluation["lesion_hit"]}
    rows = [{"modality": name, **detection_metrics(dataset_ground_truth([datasets / name], "test"),
                                                   predictions_of(detections, name), **boot)}
            for name in names.values() if (datasets / name).exists()]
    return pd.DataFrame(rows)


def feature_table(params: dict[str, Any], detections: pd.DataFrame, series: pd.DataFrame) -> pd.DataFrame:
    """The confidence-bin features of ``features_skeleton`` for these patients, with ``y``."""
    features = params["features"]
    counted = detections[detections["score"] >= float(features["conf"])]
    edges = confidence_bins(low=float(features["conf"]), high=float(features["high"]), n_bins=int(features["n_bins"]))
    names = list(modality_names(params["cohort"]["skeleton"]).values())
    table = patient_feature_table(counted, series, modalities=names, normalise=features["normalise"],
                                  presence_flags=bool(features["presence_flags"]), edges=edges)
    table["y"] = series.groupby("case_id")["y"].first().reindex(table.index).astype(int)
    return table


def pre_specified_classifier(nested_choices: Path) -> dict[str, Any]:
    """The classifier nested CV chose most often for the fused features of every phantom
    patient (ties: the first by name), with the count behind the choice."""
    choices = pd.read_csv(nested_choices)
    fused = choices[(choices["feature_set"] == "fused") & (choices["patients"] == "all")]
    if fused.empty:
        raise ValueError(f"{nested_choices}: no nested choice for the fused features of all patients")
    counts = fused["chosen"].value_counts()
    best = sorted(counts[counts == counts.max()].index)[0]
    return {"classifier": best, "chosen_in": int(counts[best]), "outer_folds": len(fused),
            "rule": "chosen most often by nested CV for the fused features on the phantom"}


def score_feature_sets(phantom: pd.DataFrame, table: pd.DataFrame, names: list[str], classifier: str, *,
                       seed: int) -> pd.DataFrame:
    """Each feature set's probability for every patient of ``table`` who has it, from
    ``classifier`` fitted on every phantom patient who has it; OOF-table columns
    (``repeat, fold, index, case_id, y, prob``) plus ``feature_set``."""
    model = make_classifiers(seed)[classifier]
    parts = []
    for fs in [*names, "fused"]:
        train = phantom if fs == "fused" else phantom[modality_mask(phantom, fs)]
        test = table if fs == "fused" else table[modality_mask(table, fs)]
        if test.empty or train["y"].nunique() < 2:
            continue
        columns = feature_columns(phantom, fs)
        fitted = clone(model).fit(train[columns].to_numpy(float), train["y"].astype(int).to_numpy())
        prob = fitted.predict_proba(test[columns].to_numpy(float))[:, list(fitted.classes_).index(1)]
        parts.append(pd.DataFrame({"repeat": 0, "fold": 0, "index": np.arange(len(test)), "case_id": test.index,
                                   "y": test["y"].astype(int).to_numpy(), "prob": prob, "feature_set": fs}))
    return pd.concat(parts, ignore_index=True)


def classification_tables(scores: pd.DataFrame, names: list[str], boot: dict[str, Any], *,
                          classifier: str) -> dict[str, pd.DataFrame]:
    """Metrics with CIs per feature set, and fused minus each single modality on the
    patients who have it (paired patient bootstrap), each row naming the ``classifier``; a
    set with one class only is left out."""
    metrics, comparisons = [], []
    by_set = {fs: group.drop(columns="feature_set") for fs, group in scores.groupby("feature_set")}
    for fs, oof in by_set.items():
        if oof["y"].nunique() == 2:
            metrics.append(metrics_with_ci(oof, **boot).reset_index().assign(
                classifier=classifier, feature_set=fs, n=len(oof), n_pos=int(oof["y"].sum())))
    fused = by_set.get("fused")
    for single in names:
        alone = by_set.get(single)
        if fused is None or alone is None or alone["y"].nunique() < 2:
            continue
        comparisons.append(compare_with_ci(fused, alone, **boot).reset_index().assign(classifier=classifier,
                                                                                      single=single))
    return {"metrics": pd.concat(metrics, ignore_index=True) if metrics else pd.DataFrame(),
            "comparisons": pd.concat(comparisons, ignore_index=True) if comparisons else pd.DataFrame()}
