"""Hybrid skeleton (Part 2 on a real CT): real voxels untouched outside the inserted findings,
findings inside the real bones of their site, MR and PET made from the real tissues, the
phantom's class and modality draws, and a cohort the Part 2 ingestion reads as any other."""

from __future__ import annotations

import copy
import fnmatch
import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import ingest_by_cohort_rules
from conftest import with_real_source
from crossmodal.params import load_params
from crossmodal.params.rules import check
from crossmodal.phantom import hybrid_skeleton as hybrid
from crossmodal.phantom.skeleton_anatomy import TISSUES
from crossmodal.phantom.skeleton_anatomy import patient_is_positive
from crossmodal.stages.data import phantom_params

REPO = Path(__file__).resolve().parents[1]
N_PATIENTS = 8


@pytest.fixture(scope="module")
def hybrid_params(tmp_path_factory) -> dict:
    """``phantom.skeleton_real_anatomy`` resolved, its real scan fetched from the registry
    (archive cached between runs) into a temporary root."""
    params = with_real_source(load_params(REPO / "params.yaml"), "totalsegmentator",
                              tmp_path_factory.mktemp("real") / "ts")
    return phantom_params(params, "skeleton_real_anatomy")


@pytest.fixture(scope="module")
def skeleton(hybrid_params):
    return hybrid.load_real_skeleton(hybrid_params)


@pytest.fixture(scope="module")
def patients(hybrid_params, skeleton):
    return [hybrid.simulate_hybrid_skeletal_patient(i, hybrid_params, seed=hybrid_params["seed"], skeleton=skeleton)
            for i in range(N_PATIENTS)]


def bone_mask(skeleton, names) -> np.ndarray:
    ids = [i for i, name in zip(skeleton.bone_ids, [b.name for b in skeleton.bones]) if name in names]
    return np.isin(skeleton.real.structures, ids)


def test_the_real_ct_changes_only_inside_real_bones_where_findings_were_inserted(skeleton, patients):
    original = sitk.GetArrayFromImage(skeleton.real.ct)
    bones = bone_mask(skeleton, {b.name for b in skeleton.bones})
    changed_any = False
    for patient in patients:
        if "CT" not in patient.images:
            continue
        ct = sitk.GetArrayFromImage(patient.images["CT"])
        assert patient.images["CT"].GetSpacing() == skeleton.real.ct.GetSpacing()
        changed = ct != original
        assert not (changed & ~bones).any()  # every voxel outside the real bones is the scanner's own
        label = sitk.GetArrayFromImage(patient.labels["CT"]) > 0
        assert not (label & ~bones).any()
        assert changed[label].all() if label.any() else True  # each metastasis is in the CT
        assert label.any() == bool(patient.patient_label)
        changed_any |= bool(changed.any())
    assert changed_any


def test_each_metastasis_lies_in_a_real_bone_of_its_site_group(hybrid_params, skeleton, patients):
    groups = hybrid_params["bone_structures"]
    seen = 0
    for patient in patients:
        for lesion in patient.lesions:
            assert any(fnmatch.fnmatchcase(lesion["bone"], pattern) for pattern in groups[lesion["site"]])
            assert lesion["inserted"] and lesion["label_voxels"]
            seen += 1
        for mimic in patient.mimics:
            assert mimic["site"] in groups and mimic["inserted"]
    assert seen > 0


def test_class_and_modalities_follow_the_phantoms_low_discrepancy_draws(hybrid_params, patients):
    for patient in patients:
        assert patient.patient_label == patient_is_positive(patient.index, hybrid_params["positive_fraction"],
                                                            seed=hybrid_params["seed"])
        assert set(patient.images) == set(patient.labels) and patient.images
        assert bool(patient.lesions) == bool(patient.patient_label)
    labels = [p.patient_label for p in patients]
    assert 0 < sum(labels) < len(labels)


