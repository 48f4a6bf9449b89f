"""Tables and figures of the Part 1 detection pages (``04_datasets``, ``05_train``,
``06_evaluate``; the claims page's are in :mod:`~crossmodal.report.claims`). They read the stages' CSVs and
images; CIs come computed from the evaluate stage."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from crossmodal.detect.export import read_split
from crossmodal.report.common import COLUMN_INCHES
from crossmodal.report.common import ci_column
from crossmodal.report.common import grid_shape
from crossmodal.stages.pelvis import read_predictions
from crossmodal.stages.pelvis import run_dir

if TYPE_CHECKING:
    from matplotlib.figure import Figure


# ----------------------------------------------------------------------------- datasets, runs


def split_sentence(split: pd.DataFrame) -> str:
    """Patients per split, e.g. ``train 24, val 8, test 8``."""
    return ", ".join(f"{k} {v}" for k, v in split["split"].value_counts().items())


def dataset_table(datasets_dir: str | Path, inputs: list[str]) -> pd.DataFrame:
    """Slices and lesion boxes per split of each of ``inputs`` that was exported."""
    rows = []
    for name in [n for n in inputs if (Path(datasets_dir) / n / "data.yaml").exists()]:
        for split in ("train", "val", "test"):
            items = read_split(Path(datasets_dir) / name, split)
            rows.append({"input": name, "split": split, "slices": len(items),
                         "slices with lesions": sum(len(i["boxes"]) > 0 for i in items),
                         "boxes": sum(len(i["boxes"]) for i in items)})
    return pd.DataFrame(rows)


def runs_summary(runs: pd.DataFrame) -> str:
    """One sentence on the training stage: runs, epochs, device, process time and wall time."""
    epochs = runs["epochs_trained"]
    epoch_text = f"{epochs.min()}" if epochs.min() == epochs.max() else f"{epochs.min()}-{epochs.max()}"
    return (f"{len(runs)} detector runs ({runs['detector'].nunique()} detectors) of {epoch_text} epochs on "
            f"{', '.join(sorted(set(runs['device'])))}, {runs['runs_at_once'].iloc[0]} at a time: "
            f"{runs['train_seconds'].sum() / 60:.1f} min of training summed over runs, "
            f"{runs['stage_seconds'].iloc[0] / 60:.1f} min for the whole stage." + _time_shares(runs))


def _time_shares(runs: pd.DataFrame) -> str:
    """Where the learned runs' time went, as shares of their training plus prediction time."""
    parts = {"waiting for data": "load_seconds", "training steps": "step_seconds",
             "validation and checkpoints": "val_seconds", "predicting the validation and test slices": "predict_seconds"}
    if not set(parts.values()) <= set(runs.columns):
        return ""
    learned = runs[runs["epochs_trained"] > 0]
    totals = {name: float(learned[column].sum()) for name, column in parts.items()}
    whole = sum(totals.values())
    if whole <= 0:
        return ""
    return " Of the learned runs' time: " + ", ".join(f"{100 * v / whole:.0f} % {k}" for k, v in totals.items()) + "."


# ----------------------------------------------------------------------------- evaluation tables


def metric_table(metrics: pd.DataFrame, metric: str, *, inputs: list[str], digits: int = 3) -> pd.DataFrame:
    """Inputs x detectors, each cell ``estimate [95 % CI]`` of one metric."""
    cells = metrics.assign(cell=ci_column(metrics, metric, f"{metric}_ci_low", f"{metric}_ci_high", digits=digits))
    return cells.pivot(index="input", columns="detector", values="cell").reindex(inputs).dropna(how="all")


def operating_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Precision, recall, FP per slice and lesion sensitivity at each run's operating confidence."""
    table = metrics[["detector", "input", "conf"]].copy()
    for m in ["precision", "recall", "FP_per_slice", "lesion_sensitivity"]:
        table[m] = ci_column(metrics, m, f"{m}_ci_low", f"{m}_ci_high")
    return table


def froc_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """3-D lesion sensitivity at each FROC operating point the evaluation wrote
    (``sens_at_<rate>fp``) and the FP per patient at the matched sensitivity, per run,
    ``estimate [95 % CI]``."""
    table = metrics[["detector", "input"]].copy()
    points = [c for c in metrics.columns if c.startswith("sens_at_") and not c.endswith(("_ci_low", "_ci_high"))]
    for m in [*points, "fp_per_patient_at_sens"]:
        table[m] = ci_column(metrics, m, f"{m}_ci_low", f"{m}_ci_high")
    return table


