"""Part 2 data card (stage ``data_card_skeleton``): region measures, the patient-level
oracle on synthetic tables, and the stage on a tiny phantom cohort."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from conftest import REPO
from crossmodal.io.cohort import ingest_dicom_cohort
from crossmodal.params import load_params
from crossmodal.phantom.skeleton_cohort import generate_skeleton_cohort
from crossmodal.stages.skeleton import data_card

CFG = {"reference_radius_mm": 6.0, "thresholds": {"CT": 150.0, "MR": 0.35, "PT": 1.0}, "min_per_class": 3,
       "oracle": {"n_splits": 3, "n_repeats": 1, "seed": 0, "C": 1.0}, "n_boot": 200, "boot_seed": 1, "ci": 0.95}


def _patients(n: int, seed: int, *, complementary: bool) -> pd.DataFrame:
    """Half the patients positive. ``complementary``: CT sees the metastases of half the
    positives, MR those of the other half; else MR sees the same ones as CT. Both see
    a benign region now and then; PET is missing for every third patient."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        target = int(i % 2 == 0)
        on_ct = target and (i % 4 == 0 or not complementary)
        on_mr = target and (i % 4 == 2 if complementary else on_ct)
        row = {"case_id": f"C{i}", "patient": f"P{i}", "target": target}
        for m, seen in (("CT", on_ct), ("MR", on_mr), ("PT", False)):
            has = m != "PT" or i % 3
            false_positive = rng.uniform() < 0.1
            row.update({f"has_{m}": int(bool(has)),
                        f"seen_{m}": float(seen or false_positive) if has else np.nan,
                        f"excess_{m}": float(rng.uniform(0.5, 1.0) if seen or false_positive else 0.0)
                        if has else np.nan})
        rows.append(row)
    return pd.DataFrame(rows)


def _auc(table: pd.DataFrame, subset: str, features: str) -> pd.Series:
    return table.set_index(["subset", "features"]).loc[(subset, features)]


def test_oracle_gains_when_modalities_carry_complementary_evidence():
    table = data_card.patient_oracle(_patients(48, 0, complementary=True), CFG, ["CT", "MR", "PT"])
    every = data_card.ALL
    singles = [_auc(table, every, m)["AUC"] for m in ("CT", "MR", "PT")]
    combined = _auc(table, every, data_card.COMBINED)
    assert combined["AUC"] > max(singles) + 0.15
    best = ("CT", "MR", "PT")[int(np.argmax(singles))]
    gain = _auc(table, every, f"{data_card.COMBINED} minus {best}")
    assert gain["AUC"] == pytest.approx(combined["AUC"] - max(singles))
    assert gain["AUC_ci_low"] > 0  # paired patient bootstrap: the gain is not chance
    # per modality, like for like: the patients who have it, combined on the same ones
    with_pt = table[table["subset"] == "with PT"]
    assert set(with_pt["patients"]) == {32}  # every third patient lacks PET
    assert _auc(table, "with CT", data_card.COMBINED)["AUC"] > _auc(table, "with CT", "CT")["AUC"] + 0.15


def test_oracle_gains_nothing_when_the_modalities_see_the_same_metastases():
    table = data_card.patient_oracle(_patients(48, 0, complementary=False), CFG, ["CT", "MR", "PT"])
    gain = _auc(table, data_card.ALL, f"{data_card.COMBINED} minus CT")
    assert abs(gain["AUC"]) < 0.1 and gain["AUC_ci_low"] <= 0


def test_oracle_rows_are_empty_below_min_per_class():
    patients = _patients(12, 0, complementary=True).iloc[:5]  # 3 positives, 2 negatives
    table = data_card.patient_oracle(patients, CFG, ["CT", "MR", "PT"])
    assert table["AUC"].isna().all() and len(table) == 3 * 3 + 5


def test_conspicuity_per_modality():
    values = np.array([100.0, 300.0])
    assert data_card.conspicuity("CT", values, 200.0) == 100.0  # lytic and sclerotic alike
    assert data_card.conspicuity("CT", np.array([150.0, 150.0, 150.0, 450.0]), 200.0) == pytest.approx(np.sqrt(0.75 * 50**2 + 0.25 * 250**2))  # texture counts
    assert data_card.conspicuity("MR", np.array([0.2, 0.4]), 0.8) == pytest.approx(0.625)
    assert data_card.conspicuity("MR", np.array([1.0]), 0.8) < 0  # brighter than marrow: not dark
    assert data_card.conspicuity("PT", np.array([1.0, 3.0]), 1.5) == pytest.approx(1.0)
    assert np.isnan(data_card.conspicuity("PT", np.array([]), 1.5))


def test_max_diameter_is_the_largest_in_plane_extent_over_slices():
    mask = np.zeros((3, 10, 10), dtype=bool)
    mask[0, 2:4, 2:9] = True  # 7 px wide
    mask[1, 1:9, 4] = True  # 8 px tall
    assert data_card.max_diameter(mask, (5.0, 2.0, 1.5)) == (16.0, 8)  # 8 x 2.0 mm > 7 x 1.5 mm


