"""Stage ``data_card_pelvis``: what the cohort holds, computed before any detector trains.

Reads the ingested cases and the align_fuse stage's refined CT->PET transforms and
localised regions; writes under ``out``::

    parameters.csv      every phantom.pelvis parameter, its value and its source
    references.csv      the full references those sources cite
    phenomena.csv       how often each simulated phenomenon occurs (truth sidecars), and the
                        lesions per kind / site / PET-faint and the mimics per kind
    sizes.csv           every lesion and mimic: in-plane extent in mm and in detector pixels
                        (through the case's crop), volume
    sizes_summary.csv   min / median / max per kind, share at or above the target size
    candidates.csv      every candidate (lesion or mimic) with its PET and CT features and
                        the oracle's out-of-fold scores
    oracle.csv          lesion vs mimic from PET-only, CT-only and PET+CT features: AUC and
                        AP with patient-bootstrap CIs, and PET+CT minus PET (paired)

and the DVC metrics JSON at ``metrics`` (flat keys ``oracle/<features>/AUC`` ...).

Candidates are ground-truth regions on the CT grid: each lesion is a 3-D component of one
label class; each mimic is the union of the ellipsoids its truth sidecar records, minus
lesion voxels. A case without truth (real data) contributes its lesions only.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import SimpleITK as sitk

from crossmodal.detect.dataset import label_lesions_3d
from crossmodal.io.case import Case
from crossmodal.io.case import load_cases
from crossmodal.io.geometry import rasterise_ellipsoids
from crossmodal.io.geometry import resample_to_reference
from crossmodal.learn.metrics_json import json_number
from crossmodal.learn.metrics_json import write_json
from crossmodal.learn.oracle import candidate_features
from crossmodal.learn.oracle import candidate_voxels
from crossmodal.learn.oracle import in_plane_extent
from crossmodal.learn.oracle import oracle_table
from crossmodal.parallel import map_jobs
from crossmodal.parallel import patient_workers
from crossmodal.params import study_cohort

REGION_COLUMNS = ["region_y0", "region_y1", "region_x0", "region_x1"]
SIZE_COLUMNS = ["case_id", "patient", "candidate", "kind", "target", "extent_mm", "extent_ct_px",
                "extent_px", "volume_ml", "crop"]
FUSED, SINGLE = "PET+CT", "PET"  # the oracle's comparison: what fusion adds over PET alone
WHOLE_SLICE = "whole slice (region_check.csv has no region columns)"
ORACLE_COLUMNS = ["features", "candidates", "lesions", "mimics", "patients",
                  "AUC", "AUC_ci_low", "AUC_ci_high", "AP", "AP_ci_low", "AP_ci_high"]


def run(params: dict[str, Any], *, ingest_dir: str | Path, align_dir: str | Path, out: str | Path,
        metrics: str | Path) -> dict[str, pd.DataFrame]:
    """The data card of the study's ingested cohort (params ``data_card``; the cohort's
    ``phantom`` entry for the parameter table, ``align_fuse.image_size`` for detector pixels,
    label names from the study's ``cohort`` entry); write the tables and the DVC metrics JSON."""
    cfg = params["data_card"]
    cohort = study_cohort(params)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    phantoms = params["phantom"]
    phantom = phantoms.get(params["study"]["cohort"]) if cohort["source"] == "phantom" else None
    base = phantoms.get(phantom["based_on"]) if phantom and "based_on" in phantom else None
    # first: a missing source stops the stage before any image is read
    tables = {"parameters": parameter_table(phantom, base), "references": reference_table(phantom, base)}
    cases = load_cases(ingest_dir)
    label_names = {int(k): str(v) for k, v in cohort["label_names"].items()}
    measure = functools.partial(case_candidates, align_dir=Path(align_dir), cfg=cfg, label_names=label_names,
                                image_size=int(params["align_fuse"]["image_size"]),
                                regions=read_regions(align_dir))
    per_case = map_jobs(measure, cases, jobs=patient_workers(params), progress=True,
                        desc="data card", unit="case")
    candidates = pd.DataFrame([row for rows in per_case for row in rows])
    primary = label_names[min(label_names)]
    tables["phenomena"] = phenomena_table([c.truth for c in cases])
    tables["sizes"] = candidates[SIZE_COLUMNS]
    tables["sizes_summary"] = sizes_summary(tables["sizes"], target_px=float(cfg["target_px"]))
    tables["oracle"], scores = oracle(candidates, cfg, primary=primary)
    tables["candidates"] = candidates.assign(**{f"oof_{name}": score for name, score in scores.items()})
    for name, table in tables.items():
        table.to_csv(out / f"{name}.csv", index=False)
    write_json(card_metrics(tables, primary=primary), metrics)
    print(tables["oracle"][["target", "features", "AUC", "AUC_ci_low", "AUC_ci_high"]].to_string(index=False))
    return tables


