"""Patients of a patient-level diagnosis (Part 2): their label and their imaging series.

Modality names: DICOM codes (``CT``, ``MR``, ``PT``) are the image keys of a
:class:`~crossmodal.io.case.Case`; tables use the display names of
``cohort.skeleton.modality_names`` (:func:`modality_names`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import SimpleITK as sitk

from crossmodal.io.case import Case

__all__ = ["modality_names", "patient_label", "series_table"]


def modality_names(cohort_cfg: Mapping[str, Any]) -> dict[str, str]:
    """``{DICOM code: display name}`` of ``cohort.<name>``, in ``modalities`` order."""
    names = cohort_cfg["modality_names"]
    return {code: names[code] for code in cohort_cfg.get("modalities") or names}


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


def series_table(cases: list[Case], *, names: Mapping[str, str],
                 label_source: str = "truth") -> pd.DataFrame:
    """One row per (patient, modality) series: grid, slices, lesion slices, patient label.

    ``names`` maps DICOM codes to display names (:func:`modality_names`).
    """
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
