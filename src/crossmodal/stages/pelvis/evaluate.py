"""Stage ``evaluate_pelvis``: AP50 (mean over classes and per class), AP50-95, precision,
recall, FP per slice, lesion sensitivity and the 3-D lesion-level FROC (sensitivity at 0.5,
1, 2 and 4 false-positive findings per patient; FP per patient at the pre-specified matched
sensitivity of the primary lesions) per (detector, input), with patient-bootstrap CIs; paired differences (with
bootstrap p-values) against the proposed input; PR and FROC curves. The test patients are
the locked test cohort, every slice of it, where one is configured.

The operating confidence of each run is chosen on the validation patients
(``detect.evaluate.operating_rule``). Every run is evaluated on the SAME bootstrap patient
draws of the test patients (:mod:`crossmodal.stats.bootstrap`), so seed means (averaged
within each draw) and differences between inputs have paired CIs. Outputs: ``<out>/``
``metrics.csv`` (seed means with ``_ci_low``/``_ci_high``, seeds and test patients behind them;
``val_<metric>``: point estimates on the validation patients, where claims choose their
references), ``differences.csv``, ``pr_curves.csv``, ``froc_curves.csv``;
the DVC metrics JSON at ``metrics`` (one flat key per detector/input/metric).
"""

from __future__ import annotations

import functools
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crossmodal.detect import metrics as ev
from crossmodal.detect.export import dataset_ground_truth
from crossmodal.detect.froc import FP_RATES
from crossmodal.detect.froc import fp_at_sensitivity
from crossmodal.detect.froc import froc
from crossmodal.detect.froc import sensitivity_at_fp
from crossmodal.parallel import Workers
from crossmodal.parallel import map_jobs
from crossmodal.parallel import patient_workers
from crossmodal.params import study_cohort
from crossmodal.stages.pelvis import planned_runs
from crossmodal.stages.pelvis import read_predictions
from crossmodal.stages.pelvis import run_dir
from crossmodal.stages.pelvis import used_inputs
from crossmodal.stats.bootstrap import paired_bootstrap_difference
from crossmodal.stats.bootstrap import patient_resamples
from crossmodal.stats.bootstrap import percentile_ci
from crossmodal.stats.bootstrap import resample_counts

NOT_COMPARED = ("precision", "recall", "conf")  # operating-point values: no paired difference
JSON_METRICS = ("AP50", "AP50_95", "FP_per_slice", "lesion_sensitivity", "sens_at_1fp", "fp_per_patient_at_sens")


def fp_rate_name(rate: float) -> str:
    """``sens_at_0.5fp``, ``sens_at_1fp``, ...: the FROC column at ``rate`` FP per patient."""
    return f"sens_at_{rate:g}fp"


def run(params: dict[str, Any], *, datasets_dir: str | Path, runs_dir: str | Path, out: str | Path,
        metrics: str | Path) -> dict[str, pd.DataFrame]:
    """Evaluate every planned run (params ``detect``); ``metrics`` is the DVC metrics JSON."""
    tables = evaluate_runs(datasets_dir, runs_dir, out, evaluation_config(params), metrics_json=metrics,
                           workers=patient_workers(params))
    print(tables["metrics"][["detector", "input", *JSON_METRICS]].to_string(index=False))
    return tables


def evaluation_config(params: dict[str, Any]) -> dict[str, Any]:
    """What :func:`evaluate_runs` needs of the params (``detect``, the study's class names)."""
    names = study_cohort(params)["label_names"]
    return {"detectors": params["detect"]["detectors"], "inputs": params["detect"]["inputs"],
            "seeds": params["detect"]["seeds"], "proposed": params["detect"]["proposed"],
            "reference": params["detect"].get("reference"),
            "evaluate": {**params["detect"]["evaluate"], "class_names": [names[k] for k in sorted(names)],
                         "matched_sensitivity": params["detect"]["analysis"]["matched_sensitivity"],
                         "primary_class": params["detect"]["analysis"]["primary_class"]}}


