"""Tables of the "Real anatomy" pages: where the real scans come from, the phantom-trained
detectors on the phantom's locked test cohort beside the same detectors on the hybrid cohort,
and the real tumour delineations measured at the detector's input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from crossmodal.report.common import ci_column

__all__ = ["box_checks_sentence", "box_checks_table", "cohort_sentence", "provenance_sentence",
           "real_lesions_table", "real_sizes_sentence", "transfer_table"]


def provenance_sentence(real_root: str | Path, *, what: str = "The real CT and its structures") -> str:
    """Package, version, checksum, licence and citation of a fetched real scan (its ``SOURCE.json``)."""
    record = json.loads((Path(real_root) / "SOURCE.json").read_text())
    files = ", ".join(f"`{entry['from']}`" for entry in record["files"].values())
    return (f"{what} come from the `{record['package']}=={record['version']}` source "
            f"distribution on PyPI (SHA-256 `{record['sha256'][:16]}…`, files {files}); "
            f"licence: {record['licence']}. Cite: {record['citation']}")


def cohort_sentence(lesions: pd.DataFrame, n_patients: int, alignment: pd.DataFrame) -> str:
    """How many hybrid patients and inserted lesions of each kind (the stage's
    ``lesions.csv``), and how far alignment brought PET back onto the real CT."""
    kinds = lesions["kind"].value_counts()
    inserted = ", ".join(f"{n} {kind}{'s' if n != 1 else ''}" for kind, n in kinds.items()) or "no lesion"
    moved = ""
    if {"error_before_mm", "error_after_mm"} <= set(alignment.columns):
        moved = (f" Alignment brought the simulated PET from {alignment['error_before_mm'].mean():.1f} mm to "
                 f"{alignment['error_after_mm'].mean():.1f} mm mean error on the real CT.")
    return f"**{n_patients} hybrid patients**, one real anatomy, {inserted} inserted.{moved}"


def transfer_table(phantom: pd.DataFrame, real: pd.DataFrame, metric: str, *, digits: int = 3) -> pd.DataFrame:
    """Per (detector, input): ``metric`` with its 95 % CI on the phantom's locked test
    cohort and on the hybrid cohort, and the change."""
    def cells(frame: pd.DataFrame, column: str) -> pd.DataFrame:
        return frame.assign(**{column: ci_column(frame, metric, f"{metric}_ci_low", f"{metric}_ci_high",
                                                  digits=digits)})[["detector", "input", column, metric]]

    table = cells(phantom, "phantom test").merge(cells(real, "real anatomy"), on=["detector", "input"],
                                                 suffixes=("_phantom", "_real"))
    table["change"] = (table[f"{metric}_real"] - table[f"{metric}_phantom"]).map(lambda v: f"{v:+.{digits}f}")
    return table.drop(columns=[f"{metric}_phantom", f"{metric}_real"]).set_index(["detector", "input"])


def real_lesions_table(lesions: pd.DataFrame) -> pd.DataFrame:
    """The ``real_lesions.csv`` of stage ``real_delineations_lung`` for the page: one row per
    real lesion, what is real, its size in mm and at the detector input, its PET values."""
    columns = {"case": "real scan", "ct": "CT", "lesion": "lesion", "pet": "PET", "volume_ml": "volume (ml)",
               "extent_mm": "largest in-plane extent (mm)", "extent_px": "extent at detector input (px)",
               "target_px": "target (px)", "suv_max_simulated": "SUVmax simulated",
               "suv_max": "SUVmax measured (aligned PET)", "error_before_mm": "PET misalignment before (mm)",
               "error_after_mm": "after alignment (mm)"}
    return lesions[[c for c in columns if c in lesions]].rename(columns=columns)


def real_sizes_sentence(lesions: pd.DataFrame, image_size: int) -> str:
    """How many real lesions reach the target extent at the detector input, and the smallest."""
    if lesions.empty:
        return "No real lesion was measured."
    reached = int((lesions["extent_px"] >= lesions["target_px"]).sum())
    smallest = lesions.loc[lesions["extent_px"].idxmin()]
    return (f"At the {image_size} px detector input, **{reached} of {len(lesions)} real lesions** reach the "
            f"{smallest['target_px']:g} px the detectors need; the smallest ({smallest['case']}, "
            f"{smallest['extent_mm']:.1f} mm across) spans {smallest['extent_px']:.1f} px.")


def box_checks_sentence(checks: pd.DataFrame) -> str:
    """How many of the collection's tumour boxes land on tissue (:func:`crossmodal.io.voc.box_checks`)."""
    if checks.empty:
        return "The folder holds no annotated series."
    landed = int(checks["lands_on_tissue"].sum())
    return (f"**{landed} of {len(checks)} tumour boxes** of {checks['patient'].nunique()} patient(s), "
            f"{checks.groupby(['patient', 'series']).ngroups} series, land on tissue denser than the lung around "
            f"them (mean {checks['box_hu_mean'].mean():.0f} HU inside, {checks['lung_hu_mean'].mean():.0f} HU in "
            "the lung around).")


def box_checks_table(checks: pd.DataFrame) -> pd.DataFrame:
    """One row per series: boxes, slices, their size and HU inside and around, and how many land."""
    grouped = checks.groupby(["patient", "series"])
    return pd.DataFrame({
        "boxes": grouped.size(), "first slice": grouped["slice"].min(), "last slice": grouped["slice"].max(),
        "median width (mm)": grouped["width_mm"].median(), "median height (mm)": grouped["height_mm"].median(),
        "mean HU in box": grouped["box_hu_mean"].mean(), "mean HU of lung around": grouped["lung_hu_mean"].mean(),
        "land on tissue": grouped["lands_on_tissue"].sum()}).reset_index()
