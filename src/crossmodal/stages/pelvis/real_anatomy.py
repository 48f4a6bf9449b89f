"""Stage ``real_anatomy_pelvis``: the Part 1 detectors, trained on the phantom, tested on
the hybrid cohort (a real CT, simulated PET, inserted lesions:
:mod:`crossmodal.phantom.hybrid_pelvis`).

The cohort ``cohort.pelvis_real_anatomy`` goes through Part 1 unchanged: ingestion,
alignment and fusion of every slice (``align_fuse``), export of every patient as a test
patient (refused if one is also a development patient), then every planned run's
detections with its phantom-trained weights, scored as ``evaluate_pelvis`` scores the
phantom's locked test cohort, each run at the operating confidence it chose on the
phantom's validation patients. Nothing is trained or chosen on this cohort. Writes under
``out``: ``ingest/``, ``lesions.csv`` (the inserted lesions of the ingested cases), ``align_fuse/``, ``datasets/``, ``runs/<detector>/<input>/seed<k>/
predictions_test.csv`` and ``runs/runs.csv``, ``evaluation/`` (``metrics.csv``,
``differences.csv``, ``pr_curves.csv``, ``froc_curves.csv``), and the DVC metrics JSON at
``metrics``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pandas as pd

from crossmodal.io.case import load_cases
from crossmodal.parallel import compute_setting
from crossmodal.parallel import patient_workers
from crossmodal.params import study_cohort
from crossmodal.stages.ingest import ingest_tree
from crossmodal.stages.pelvis import used_inputs
from crossmodal.stages.pelvis.align_fuse import run_align_fuse
from crossmodal.stages.pelvis.datasets import export_test_datasets
from crossmodal.stages.pelvis.evaluate import evaluate_runs
from crossmodal.stages.pelvis.evaluate import evaluation_config
from crossmodal.stages.pelvis.train import predict_reference
from crossmodal.stages.pelvis.train import map_planned_runs
from crossmodal.stages.pelvis.train import predict_run
from crossmodal.stages.pelvis.train import training_config

COHORT = "pelvis_real_anatomy"


def run(params: dict[str, Any], *, align_dir: str | Path, datasets_dir: str | Path, runs_dir: str | Path,
        out: str | Path, metrics: str | Path | None = None) -> dict[str, pd.DataFrame]:
    """Test the runs of ``runs_dir`` (trained on ``datasets_dir``, whose development
    patients ``align_dir`` holds) on ``cohort.pelvis_real_anatomy``; see the module doc."""
    out, jobs = Path(out), patient_workers(params)
    ingest_tree(params, COHORT, params["cohort"][COHORT]["root"], out / "ingest")
    cases = load_cases(out / "ingest")
    lesions = inserted_lesions(cases)
    lesions.to_csv(out / "lesions.csv", index=False)
    tested = used_inputs(params["detect"])
    cfg = {**params["align_fuse"], "inputs": {k: v for k, v in params["align_fuse"]["inputs"].items() if k in tested}}
    alignment = run_align_fuse(cases, out / "align_fuse", cfg, progress=True, jobs=jobs, every_slice=True)["alignment"]
    names = study_cohort(params)["label_names"]
    split = export_test_datasets(out / "align_fuse", out / "datasets", params["detect"],
                                 class_names=[names[k] for k in sorted(names)], dev_align_dir=align_dir, jobs=jobs)
    runs = predict_runs(params, datasets_dir=out / "datasets", runs_dir=Path(runs_dir), out=out / "runs")
    tables = evaluate_runs(out / "datasets", out / "runs", out / "evaluation", evaluation_config(params),
                           metrics_json=metrics, workers=jobs, validation_from=(datasets_dir, runs_dir))
    return {"lesions": lesions, "alignment": alignment, "split": split, "runs": runs, **tables}


def inserted_lesions(cases) -> pd.DataFrame:
    """One row per inserted lesion of every ingested case (its truth sidecar): case_id,
    kind, site, volume_ml, suv_max."""
    rows = [{"case_id": case.case_id, **{k: lesion.get(k) for k in ("kind", "site", "volume_ml", "suv_max")}}
            for case in cases for lesion in (case.truth or {}).get("lesions", [])]
    return pd.DataFrame(rows, columns=["case_id", "kind", "site", "volume_ml", "suv_max"])


def predict_runs(params: dict[str, Any], *, datasets_dir: Path, runs_dir: Path, out: Path) -> pd.DataFrame:
    """Every planned run's detections on the test patients of ``datasets_dir``, with the
    weights under ``runs_dir``, side by side as ``compute.detector_runs`` allows."""
    cfg = training_config(params)
    return map_planned_runs(functools.partial(predict_test, datasets_dir=datasets_dir, runs_dir=runs_dir, out=out,
                                              cfg=cfg), cfg, out,
                            runs_at_once=compute_setting(params, "detector_runs"), progress=True)


def predict_test(run: dict[str, Any], *, datasets_dir: Path, runs_dir: Path, out: Path,
                 cfg: dict[str, Any]) -> dict[str, Any]:
    """One run's detections on the test split (the reference's rule, or the learned run's
    weights from ``runs_dir``)."""
    if cfg.get("reference") and run["detector"] == cfg["reference"]["name"]:
        return predict_reference(run, datasets_dir, out, cfg["reference"], splits=("test",))
    return predict_run(run, datasets_dir, out, cfg, weights_dir=runs_dir, splits=("test",))
