"""Features, classifiers and C3D of Part 2 (pages ``skeleton/05_features`` to ``07_c3d``).

Figures are :class:`matplotlib.figure.Figure` objects not registered with pyplot;
:func:`as_image` shows one inline.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from crossmodal.learn.features import feature_columns
from crossmodal.report.common import COLUMN_INCHES
from crossmodal.report.common import NOT_APPLICABLE
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
        figsize=(min(COLUMN_INCHES, max(6.0, 0.25 * len(columns) + 2)), 5.0 if kind == "patients" else 2.5),
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
    sub["value"] = [fmt.format(e, lo, hi) if np.isfinite(e) else NOT_APPLICABLE
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


def chance_sentence(metrics: pd.DataFrame, *, metric: str = "auc", chance: float = 0.5) -> str:
    """How the ``metric`` of each feature set reads against chance, from ``metrics.csv``:
    per feature set, how many classifiers have their CI above, across and below ``chance``,
    the mean estimate over classifiers, and whether the fused features beat every single
    modality."""
    rows = metrics[(metrics["metric"] == metric) & np.isfinite(metrics["estimate"])]
    parts, means, any_below = [], {}, False
    for feature_set, group in rows.groupby("feature_set", sort=False):
        above, below = int((group["ci_low"] > chance).sum()), int((group["ci_high"] < chance).sum())
        means[feature_set], any_below = float(group["estimate"].mean()), any_below or below > 0
        parts.append(f"{feature_set} {means[feature_set]:.2f} ({above} above chance, "
                     f"{len(group) - above - below} not told from it, {below} below)")
    if not parts:
        return f"No {metric.upper()} could be estimated."
    text = (f"Against chance ({metric.upper()} {chance:g}), mean {metric.upper()} over the classifiers with how many "
            f"of them have their CI above, across or below it: {'; '.join(parts)}.")
    if any_below:
        text += (" A CI wholly below chance means the scores run against the label on the held-out patients: "
                 "what the model fitted on its training folds reverses out of fold.")
    singles = {k: v for k, v in means.items() if k != "fused"}
    if "fused" in means and singles:
        best = max(singles, key=singles.get)
        relation = "above" if means["fused"] > singles[best] else "at or below"
        text += (f" On average the fused features score {relation} the best single modality, {best}; the claims "
                 "page tests fused against single like for like, with CIs.")
    return text


def auc_p_values_table(delong: pd.DataFrame) -> pd.DataFrame:
    """Classifier x single modality: DeLong p-value of fused vs that modality."""
    return delong.pivot_table(index="classifier", columns="single", values="p_value", sort=False)


def _curve_panel(ax, frame: pd.DataFrame, x: str, y: str, colours: Mapping[str, str]) -> None:
    """One line per feature set of ``frame`` (fused thicker), in its colour of ``colours``."""
    for fs, group in frame.groupby("feature_set", sort=False):
        ax.plot(group[x], group[y], lw=2.0 if fs == "fused" else 1.0, color=colours[fs], label=fs,
                drawstyle="steps-post")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.tick_params(labelsize=6.5)


def curves_figure(roc: pd.DataFrame, pr: pd.DataFrame, *, columns: int = 2):
    """ROC and PR curves per classifier, one line per feature set; one legend for the whole
    figure above the panels (a feature set has the same colour in every panel)."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    classifiers = list(dict.fromkeys(roc["classifier"]))
    feature_sets = list(dict.fromkeys([*roc["feature_set"], *pr["feature_set"]]))
    colours = {fs: f"C{k % 10}" for k, fs in enumerate(feature_sets)}
    rows = int(np.ceil(len(classifiers) / columns))
    fig = Figure(figsize=(COLUMN_INCHES, 2.05 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, 2 * columns, squeeze=False)
    for ax in axes.ravel()[2 * len(classifiers):]:
        ax.set_axis_off()
    for i, clf in enumerate(classifiers):
        row, col = i // columns, 2 * (i % columns)
        ax_roc, ax_pr = axes[row, col], axes[row, col + 1]
        _curve_panel(ax_roc, roc[roc["classifier"] == clf], "fpr", "tpr", colours)
        _curve_panel(ax_pr, pr[pr["classifier"] == clf], "recall", "precision", colours)
        ax_roc.plot([0, 1], [0, 1], color="grey", lw=0.5, ls=":")
        name = clf.replace("_", " ")
        ax_roc.set_title(f"{name}: ROC", fontsize=8.5)
        ax_pr.set_title(f"{name}: PR", fontsize=8.5)
        ax_roc.set_ylabel("sensitivity", fontsize=7.5)
        ax_pr.set_ylabel("precision", fontsize=7.5)
        last = i + columns >= len(classifiers)  # no panel below: name the x axes
        ax_roc.set_xlabel("1 - specificity" if last else "", fontsize=7.5)
        ax_pr.set_xlabel("recall" if last else "", fontsize=7.5)
    handles = [Line2D([], [], color=colours[fs], lw=2.0 if fs == "fused" else 1.0) for fs in feature_sets]
    fig.legend(handles, feature_sets, loc="outside upper center", ncols=len(feature_sets), fontsize=8.5,
               title="feature set (every panel)", title_fontsize=8.5, frameon=False)
    return fig


def c3d_metric_table(c3d_metrics: pd.DataFrame) -> pd.DataFrame:
    """One column ``C3D``: each metric's ``estimate [CI]``."""
    return pd.DataFrame({"C3D": ci_column(c3d_metrics, "estimate", "ci_low", "ci_high")},
                        index=c3d_metrics["metric"])


def channels_figure(preview: Mapping[str, np.ndarray]):
    """Middle slice of each stacked channel for one positive and one negative patient.

    ``preview``: ``channels.npz`` of ``c3d_skeleton`` (``names``, ``labels``, ``slices``).
    Voxels are drawn as they are (nearest neighbour: the grid is ``c3d.grid_size``, coarse
    by design), each channel on one grey scale for both patients, from 0 to its largest
    value, so that a faint channel (PET) is visible and the two patients compare.
    """
    from matplotlib.figure import Figure

    names = [str(n) for n in preview["names"]]
    labels, slices = np.asarray(preview["labels"]), np.asarray(preview["slices"])
    top = [float(slices[:, c].max()) if slices.size else 1.0 for c in range(len(names))]
    width = min(2.55, COLUMN_INCHES / max(len(names), 1))
    fig = Figure(figsize=(width * len(names), 1.08 * width * max(len(labels), 1) + 0.3), layout="constrained")
    axes = fig.subplots(max(len(labels), 1), len(names), squeeze=False)
    for row, label, channels in zip(axes, labels, slices):
        for ax, c in zip(row, range(len(names))):
            ax.imshow(channels[c], cmap="gray", vmin=0, vmax=top[c] if top[c] > 0 else 1,
                      interpolation="nearest")
            ax.set_title(f"{names[c]}, {'positive' if label else 'negative'} (0\u2013{top[c]:.2f})", fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
    size = " \u00d7 ".join(str(n) for n in slices.shape[-2:][::-1])
    fig.suptitle(f"Middle slice of the C3D input, {size} voxels a slice; grey scale per channel "
                 f"(range in brackets)", fontsize=9.5)
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
                       index=pd.Index([_model_label(f, p) for f, p in zip(merged["feature_set"], merged["patients"])],
                                      name="model"))
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