def test_lesion_masks_split_touching_lesions_by_their_truth():
    image = sitk.Image([20, 10, 4], sitk.sitkFloat32)
    image.SetSpacing([2.0, 2.0, 5.0])
    label = np.zeros((4, 10, 20), dtype=np.uint8)
    label[1:3, 3:7, 2:18] = 1  # one connected component, two lesions
    lesions = [{"centre_mm": [10.0, 10.0, 10.0], "radii_mm": [8.0, 5.0, 5.0]},
               {"centre_mm": [28.0, 10.0, 10.0], "radii_mm": [6.0, 5.0, 5.0]}]
    offset = [2.0, 0.0, 0.0]  # this series sees the anatomy 2 mm to the left
    a, b = data_card.lesion_masks(label, image, lesions, offset)
    assert not (a & b).any() and ((a | b) == (label > 0)).all()
    # equal normalised distance at x = 22.3 mm (index 11.1) with the offset, 20.3 mm without
    assert sorted(set(np.nonzero(a)[2])) == list(range(2, 12))
    assert sorted(set(np.nonzero(b)[2])) == list(range(12, 18))


# ----------------------------------------------------------------------------- the stage


@pytest.fixture(scope="module")
def tiny_ingest(tmp_path_factory):
    params = load_params(REPO / "params.yaml", "quick")
    p = copy.deepcopy(params["phantom"]["skeleton"])
    p.update(n_patients=8, pet_occult_fraction=1.0, mri_only_fraction=0.2, ct_occult_fraction=0.3,
             metastasis_types={"sclerotic": 0.5, "lytic": 0.5}, modality_probability={"CT": 1.0, "MR": 1.0, "PT": 0.8})
    root = generate_skeleton_cohort(p, tmp_path_factory.mktemp("skeleton") / "cohort")
    out = tmp_path_factory.mktemp("skeleton_ingest")
    source = params["cohort"]["skeleton"]
    ingest_dicom_cohort(root, out, modalities=source["modalities"], required_modalities=[],
                        label_modalities=source["label_modalities"], group_by="patient",
                        require_nonempty_label=False, salt="test")
    params["compute"] = {"jobs": 1, "detector_runs": 1}
    params["data_card_skeleton"].update(n_boot=50, oracle={"n_splits": 2, "n_repeats": 1, "seed": 0, "C": 1.0},
                                        min_per_class=2)
    return params, out


def test_stage_writes_the_card_and_counts_match_the_truth(tiny_ingest, tmp_path):
    params, ingest = tiny_ingest
    out, metrics = tmp_path / "card", tmp_path / "metrics" / "data_card.json"
    tables = data_card.run(params, ingest_dir=ingest, out=out, metrics=metrics)
    for name in ("phenomena", "regions", "visibility", "sizes", "sizes_summary", "patients", "oracle"):
        assert (out / f"{name}.csv").is_file()
    truths = [json.loads(p.read_text()) for p in sorted((ingest / "cases").glob("*/truth.json"))]
    lesions = [x for t in truths for x in t["lesions"]]
    phenomena = tables["phenomena"].set_index(["group", "name"])["count"]
    for kind in {x["evidence"] for x in lesions}:
        assert phenomena[("metastasis evidence", kind)] == sum(x["evidence"] == kind for x in lesions)
    regions = tables["regions"]
    series = sum(len(t["series"]) for t in truths)
    assert len(regions) == sum(len(t["series"]) * (len(t["lesions"]) + len(t["mimics"])) for t in truths)
    assert series and (regions["n_voxels"] > 0).all() and (tables["sizes"]["max_diameter_mm"] > 0).all()
    # the phenomena show on the images: occult metastases stand out less there than the others
    on = regions.set_index(["modality", "kind", "evidence"])["conspicuity"]
    on = on.sort_index()
    pet, ct = on.loc[("PT", "metastasis")], on.loc[("CT", "metastasis")]
    assert pet.loc["pet_occult"].median() < 0.5 < 1.0 < pet.loc[["all", "ct_occult"]].median()
    occult = ct.loc[[k for k in ("mri_only", "ct_occult") if k in ct.index]]
    # A marrow-only lesion keeps the cortex its labelled region encloses, and the CT measure
    # (RMS of HU - marrow over the region) counts that cortex: such lesions read less
    # conspicuous than dense ones, not invisible (the noise-free phantom test checks the
    # marrow itself).
    assert len(occult) and occult.median() < ct.loc["pet_occult"].median()
    patients = tables["patients"]
    assert len(patients) == len(truths) and patients.loc[patients["has_PT"] == 0, "seen_PT"].isna().all()
    flat = json.loads(metrics.read_text())
    assert flat["patients"] == len(truths) and "oracle/all_modalities/combined/AUC" in flat
    assert "oracle/all_modalities/combined_minus_best_single/AUC" in flat


@pytest.mark.parametrize("key, value, rule", [
    ("thresholds.MR", 1.2, "less than 1"),
    ("thresholds.PET", 1.0, "unknown key"),
    ("min_per_class", 1, "greater than or equal to 2"),
    ("oracle.n_splits", 1, "greater than or equal to 2"),
])
def test_params_reject_a_bad_data_card_skeleton(tmp_path, key, value, rule):
    import re

    import yaml

    from crossmodal.params import ParamsError

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    *parents, leaf = key.split(".")
    node = raw["data_card_skeleton"]
    for part in parents:
        node = node[part]
    node[leaf] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(ParamsError) as caught:
        load_params(path)
    assert re.search(rf"data_card_skeleton\.{re.escape(key)}: .*{rule}", str(caught.value)), str(caught.value)
