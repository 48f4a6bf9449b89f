"""Part 1 detection: datasets per fusion input, detector runs, evaluation and claims C1-C4.

Three stages, each one entry point (see ``dvc.yaml``):

* :func:`export_datasets` - one ultralytics dataset + COCO JSON per input, all sharing
  one seeded, stratified patient split (so every comparison is paired);
* :func:`train_and_predict` - every (detector, input, seed) run trained from scratch,
  then its raw detections (conf >= ``predict.conf``) on the val and test slices;
* :func:`evaluate_runs` - AP50, AP50-95, precision/recall/FP per slice/lesion
  sensitivity at an operating confidence chosen on val, with 95 % patient-bootstrap CIs;
  the SAME bootstrap patient draws are used for every run, so paired differences
  (input A minus input B) and seed means have CIs too; then the claims table.
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crossmodal.detect import metrics as ev
from crossmodal.detect.dataset import SliceRecord
from crossmodal.detect.dataset import export_coco
from crossmodal.detect.dataset import export_yolo
from crossmodal.detect.dataset import patient_split
from crossmodal.detect.dataset import read_split
from crossmodal.parallel import map_jobs
from crossmodal.parallel import resolve_jobs
from crossmodal.part1 import load_fused
from crossmodal.report.common import ci_column

SPLITS = ("train", "val", "test")


# ----------------------------------------------------------------------------- datasets


def split_patients(slices: pd.DataFrame, *, fractions, seed: int) -> pd.DataFrame:
    """Patient-level split stratified by lesion burden (slices with boxes: above/below median)."""
    per_patient = slices.groupby("patient").agg(case_id=("case_id", "first"), boxes=("n_boxes", "sum"))
    strata = (per_patient["boxes"] > per_patient["boxes"].median()).astype(int)
    split = patient_split(list(per_patient.index), list(strata), fractions=fractions, seed=seed)
    return pd.DataFrame({"patient": per_patient.index, "case_id": per_patient["case_id"],
                         "stratum": strata.values, "split": [split[p] for p in per_patient.index]})


def records_for_input(fused_dir: Path, case_ids: list[str]) -> list[SliceRecord]:
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


def export_datasets(align_dir: str | Path, out_dir: str | Path, cfg: dict[str, Any], *,
                    class_names: list[str], jobs: int | str = 1) -> pd.DataFrame:
    """Write ``<out>/<input>/`` (YOLO layout, data.yaml, coco_<split>.json) for every input,
    on ``jobs`` processes (one input each)."""
    align_dir, out = Path(align_dir), Path(out_dir)
    slices = pd.read_csv(align_dir / "slices.csv")
    split = split_patients(slices, fractions=cfg["split"]["fractions"], seed=int(cfg["split"]["seed"]))
    out.mkdir(parents=True, exist_ok=True)
    split.to_csv(out / "split.csv", index=False)
    export = functools.partial(export_input, align_dir=align_dir, out=out,
                               split_of=dict(zip(split["case_id"], split["split"])),
                               stride=int(cfg.get("train_slice_stride", 1)), class_names=class_names)
    map_jobs(export, used_inputs(cfg), jobs=jobs)
    return split


# ----------------------------------------------------------------------------- runs


def planned_runs(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """Every (detector, input, seed) of ``detect.detectors`` (inputs: a list or "all")."""
    runs = []
    for spec in cfg["detectors"]:
        inputs = cfg["inputs"] if spec["inputs"] == "all" else spec["inputs"]
        for name in inputs:
            for seed in cfg["seeds"]:
                runs.append({"detector": spec["name"], "input": name, "seed": int(seed)})
    return runs


def used_inputs(cfg: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys(r["input"] for r in planned_runs(cfg)))


def run_dir(root: Path, run: dict[str, Any]) -> Path:
    return root / run["detector"] / run["input"] / f"seed{run['seed']}"


def train_and_predict_run(run: dict[str, Any], datasets_dir: Path, out: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    """Train one (detector, input, seed) run from scratch; write its val/test detections."""
    from crossmodal.detect.train import predict
    from crossmodal.detect.train import train_detector

    folder = run_dir(out, run)
    train = cfg["train"]
    options = dict(train.get("options", {}).get(run["detector"], {}))
    detector = train_detector(run["detector"], datasets_dir / run["input"] / "data.yaml", folder,
                              epochs=int(train["epochs"]), imgsz=int(train["imgsz"]),
                              batch=int(train["batch"]), seed=run["seed"], device=train.get("device"),
                              **options)
    for split in ("val", "test"):
        items = read_split(datasets_dir / run["input"], split)
        detections = predict(detector, [i["image_path"] for i in items], conf=float(cfg["predict"]["conf"]))
        table = ev.predictions([i["image_id"] for i in items], detections)
        table.to_csv(folder / f"predictions_{split}.csv", index=False)
    return {**run, "epochs_trained": len(detector.record.get("history", [])),
            "train_seconds": detector.record.get("train_seconds"), "device": detector.record.get("device")}


def train_and_predict(datasets_dir: str | Path, out_dir: str | Path, cfg: dict[str, Any], *,
                      progress: bool = False, runs_at_once: int | str = 1) -> pd.DataFrame:
    """Train every planned run from scratch and store its val/test detections.

    ``runs_at_once`` runs train side by side in their own processes, sharing the cores
    (``'auto'``: one per core, one thread each). Small detectors use a second thread
    poorly: on 2 cores, two one-thread YOLOv8n runs side by side trained 19 % faster than
    one after the other on two threads; with a GPU each run still loads and augments its
    images on the CPU. Each run is seeded on its own; on the CPU its weights depend on its
    thread count (float sums run in another order), as they do on another machine.
    """
    datasets_dir, out = Path(datasets_dir), Path(out_dir)
    runs = planned_runs(cfg)
    at_once = resolve_jobs(runs_at_once, len(runs))
    start = time.perf_counter()
    rows = map_jobs(functools.partial(train_and_predict_run, datasets_dir=datasets_dir, out=out, cfg=cfg), runs,
                    jobs=at_once, progress=progress, desc=f"detector runs ({at_once} at once)", unit="run")
    table = pd.DataFrame(rows).assign(runs_at_once=at_once, stage_seconds=time.perf_counter() - start)
    table.to_csv(out / "runs.csv", index=False)
    return table


def runs_summary(runs: pd.DataFrame) -> str:
    """One sentence on the training stage: runs, epochs, device, process time and wall time."""
    epochs = runs["epochs_trained"]
    epoch_text = f"{epochs.min()}" if epochs.min() == epochs.max() else f"{epochs.min()}-{epochs.max()}"
    return (f"{len(runs)} detector runs ({runs['detector'].nunique()} detectors) of {epoch_text} epochs on "
            f"{', '.join(sorted(set(runs['device'])))}, {runs['runs_at_once'].iloc[0]} at a time: "
            f"{runs['train_seconds'].sum() / 60:.1f} min of training summed over runs, "
            f"{runs['stage_seconds'].iloc[0] / 60:.1f} min for the whole stage.")


# ----------------------------------------------------------------------------- evaluation


def ground_truth_for(datasets_dir: Path, name: str, split: str) -> ev.GroundTruth:
    items = read_split(datasets_dir / name, split)
    return ev.ground_truth([i["image_id"] for i in items], [i["case_id"] for i in items],
                           [i["boxes"] for i in items], classes=[i["classes"] for i in items],
                           lesion_ids=[i["lesion_ids"] for i in items])


def _read_predictions(path: Path) -> pd.DataFrame:
    table = pd.read_csv(path)
    return table if len(table) else ev.predictions([], [])


def run_metrics(gt_val, gt_test, preds_val, preds_test, weights, cfg) -> dict[str, np.ndarray]:
    """Point estimate (index 0) followed by the bootstrap values, for every metric."""
    conf = ev.choose_operating_confidence(gt_val, preds_val, rule=cfg["evaluate"]["operating_rule"])
    full = np.ones((1, weights.shape[1]))
    w = np.vstack([full, weights])
    precision, recall = ev.precision_recall_at(gt_test, preds_test, conf, patient_weights=w)
    return {
        "AP50": np.asarray(ev.ap50(gt_test, preds_test, patient_weights=w), float),
        "AP50_95": np.asarray(ev.ap50_95(gt_test, preds_test, patient_weights=w), float),
        "precision": np.asarray(precision, float),
        "recall": np.asarray(recall, float),
        "FP_per_slice": np.asarray(ev.false_positives_per_slice(gt_test, preds_test, conf, patient_weights=w), float),
        "lesion_sensitivity": np.asarray(ev.lesion_sensitivity(gt_test, preds_test, conf, patient_weights=w), float),
        "conf": np.full(len(w), conf),
    }


def _interval(values: np.ndarray, ci: float) -> tuple[float, float]:
    boot = values[1:][np.isfinite(values[1:])]
    if len(boot) == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(boot, [(1 - ci) / 2, 1 - (1 - ci) / 2])
    return float(lo), float(hi)


def evaluate_runs(datasets_dir: str | Path, runs_dir: str | Path, out_dir: str | Path,
                  cfg: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """Metrics per (detector, input) as seed means with patient-bootstrap CIs, paired
    differences against the proposed input, PR curves, and the claims table."""
    datasets_dir, runs_dir, out = Path(datasets_dir), Path(runs_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ci = float(cfg["evaluate"]["ci"])
    truth = {(name, split): ground_truth_for(datasets_dir, name, split)
             for name in used_inputs(cfg) for split in ("val", "test")}  # read once per input
    n_test_patients = len(truth[(used_inputs(cfg)[0], "test")].patients)
    weights = ev.bootstrap_weights(n_test_patients, int(cfg["evaluate"]["n_boot"]),
                                   int(cfg["evaluate"]["seed"]))
    per_seed: dict[tuple[str, str], list[dict[str, np.ndarray]]] = {}
    curves = []
    for run in planned_runs(cfg):
        folder = run_dir(runs_dir, run)
        gt_val, gt_test = truth[(run["input"], "val")], truth[(run["input"], "test")]
        preds_val = _read_predictions(folder / "predictions_val.csv")
        preds_test = _read_predictions(folder / "predictions_test.csv")
        per_seed.setdefault((run["detector"], run["input"]), []).append(
            run_metrics(gt_val, gt_test, preds_val, preds_test, weights, cfg))
        curve = ev.pr_curve(gt_test, preds_test)
        curves.append(pd.DataFrame({"detector": run["detector"], "input": run["input"], "seed": run["seed"],
                                    "recall": curve.recall_thresholds,
                                    "precision": curve.precision_interpolated}))
    # Seed mean of every bootstrap draw: CIs of the seed-averaged metric.
    means = {key: {m: np.nanmean(np.stack([s[m] for s in seeds]), axis=0) for m in seeds[0]}
             for key, seeds in per_seed.items()}
    rows = []
    for (detector, name), metrics in means.items():
        row = {"detector": detector, "input": name, "seeds": len(per_seed[(detector, name)])}
        for metric, values in metrics.items():
            lo, hi = _interval(values, ci)
            row.update({metric: values[0], f"{metric}_lo": lo, f"{metric}_hi": hi})
        rows.append(row)
    table = pd.DataFrame(rows)
    proposed = cfg["proposed"]
    differences = []
    for (detector, name), metrics in means.items():
        if name == proposed or (detector, proposed) not in means:
            continue
        for metric in ("AP50", "AP50_95", "FP_per_slice"):
            diff = means[(detector, proposed)][metric] - metrics[metric]
            lo, hi = _interval(diff, ci)
            differences.append({"detector": detector, "input": name, "metric": metric,
                                "difference": diff[0], "lo": lo, "hi": hi})
    differences = pd.DataFrame(differences)
    claims = claims_table(table, differences, cfg)
    tables = {"metrics": table, "differences": differences, "pr_curves": pd.concat(curves, ignore_index=True),
              "claims": claims}
    for name, frame in tables.items():
        frame.to_csv(out / f"{name}.csv", index=False)
    # DVC metrics: one flat JSON (dvc metrics show / diff).
    flat = {f"{r.detector}/{r.input}/{m}": float(getattr(r, m)) for r in table.itertuples()
            for m in ("AP50", "AP50_95", "FP_per_slice", "lesion_sensitivity")}
    (out / "metrics.json").write_text(json.dumps(flat, indent=1, allow_nan=True))
    return tables


def _verdict(lo: float, hi: float, *, better_is_positive: bool = True) -> str:
    if not np.isfinite(lo) or not np.isfinite(hi):
        return "not measurable"
    if not better_is_positive:
        lo, hi = -hi, -lo
    if lo > 0:
        return "supported"
    if hi < 0:
        return "contradicted"
    return "inconclusive"


def claims_table(metrics: pd.DataFrame, differences: pd.DataFrame, cfg: dict[str, Any]) -> pd.DataFrame:
    """C1-C4 per detector: thesis number, our number with CI, verdict (computed, never typed)."""
    groups = cfg["claims"]
    rows = []
    for detector in metrics["detector"].unique():
        m = metrics[metrics.detector == detector].set_index("input")
        d = differences[differences.detector == detector]
        for claim, group, thesis in (("C1", groups["single_modality"], groups["thesis_c1"]),
                                     ("C2", groups["baseline_fusions"], groups["thesis_c2"])):
            present = [g for g in group if g in m.index]
            if not present:
                continue
            best = m.loc[present, "AP50"].idxmax()
            row = d[(d.input == best) & (d.metric == "AP50")].iloc[0]
            rows.append({"claim": claim, "detector": detector, "comparison": f"{cfg['proposed']} - {best} (AP50)",
                         "thesis": thesis, "ours": row.difference, "lo": row.lo, "hi": row.hi,
                         "verdict": _verdict(row.lo, row.hi)})
        fp = d[(d.input == groups["fp_reference"]) & (d.metric == "FP_per_slice")]
        if len(fp):
            row = fp.iloc[0]
            rows.append({"claim": "C3", "detector": detector,
                         "comparison": f"{cfg['proposed']} - {groups['fp_reference']} (FP per slice)",
                         "thesis": "fewer false positives", "ours": row.difference, "lo": row.lo,
                         "hi": row.hi, "verdict": _verdict(row.lo, row.hi, better_is_positive=False)})
    claims = pd.DataFrame(rows)
    if len(claims):
        c12 = claims[claims.claim.isin(["C1", "C2"])]
        all_supported = bool((c12.verdict == "supported").all())
        any_contradicted = bool((c12.verdict == "contradicted").any())
        same_sign = bool((np.sign(c12.ours) == 1).all())
        verdict = ("supported" if all_supported else "contradicted" if any_contradicted
                   else "inconclusive")
        claims = pd.concat([claims, pd.DataFrame([{
            "claim": "C4", "detector": ", ".join(metrics["detector"].unique()),
            "comparison": "C1 and C2 positive with CI above 0 for every detector",
            "thesis": "consistent across detectors", "ours": float(same_sign), "lo": np.nan, "hi": np.nan,
            "verdict": verdict}])], ignore_index=True)
    return claims


# ----------------------------------------------------------------------------- book tables


def metric_table(metrics: pd.DataFrame, metric: str, *, inputs: list[str], digits: int = 3) -> pd.DataFrame:
    """Inputs x detectors, each cell ``estimate [95 % CI]`` of one metric."""
    cells = metrics.assign(cell=ci_column(metrics, metric, f"{metric}_lo", f"{metric}_hi", digits=digits))
    return cells.pivot(index="input", columns="detector", values="cell").reindex(inputs).dropna(how="all")


def operating_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Precision, recall, FP per slice and lesion sensitivity at each run's operating confidence."""
    table = metrics[["detector", "input", "conf"]].copy()
    for m in ["precision", "recall", "FP_per_slice", "lesion_sensitivity"]:
        table[m] = ci_column(metrics, m, f"{m}_lo", f"{m}_hi")
    return table


