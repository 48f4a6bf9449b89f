"""Cohort of Part 2 (page ``skeleton/01_ingest``): patients and series per modality.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from crossmodal.io.case import load_cases
from crossmodal.learn.patients import modality_names
from crossmodal.learn.patients import series_table

__all__ = ["cohort_overview", "cohort_table", "modalities_sentence"]


def cohort_table(series: pd.DataFrame) -> pd.DataFrame:
    """Per modality: patients (positive / negative), slices, lesion slices, grid.

    ``series`` is ``cohort_series.csv`` (:func:`~crossmodal.learn.patients.series_table`).
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


def cohort_overview(ingest_dir: str | Path, cohort_cfg: Mapping[str, Any]) -> pd.DataFrame:
    """:func:`cohort_table` of the ingested cases (``cohort.skeleton`` names the modalities)."""
    return cohort_table(series_table(load_cases(ingest_dir), names=modality_names(cohort_cfg),
                                     label_source=cohort_cfg.get("patient_label", "truth")))


def modalities_sentence(cohort: pd.DataFrame) -> str:
    """``"4 patients with 1 modality, 5 patients with 2 modalities, ..."`` from a
    :func:`cohort_table`."""
    counts = {k: n for k, n in cohort.attrs["modalities_per_patient"].items() if n}
    return ", ".join(f"{n} patients with {k} modalit{'y' if k == 1 else 'ies'}"
                     for k, n in sorted(counts.items())) + "."
