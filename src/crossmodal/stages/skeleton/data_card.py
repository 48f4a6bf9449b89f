"""Stage ``data_card_skeleton``: what the Part 2 cohort holds, before any detector trains.

Reads the ingested cases (``results/skeleton/ingest``) and their truth; writes under ``out``::

    phenomena.csv       patients per modality and class; metastases per type, evidence kind
                        and designed visibility per modality; mimics per type and the
                        modality each fools (from the truth sidecars)
    regions.csv         every true region on every series: a metastasis (its label voxels)
                        or a mimic (its truth ellipsoid inside its bone's marrow), its size and its
                        conspicuity against the patient's own marrow
    visibility.csv      per modality and kind of region (metastasis evidence, mimic type):
                        regions, share seen (conspicuity >= threshold), median conspicuity
    sizes.csv           every metastasis on every series: max in-plane diameter (mm, pixels)
    sizes_summary.csv   min / median / max diameter per modality
    patients.csv        per patient and modality: regions seen and their max excess
                        conspicuity (NaN where the patient lacks the modality)
    oracle.csv          the patient-level oracle (below)

and the DVC metrics JSON at ``metrics`` (flat keys ``oracle/<subset>/<features>/AUC`` ...).

The oracle asks what fusion can gain on this cohort before any detector trains: from the
TRUE regions only, a standardised logistic regression
(:func:`crossmodal.learn.oracle.out_of_fold_scores`, patient-grouped folds) tells bone
metastasis from none per patient with one modality's features and with the features of
every modality the patient has, on the same patients (like for like): for each modality,
on the patients who have it; then on the patients who have all of them, every modality
alone, combined, and combined minus the best single one (paired patient bootstrap; picking
the best single on the same data favours it, so the difference is conservative).
A region below its modality's threshold counts as unseen (excess 0), so that the mere
presence of a true region, which the oracle knows and a detector does not, carries no
evidence. A case without truth (real data) has no regions and no oracle.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import SimpleITK as sitk

from crossmodal.io.case import Case
from crossmodal.io.case import load_cases
from crossmodal.io.geometry import rasterise_ellipsoids
from crossmodal.learn.metrics_json import json_number
from crossmodal.learn.metrics_json import write_json
from crossmodal.learn.oracle import oracle_table
from crossmodal.parallel import map_jobs
from crossmodal.parallel import patient_workers

COMBINED = "combined"
ALL = "all modalities"
ORACLE_COLUMNS = ["subset", "features", "patients", "positives", "negatives",
                  "AUC", "AUC_ci_low", "AUC_ci_high", "AP", "AP_ci_low", "AP_ci_high"]
SIZE_COLUMNS = ["case_id", "patient", "modality", "lesion", "type", "evidence", "site", "n_voxels",
                "max_diameter_mm", "max_diameter_px", "volume_ml"]


def run(params: dict[str, Any], *, ingest_dir: str | Path, out: str | Path,
        metrics: str | Path) -> dict[str, pd.DataFrame]:
    """The Part 2 data card of the ingested cohort (params ``data_card_skeleton``, the
    modalities of ``cohort.skeleton``); writes the tables and the DVC metrics JSON."""
    cfg = params["data_card_skeleton"]
    modalities = list(params["cohort"]["skeleton"]["modalities"])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cases = load_cases(ingest_dir)
    measure = functools.partial(case_regions, cfg=cfg)
    per_case = map_jobs(measure, cases, jobs=patient_workers(params), progress=True,
                        desc="data card", unit="case")
    regions = pd.DataFrame([row for rows in per_case for row in rows], columns=REGION_COLUMNS)
    lesions = regions[regions["kind"] == "metastasis"]
    tables = {"phenomena": phenomena_table(cases, modalities), "regions": regions,
              "visibility": visibility_table(regions), "sizes": lesions.rename(columns={"candidate": "lesion"})[SIZE_COLUMNS].reset_index(drop=True),
              "sizes_summary": sizes_summary(lesions)}
    tables["patients"] = patient_table(cases, regions, modalities)
    tables["oracle"] = patient_oracle(tables["patients"], cfg, modalities)
    for name, table in tables.items():
        table.to_csv(out / f"{name}.csv", index=False)
    write_json(card_metrics(tables), metrics)
    print(tables["oracle"][["subset", "features", "patients", "AUC", "AUC_ci_low", "AUC_ci_high"]]
          .to_string(index=False))
    return tables


# ----------------------------------------------------------------------------- regions

REGION_COLUMNS = ["case_id", "patient", "patient_label", "modality", "candidate", "kind", "type",
                  "evidence", "site", "designed_visible", "fools", "n_voxels", "max_diameter_mm",
                  "max_diameter_px", "volume_ml", "reference", "conspicuity", "threshold", "seen"]


def _voxel_points(image: sitk.Image, index: np.ndarray) -> np.ndarray:
    """Physical points (x, y, z mm) of voxel indices ``(n, 3)`` in (z, y, x) order."""
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    steps = index[:, ::-1] * np.asarray(image.GetSpacing())
    return np.asarray(image.GetOrigin()) + steps @ direction.T


def _shifted(ellipsoid: dict, offset) -> dict:
    return {"centre_mm": list(np.add(ellipsoid["centre_mm"], offset)), "radii_mm": ellipsoid["radii_mm"]}


def _nearest_voxel(image: sitk.Image, point) -> tuple[int, int, int] | None:
    index = image.TransformPhysicalPointToContinuousIndex(tuple(float(v) for v in point))
    index = tuple(int(round(v)) for v in index)
    if any(i < 0 or i >= s for i, s in zip(index, image.GetSize())):
        return None
    return index[::-1]


def region_mask(ellipsoids: list[dict], image: sitk.Image, *, within: list[dict] | None = None) -> np.ndarray:
    """Voxels of ``image`` inside the ellipsoids (and inside ``within`` where given); a
    region too small to hold a voxel centre keeps the voxel nearest its first centre, as
    the phantom's labels keep their best-covered voxel."""
    mask = rasterise_ellipsoids(ellipsoids, image)
    if within:
        mask &= rasterise_ellipsoids(within, image)
    if not mask.any() and (voxel := _nearest_voxel(image, ellipsoids[0]["centre_mm"])) is not None:
        mask[voxel] = True
    return mask