# ----------------------------------------------------------------------------- per case


def read_regions(align_dir: str | Path) -> dict[str, tuple[int, int, int, int]]:
    """``case_id -> (y0, y1, x0, x1)`` of the localised crop, from the align_fuse stage's
    ``region_check.csv``; empty when the file predates the region columns."""
    table = pd.read_csv(Path(align_dir) / "region_check.csv")
    if not set(REGION_COLUMNS) <= set(table.columns):
        return {}
    return {str(row.case_id): tuple(int(getattr(row, c)) for c in REGION_COLUMNS)
            for row in table.itertuples(index=False)}


def case_candidates(case: Case, *, align_dir: Path, cfg: dict[str, Any], label_names: dict[int, str],
                    image_size: int, regions: dict[str, tuple[int, int, int, int]]) -> list[dict[str, Any]]:
    """One row per candidate of ``case``: what it is, its size (mm, CT and detector pixels)
    and its PET and CT features (PET through the stage's refined transform)."""
    transform = sitk.ReadTransform(str(align_dir / "transforms" / f"{case.case_id}.tfm"))
    suv = sitk.GetArrayFromImage(resample_to_reference(case.pet, case.ct, transform=transform))
    hu = sitk.GetArrayFromImage(case.ct)
    label = sitk.GetArrayFromImage(case.label)
    spacing = case.ct.GetSpacing()[::-1]  # (z, y, x)
    region = regions.get(case.case_id)
    crop = "localised region" if region else WHOLE_SLICE
    y0, y1, x0, x1 = region or (0, hu.shape[1], 0, hu.shape[2])
    px_per_ct_pixel = image_size / max(y1 - y0, x1 - x0)
    names = [*cfg["features"]["PET"], *cfg["features"]["CT"]]
    rows = []
    for info, mask in lesion_masks(case, label, label_names) + mimic_masks(case, label > 0):
        voxels = candidate_voxels(mask, hu, suv, spacing, shell_mm=float(cfg["shell_mm"]),
                                  top_voxels=int(cfg["top_voxels"]), fat_hu=tuple(cfg["fat_hu"]))
        extent_ct_px, extent_mm = in_plane_extent(mask, spacing)
        rows.append({"case_id": case.case_id, "patient": case.patient,
                     "has_truth": case.truth is not None, **info,
                     "extent_mm": extent_mm, "extent_ct_px": extent_ct_px,
                     "extent_px": extent_ct_px * px_per_ct_pixel, "px_per_ct_pixel": px_per_ct_pixel,
                     "volume_ml": float(mask.sum() * np.prod(spacing) / 1000.0), "crop": crop,
                     **candidate_features(voxels, names)})
    return rows


