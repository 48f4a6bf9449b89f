"""Skeletal CT/MRI/PET phantom (Part 2): determinism, labels, per-modality physics, mimics,
and the written cohort read back through the normal ingestion."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from crossmodal.io.case import load_cases
from crossmodal.io.cohort import ingest_dicom_cohort
from crossmodal.params import load_params
from crossmodal.phantom.pelvis import grid_points
from crossmodal.phantom.pelvis import make_grid
from crossmodal.phantom.skeleton import render_ideal
from crossmodal.phantom.skeleton import simulate_skeletal_patient
from crossmodal.phantom.skeleton_anatomy import MIMIC_FOOLS
from crossmodal.phantom.skeleton_anatomy import MODALITIES
from crossmodal.phantom.skeleton_anatomy import patient_is_positive
from crossmodal.phantom.skeleton_anatomy import patient_modalities
from crossmodal.phantom.skeleton_anatomy import sample_skeletal_anatomy
from crossmodal.phantom.skeleton_cohort import generate_skeleton_cohort
from crossmodal.phantom.skeleton_cohort import is_skeleton_up_to_date
from crossmodal.phantom.skeleton_phenomena import VISIBLE

REPO = Path(__file__).resolve().parents[1]
ALL = {"CT": 1.0, "MR": 1.0, "PT": 1.0}
N_SCAN = 10  # patients simulated (all modalities) for the physics and label checks


def quick_params() -> dict:
    """The quick profile's ``phantom.skeleton`` from params.yaml."""
    return copy.deepcopy(load_params(REPO / "params.yaml", "quick")["phantom"]["skeleton"])


def default_params() -> dict:
    """The default profile's ``phantom.skeleton`` from params.yaml."""
    return copy.deepcopy(load_params(REPO / "params.yaml", "default")["phantom"]["skeleton"])


@pytest.fixture(scope="module")
def params() -> dict:
    return quick_params()


@pytest.fixture(scope="module")
def scanned(params):
    """Patients 0..N_SCAN-1 with every modality, for physics and label checks."""
    p = {**params, "modality_probability": ALL}
    return [simulate_skeletal_patient(i, p, seed=int(p["seed"])) for i in range(N_SCAN)]