def lesion_masks(label: np.ndarray, image: sitk.Image, lesions: list[dict], offset) -> list[np.ndarray]:
    """The label voxels of each truth lesion: every labelled voxel goes to the lesion whose
    ellipsoid (shifted into this series) is nearest in normalised distance, so that
    lesions touching on a coarse grid stay apart."""
    masks = [np.zeros(label.shape, dtype=bool) for _ in lesions]
    index = np.argwhere(label > 0)
    if not len(index) or not lesions:
        return masks
    points = _voxel_points(image, index)
    distance = np.stack([np.linalg.norm((points - np.add(t["centre_mm"], offset)) / np.asarray(t["radii_mm"]), axis=1)
                         for t in lesions])
    owner = distance.argmin(axis=0)
    for i, mask in enumerate(masks):
        mask[tuple(index[owner == i].T)] = True
    return masks


def max_diameter(mask: np.ndarray, spacing_zyx) -> tuple[float, int]:
    """Largest in-plane extent over the slices of a region: the longer side of each
    slice's bounding box, in mm and in pixels (the larger of each over the slices)."""
    best_mm, best_px = 0.0, 0
    for z in np.flatnonzero(mask.reshape(len(mask), -1).any(axis=1)):
        ys, xs = np.nonzero(mask[z])
        h, w = int(np.ptp(ys)) + 1, int(np.ptp(xs)) + 1
        best_mm = max(best_mm, h * float(spacing_zyx[1]), w * float(spacing_zyx[2]))
        best_px = max(best_px, h, w)
    return best_mm, best_px


def marrow_reference(values: np.ndarray, image: sitk.Image, truth: dict, offset, radius_mm: float) -> float:
    """The patient's normal marrow on this series: the median in spheres of ``radius_mm`` at
    the vertebral body centres holding no finding (every body when all hold one)."""
    centres = truth.get("anatomy", {}).get("vertebral_body_centres_mm", {})
    taken = {f["bone"] for f in truth.get("lesions", []) + truth.get("mimics", [])}
    names = [n for n in centres if n not in taken] or list(centres)
    if not names:
        return float("nan")
    spheres = [{"centre_mm": centres[n], "radii_mm": [radius_mm] * 3} for n in names]
    mask = np.zeros(values.shape, dtype=bool)
    for sphere in spheres:
        mask |= region_mask([_shifted(sphere, offset)], image)
    return float(np.median(values[mask])) if mask.any() else float("nan")


