"""Features, classifiers and C3D of Part 2 (pages ``skeleton/05_features`` to ``07_c3d``).

Figures are :class:`matplotlib.figure.Figure` objects not registered with pyplot;
:func:`as_image` shows one inline.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from crossmodal.learn.features import feature_columns
from crossmodal.report.common import ci_column

__all__ = ["as_image", "auc_p_values_table", "c3d_metric_table", "calibration_table",
           "channels_figure", "chosen_table", "curves_figure", "feature_heatmap",
           "fused_vs_single_table", "metric_table", "nested_comparison_table", "reliability_figure",
           "sanity_gate_table"]


def as_image(fig, *, dpi: int = 100):
    """A figure as an inline PNG for ``display`` (the figures here bypass pyplot)."""
    from io import BytesIO

    from IPython.display import Image

    buffer = BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return Image(data=buffer.getvalue(), format="png")


def feature_heatmap(
    table, labels, *, columns=None, kind="patients", class_names=("negative", "positive")
):
    """Heat map of the features, grouped by class.

    Parameters
    ----------
    table : DataFrame
        Feature table (rows = patients).
    labels : array_like or Series
        Binary labels; a Series is aligned to ``table.index``, anything else is taken in
        row order.
    columns : sequence of str, optional
        Columns to show; default all bin columns (flags are on another scale).
    kind : {"patients", "mean"}
        ``"patients"``: one row per patient, sorted by class, with a line between the
        classes; ``"mean"``: one row per class holding the class mean.
    class_names : tuple of str
        Names of label 0 and label 1.

    Returns
    -------
    fig : matplotlib.figure.Figure
        Not registered with pyplot, so it is not shown twice or leaked in loops.
    """
    if columns is None:
        columns = [c for c in feature_columns(table, "fused") if not str(c).startswith("has_")]
    if isinstance(labels, pd.Series):
        y = labels.reindex(table.index).to_numpy()
    else:
        y = np.asarray(labels)
    if y.shape[0] != len(table):
        raise ValueError(f"{y.shape[0]} labels for {len(table)} rows")
    data = table[list(columns)].to_numpy(dtype=float)
    from matplotlib.figure import Figure

    fig = Figure(
        figsize=(max(6.0, 0.25 * len(columns) + 2), 5.0 if kind == "patients" else 2.5),
        layout="constrained",
    )
    ax = fig.add_subplot()
    if kind == "patients":
        order = np.argsort(y, kind="stable")
        image = ax.imshow(data[order], aspect="auto", interpolation="nearest", cmap="viridis")
        n_neg = int(np.sum(y[order] == 0))
        ax.axhline(n_neg - 0.5, color="white", linewidth=1.5)
        ax.set_ylabel(f"patients ({class_names[0]} above, {class_names[1]} below)")
        ax.set_yticks([])
    elif kind == "mean":
        classes = np.unique(y)
        means = np.vstack([data[y == c].mean(axis=0) for c in classes])
        image = ax.imshow(means, aspect="auto", interpolation="nearest", cmap="viridis")
        ax.set_yticks(
            range(len(classes)),
            [f"{class_names[int(c)]} (n={int(np.sum(y == c))})" for c in classes],
        )
    else:
        raise ValueError(f"kind must be 'patients' or 'mean', got {kind!r}")
    ax.set_xticks(range(len(columns)), list(columns), rotation=90, fontsize=7)
    fig.colorbar(image, ax=ax, label="feature value")
    return fig


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


def fused_vs_single_table(comparisons: pd.DataFrame,
                          metrics=("accuracy", "auc", "pr_auc")) -> pd.DataFrame:
    """Classifier x (metric, single modality): fused minus single ``estimate [CI]``."""
    diff = comparisons[comparisons["metric"].isin(metrics)].copy()
    diff["fused - single"] = ci_column(diff, "estimate", "ci_low", "ci_high")
    return diff.pivot_table(index="classifier", columns=["metric", "single"],
                            values="fused - single",
                            aggfunc="first", sort=False)


def auc_p_values_table(delong: pd.DataFrame) -> pd.DataFrame:
    """Classifier x single modality: DeLong p-value of fused vs that modality."""
    return delong.pivot_table(index="classifier", columns="single", values="p_value", sort=False)


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


def c3d_metric_table(c3d_metrics: pd.DataFrame) -> pd.DataFrame:
    """One column ``C3D``: each metric's ``estimate [CI]``."""
    return pd.DataFrame({"C3D": ci_column(c3d_metrics, "estimate", "ci_low", "ci_high")},
                        index=c3d_metrics["metric"])