def arr(image: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(image)


def value_at(image: sitk.Image, point_mm) -> float:
    index = image.TransformPhysicalPointToIndex(tuple(map(float, point_mm)))
    return float(arr(image)[index[::-1]])


def ideal_at(anatomy, modality: str, point_mm, p: dict) -> float:
    """The noise-free value of a modality at one point (a one-voxel grid there)."""
    grid = make_grid([1, 1, 1], [0.5] * 3, tuple(point_mm))
    return render_ideal(anatomy, modality, grid, p)[0].item()


def in_modality(patient, finding: dict, modality: str) -> np.ndarray:
    """Where a finding's centre appears on a modality's grid (its positioning shift)."""
    return np.asarray(finding["centre_mm"]) + np.asarray(patient.offsets_mm[modality])


# ----------------------------------------------------------------- determinism, class mix


def test_same_seed_same_patient(params):
    a = simulate_skeletal_patient(3, params, seed=11)
    b = simulate_skeletal_patient(3, params, seed=11)
    c = simulate_skeletal_patient(3, params, seed=12)
    assert a.modalities == b.modalities and a.truth() == b.truth()
    for m in a.modalities:
        np.testing.assert_array_equal(arr(a.images[m]), arr(b.images[m]))
        np.testing.assert_array_equal(arr(a.labels[m]), arr(b.labels[m]))
    assert a.truth() != c.truth()


def test_every_patient_has_at_least_one_modality(params):
    scarce = {"CT": 0.2, "MR": 0.2, "PT": 0.2}
    for i in range(40):
        present = patient_modalities(i, scarce, 0.5, seed=5)
        assert 1 <= len(present) <= 3 and set(present) <= set(MODALITIES)
    p = {**params, "modality_probability": scarce}
    patient = simulate_skeletal_patient(0, p, seed=5)
    assert patient.modalities and set(patient.labels) == set(patient.images)


def test_class_mix_and_modality_ratio_follow_the_parameters():
    p = default_params()
    seed, n = int(p["seed"]), 233  # the thesis's cohort size
    labels = [patient_is_positive(i, 0.5, seed=seed) for i in range(n)]
    for k in (12, 60, n):  # balanced for every prefix
        assert abs(sum(labels[:k]) - 0.5 * k) <= 1.5
    sets = [tuple(patient_modalities(i, p["modality_probability"], 0.5, seed=seed)) for i in range(n)]
    # the k-th positive and the k-th negative have the same series: availability says
    # nothing about the label
    pos = [s for s, y in zip(sets, labels) if y]
    neg = [s for s, y in zip(sets, labels) if not y]
    common = min(len(pos), len(neg))
    assert pos[:common] == neg[:common]
    slices = {m: sum(p[key][2] for s in sets if m in s)
              for m, key in (("CT", "ct_size"), ("MR", "mr_size"), ("PT", "pet_size"))}
    thesis = {"CT": 3051, "MR": 3543, "PT": 1818}
    for m in ("MR", "PT"):
        assert slices[m] / slices["CT"] == pytest.approx(thesis[m] / thesis["CT"], rel=0.1)


def test_sampler_points_are_the_grid_voxel_centres():
    from crossmodal.phantom.skeleton_anatomy import GridSampler as _Sampler

    grid = make_grid([5, 4, 3], [2.0, 3.0, 7.0], (1.0, -2.0, 5.0))
    np.testing.assert_allclose(_Sampler(grid).points(), grid_points(grid))
    np.testing.assert_allclose(_Sampler(grid, (1.0, 2.0, 3.0)).points(), grid_points(grid) - [1.0, 2.0, 3.0])


# ----------------------------------------------------------------- labels


def test_positives_have_labelled_metastases_negatives_empty_labels(scanned):
    assert {p.patient_label for p in scanned} == {0, 1}
    for patient in scanned:
        for m in patient.modalities:
            label = arr(patient.labels[m])
            assert label.dtype == np.uint8 and set(np.unique(label)) <= {0, 1}
            assert patient.labels[m].GetSize() == patient.images[m].GetSize()
            assert np.allclose(patient.labels[m].GetSpacing(), patient.images[m].GetSpacing())
            assert label.any() == bool(patient.patient_label)
        if patient.patient_label:
            assert len(patient.lesions) >= 1
            assert all(lesion["type"] in ("lytic", "sclerotic", "mixed", "infiltrative") for lesion in patient.lesions)
            for lesion in patient.lesions:  # every metastasis is labelled, where it is, on every grid
                for m in patient.modalities:
                    assert lesion["label_voxels"][m] > 0
                    label = arr(patient.labels[m])
                    i, j, k = patient.labels[m].TransformPhysicalPointToIndex(
                        tuple(map(float, in_modality(patient, lesion, m))))
                    assert label[max(k - 1, 0):k + 2, max(j - 1, 0):j + 2, max(i - 1, 0):i + 2].any()
        else:
            assert patient.lesions == []


def test_grids_differ_per_modality(scanned, params):
    patient = scanned[0]
    sizes = {m: patient.images[m].GetSize() for m in MODALITIES}
    assert sizes["CT"] == tuple(params["ct_size"]) and sizes["MR"] == tuple(params["mr_size"])
    assert sizes["PT"] == tuple(params["pet_size"])
    z = {m: patient.images[m].GetSpacing()[2] for m in MODALITIES}
    assert z["CT"] < z["MR"] < z["PT"]


# ----------------------------------------------------------------- physics


def test_ct_is_in_hounsfield_units(scanned):
    for patient in scanned:
        ct = arr(patient.images["CT"])
        assert abs(np.median(ct[:, :3, :3]) + 1000.0) < 30.0  # air corner
        assert ct.max() > 300.0  # bone
        assert np.percentile(ct, 1) < -900.0


def test_mr_is_t1_like_without_hu(scanned):
    for patient in scanned:
        mr = arr(patient.images["MR"])
        assert mr.min() >= 0.0  # magnitude image: no negative (HU-like) values
        air = np.median(mr[:, :3, :3])
        assert air < 0.1 * np.percentile(mr, 99)
        # vertebral-body marrow is brighter than the soft tissue in front of the spine
        img, shift = patient.images["MR"], np.asarray(patient.offsets_mm["MR"])
        by = patient.anatomy["body_half_axes_mm"][1]
        findings = patient.lesions + patient.mimics
        for centre in patient.anatomy["vertebral_body_centres_mm"].values():
            clear = all(np.linalg.norm(np.subtract(f["centre_mm"], centre)) > max(f["radii_mm"]) + 8
                        for f in findings)
            if clear and abs(centre[2]) < 100:
                i, j, k = img.TransformPhysicalPointToIndex(tuple(np.asarray(centre) + shift))
                marrow = mr[k - 1:k + 2, j - 1:j + 2, i - 1:i + 2].max()  # least partial volume
                front = np.asarray([0.0, -0.5 * by, centre[2]]) + shift
                i, j, k = img.TransformPhysicalPointToIndex(tuple(front))
                soft = np.median(mr[k, j - 1:j + 2, i - 1:i + 2])
                assert marrow > 1.4 * soft > 0
                break
        else:
            pytest.fail("no vertebra free of findings")


def test_pet_is_suv_and_hot_at_metastases(scanned):
    hot = []
    for patient in scanned:
        pet = arr(patient.images["PT"])
        assert pet.min() >= 0.0
        body = pet[pet > 0.2]
        if patient.patient_label:
            label = arr(patient.labels["PT"]).astype(bool)
            hot.append(pet[label].max() / np.median(body))
    assert len(hot) >= 3 and np.median(hot) > 3.0


def test_metastasis_and_mimic_appearance_noise_free(params):
    """At each finding's centre: mets are abnormal on every modality, each mimic only on
    the modality it is meant to fool (on the ideal, noise-free values)."""
    p = {**params, "mimics": [3, 3], "metastases": [3, 3]}
    seen = set()
    for index in range(12):
        rng = np.random.default_rng([77, index])
        anatomy, _ = sample_skeletal_anatomy(rng, p, positive=True)
        marrow = {m: anatomy.values[m]["marrow"] for m in MODALITIES}
        for f in anatomy.metastases + anatomy.mimics:
            v = {m: ideal_at(anatomy, m, f.shape.centre, p) for m in MODALITIES}
            one_voxel = make_grid([1, 1, 1], [0.5] * 3, f.shape.centre)
            ids = render_ideal(anatomy, "CT", one_voxel, p)[1].item()
            if f.line_normal is not None:  # a fracture's sclerotic line is thin: look beside it
                step = (0.5 * p["fracture_line_mm"] + 1.0) * np.asarray(f.line_normal)
                v["CT"] = min(ideal_at(anatomy, "CT", np.asarray(f.shape.centre) + s * step, p)
                              for s in (-1.0, 1.0))
            seen.add(f.type)
            if f.kind == "metastasis":
                assert ids > 0
                assert v["MR"] < 0.6 * marrow["MR"]  # T1-dark in bright marrow, whatever its evidence
                if f.evidence in ("pet_occult", "mri_only"):  # tested in test_evidence_kinds_*
                    continue
                assert v["PT"] > 1.5 * marrow["PT"]  # hot
                if f.evidence == "ct_occult":
                    continue
                if f.type == "lytic":
                    assert v["CT"] < marrow["CT"] - 50  # darker than marrow
                elif f.type in ("sclerotic", "mixed"):
                    assert v["CT"] > marrow["CT"] + 300 or f.type == "mixed"  # mixed: lytic core
                continue
            assert ids == 0  # mimics are never labelled
            ct_abnormal = v["CT"] > marrow["CT"] + 250
            mr_abnormal = v["MR"] < 0.6 * marrow["MR"]
            pet_abnormal = v["PT"] > 1.5 * marrow["PT"] and v["PT"] > 2.0
            fooled = {"CT": ct_abnormal, "MR": mr_abnormal, "PT": pet_abnormal}
            target = MIMIC_FOOLS[f.type]
            others = [m for m in MODALITIES if m != target]
            assert not any(fooled[m] for m in others), (f.type, v, marrow)
            if f.type == "degenerative_sclerosis":
                assert ct_abnormal
            elif f.type == "fracture_uptake":
                assert pet_abnormal
            elif f.type == "red_marrow":
                assert v["MR"] < 0.7 * marrow["MR"]
            elif f.type == "haemangioma":
                assert v["MR"] > marrow["MR"] and v["PT"] < marrow["PT"]
    assert seen >= {"lytic", "sclerotic", "mixed", "degenerative_sclerosis", "haemangioma",
                    "fracture_uptake", "red_marrow"}


def test_each_mimic_is_seen_only_on_the_modality_it_fools(params):
    """Over each mimic's marrow region (noise-free, 1 mm grid), the data card's conspicuity
    at its thresholds sees it on ``MIMIC_FOOLS[type]`` and on no other modality; one
    documented exception: a fracture's sclerotic line (or an arthritic joint's subchondral
    sclerosis) may stand out on CT, where it reads as a fracture, not a metastasis."""
    from crossmodal.phantom.skeleton_anatomy import TISSUES
    from crossmodal.phantom.skeleton_anatomy import GridSampler
    from crossmodal.stages.skeleton.data_card import conspicuity

    thresholds = load_params(REPO / "params.yaml", "quick")["data_card_skeleton"]["thresholds"]
    p = {**params, "mimics": [3, 3]}
    seen_types = set()
    for index in range(12):
        anatomy, _ = sample_skeletal_anatomy(np.random.default_rng([77, index]), p, positive=False)
        for f in anatomy.mimics:
            grid = make_grid(np.ceil(2 * np.asarray(f.shape.radii) + 4).astype(int), [1.0] * 3, f.shape.centre)
            sampler = GridSampler(grid)
            inside = f.shape.contains(sampler.points()) & (anatomy.tissue(sampler, couch=False) == TISSUES["marrow"])
            seen = {m: conspicuity(m, render_ideal(anatomy, m, grid, p)[0][inside], anatomy.values[m]["marrow"])
                    >= thresholds[m] for m in MODALITIES}
            allowed = {MIMIC_FOOLS[f.type]} | ({"CT"} if f.type == "fracture_uptake" else set())
            assert seen[MIMIC_FOOLS[f.type]] and {m for m in MODALITIES if seen[m]} <= allowed, (f.type, seen)
            seen_types.add(f.type)
    assert seen_types == set(MIMIC_FOOLS)


def test_mimics_occur_in_negatives_and_stay_unlabelled(scanned):
    negatives_with_mimics = 0
    for patient in scanned:
        for mimic in patient.mimics:
            assert mimic["fools"] in MODALITIES
            for m in patient.modalities:
                assert value_at(patient.labels[m], in_modality(patient, mimic, m)) == 0
        negatives_with_mimics += (not patient.patient_label) and bool(patient.mimics)
    assert negatives_with_mimics >= 1


# ----------------------------------------------------------------- modality-specific evidence

EVIDENCE_OFF = {"pet_occult_fraction": 0.0, "mri_only_fraction": 0.0, "ct_occult_fraction": 0.0}
NOISE_FREE = {"ct_noise_hu": 0.0, "mr_noise": 0.0, "pet_counts_per_suv": 0.0}
# sha256 of images and labels of quick-profile patients 0-5 (every modality) as the
# skeleton-1 generator (before modality-specific evidence) wrote them.
SKELETON_1_DIGEST = "81777cec345b840f85f9856292d8fa0027433bdcd810a3f87dee5a743d1a069d"


def _digest(p: dict, indices) -> str:
    h = hashlib.sha256()
    for i in indices:
        patient = simulate_skeletal_patient(i, p, seed=int(p["seed"]))
        for m in sorted(patient.images):
            h.update(arr(patient.images[m]).tobytes())
            h.update(arr(patient.labels[m]).tobytes())
    return h.hexdigest()


def test_fractions_zero_give_back_the_phantom_without_the_phenomena(params):
    p = {**params, "modality_probability": ALL, **EVIDENCE_OFF}
    assert _digest(p, range(6)) == SKELETON_1_DIGEST
    on = {**p, "pet_occult_fraction": 1.0, "mri_only_fraction": 0.5, "ct_occult_fraction": 0.5}
    assert _digest(on, range(6)) != SKELETON_1_DIGEST  # the digest can tell them apart


def _anatomy(p: dict, index: int):
    rng = np.random.default_rng([5, index])
    return sample_skeletal_anatomy(rng, p, positive=True, evidence_rng=np.random.default_rng([6, index]))[0]


def test_evidence_draws_move_nothing_else(params):
    """Switching every phenomenon on changes only the voxels of the metastases it turns,
    on every modality (noise-free renders): no other draw moved."""
    p0 = {**params, **EVIDENCE_OFF, "metastases": [4, 4], "mimics": [3, 3]}
    p1 = {**p0, "pet_occult_fraction": 1.0, "mri_only_fraction": 0.3, "ct_occult_fraction": 0.3}
    turned = 0
    for index in range(6):
        a, b = _anatomy(p0, index), _anatomy(p1, index)
        assert [f.shape for f in a.metastases + a.mimics] == [f.shape for f in b.metastases + b.mimics]
        assert a.values == b.values
        changed = [k + 1 for k, f in enumerate(b.metastases) if f.evidence != "all"]
        turned += len(changed)
        for m in MODALITIES:
            grid = make_grid(np.asarray(params[GRID[m][0]]), np.asarray(params[GRID[m][1]], float))
            (va, ida), (vb, idb) = render_ideal(a, m, grid, p0), render_ideal(b, m, grid, p1)
            assert np.array_equal(ida, idb)  # the labels do not change
            outside = ~np.isin(ida, changed)
            assert np.array_equal(va[outside], vb[outside])
    assert turned >= 5


GRID = {"CT": ("ct_size", "ct_spacing_mm"), "MR": ("mr_size", "mr_spacing_mm"), "PT": ("pet_size", "pet_spacing_mm")}


@pytest.mark.parametrize("kind, fractions", [
    ("pet_occult", {"pet_occult_fraction": 1.0}),
    ("mri_only", {"mri_only_fraction": 1.0}),
    ("ct_occult", {"ct_occult_fraction": 1.0}),
])
def test_evidence_kinds_change_exactly_their_modalities(params, kind, fractions):
    """At each turned metastasis's centre (noise-free): the occult modality shows normal
    marrow, the others show it as before the phenomenon (same anatomy, phenomenon off)."""
    p0 = {**params, **EVIDENCE_OFF, "metastases": [4, 4], "metastasis_types": {"sclerotic": 0.6, "lytic": 0.4}}
    p1 = {**p0, **fractions}
    seen = 0
    for index in range(8):
        a, b = _anatomy(p0, index), _anatomy(p1, index)
        marrow = {m: b.values[m]["marrow"] for m in MODALITIES}
        for fa, fb in zip(a.metastases, b.metastases):
            if fb.evidence != kind:
                assert fb.evidence == "all" and (kind != "pet_occult" or fb.type != "sclerotic")
                continue
            seen += 1
            before = {m: ideal_at(a, m, fa.shape.centre, p0) for m in MODALITIES}
            after = {m: ideal_at(b, m, fb.shape.centre, p1) for m in MODALITIES}
            assert after["MR"] == before["MR"] < 0.6 * marrow["MR"]  # T1-dark either way
            if kind == "pet_occult":
                assert fb.type == "sclerotic" and after["CT"] == before["CT"] > marrow["CT"] + 300
                assert abs(after["PT"] / marrow["PT"] - 1.0) <= 0.151  # ~ marrow background
                assert before["PT"] >= 2.0  # it was FDG-avid (params: sclerotic suv >= 2)
            else:
                assert fb.type == "infiltrative" and abs(after["CT"] - marrow["CT"]) <= 20.0
                assert abs(before["CT"] - marrow["CT"]) > 75.0  # CT showed it before
            if kind == "mri_only":
                assert after["PT"] <= 1.1 * marrow["PT"] < before["PT"]  # not above marrow
            if kind == "ct_occult":
                assert after["PT"] == before["PT"] > 1.1 * marrow["PT"]  # still FDG-avid
    assert seen >= 4


def test_marrow_only_metastases_leave_the_cortex_intact_on_ct(params):
    """An infiltrative (CT-occult or MRI-only) metastasis replaces marrow only: in a 1-mm grid
    over it, every voxel that is cortex without the metastasis is cortex with it, so CT
    shows no cortical break; the marrow it covers reads as marrow."""
    import dataclasses

    p = {**params, **EVIDENCE_OFF, "ct_occult_fraction": 1.0, "metastases": [4, 4],
         "metastasis_sites": {"rib": 1.0}}  # ribs: the lesion always reaches the cortex
    checked = 0
    for index in range(6):
        anatomy = _anatomy(p, index)
        for f in anatomy.metastases:
            size = int(np.ceil(2 * max(f.shape.radii))) + 2
            origin = np.asarray(f.shape.centre) - size / 2
            grid = make_grid([size] * 3, [1.0] * 3, tuple(origin))
            with_lesion = render_ideal(anatomy, "CT", grid, p)[0]
            without = render_ideal(dataclasses.replace(anatomy, metastases=[]), "CT", grid, p)[0]
            cortex = without > anatomy.values["CT"]["marrow"] + 300.0
            inside = render_ideal(anatomy, "CT", grid, p)[1] > 0
            assert f.type == "infiltrative" and (cortex & inside).any()
            np.testing.assert_array_equal(with_lesion[cortex], without[cortex])
            checked += 1
    assert checked >= 4


def test_truth_records_evidence_and_occult_metastases_stay_labelled(params):
    p = {**params, "modality_probability": ALL, "pet_occult_fraction": 1.0, "mri_only_fraction": 0.3,
         "ct_occult_fraction": 0.3, "metastasis_types": {"sclerotic": 1.0}}
    kinds = set()
    for index in range(8):
        patient = simulate_skeletal_patient(index, p, seed=int(p["seed"]))
        truth = patient.truth()
        for lesion in truth["lesions"]:
            kinds.add(lesion["evidence"])
            assert lesion["visible"] == VISIBLE[lesion["evidence"]]
            # occult or not, a metastasis keeps its label on every series
            assert all(lesion["label_voxels"][m] > 0 for m in patient.modalities)
        for mimic in truth["mimics"]:
            assert mimic["abnormal_on"] == {m: m == mimic["fools"] for m in MODALITIES}
            assert mimic["marrow_lobes"]  # its region for the data card
    assert kinds == {"pet_occult", "mri_only", "ct_occult"}  # sclerotic only: none stays "all"


@pytest.mark.parametrize("key, value, rule", [
    ("pet_occult_fraction", 1.5, "less than or equal to 1"),
    ("mri_only_fraction", -0.1, "greater than or equal to 0"),
    ("mri_only_ct_hu_delta", [30.0, -30.0], "low <= high"),
    ("ct_occult_ct_hu_delta", [-20.0, 300.0], "less than or equal to 100"),
    ("mri_only_suv_factor", [0.9, 2.0], "less than or equal to 1.5"),
    ("ct_occult_fraction", 0.95, "mri_only_fraction \\+ ct_occult_fraction must be <= 1"),
])
def test_params_reject_out_of_range_evidence(tmp_path, key, value, rule):
    import re

    import yaml

    from crossmodal.params import ParamsError

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["phantom"]["skeleton"][key] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(ParamsError) as caught:
        load_params(path)
    assert re.search(rf"phantom\.skeleton\.{key}(\.\d)?: .*{rule}", str(caught.value)), str(caught.value)


# ----------------------------------------------------------------- written cohort


@pytest.fixture(scope="module")
def cohort(tmp_path_factory, params) -> tuple[Path, dict]:
    p = {**params, "n_patients": 5}
    return generate_skeleton_cohort(p, tmp_path_factory.mktemp("skeleton") / "cohort"), p


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(root.rglob("*")) if f.is_file()}


