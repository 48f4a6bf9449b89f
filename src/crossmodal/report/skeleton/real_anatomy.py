"""Tables and the panel of the page "Real anatomy: Part 2 on a real skeleton": the inserted
findings, the phantom-trained detectors and classifiers on the phantom beside the same on
the hybrid cohort (:mod:`crossmodal.stages.skeleton.real_anatomy`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk
from matplotlib.figure import Figure

from crossmodal.io.case import Case
from crossmodal.report.common import ci_column

__all__ = ["classifier_sentence", "detector_transfer_table", "findings_table", "hybrid_panel_figure"]

#: How each modality's slice is shown: CT a bone window (HU), MR its own percentiles, PET SUV.
PANEL_WINDOWS = {"CT": (-200.0, 1200.0), "PT": (0.0, 6.0)}
PANEL_TITLES = {"CT": "CT (real)", "MR": "MR T1 (simulated)", "PT": "PET (simulated)"}


def findings_table(findings: pd.DataFrame) -> pd.DataFrame:
    """Inserted findings per kind and type: how many, at which sites, and (metastases) by
    evidence kind or (mimics) which modality each fools."""
    rows = []
    for (kind, kind_type), group in findings.groupby(["kind", "type"], sort=True):
        how = group["evidence"] if kind == "metastasis" else group["fools"].map(lambda m: f"fools {m}")
        rows.append({"kind": kind, "type": kind_type, "n": len(group), "patients": group["case_id"].nunique(),
                     "sites": ", ".join(f"{s} {n}" for s, n in group["site"].value_counts().sort_index().items()),
                     "evidence": ", ".join(f"{e} {n}" for e, n in how.value_counts().sort_index().items())})
    return pd.DataFrame(rows, columns=["kind", "type", "n", "patients", "sites", "evidence"]).set_index(["kind", "type"])


def detector_transfer_table(phantom: pd.DataFrame, real: pd.DataFrame) -> pd.DataFrame:
    """Per modality: AP50 and lesion sensitivity with their CIs on the phantom's scored
    patients (``evaluate_skeleton``'s ``ap.csv``) and on the hybrid cohort, and the change."""
    rows = []
    both = phantom.merge(real, on="modality", suffixes=("_phantom", "_real"))
    for metric, label in (("ap50", "AP50"), ("lesion_sensitivity", "lesion sensitivity")):
        for where in ("phantom", "real"):
            both[f"{label} ({'phantom' if where == 'phantom' else 'real skeleton'})"] = ci_column(
                both, f"{metric}_{where}", f"{metric}_ci_low_{where}", f"{metric}_ci_high_{where}", digits=3)
        both[f"{label} change"] = (both[f"{metric}_real"] - both[f"{metric}_phantom"]).map(lambda v: f"{v:+.3f}")
    both = both.rename(columns={"patients_real": "patients (real skeleton)"})
    columns = ["patients (real skeleton)"] + [c for c in both.columns if c.startswith(("AP50", "lesion sensitivity"))]
    return both.set_index("modality")[columns]


def classifier_sentence(classifier: pd.DataFrame, n_phantom: int) -> str:
    """Which classifier scored the hybrid patients, and why (the stage's ``classifier.csv``)."""
    row = classifier.iloc[0]
    return (f"Every feature set is scored by **{row['classifier']}**, {row['rule']} (chosen in "
            f"{row['chosen_in']} of {row['outer_folds']} outer folds), fitted on the features of the "
            f"{n_phantom} phantom patients; nothing is fitted or chosen on the hybrid cohort.")


def hybrid_panel_figure(ingest_dir: str | Path, findings: pd.DataFrame, series: pd.DataFrame):
    """One hybrid patient with a metastasis (any patient, when none has one) and the most
    modalities: each modality's slice through the largest labelled cross-section, the
    metastasis label outlined."""
    positive = series[series["y"] == 1] if (series["y"] == 1).any() else series
    # the real CT first, then the most modalities, then the first by ID
    rank = positive.groupby("case_id")["modality"].agg(lambda m: ("CT" in set(m), m.nunique()))
    case_id = sorted(rank.index, key=lambda c: (tuple(-v for v in rank[c]), c))[0]
    case = Case.load(Path(ingest_dir) / "cases" / case_id)
    codes = [code for code in ("CT", "MR", "PT") if code in case.images]
    fig = Figure(figsize=(3.6 * len(codes), 3.4))  # not pyplot's: the page shows it once, as an image
    axes = fig.subplots(1, len(codes), squeeze=False)
    for ax, code in zip(axes[0], codes):
        image = sitk.GetArrayFromImage(case.images[code])
        label = sitk.GetArrayFromImage(case.labels[code]) if code in case.labels else np.zeros(image.shape)
        z = int(np.argmax(label.reshape(len(label), -1).sum(axis=1)))
        low, high = PANEL_WINDOWS.get(code, tuple(np.percentile(image, [1, 99.5])))
        ax.imshow(image[z], cmap="gray" if code != "PT" else "gray_r", vmin=low, vmax=high)
        if label[z].any():
            ax.contour(label[z] > 0, levels=[0.5], colors="red", linewidths=1.0)
        ax.set_title(f"{PANEL_TITLES[code]}, slice {z}")
        ax.axis("off")
    kinds = findings[findings["case_id"] == case_id]
    fig.suptitle(f"{case_id}: " + ", ".join(f"{k} {t}" for k, t in zip(kinds["kind"], kinds["type"])), fontsize=9)
    fig.tight_layout()
    return fig