def channels_figure(preview: Mapping[str, np.ndarray]):
    """Middle slice of each stacked channel for one positive and one negative patient.

    ``preview``: ``channels.npz`` of ``c3d_skeleton`` (``names``, ``labels``, ``slices``).
    """
    from matplotlib.figure import Figure

    names = [str(n) for n in preview["names"]]
    labels, slices = np.asarray(preview["labels"]), np.asarray(preview["slices"])
    fig = Figure(figsize=(2.4 * len(names), 2.5 * max(len(labels), 1)), layout="constrained")
    axes = fig.subplots(max(len(labels), 1), len(names), squeeze=False)
    for row, label, channels in zip(axes, labels, slices):
        for ax, c in zip(row, range(len(names))):
            ax.imshow(channels[c], cmap="gray", vmin=0, vmax=1)
            ax.set_title(f"{names[c]} ({'positive' if label else 'negative'})", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    return fig


def _model_label(feature_set: str, patients: str) -> str:
    return f"{feature_set} (patients with {patients})" if patients != "all" else f"{feature_set} (all)"


def chosen_table(choices: pd.DataFrame) -> pd.DataFrame:
    """Nested model x classifier: how many outer folds chose it."""
    labels = [_model_label(f, p) for f, p in zip(choices["feature_set"], choices["patients"])]
    return pd.crosstab(pd.Series(labels, name="model"), choices["chosen"].rename("chosen"))


def nested_comparison_table(comparisons: pd.DataFrame, metrics=("auc", "accuracy", "pr_auc")
                            ) -> pd.DataFrame:
    """(single modality, comparison) x metric: nested fused minus single ``estimate [CI]``."""
    shown = comparisons[comparisons["metric"].isin(metrics)].copy()
    shown["fused - single"] = ci_column(shown, "estimate", "ci_low", "ci_high", digits=3, signed=True)
    return shown.pivot_table(index=["single", "comparison", "n"], columns="metric",
                             values="fused - single", aggfunc="first",
                             sort=False).reindex(columns=list(metrics))


def calibration_table(calibration: pd.DataFrame, confusion: pd.DataFrame) -> pd.DataFrame:
    """Per nested model: Brier score [CI] and the confusion counts at the threshold (mean per
    repeat)."""
    merged = calibration.merge(confusion, on=["feature_set", "patients"], suffixes=("", "_cm"))
    out = pd.DataFrame({"Brier [CI]": ci_column(merged, "estimate", "ci_low", "ci_high", digits=3),
                        "patients": merged["n"].to_numpy()},
                       index=[_model_label(f, p) for f, p in zip(merged["feature_set"], merged["patients"])])
    for k in ("tp", "fp", "fn", "tn"):
        out[k] = merged[k].round(1).to_numpy()
    out["threshold"] = merged["threshold"].to_numpy()
    return out


def reliability_figure(reliability: pd.DataFrame):
    """Observed positive rate against mean predicted probability, one line per nested model."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.6, 4.0), layout="constrained")
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="grey", lw=0.6, ls=":", label="calibrated")
    for (fs, patients), group in reliability.groupby(["feature_set", "patients"], sort=False):
        ax.plot(group["mean_predicted"], group["observed"], marker="o", ms=3,
                lw=2.0 if fs == "fused" and patients == "all" else 1.0, label=_model_label(fs, patients))
    ax.set_xlabel("mean predicted probability (bin)")
    ax.set_ylabel("observed share positive")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=6, loc="upper left")
    return fig


def sanity_gate_table(gate: pd.DataFrame) -> pd.DataFrame:
    """Per early-fusion model: the sanity task, AUC [CI], the bound and whether it passed."""
    return pd.DataFrame({"task": gate["task"].to_numpy(), "patients": gate["patients"].to_numpy(),
                         "AUC [CI]": ci_column(gate, "auc", "ci_low", "ci_high", digits=3),
                         "CI low must exceed": gate["threshold"].to_numpy(),
                         "passed": ["yes" if p else "no" for p in gate["passed"]]},
                        index=gate["model"])