def test_cohort_is_byte_identical_and_fingerprinted(cohort, tmp_path):
    root, p = cohort
    again = generate_skeleton_cohort(p, tmp_path / "again")
    assert _tree_digest(root) == _tree_digest(again)
    assert is_skeleton_up_to_date(root, p)
    assert not is_skeleton_up_to_date(root, {**p, "seed": p["seed"] + 1})
    assert not is_skeleton_up_to_date(tmp_path / "nothing", p)


def test_cohort_layout(cohort):
    root, p = cohort
    patients = [d for d in root.iterdir() if d.is_dir() and d.name not in {"labels", "truth"}]
    assert len(patients) == p["n_patients"]
    for d in patients:
        series = {s.name for s in d.iterdir()}
        assert series and series <= {"CT", "MR", "PET"}
    n_series = sum(len(list(d.iterdir())) for d in patients)
    assert len(list((root / "labels").glob("*.nii.gz"))) == n_series
    assert len(list((root / "truth").glob("*.json"))) == n_series


def test_cohort_ingests_without_problems_and_labels_match(cohort, tmp_path):
    root, p = cohort
    report = ingest_dicom_cohort(root, tmp_path / "ingest", modalities=["CT", "MR", "PT"],
                                 required_modalities=[], label_modalities=["CT", "MR", "PT"], salt="t",
                                 group_by="patient", require_nonempty_label=False)
    assert report.problems == []
    cases = load_cases(tmp_path / "ingest")
    assert len(cases) == p["n_patients"]
    assert {c.truth["patient_label"] for c in cases} == {0, 1}
    for case in cases:
        truth = case.truth
        assert truth["simulated"] is True and case.meta["simulated"] is True
        assert sorted(case.images) == sorted(truth["modalities"]) == sorted(case.labels)
        sim = simulate_skeletal_patient(truth["phantom_index"], p, seed=int(p["seed"]))
        for m in case.images:
            np.testing.assert_array_equal(arr(case.labels[m]), arr(sim.labels[m]))
            assert arr(case.labels[m]).any() == bool(truth["patient_label"])
            ours, theirs = arr(case.images[m]), arr(sim.images[m])
            tol = {"CT": 0.51, "MR": 1e-3 * ours.max(), "PT": 1e-3 * ours.max()}[m]
            np.testing.assert_allclose(ours, theirs, atol=tol)  # int16 storage, SUV tags