def conspicuity(modality: str, values: np.ndarray, reference: float) -> float:
    """How far a region stands out from normal marrow on one modality: CT root mean square
    of HU - marrow (lytic and sclerotic alike, and a haemangioma's polka-dot texture whose
    mean barely moves), MR T1 darkening ``1 - mean / marrow``, PET ``SUVmax / marrow - 1``.
    NaN for an empty region."""
    if not len(values) or not np.isfinite(reference):
        return float("nan")
    if modality == "CT":
        return float(np.sqrt(np.mean((values - reference) ** 2)))
    if modality == "MR":
        return float(1.0 - values.mean() / reference)
    return float(values.max() / reference - 1.0)


def _region_row(case: Case, modality: str, info: dict, mask: np.ndarray, values: np.ndarray,
                spacing, reference: float, threshold: float) -> dict[str, Any]:
    diameter_mm, diameter_px = max_diameter(mask, spacing) if mask.any() else (0.0, 0)
    score = conspicuity(modality, values[mask], reference)
    return {"case_id": case.case_id, "patient": case.patient, "patient_label": case.truth.get("patient_label"),
            "modality": modality, **info, "n_voxels": int(mask.sum()), "max_diameter_mm": diameter_mm,
            "max_diameter_px": diameter_px, "volume_ml": float(mask.sum() * np.prod(spacing) / 1000.0),
            "reference": reference, "conspicuity": score, "threshold": threshold,
            "seen": bool(np.isfinite(score) and score >= threshold)}