def lesion_masks(case: Case, label: np.ndarray, label_names: dict[int, str]) -> list[tuple[dict, np.ndarray]]:
    """Every lesion: a 3-D component of one label class, with its truth record's site,
    PET-faint and bladder flags where the case has truth (nearest centroid)."""
    truth = [t for t in (case.truth or {}).get("lesions", []) if t.get("centroid_mm") is not None]
    found = []
    for value, name in sorted(label_names.items()):
        components = label_lesions_3d(label == value)
        for k in range(1, int(components.max()) + 1):
            mask = components == k
            info = {"candidate": f"lesion_{value}_{k}", "kind": name, "target": 1, "label": value,
                    "truth_id": None, "site": None, "pet_faint": None, "abuts_bladder": None}
            if truth:
                centre = case.ct.TransformContinuousIndexToPhysicalPoint(
                    [float(v) for v in np.argwhere(mask).mean(axis=0)[::-1]])
                nearest = min(truth, key=lambda t: np.linalg.norm(np.subtract(t["centroid_mm"], centre)))
                info.update(truth_id=nearest.get("id"), site=nearest.get("site"),
                            pet_faint=nearest.get("pet_faint"), abuts_bladder=nearest.get("abuts_bladder"))
            found.append((info, mask))
    return found


def mimic_masks(case: Case, lesion: np.ndarray) -> list[tuple[dict, np.ndarray]]:
    """Every mimic of the truth sidecar, rasterised on the CT grid minus lesion voxels (none
    without truth; a mimic wholly outside the CT view or inside a lesion is left out)."""
    found = []
    for mimic in (case.truth or {}).get("mimics", []):
        mask = rasterise_ellipsoids(mimic["ellipsoids"], case.ct) & ~lesion
        if mask.any():
            found.append(({"candidate": f"mimic_{mimic['id']}", "kind": mimic["kind"], "target": 0,
                           "label": 0}, mask))
    return found


# ----------------------------------------------------------------------------- tables


#: Keys of the phantom a hybrid is ``based_on`` that the hybrid generator never reads: the
#: simulated body's grids, geometry and mimics, which the real CT replaces. A hybrid's data
#: card leaves them out (tests/test_hybrid_pelvis.py checks that the generator reads none).
HYBRID_UNUSED_BASE_KEYS = frozenset({
    "ct_size", "ct_spacing_mm", "pet_size", "body_half_width_mm", "body_half_depth_mm", "body_offset_mm", "fat_mm",
    "bladder_radius_mm", "bladder_fill_change", "tumour_bladder_indent", "bowel_loops", "bowel_lumen_fraction",
    "bowel_content_hu", "bowel_content_mix", "bowel_shift_mm", "bowel_focus_probability", "bowel_focus_radius_mm",
    "bowel_focus_suv", "ureter_radius_mm", "ureter_lumen_fraction", "ureter_lumen_hu", "ureter_fat_mm", "ureter_suv",
    "ureter_foci", "ureter_focus_probability", "ureter_focus_length_mm", "ureter_focus_suv", "node_fat_probability",
    "node_fat_margin_mm", "node_faint_probability", "node_faint_suvmax"})


def parameter_sources(phantom: dict[str, Any], base: dict[str, Any] | None = None
                      ) -> tuple[dict[str, Any], dict[str, str]]:
    """The values a phantom section stands for and the sources on hand for them. A section of
    its own: its values, :data:`~crossmodal.phantom.sources.PELVIS_PARAMETER_SOURCES`. A
    section ``based_on`` another (``base``): the base's values with its own over them; the
    base's sources for the values it keeps, the hybrid's (``HYBRID_PELVIS_...`` or, with real
    ``cases``, ``HYBRID_DELINEATIONS_...``) for its own keys, and its ``sources`` entry (key ->
    source, in params.yaml) for anything else it sets, such as a fork's lesion sizes. A
    hybrid of real anatomy (no ``cases``) stands for none of :data:`HYBRID_UNUSED_BASE_KEYS`."""
    from crossmodal.phantom.sources import PELVIS_PARAMETER_SOURCES

    if "based_on" not in phantom:
        return phantom, dict(PELVIS_PARAMETER_SOURCES)
    from crossmodal.phantom.sources import HYBRID_DELINEATIONS_PARAMETER_SOURCES
    from crossmodal.phantom.sources import HYBRID_PELVIS_PARAMETER_SOURCES

    own = HYBRID_DELINEATIONS_PARAMETER_SOURCES if "cases" in phantom else HYBRID_PELVIS_PARAMETER_SOURCES
    given = phantom.get("sources") or {}
    unused = HYBRID_UNUSED_BASE_KEYS if "cases" not in phantom else frozenset()
    kept = {k: v for k, v in (base or {}).items() if k not in unused}
    values = {**kept, **{k: v for k, v in phantom.items() if k != "sources"}}
    sources = {k: v for k, v in PELVIS_PARAMETER_SOURCES.items() if k not in phantom}
    sources |= {k: v for k, v in own.items() if k in phantom or k not in (base or {})}
    return values, sources | dict(given)