def differences_table(differences: pd.DataFrame) -> pd.DataFrame:
    """Proposed minus each input, per detector and metric, with CI."""
    cells = differences.assign(cell=ci_column(differences, "difference", "lo", "hi", digits=3, signed=True))
    return cells.pivot_table(index="input", columns=["detector", "metric"], values="cell", aggfunc="first")


def claims_view(claims: pd.DataFrame) -> pd.DataFrame:
    """The claimed-vs-reproduced table as shown in the book."""
    view = claims.assign(**{"ours [95 % CI]": ci_column(claims, "ours", "lo", "hi", digits=3, signed=True)})
    return view[["claim", "detector", "comparison", "thesis", "ours [95 % CI]", "verdict"]]


# ----------------------------------------------------------------------------- figures


def pr_figure(curves: pd.DataFrame):
    """COCO 101-point PR curves on the test patients, one panel per detector, seed mean."""
    import matplotlib.pyplot as plt

    detectors = list(dict.fromkeys(curves["detector"]))
    fig, axes = plt.subplots(1, len(detectors), figsize=(4.2 * len(detectors), 3.6), squeeze=False)
    for ax, detector in zip(axes[0], detectors):
        sub = curves[curves.detector == detector]
        for name, group in sub.groupby("input", sort=False):
            mean = group.groupby("recall")["precision"].mean()
            ax.plot(mean.index, mean.values, label=name, lw=2.2 if name == "adaptive_region" else 1)
        ax.set(title=detector, xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
    axes[0][-1].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig


def qualitative_slices(datasets_dir: Path, hot_negatives: set[tuple[str, int]], reference: str) -> list[dict]:
    """Test slices to show: the largest lesion slice and a hot lesion-free slice, if any."""
    items = read_split(Path(datasets_dir) / reference, "test")
    with_box = [i for i in items if len(i["boxes"])]
    chosen = []
    if with_box:
        area = [float(((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])).sum()) for b in (i["boxes"] for i in with_box)]
        chosen.append(with_box[int(np.argmax(area))])
    hot = [i for i in items if (i["case_id"], int(i["z"])) in hot_negatives]
    if hot:
        chosen.append(hot[0])
    return chosen