def case_regions(case: Case, *, cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per true region (metastasis or mimic) per series of ``case`` (none without
    truth): kind, evidence, size and conspicuity on that series."""
    truth = case.truth
    if not truth:
        return []
    rows = []
    for modality, image in case.images.items():
        values = sitk.GetArrayFromImage(image).astype(float)
        spacing = image.GetSpacing()[::-1]
        offset = truth.get("modality_offset_mm", {}).get(modality, [0.0, 0.0, 0.0])
        reference = marrow_reference(values, image, truth, offset, float(cfg["reference_radius_mm"]))
        threshold = float(cfg["thresholds"][modality])
        label = sitk.GetArrayFromImage(case.labels[modality]) if modality in case.labels else np.zeros(values.shape)
        lesions = truth.get("lesions", [])
        for lesion, mask in zip(lesions, lesion_masks(label, image, lesions, offset)):
            info = {"candidate": f"lesion_{lesion['id']}", "kind": "metastasis", "type": lesion["type"],
                    "evidence": lesion.get("evidence", "all"), "site": lesion.get("site"),
                    "designed_visible": lesion.get("visible", {}).get(modality, True), "fools": None}
            rows.append(_region_row(case, modality, info, mask, values, spacing, reference, threshold))
        for mimic in truth.get("mimics", []):
            within = [_shifted(lobe, offset) for lobe in mimic.get("marrow_lobes", [])]
            mask = region_mask([_shifted(mimic, offset)], image, within=within) & (label == 0)
            info = {"candidate": f"mimic_{mimic['id']}", "kind": "mimic", "type": mimic["type"],
                    "evidence": None, "site": mimic.get("site"),
                    "designed_visible": mimic.get("fools") == modality, "fools": mimic.get("fools")}
            rows.append(_region_row(case, modality, info, mask, values, spacing, reference, threshold))
    return rows


# ----------------------------------------------------------------------------- tables


def _count(group: str, name: str, count: int, patients_with: int, n_patients: int, of: int | None = None):
    return {"group": group, "name": name, "count": int(count), "share": count / of if of else np.nan,
            "patients_with": int(patients_with), "patients": n_patients}


def phenomena_table(cases: list[Case], modalities: list[str]) -> pd.DataFrame:
    """How often each phenomenon occurs (truth sidecars; patients without truth are left
    out): patients per modality and class, metastases per type / evidence kind / designed
    visibility per modality (``share`` of the metastases), mimics per type and fooled
    modality (``share`` of the mimics)."""
    truths = [(c, c.truth) for c in cases if c.truth]
    n = len(truths)
    rows = []
    for label, name in ((1, "bone metastasis"), (0, "no bone metastasis")):
        members = [c for c, t in truths if t.get("patient_label") == label]
        rows.append(_count("patients", name, len(members), len(members), n, n))
        for m in modalities:
            have = sum(m in c.images for c in members)
            rows.append(_count("patients", f"{name}, with {m}", have, have, n, len(members)))
    lesions = [(i, x) for i, (_, t) in enumerate(truths) for x in t.get("lesions", [])]
    mimics = [(i, x) for i, (_, t) in enumerate(truths) for x in t.get("mimics", [])]
    groups = {
        "metastasis type": (lesions, lambda x: x["type"]),
        "metastasis evidence": (lesions, lambda x: x.get("evidence", "all")),
        "metastasis seen by design": (lesions, lambda x: [f"{m}: {'visible' if v else 'occult'}"
                                                          for m, v in x.get("visible", {}).items()]),
        "mimic type": (mimics, lambda x: f"{x['type']} (fools {x.get('fools')})"),
    }
    for group, (items, key) in groups.items():
        names: dict[str, list[int]] = {}
        for patient, item in items:
            keys = key(item)
            for k in keys if isinstance(keys, list) else [keys]:
                names.setdefault(k, []).append(patient)
        rows += [_count(group, k, len(p), len(set(p)), n, len(items)) for k, p in sorted(names.items())]
    return pd.DataFrame(rows, columns=["group", "name", "count", "share", "patients_with", "patients"])


def _region_kind(regions: pd.DataFrame) -> pd.Series:
    return np.where(regions["kind"] == "metastasis", "metastasis, " + regions["evidence"].astype(str),
                    "mimic, " + regions["type"].astype(str))


def visibility_table(regions: pd.DataFrame) -> pd.DataFrame:
    """Per modality and kind of region: how many, how many the design shows, and how many
    are measured as seen (conspicuity >= the modality's threshold): a mimic should be
    seen only on the modality it fools, an occult metastasis not on its occult modality."""
    columns = ["modality", "region", "regions", "designed_visible", "seen", "share_seen",
               "median_conspicuity", "threshold"]
    if regions.empty:
        return pd.DataFrame(columns=columns)
    table = (regions.assign(region=_region_kind(regions))
             .groupby(["modality", "region"], sort=True)
             .agg(regions=("seen", "size"), designed_visible=("designed_visible", "sum"), seen=("seen", "sum"),
                  median_conspicuity=("conspicuity", "median"), threshold=("threshold", "first"))
             .reset_index())
    table["share_seen"] = table["seen"] / table["regions"]
    return table[columns]


def sizes_summary(lesions: pd.DataFrame) -> pd.DataFrame:
    """Per modality: metastases on its series and their min / median / max in-plane
    diameter (mm); metastases that hold no voxel of the series are counted apart."""
    rows = []
    for modality, group in lesions.groupby("modality", sort=True):
        held = group[group["n_voxels"] > 0]["max_diameter_mm"]
        rows.append({"modality": modality, "lesions": len(group), "without_voxels": int((group["n_voxels"] == 0).sum()),
                     "min_mm": held.min(), "median_mm": held.median(), "max_mm": held.max()})
    return pd.DataFrame(rows, columns=["modality", "lesions", "without_voxels", "min_mm", "median_mm", "max_mm"])


def patient_table(cases: list[Case], regions: pd.DataFrame, modalities: list[str]) -> pd.DataFrame:
    """One row per patient with truth: label, ``has_<m>``, ``seen_<m>`` (regions seen) and
    ``excess_<m>`` (max over its regions of conspicuity minus threshold, 0 when none is
    seen); NaN where the patient lacks modality ``m``."""
    rows = []
    for case in cases:
        if not case.truth:
            continue
        row = {"case_id": case.case_id, "patient": case.patient, "target": int(case.truth["patient_label"])}
        mine = regions[regions["case_id"] == case.case_id]
        for m in modalities:
            on = mine[mine["modality"] == m]
            present = m in case.images
            excess = (on["conspicuity"] - on["threshold"]).clip(lower=0).fillna(0)
            row.update({f"has_{m}": int(present),
                        f"seen_{m}": float(on["seen"].sum()) if present else np.nan,
                        f"excess_{m}": float(excess.to_numpy().max(initial=0.0)) if present else np.nan})
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- oracle


def _features(m: str) -> list[str]:
    return [f"seen_{m}", f"excess_{m}"]


def _empty_rows(subset: str, names: list[str], counts: dict[str, int]) -> pd.DataFrame:
    return pd.DataFrame([{"subset": subset, "features": name, **counts} for name in names],
                        columns=ORACLE_COLUMNS)


def _oracle_rows(subset: str, patients: pd.DataFrame, feature_sets: dict[str, list[str]],
                 cfg: dict[str, Any], singles: list[str]) -> pd.DataFrame:
    """The oracle on one subset of patients: every feature set, then combined minus the
    best single set (by AUC, on these patients); NaN rows when a class has fewer than
    ``min_per_class`` patients."""
    y = patients["target"].to_numpy(int)
    counts = {"patients": len(y), "positives": int(y.sum()), "negatives": int((1 - y).sum())}
    names = [*feature_sets, f"{COMBINED} minus best single"]
    if min(counts["positives"], counts["negatives"]) < int(cfg["min_per_class"]):
        return _empty_rows(subset, names, counts)
    options = {**cfg["oracle"], "n_boot": int(cfg["n_boot"]), "boot_seed": int(cfg["boot_seed"]),
               "ci": float(cfg["ci"])}
    data = patients.reset_index(drop=True)
    table, _ = oracle_table(data, feature_sets, compare=(COMBINED, singles[0]), **options)
    auc = table.set_index("features")["AUC"]
    best = max(singles, key=lambda s: (np.nan_to_num(auc[s], nan=-1.0), -singles.index(s)))
    if best != singles[0]:  # same folds and resamples: only the difference row changes
        table, _ = oracle_table(data, feature_sets, compare=(COMBINED, best), **options)
    table["features"] = [*feature_sets, f"{COMBINED} minus {best}"]
    table = table.drop(columns=["candidates", "lesions", "mimics"]).assign(subset=subset, **counts)
    return table.reindex(columns=ORACLE_COLUMNS)


def patient_oracle(patients: pd.DataFrame, cfg: dict[str, Any], modalities: list[str]) -> pd.DataFrame:
    """Bone metastasis vs none per patient from the true regions' features
    (:func:`patient_table`): for each modality, that modality alone and combined (every
    modality the patient has: a missing one's features are imputed by the fold's median,
    with the presence flags) on the patients who have it; then on the patients with every
    modality, each alone and all combined. Same patients in each comparison."""
    tables = []
    combined = [f for m in modalities for f in _features(m)] + [f"has_{m}" for m in modalities]
    for m in modalities:
        subset = patients[patients[f"has_{m}"] == 1]
        tables.append(_oracle_rows(f"with {m}", subset, {m: _features(m), COMBINED: combined}, cfg, [m]))
    every = patients[(patients[[f"has_{m}" for m in modalities]] == 1).all(axis=1)]
    sets = {m: _features(m) for m in modalities}
    sets[COMBINED] = [f for m in modalities for f in _features(m)]
    tables.append(_oracle_rows(ALL, every, sets, cfg, list(modalities)))
    return pd.concat(tables, ignore_index=True)


def card_metrics(tables: dict[str, pd.DataFrame]) -> dict[str, float | int | None]:
    """Flat DVC metrics: ``oracle/<subset>/<features>/<AUC|AP...>`` (on every modality:
    ``combined_minus_best_single``, the best one named in ``oracle.csv``), the metastases per
    evidence kind, the mimics per type and the patients."""
    flat: dict[str, float | int | None] = {}
    for row in tables["oracle"].to_dict("records"):
        # a stable key across runs whichever single modality was best
        features = (f"{COMBINED} minus best single" if row["subset"] == ALL and " minus " in row["features"]
                    else row["features"])
        key = f"oracle/{row['subset'].replace(' ', '_')}/{features.replace(' ', '_')}"
        for column in ("AUC", "AUC_ci_low", "AUC_ci_high", "AP", "AP_ci_low", "AP_ci_high"):
            flat[f"{key}/{column}"] = json_number(row.get(column, np.nan))
    for row in tables["phenomena"].to_dict("records"):
        if row["group"] in ("metastasis evidence", "mimic type"):
            flat[f"{row['group'].replace(' ', '_')}/{row['name'].split(' (')[0]}"] = int(row["count"])
    flat["patients"] = int(len(tables["patients"]))
    return flat