def parameter_table(phantom: dict[str, Any] | None, base: dict[str, Any] | None = None) -> pd.DataFrame:
    """Every parameter of a phantom section with its value and source (a citation or "our
    estimate", :func:`parameter_sources`; ``base``: the section it is ``based_on``); a
    nested parameter may be sourced per entry (``"hu.fat"``). Empty for real data (no phantom).

    Raises
    ------
    KeyError
        Naming every parameter without a source: an unsourced phenomenon stops the stage.
    """
    if phantom is None:
        return pd.DataFrame(columns=["parameter", "value", "source"])
    values, sources = parameter_sources(phantom, base)
    rows, missing = [], []
    for key, value in values.items():
        entries = ({f"{key}.{sub}": v for sub, v in value.items()}
                   if isinstance(value, dict) and key not in sources else {key: value})
        for name, entry in entries.items():
            if name in sources:
                rows.append({"parameter": name, "value": json.dumps(entry), "source": sources[name]})
            else:
                missing.append(name)
    if missing:
        where = ("the section's `sources` (key -> source) in params.yaml" if "based_on" in phantom
                 else "crossmodal.phantom.sources.PELVIS_PARAMETER_SOURCES")
        raise KeyError(f"phantom parameters without a source in {where}: {missing}")
    return pd.DataFrame(rows)


def reference_table(phantom: dict[str, Any] | None, base: dict[str, Any] | None = None) -> pd.DataFrame:
    """The full references behind the short citations of :func:`parameter_table` (empty for
    real data)."""
    if phantom is None:
        return pd.DataFrame(columns=["citation", "reference"])
    from crossmodal.phantom.sources import REFERENCES

    used = parameter_sources(phantom, base)[1].values()
    cited = [c for c in REFERENCES if any(c in source for source in used)]
    return pd.DataFrame({"citation": cited, "reference": [REFERENCES[c] for c in cited]})


def _count_rows(group: str, name: str, values: list, n_patients: int) -> dict[str, Any]:
    """One phenomenon row: total (counts and flags), patients with it, share, median."""
    numbers = [float(v) for v in values if v is not None]
    countable = all(isinstance(v, (bool, int, np.integer)) for v in values if v is not None)
    with_it = sum(1 for v in numbers if v != 0)
    return {"group": group, "name": name, "total": sum(numbers) if countable else np.nan,
            "patients_with": with_it, "share": with_it / n_patients if n_patients else np.nan,
            "median": float(np.median(numbers)) if numbers else np.nan, "patients": n_patients}


def phenomena_table(truths: list[dict[str, Any] | None]) -> pd.DataFrame:
    """How often each phenomenon occurs over the patients that have truth: every key of the
    sidecars' ``phenomena`` (total, patients with it, share, median per patient), then the
    lesions per kind / site / PET-faint and the mimics per kind (count, patients with one)."""
    truths = [t for t in truths if t]
    n = len(truths)
    keys = list(dict.fromkeys(k for t in truths for k in t.get("phenomena", {})))
    rows = [_count_rows("phenomenon", key, [t.get("phenomena", {}).get(key) for t in truths], n)
            for key in keys]
    for group, field in (("lesions", "lesions"), ("mimics", "mimics")):
        per_patient: dict[str, list[int]] = {}
        for i, truth in enumerate(truths):
            for item in truth.get(field, []):
                per_patient.setdefault(_describe(item, group), [0] * n)[i] += 1
        rows += [_count_rows(group, name, counts, n) for name, counts in sorted(per_patient.items())]
    columns = ["group", "name", "total", "patients_with", "share", "median", "patients"]
    return pd.DataFrame(rows, columns=columns)