def qualitative_figure(datasets_dir: Path, runs_dir: Path, metrics: pd.DataFrame, *, detector: str,
                       inputs: list[str], hot_negatives: set[tuple[str, int]], seed: int):
    """Ground truth (green) and detections above the operating confidence (red) per input."""
    import matplotlib.pyplot as plt
    from PIL import Image

    slices = qualitative_slices(datasets_dir, hot_negatives, inputs[0])
    fig, axes = plt.subplots(len(slices), len(inputs), figsize=(3.0 * len(inputs), 3.1 * len(slices)),
                             squeeze=False)
    for row, item in zip(axes, slices):
        for ax, name in zip(row, inputs):
            match = [i for i in read_split(Path(datasets_dir) / name, "test")
                     if i["case_id"] == item["case_id"] and i["z"] == item["z"]][0]
            ax.imshow(np.asarray(Image.open(match["image_path"])))
            for x0, y0, x1, y1 in match["boxes"]:
                ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="lime", lw=1.2))
            conf = float(metrics[(metrics.detector == detector) & (metrics.input == name)]["conf"].iloc[0])
            preds = _read_predictions(run_dir(Path(runs_dir), {"detector": detector, "input": name, "seed": seed})
                                      / "predictions_test.csv")
            shown = preds[(preds.image_id == match["image_id"]) & (preds.score >= conf)]
            for p in shown.itertuples():
                ax.add_patch(plt.Rectangle((p.x0, p.y0), p.x1 - p.x0, p.y1 - p.y0, fill=False, color="red", lw=1))
                ax.text(p.x0, p.y0 - 1, f"{p.score:.2f}", color="red", fontsize=6)
            ax.set_title(f"{name}\n{item['case_id']} z={item['z']}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    return fig