def evaluate_runs(datasets_dir: str | Path, runs_dir: str | Path, out_dir: str | Path, cfg: dict[str, Any], *,
                  metrics_json: str | Path | None = None, workers: int | str | Workers = 1,
                  validation_from: tuple[str | Path, str | Path] | None = None) -> dict[str, pd.DataFrame]:
    """Metrics per (detector, input) as seed means with patient-bootstrap CIs, paired
    differences against the proposed input and PR curves; written to ``out_dir``. Runs are
    scored side by side on ``workers`` (processes or Dask, as ``compute`` says); every run
    sees the same draws, so the tables do not depend on where each was scored.
    ``validation_from``: the (datasets, runs) folders whose validation patients set each
    run's operating confidence (default: these), for test patients of another cohort."""
    datasets_dir, runs_dir, out = Path(datasets_dir), Path(runs_dir), Path(out_dir)
    val_datasets, val_runs = map(Path, validation_from or (datasets_dir, runs_dir))
    out.mkdir(parents=True, exist_ok=True)
    ev_cfg = cfg["evaluate"]
    n_test = len(dataset_ground_truth([datasets_dir / used_inputs(cfg)[0]], "test").patients)
    draws = Draws(n_test, int(ev_cfg["n_boot"]), int(ev_cfg["seed"]), float(ev_cfg["ci"]))
    runs = planned_runs(cfg)
    scored = map_jobs(functools.partial(score_run, datasets_dir=datasets_dir, runs_dir=runs_dir, cfg=ev_cfg,
                                        weights=draws.weights, validation_from=(val_datasets, val_runs)),
                      runs, jobs=workers)
    run_metric_values, curves, froc_curves = zip(*scored)
    per_seed: dict[tuple[str, str], list[dict[str, np.ndarray]]] = {}
    for run, metrics in zip(runs, run_metric_values):
        per_seed.setdefault((run["detector"], run["input"]), []).append(metrics)
    # Seed mean of every bootstrap draw: CIs of the seed-averaged metric.
    with warnings.catch_warnings():  # a metric undefined in every seed (a class absent) stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        means = {key: {m: np.nanmean(np.stack([s[m] for s in seeds]), axis=0) for m in seeds[0]}
                 for key, seeds in per_seed.items()}
    table = metrics_table(means, {key: len(seeds) for key, seeds in per_seed.items()}, draws)
    table = table.merge(validation_table(per_seed), on=["detector", "input"])
    tables = {"metrics": table, "differences": differences_table(means, cfg["proposed"], draws),
              "pr_curves": pd.concat(curves, ignore_index=True),
              "froc_curves": pd.concat(froc_curves, ignore_index=True)}
    for name, frame in tables.items():
        frame.to_csv(out / f"{name}.csv", index=False)
    if metrics_json is not None:  # DVC metrics: one flat JSON (dvc metrics show / diff)
        flat = {f"{r.detector}/{r.input}/{m}": float(getattr(r, m)) for r in table.itertuples() for m in JSON_METRICS}
        Path(metrics_json).parent.mkdir(parents=True, exist_ok=True)
        Path(metrics_json).write_text(json.dumps(flat, indent=1, allow_nan=True))
    return tables


def score_run(run: dict[str, Any], *, datasets_dir: Path, runs_dir: Path, cfg: dict[str, Any],
              weights: np.ndarray, validation_from: tuple[Path, Path] | None = None
              ) -> tuple[dict[str, np.ndarray], pd.DataFrame, pd.DataFrame]:
    """One run's metrics on the bootstrap ``weights`` (:func:`run_metrics`), its test PR
    curve and its lesion-level FROC curve; validation patients from ``validation_from``
    (datasets, runs; default: these)."""
    val_datasets, val_runs = validation_from or (datasets_dir, runs_dir)
    gt_val = dataset_ground_truth([val_datasets / run["input"]], "val")
    gt_test = dataset_ground_truth([datasets_dir / run["input"]], "test")
    preds_val = read_predictions(run_dir(val_runs, run) / "predictions_val.csv")
    preds_test = read_predictions(run_dir(runs_dir, run) / "predictions_test.csv")
    key = {"detector": run["detector"], "input": run["input"], "seed": run["seed"]}
    metrics = run_metrics(gt_val, gt_test, preds_val, preds_test, weights, cfg=cfg)
    curve = ev.pr_curve(gt_test, preds_test)
    lesion_curve = froc(gt_test, preds_test, lesion_hit=cfg["lesion_hit"])
    return (metrics,
            pd.DataFrame({**key, "recall": curve.recall_thresholds, "precision": curve.precision_interpolated}),
            pd.DataFrame({**key, "threshold": lesion_curve.thresholds,
                          "fp_per_patient": lesion_curve.fp_per_patient, "sensitivity": lesion_curve.sensitivity}))


class Draws:
    """The test patients' bootstrap draws shared by every run (the pairing of all CIs)."""

    def __init__(self, n_patients: int, n_boot: int, seed: int, ci: float):
        self.n_patients, self.n_boot, self.seed, self.ci = n_patients, n_boot, seed, ci
        self.indices = patient_resamples(n_patients, n_boot, seed)
        self.weights = resample_counts(self.indices, n_patients)

    def interval(self, values: np.ndarray) -> tuple[float, float]:
        """Percentile CI of a metric given as point estimate followed by its draws."""
        return percentile_ci(values[1:], self.ci)

    def difference(self, a: np.ndarray, b: np.ndarray):
        """Paired CI of ``a - b`` (each: point estimate, then the values on these draws)."""
        return paired_bootstrap_difference(self.statistic(a), self.statistic(b), self.n_patients,
                                           n_boot=self.n_boot, seed=self.seed, ci=self.ci)

    def statistic(self, values: np.ndarray):
        """``values`` (computed on these draws) as a statistic of resample indices."""
        def statistic(indices):
            if indices is None:
                return values[0]
            if not np.array_equal(indices, self.indices):
                raise ValueError("the statistic was computed on other bootstrap draws")
            return values[1:]
        return statistic