def _describe(item: dict[str, Any], group: str) -> str:
    if group == "mimics":
        return str(item["kind"])
    faint = {True: "PET-faint", False: "PET-avid"}.get(item.get("pet_faint"), "PET n/a")
    return f"{item['kind']}, {item.get('site', 'site n/a')}, {faint}"


def sizes_summary(sizes: pd.DataFrame, *, target_px: float) -> pd.DataFrame:
    """Per kind: number, min / median / max extent in mm and detector pixels, median volume,
    and the share at or above ``target_px`` detector pixels."""
    rows = []
    for kind, group in sizes.groupby("kind", sort=False):
        row = {"kind": kind, "target": int(group["target"].iloc[0]), "n": len(group)}
        for column, unit in (("extent_mm", "mm"), ("extent_px", "px")):
            row.update({f"{stat}_{unit}": getattr(group[column], stat)()
                        for stat in ("min", "median", "max")})
        row.update(median_volume_ml=group["volume_ml"].median(), target_px=target_px,
                   share_at_least_target=float((group["extent_px"] >= target_px).mean()),
                   crop="; ".join(sorted(group["crop"].unique())))
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["target", "kind"], ascending=[False, True]).reset_index(drop=True)


def oracle(candidates: pd.DataFrame, cfg: dict[str, Any], *, primary: str
           ) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The oracle for every lesion vs every mimic, then for the primary lesions alone vs
    every mimic; rows without both classes from two patients hold NaN."""
    pet, ct = list(cfg["features"]["PET"]), list(cfg["features"]["CT"])
    feature_sets = {"PET": pet, "CT": ct, FUSED: pet + ct}
    options = {**cfg["oracle"], "n_boot": int(cfg["n_boot"]), "boot_seed": int(cfg["boot_seed"]),
               "ci": float(cfg["ci"]), "compare": (FUSED, SINGLE)}
    tables, scores = [], {}
    subsets = {"lesion": candidates, primary: candidates[(candidates["target"] == 0)
                                                        | (candidates["kind"] == primary)]}
    for target, subset in subsets.items():
        if subset["target"].nunique() < 2 or subset["patient"].nunique() < 2:
            counts = {"candidates": len(subset), "lesions": int(subset["target"].sum()),
                      "mimics": int((subset["target"] == 0).sum()), "patients": subset["patient"].nunique()}
            table = pd.DataFrame({"features": [*feature_sets, f"{FUSED} minus {SINGLE}"], **counts})
            table = table.reindex(columns=ORACLE_COLUMNS)
        else:
            table, found = oracle_table(subset.reset_index(drop=True), feature_sets, **options)
            if target == "lesion":
                scores = found
        tables.append(table.assign(target=target))
    table = pd.concat(tables, ignore_index=True)
    return table[["target", *[c for c in table.columns if c != "target"]]], scores


def card_metrics(tables: dict[str, pd.DataFrame], *, primary: str) -> dict[str, float | None]:
    """Flat DVC metrics: ``oracle/<features>/<metric>`` (all lesions), ``oracle_<primary>/...``,
    the share of primary lesions at the target size and the candidate counts."""
    flat: dict[str, float | None] = {}
    for row in tables["oracle"].to_dict("records"):
        prefix = "oracle" if row["target"] == "lesion" else f"oracle_{row['target']}"
        features = row["features"].replace(" ", "_")
        for column in ("AUC", "AUC_ci_low", "AUC_ci_high", "AP", "AP_ci_low", "AP_ci_high"):
            flat[f"{prefix}/{features}/{column}"] = json_number(row.get(column, np.nan))
    summary = tables["sizes_summary"].set_index("kind")
    if primary in summary.index:
        share = summary.loc[primary, "share_at_least_target"]
        flat[f"sizes/{primary}/share_at_least_target_px"] = json_number(share)
        flat[f"sizes/{primary}/min_px"] = json_number(summary.loc[primary, "min_px"])
    sizes = tables["sizes"]
    flat.update({"candidates/lesions": int((sizes["target"] == 1).sum()),
                 "candidates/mimics": int((sizes["target"] == 0).sum()),
                 "patients": int(sizes["patient"].nunique())})
    return flat
