"""Tables of the "Real anatomy" page: where the real scan comes from, and the phantom-trained
detectors on the phantom's locked test cohort beside the same detectors on the hybrid cohort."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from crossmodal.report.common import ci_column

__all__ = ["provenance_sentence", "transfer_table", "cohort_sentence"]


def provenance_sentence(real_root: str | Path) -> str:
    """Package, version, checksum, licence and citation of a fetched real scan (its ``SOURCE.json``)."""
    record = json.loads((Path(real_root) / "SOURCE.json").read_text())
    files = ", ".join(f"`{entry['from']}`" for entry in record["files"].values())
    return (f"The real CT and its structures come from the `{record['package']}=={record['version']}` source "
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