def tested_on_sentence(metrics: pd.DataFrame, datasets_dir: str | Path, reference: str, *,
                       learned: list[str] | None = None) -> str:
    """How many test patients and slices are behind every test metric, and how many
    training seeds (of the ``learned`` detectors: the non-learned reference has none)."""
    items = read_split(Path(datasets_dir) / reference, "test")
    split = pd.read_csv(Path(datasets_dir) / "split.csv")
    locked = (split.loc[split["split"] == "test", "stratum"] == -1).all()  # the datasets stage's mark
    runs = metrics if learned is None else metrics[metrics["detector"].isin(learned)]
    seeds = sorted(set(runs["seeds"].astype(int)))
    where = ("the locked test cohort, every slice of every volume" if locked
             else "the test split of the cohort, its selected slices")
    return (f"Every metric below is computed on **{int(metrics['test_patients'].iloc[0])} test patients** "
            f"({len(items)} slices: {where}), averaged over {'/'.join(map(str, seeds))} training seed(s) "
            "per trained run.")


def differences_table(differences: pd.DataFrame) -> pd.DataFrame:
    """Proposed minus each input, per detector and metric, with CI."""
    cells = differences.assign(cell=ci_column(differences, "difference", "ci_low", "ci_high", digits=3, signed=True))
    return cells.pivot_table(index="input", columns=["detector", "metric"], values="cell", aggfunc="first")


# ----------------------------------------------------------------------------- figures


def _input_colours(curves: pd.DataFrame, proposed: str) -> dict[str, str]:
    """One colour per input, the same in every panel and figure: the proposed input first."""
    inputs = list(dict.fromkeys([proposed, *curves["input"]]))
    return {name: f"C{k % 10}" for k, name in enumerate(inputs)}


def _curve_legend(ax) -> None:
    """Name every curve of a panel (a panel's curves are its inputs), where it hides the fewest."""
    ax.legend(title="input", fontsize=7.5, title_fontsize=8, loc="best", framealpha=0.85)


def _detector_panels(plt, n_detectors: int):
    """One panel per detector, two to a row of the book's column; unused panels hidden."""
    rows, columns = grid_shape(n_detectors, panel_inches=COLUMN_INCHES / 2)
    fig, axes = plt.subplots(rows, columns, figsize=(COLUMN_INCHES / 2 * columns, 3.5 * rows), squeeze=False)
    for ax in axes.ravel()[n_detectors:]:
        ax.set_axis_off()
    return fig, axes.ravel()[:n_detectors]


def froc_figure(curves: pd.DataFrame, *, proposed: str = "adaptive_region", max_fp: float = 8.0) -> Figure:
    """3-D lesion-level FROC on the test patients (first seed), one panel per detector."""
    import matplotlib.pyplot as plt

    detectors = list(dict.fromkeys(curves["detector"]))
    colours = _input_colours(curves, proposed)
    fig, axes = _detector_panels(plt, len(detectors))
    first_seed = curves[curves["seed"] == curves["seed"].min()]
    for ax, detector in zip(axes, detectors):
        sub = first_seed[first_seed.detector == detector]
        for name, group in sub.groupby("input", sort=False):
            ax.step(group["fp_per_patient"], group["sensitivity"], where="post", label=name,
                    color=colours[name], lw=2.2 if name == proposed else 1)
        ax.set(title=detector, xlabel="false-positive findings per patient", ylabel="lesion sensitivity",
               xlim=(0, max_fp), ylim=(0, 1.02))
        _curve_legend(ax)
    fig.tight_layout()
    return fig