def run_metrics(gt_val, gt_test, preds_val, preds_test, weights: np.ndarray, *,
                cfg: dict[str, Any]) -> dict[str, np.ndarray]:
    """Point estimate (index 0) followed by the bootstrap values, for every metric; the
    operating confidence by ``cfg["operating_rule"]`` on the validation patients, lesion
    hits by ``cfg["lesion_hit"]``; ``val_*``: point estimates on the validation patients."""
    rule, lesion_hit = cfg["operating_rule"], cfg["lesion_hit"]
    conf = ev.choose_operating_confidence(gt_val, preds_val, rule=rule)
    w = np.vstack([np.ones((1, weights.shape[1])), weights])
    precision, recall = ev.precision_recall_at(gt_test, preds_test, conf, patient_weights=w)
    metrics = {
        "AP50": np.asarray(ev.ap50(gt_test, preds_test, patient_weights=w), float),
        **per_class_ap50(gt_test, preds_test, cfg["class_names"], patient_weights=w),
        "AP50_95": np.asarray(ev.ap50_95(gt_test, preds_test, patient_weights=w), float),
        "precision": np.asarray(precision, float),
        "recall": np.asarray(recall, float),
        "FP_per_slice": np.asarray(ev.false_positives_per_slice(gt_test, preds_test, conf, patient_weights=w), float),
        "lesion_sensitivity": np.asarray(ev.lesion_sensitivity(gt_test, preds_test, conf, rule=lesion_hit,
                                                                         patient_weights=w), float),
        "conf": np.full(len(w), conf),
    }
    curve = froc(gt_test, preds_test, lesion_hit=lesion_hit, patient_weights=w)
    for rate, values in zip(FP_RATES, np.asarray(sensitivity_at_fp(curve, FP_RATES), float).T):
        metrics[fp_rate_name(rate)] = values
    # C3's matched sensitivity is on the primary lesions (detections on the others are no FP)
    primary = froc(gt_test, preds_test, lesion_hit=lesion_hit, patient_weights=w,
                   lesion_classes=[cfg["class_names"].index(cfg["primary_class"])])
    metrics["fp_per_patient_at_sens"] = np.asarray(fp_at_sensitivity(primary, cfg["matched_sensitivity"]), float)
    validation = {"AP50": np.asarray(ev.ap50(gt_val, preds_val), float),
                  **per_class_ap50(gt_val, preds_val, cfg["class_names"])}
    metrics.update({f"val_{name}": np.full(len(w), float(value)) for name, value in validation.items()})
    return metrics


def per_class_ap50(gt, preds, class_names: list[str], *, patient_weights=None) -> dict[str, np.ndarray]:
    """``AP50_<class name>`` for every class (class id = position in ``class_names``)."""
    per_class = ev.ap50_per_class(gt, preds, class_ids=range(len(class_names)), patient_weights=patient_weights)
    return {f"AP50_{name}": np.asarray(per_class[k], float) for k, name in enumerate(class_names)}


def validation_table(per_seed: dict) -> pd.DataFrame:
    """``val_<metric>`` seed means per (detector, input): the point estimates on the
    validation patients by which the claims choose their reference inputs."""
    rows = []
    for (detector, name), seeds in per_seed.items():
        row = {"detector": detector, "input": name}
        for metric in seeds[0]:
            if metric.startswith("val_"):
                row[metric] = float(np.nanmean([s[metric][0] for s in seeds]))
        rows.append(row)
    return pd.DataFrame(rows)


def metrics_table(means: dict, seeds: dict, draws: Draws) -> pd.DataFrame:
    """One row per (detector, input): seeds, test patients, every metric with its ``_ci_low``/``_ci_high`` CI."""
    rows = []
    for (detector, name), metrics in means.items():
        row = {"detector": detector, "input": name, "seeds": seeds[(detector, name)],
               "test_patients": draws.n_patients}
        for metric, values in metrics.items():
            if metric.startswith("val_"):
                continue
            lo, hi = draws.interval(values)
            row.update({metric: values[0], f"{metric}_ci_low": lo, f"{metric}_ci_high": hi})
        rows.append(row)
    return pd.DataFrame(rows)


def differences_table(means: dict, proposed: str, draws: Draws) -> pd.DataFrame:
    """Proposed input minus every other input of the same detector, with paired CIs."""
    rows = []
    for (detector, name), metrics in means.items():
        if name == proposed or (detector, proposed) not in means:
            continue
        for metric in metrics:
            if metric in NOT_COMPARED or metric.startswith("val_"):
                continue
            paired = draws.difference(means[(detector, proposed)][metric], metrics[metric])
            rows.append({"detector": detector, "input": name, "metric": metric,
                         "difference": paired.difference, "ci_low": paired.low, "ci_high": paired.high,
                         "p_value": paired.p_value})
    return pd.DataFrame(rows)
