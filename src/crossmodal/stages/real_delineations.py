"""Stage ``real_delineations_lung``: real tumour delineations through Part 1's ingestion and
imaging, measured before any detector sees them.

The cohort ``cohort.lung_real_delineations`` (real chest CTs with their real tumour masks,
PET simulated from the real CT: :mod:`crossmodal.phantom.hybrid_delineations`) is ingested
by the same rules as every cohort, then aligned, localised and fused as Part 1 does
(``align_fuse``, the proposed input and the single modalities), and each real lesion is
measured as Part 1's data card measures the phantom's
(:func:`~crossmodal.stages.pelvis.data_card.case_candidates`): its extent in mm and in detector pixels against
``data_card.target_px``, its volume, and the PET and CT values inside it. Nothing here is
trained or chosen. Writes under ``out``: ``ingest/``, ``align_fuse/``, ``real_lesions.csv`` (one
row per real lesion: measured beside simulated SUVmax, what is real) and the DVC metrics
JSON at ``metrics``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pandas as pd

from crossmodal.io.case import load_cases
from crossmodal.learn.metrics_json import json_number
from crossmodal.learn.metrics_json import write_json
from crossmodal.parallel import map_jobs
from crossmodal.parallel import patient_workers
from crossmodal.stages.ingest import ingest_tree
from crossmodal.stages.pelvis.align_fuse import run_align_fuse
from crossmodal.stages.pelvis.data_card import case_candidates
from crossmodal.stages.pelvis.data_card import read_regions

COHORT = "lung_real_delineations"
# The inputs fused for this page: enough to show each modality and the proposed fusion.
SHOWN_INPUTS = ("ct_only", "pet_only")
LESION_COLUMNS = ["case", "case_id", "ct", "lesion", "pet", "volume_ml", "extent_mm", "extent_px", "target_px",
                  "suv_max_simulated", "suv_max", "hu_mean", "error_before_mm", "error_after_mm"]


def run(params: dict[str, Any], *, out: str | Path, metrics: str | Path | None = None) -> dict[str, pd.DataFrame]:
    """Ingest, align and fuse ``cohort.lung_real_delineations`` and measure its real lesions;
    see the module doc."""
    out, jobs = Path(out), patient_workers(params)
    ingest_tree(params, COHORT, params["cohort"][COHORT]["root"], out / "ingest")
    cases = load_cases(out / "ingest")
    align = params["align_fuse"]
    shown = [params["detect"]["proposed"], *SHOWN_INPUTS]
    cfg = {**align, "figure_case": 0, "inputs": {k: v for k, v in align["inputs"].items() if k in shown}}
    tables = run_align_fuse(cases, out / "align_fuse", cfg, progress=True, jobs=jobs, montage_cases=len(cases))
    label_names = {int(k): str(v) for k, v in params["cohort"][COHORT]["label_names"].items()}
    measure = functools.partial(case_candidates, align_dir=out / "align_fuse", cfg=params["data_card"],
                                label_names=label_names, image_size=int(align["image_size"]),
                                regions=read_regions(out / "align_fuse"))
    candidates = pd.DataFrame([row for rows in map_jobs(measure, cases, jobs=jobs) for row in rows])
    lesions = real_lesion_table(cases, candidates, tables["alignment"], target_px=float(params["data_card"]["target_px"]))
    lesions.to_csv(out / "real_lesions.csv", index=False)
    if metrics is not None:
        reached = (lesions["extent_px"] >= lesions["target_px"]).mean() if len(lesions) else float("nan")
        write_json({"lesions": len(lesions), "share_at_least_target_px": json_number(reached)}, metrics)
    return {**tables, "real_lesions": lesions}


def real_lesion_table(cases, candidates: pd.DataFrame, alignment: pd.DataFrame, *,
                      target_px: float) -> pd.DataFrame:
    """One row per real lesion: its case (the real scan's name in the source), what is real
    and what simulated (the truth sidecar's ``real_anatomy``), its measured size and values,
    the SUVmax the simulation put inside it, and the case's alignment error."""
    records = {case.case_id: (case.truth or {}) for case in cases}
    rows = []
    for row in candidates[candidates["target"] == 1].itertuples(index=False):
        truth = records[row.case_id]
        real = truth.get("real_anatomy", {})
        simulated = {t.get("id"): t.get("suv_max") for t in truth.get("lesions", [])}
        rows.append({"case": real.get("case"), "case_id": row.case_id, "ct": real.get("ct"),
                     "lesion": real.get("lesions"), "pet": real.get("pet"), "volume_ml": row.volume_ml,
                     "extent_mm": row.extent_mm, "extent_px": row.extent_px, "target_px": target_px,
                     "suv_max_simulated": simulated.get(row.truth_id), "suv_max": row.suv_max,
                     "hu_mean": row.hu_mean})
    table = pd.DataFrame(rows, columns=LESION_COLUMNS[:-2])
    errors = [c for c in ("error_before_mm", "error_after_mm") if c in alignment]
    table = table.merge(alignment[["case_id", *errors]], on="case_id", how="left")
    return table.reindex(columns=LESION_COLUMNS).sort_values("case").reset_index(drop=True)