def pr_figure(curves: pd.DataFrame, *, proposed: str = "adaptive_region") -> Figure:
    """COCO 101-point PR curves on the test patients, one panel per detector, seed mean; each
    panel names its curves, and an input has the same colour in every panel."""
    import matplotlib.pyplot as plt

    detectors = list(dict.fromkeys(curves["detector"]))
    colours = _input_colours(curves, proposed)
    fig, axes = _detector_panels(plt, len(detectors))
    for ax, detector in zip(axes, detectors):
        sub = curves[curves.detector == detector]
        for name, group in sub.groupby("input", sort=False):
            mean = group.groupby("recall")["precision"].mean()
            ax.plot(mean.index, mean.values, label=name, color=colours[name], lw=2.2 if name == proposed else 1)
        ax.set(title=detector, xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
        _curve_legend(ax)
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


def hot_negatives(datasets_dir: str | Path) -> set[tuple[str, int]]:
    """(case_id, z) of the hot lesion-free slices the datasets stage listed."""
    table = pd.read_csv(Path(datasets_dir) / "hot_negatives.csv")
    return {(r.case_id, int(r.z)) for r in table.itertuples()}


def shown_inputs(metrics: pd.DataFrame, detector: str, inputs: list[str]) -> list[str]:
    """Those of ``inputs`` that ``detector`` was evaluated on."""
    return [n for n in inputs if ((metrics.detector == detector) & (metrics.input == n)).any()]


QUALITATIVE_PER_ROW = 3  # panels per row: at the book's ~740 px column each stays readable


def _score_text(scores: list[float], conf: float, most: int = 4) -> str:
    """The detections' confidences, highest first, as the panel's caption line."""
    if not scores:
        return f"no detection \u2265 {conf:.2f}"
    ranked = sorted(scores, reverse=True)
    more = f" +{len(ranked) - most}" if len(ranked) > most else ""
    return f"red \u2265 {conf:.2f}: " + ", ".join(f"{v:.2f}" for v in ranked[:most]) + more


def _qualitative_panel(ax, datasets_dir: Path, runs_dir: Path, metrics: pd.DataFrame, item: dict, *,
                       detector: str, name: str, seed: int) -> None:
    """One input at one slice: the image, truth boxes (green), detections at or above the
    run's operating confidence (red) and their confidences under the panel."""
    import matplotlib.pyplot as plt
    from PIL import Image

    match = [i for i in read_split(Path(datasets_dir) / name, "test")
             if i["case_id"] == item["case_id"] and i["z"] == item["z"]][0]
    ax.imshow(np.asarray(Image.open(match["image_path"])))
    for x0, y0, x1, y1 in match["boxes"]:
        ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="lime", lw=1.6))
    conf = float(metrics[(metrics.detector == detector) & (metrics.input == name)]["conf"].iloc[0])
    preds = read_predictions(run_dir(Path(runs_dir), {"detector": detector, "input": name, "seed": seed})
                             / "predictions_test.csv")
    shown = preds[(preds.image_id == match["image_id"]) & (preds.score >= conf)]
    for p in shown.itertuples():
        ax.add_patch(plt.Rectangle((p.x0, p.y0), p.x1 - p.x0, p.y1 - p.y0, fill=False, color="red", lw=1.3))
    ax.set_title(name, fontsize=10)
    ax.set_xlabel(_score_text([float(v) for v in shown["score"]], conf), fontsize=9, color="firebrick")
    ax.set_xticks([])
    ax.set_yticks([])


def qualitative_figure(datasets_dir: Path, runs_dir: Path, metrics: pd.DataFrame, *, detector: str,
                       inputs: list[str], seed: int) -> Figure:
    """Ground truth (green) and detections above the operating confidence (red) per input:
    one block of rows per shown slice, at most ``QUALITATIVE_PER_ROW`` inputs a row, the
    slice named on the left, the detections' confidences under each panel."""
    import matplotlib.pyplot as plt

    slices = qualitative_slices(datasets_dir, hot_negatives(datasets_dir), inputs[0])
    per_row = min(QUALITATIVE_PER_ROW, len(inputs))
    block = -(-len(inputs) // per_row)  # grid rows per shown slice
    fig, axes = plt.subplots(block * len(slices), per_row, figsize=(2.5 * per_row, 3.0 * block * len(slices)),
                             squeeze=False)
    for s, item in enumerate(slices):
        what = "largest lesion" if len(item["boxes"]) else "hot, lesion-free"
        for k, name in enumerate(inputs):
            ax = axes[s * block + k // per_row, k % per_row]
            _qualitative_panel(ax, datasets_dir, runs_dir, metrics, item, detector=detector, name=name, seed=seed)
            if k % per_row == 0:
                ax.set_ylabel(f"{what}\n{item['case_id']} z={item['z']}", fontsize=9.5)
        for ax in axes[s * block:(s + 1) * block].ravel()[len(inputs):]:
            fig.delaxes(ax)
    fig.tight_layout()
    return fig