def test_mr_and_pet_are_simulated_from_the_real_tissues(hybrid_params, skeleton, patients):
    tissue = skeleton.tissue
    assert (tissue == TISSUES["marrow"]).any() and (tissue == TISSUES["cortex"]).any()
    assert (tissue[sitk.GetArrayFromImage(skeleton.real.ct) < -900] == TISSUES["air"]).mean() > 0.95
    for patient in patients:
        if "PT" in patient.images:
            pet = sitk.GetArrayFromImage(patient.images["PT"])
            grid = hybrid.modality_grid(skeleton.real.ct, hybrid_params["pet_spacing_mm"])
            assert pet.shape == sitk.GetArrayFromImage(grid).shape
            assert patient.images["PT"].GetSpacing() == tuple(map(float, hybrid_params["pet_spacing_mm"]))
            # the bladder's urine is the hottest organ: the bladder SUV the patient drew
            assert pet.max() > 0.5 * patient.anatomy["bladder_suv"]
        if "MR" in patient.images:
            mr = sitk.GetArrayFromImage(patient.images["MR"])
            assert mr.min() >= 0.0  # a magnitude image


def test_a_visible_metastasis_shows_as_its_look_on_mr_and_pet(patients):
    checked = 0
    for patient in patients:
        visible = [m for m in patient.lesions if m["evidence"] == "all" and m["type"] == "lytic"]
        if not visible or not {"MR", "PT"} & set(patient.images):
            continue
        marrow = patient.anatomy["marrow"]
        if "PT" in patient.labels:
            pet, label = (sitk.GetArrayFromImage(patient.images["PT"]), sitk.GetArrayFromImage(patient.labels["PT"]))
            if label.any():
                assert pet[label > 0].max() > marrow["PT"]
                checked += 1
        if "MR" in patient.labels:
            mr, label = (sitk.GetArrayFromImage(patient.images["MR"]), sitk.GetArrayFromImage(patient.labels["MR"]))
            if label.any():
                assert np.median(mr[label > 0]) < 1000.0 * marrow["MR"]  # dark in bright marrow
                checked += 1
    assert checked > 0


def test_a_patient_is_the_same_whenever_it_is_drawn(hybrid_params, skeleton, patients):
    again = hybrid.simulate_hybrid_skeletal_patient(3, hybrid_params, seed=hybrid_params["seed"], skeleton=skeleton)
    for m, image in patients[3].images.items():
        assert np.array_equal(sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(again.images[m]))
    assert again.lesions == patients[3].lesions and again.mimics == patients[3].mimics


def test_a_site_group_the_real_scan_lacks_is_refused_in_params():
    params = copy.deepcopy(load_params(REPO / "params.yaml"))
    del params["phantom"]["skeleton_real_anatomy"]["bone_structures"]["rib"]
    problems = dict(check(params))
    assert "'rib' not in bone_structures" in problems["phantom.skeleton_real_anatomy.bone_structures"]


def test_an_unknown_tissue_class_is_refused(hybrid_params):
    with pytest.raises(ValueError, match="not skeletal phantom tissues"):
        hybrid.load_real_skeleton({**hybrid_params, "tissue_structures": {"spleen": ["spleen"]}})


def test_the_cohort_is_written_as_dicom_and_ingested_by_the_part2_rules(hybrid_params, tmp_path):
    from crossmodal.io.case import load_cases
    from crossmodal.stages.skeleton.real_anatomy import inserted_findings

    p = {**hybrid_params, "n_patients": 3}
    root = hybrid.generate_hybrid_skeleton_cohort(p, tmp_path / "hybrid")
    truth = {json.loads(f.read_text())["phantom_index"]: json.loads(f.read_text())
             for f in sorted((root / "truth").glob("*.json"))}
    assert sorted(truth) == [0, 1, 2]
    assert all(t["real_anatomy"]["ct"] == "real" and t["real_anatomy"]["sha256"] == p["real_data"]["sha256"]
               for t in truth.values())
    report = ingest_by_cohort_rules(root, tmp_path / "ingested", "skeleton_real_anatomy")
    assert len(report.cases) == 3 and not report.problems
    findings = inserted_findings(load_cases(tmp_path / "ingested"))
    assert len(findings) == sum(len(t["lesions"]) + len(t["mimics"]) for t in truth.values())
    assert set(findings["kind"]) <= {"metastasis", "mimic"}
