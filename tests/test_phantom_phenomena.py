"""The pelvic phantom's phenomena of real PET/CT: each appears at its set frequency, with the
CT and PET values set, is absent when switched off, is listed in the truth sidecar, and
every parameter has a source."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import yaml

from crossmodal.params import load_params
from crossmodal.phantom.pelvis import BOWEL
from crossmodal.phantom.pelvis import BOWEL_LUMEN
from crossmodal.phantom.pelvis import URETER_LUMEN
from crossmodal.phantom.pelvis import field_of_view
from crossmodal.phantom.pelvis import sample_anatomy
from crossmodal.phantom.pelvis import simulate_patient
from crossmodal.phantom.sources import PELVIS_PARAMETER_SOURCES

REPO = Path(__file__).resolve().parents[1]
N_DRAWS = 160  # patients per frequency check: sample_anatomy only, no images
OFF = {"ureter_focus_probability": 0.0, "bowel_focus_probability": 0.0, "node_fat_probability": 0.0,
       "node_faint_probability": 0.0, "tumour_abuts_bladder_probability": 0.0, "bowel_shift_mm": [0.0, 0.0]}


@pytest.fixture(scope="module")
def params() -> dict:
    """The default phantom parameters (the cohort the study uses)."""
    return copy.deepcopy(load_params(REPO / "params.yaml")["phantom"]["pelvis"])


@pytest.fixture(scope="module")
def cohort(params) -> list:
    return [sample_anatomy(np.random.default_rng([7, i]), params) for i in range(N_DRAWS)]


def small_grid(p: dict, **changes) -> dict:
    """The same field of view as the default on coarse grids, no noise: a patient in about a second."""
    return {**p, "ct_size": [64, 64, 24], "ct_spacing_mm": [7.8125, 7.8125, 6.2], "pet_size": [40, 40, 24],
            "pet_spacing_mm": [12.5, 12.5, 6.2], "pet_oversample": 1, "ct_noise_hu": 0.0,
            "pet_counts_per_suv": 0.0, **changes}


def assert_share(hits: int, n: int, p: float) -> None:
    """``hits`` of ``n`` Bernoulli(p) draws: within 4 standard errors of p."""
    assert n > 30, n
    tolerance = 4 * np.sqrt(p * (1 - p) / n) + 1e-9
    assert abs(hits / n - p) <= tolerance, (hits, n, p)


# ------------------------------------------------------------------ sources


def test_every_phantom_parameter_has_a_source_and_none_is_stale():
    keys = set(yaml.safe_load((REPO / "params.yaml").read_text())["phantom"]["pelvis"])
    assert set(PELVIS_PARAMETER_SOURCES) == keys
    for key, source in PELVIS_PARAMETER_SOURCES.items():
        assert source.strip(), key
        assert "our estimate" in source or "design choice:" in source or any(
            str(year) in source for year in range(1990, 2030)), (key, source)


# ------------------------------------------------------------------ frequencies


def test_each_phenomenon_appears_at_its_set_frequency(params, cohort):
    ureters = [u for a in cohort for u in a.ureters]
    assert len(ureters) == 2 * N_DRAWS
    assert_share(sum(bool(u.foci) for u in ureters), len(ureters), params["ureter_focus_probability"])
    lo, hi = params["ureter_foci"]
    # a focus that finds no place clear of the lesions is left out, so a few have fewer
    assert all(1 <= len(u.foci) <= hi for u in ureters if u.foci) and lo >= 1
    n_sites = sum(a.bowel_focus_sites for a in cohort)
    assert n_sites > 0.8 * sum(len(a.bowel) for a in cohort)  # most loops can hold a focus
    assert_share(sum(len(a.bowel_foci) for a in cohort), n_sites, params["bowel_focus_probability"])
    contents = [c for a in cohort for c in a.bowel_content]
    weights = params["bowel_content_mix"]
    for name, weight in weights.items():
        assert_share(contents.count(name), len(contents), weight / sum(weights.values()))
    nodes = [x for a in cohort for x in a.lesions if x.kind == "node"]
    assert_share(sum(n.site == "fat" for n in nodes), len(nodes), params["node_fat_probability"])
    assert_share(sum(n.pet_faint for n in nodes), len(nodes), params["node_faint_probability"])
    abutting = sum(a.lesions[0].abuts_bladder for a in cohort)
    assert_share(abutting, N_DRAWS, params["tumour_abuts_bladder_probability"])
    shifts = [np.linalg.norm(s) for a in cohort for s in a.bowel_shift_pet]
    low, high = params["bowel_shift_mm"]
    assert low - 1e-9 <= min(shifts) and max(shifts) <= high + 1e-9


def test_switched_off_phenomena_are_absent_and_the_rest_of_the_patient_is_unchanged(params):
    for i in range(20):
        on = sample_anatomy(np.random.default_rng([3, i]), params)
        off = sample_anatomy(np.random.default_rng([3, i]), {**params, **OFF})
        assert not any(u.foci for u in off.ureters) and not off.bowel_foci and not off.fat_pads
        assert all(x.site != "fat" and not x.pet_faint and not x.abuts_bladder for x in off.lesions)
        assert all(np.linalg.norm(s) == 0 for s in off.bowel_shift_pet)
        # paired ablation: the base anatomy and the ureters' course do not move
        assert [e.centre for e in on.bowel] == [e.centre for e in off.bowel]
        assert [s.centre for s in on.ureters[0].spheres] == [s.centre for s in off.ureters[0].spheres]
        nodes_on = [x.lobes[0].centre for x in on.lesions[1:]]
        assert nodes_on == [x.lobes[0].centre for x in off.lesions[1:]]
        # one phenomenon off leaves the others' draws alone
        no_ureter = sample_anatomy(np.random.default_rng([3, i]), {**params, "ureter_focus_probability": 0.0})
        assert [f.ellipsoid for f in no_ureter.bowel_foci] == [f.ellipsoid for f in on.bowel_foci]
        assert [(x.site, x.suv_max) for x in no_ureter.lesions] == [(x.site, x.suv_max) for x in on.lesions]


# ------------------------------------------------------------------ CT and PET values where each sits


def test_ureter_is_a_fluid_tube_in_fat_and_its_foci_hold_hot_urine(params):
    p = {**params, "ureter_focus_probability": 1.0}
    checked = 0
    for i in range(6):
        a = sample_anatomy(np.random.default_rng([5, i]), p)
        for u in a.ureters:
            assert u.foci
            r = u.spheres[0].radii[0]
            assert p["ureter_radius_mm"][0] <= r <= p["ureter_radius_mm"][1]
            for focus in u.foci:
                centres = np.array([s.centre for s in u.spheres[focus.start:focus.stop]])
                assert np.all(a.tissue(centres) == URETER_LUMEN)
                assert np.allclose(a.pet_suv(centres), focus.suv, rtol=1e-6)
                assert np.allclose(a.ct_hu(centres), a.hu["ureter_lumen"], atol=1e-3)
                assert p["ureter_focus_suv"][0] <= focus.suv <= p["ureter_focus_suv"][1]
                length = np.linalg.norm(np.diff(centres, axis=0), axis=1).sum()
                assert length <= p["ureter_focus_length_mm"][1] + r
                checked += 1
            # the tube's first stretch (along the psoas, away from the pelvic organs), outside any focus
            k = next(k for k in range(2, 12) if not u.in_focus(k))
            c = np.asarray(u.spheres[k].centre)
            tangent = np.subtract(u.spheres[k + 1].centre, u.spheres[k - 1].centre)
            side = np.cross(tangent, [0.0, 1.0, 0.0])
            side /= np.linalg.norm(side)
            probe = np.array([c, c + 0.85 * r * side, c + (r + u.fat_mm / 2) * side])
            hu = a.ct_hu(probe)
            assert hu[0] == pytest.approx(a.hu["ureter_lumen"], abs=1e-3)
            assert p["ureter_lumen_hu"][0] <= hu[0] <= p["ureter_lumen_hu"][1]
            assert hu[1] == pytest.approx(p["hu"]["ureter_wall"]) and hu[2] == pytest.approx(p["hu"]["fat"])
            assert a.pet_suv(probe[:1])[0] == pytest.approx(a.suv["ureter_lumen"])
    assert checked >= 12


def test_bowel_focus_is_hot_where_ct_shows_bowel_content_and_moves_with_its_loop_on_pet(params):
    p = {**params, "bowel_focus_probability": 1.0, "bowel_shift_mm": [12.0, 12.0]}
    checked = 0
    for i in range(8):
        a = sample_anatomy(np.random.default_rng([6, i]), p)
        for focus in a.bowel_foci:
            centre = np.asarray(focus.ellipsoid.centre)[None]
            loop = focus.loop
            assert a.tissue(centre)[0] in (BOWEL, BOWEL_LUMEN)
            if a.tissue(centre)[0] == BOWEL_LUMEN and not any(
                    later.contains(centre)[0] for later in a.bowel[loop + 1:]):
                content = a.bowel_content[loop]
                hu = a.ct_hu(centre)[0]
                assert hu == pytest.approx(a.bowel_content_hu[loop], abs=1e-3)
                assert p["bowel_content_hu"][content][0] <= hu <= p["bowel_content_hu"][content][1]
                checked += 1
            moved = centre + np.asarray(a.bowel_shift_pet[loop])
            if a.tissue(moved, pet=True)[0] in (BOWEL, BOWEL_LUMEN):  # not covered by another organ on PET
                assert a.pet_suv(moved)[0] == pytest.approx(focus.suv)
            assert p["bowel_focus_suv"][0] <= focus.suv <= p["bowel_focus_suv"][1]
    assert checked >= 10


def test_bowel_content_ranges_gas_and_contrast():
    p = copy.deepcopy(load_params(REPO / "params.yaml")["phantom"]["pelvis"])
    assert p["bowel_content_hu"]["gas"][1] <= -700 and p["bowel_content_hu"]["contrast"][0] >= 150
    for content in ("gas", "contrast"):
        only = {"gas": 0.0, "contrast": 0.0, "fluid": 0.0, content: 1.0}
        a = sample_anatomy(np.random.default_rng(11), {**p, "bowel_content_mix": only})
        assert set(a.bowel_content) == {content}
        centre = np.asarray(a.bowel[-1].centre)[None]  # the last loop is painted over every other
        if a.tissue(centre)[0] == BOWEL_LUMEN:
            lo, hi = p["bowel_content_hu"][content]
            assert lo <= a.ct_hu(centre)[0] <= hi


def test_fat_nodes_sit_in_fat_and_faint_nodes_are_faint_on_pet(params):
    p = {**params, "nodes": [3, 3], "node_fat_probability": 1.0, "node_faint_probability": 1.0}
    directions = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=float)
    fat_share = []
    for i in range(6):
        a = sample_anatomy(np.random.default_rng([8, i]), p)
        for node, pad in zip(a.lesions[1:], a.fat_pads):
            assert node.site == "fat" and node.pet_faint
            lobe = node.lobes[0]
            c = np.asarray(lobe.centre)
            assert a.ct_hu(c[None])[0] == pytest.approx(p["hu"]["muscle"] + node.ct_delta_hu)  # soft tissue
            margin = np.asarray(pad.radii) - lobe.radii
            shell = c + directions * (np.asarray(lobe.radii) + margin / 2)
            fat_share.append(np.mean(a.ct_hu(shell) == p["hu"]["fat"]))
            assert p["node_faint_suvmax"][0] <= a.pet_suv(c[None])[0] <= p["node_faint_suvmax"][1]
    assert len(fat_share) == 18 and np.median(fat_share) >= 5 / 6


def test_tumour_abutting_the_bladder_touches_it(params):
    p = {**params, "tumour_abuts_bladder_probability": 1.0}
    for i in range(10):
        a = sample_anatomy(np.random.default_rng([9, i]), p)
        tumour = a.lesions[0]
        assert tumour.abuts_bladder and tumour.site == "cervix"
        d = np.array([0.0, 1.0, -0.4]) / np.linalg.norm([0.0, 1.0, -0.4])
        wall = np.asarray(a.bladder.centre) + d / np.sqrt(np.sum((d / np.asarray(a.bladder.radii)) ** 2))
        assert tumour.lobes[0].contains(wall[None], scale=1.001)[0]  # the hot tumour meets the bladder wall
        assert a.tissue(wall[None] + 2.0 * d, pet=True)[0] != 0  # and stays in the body


# ------------------------------------------------------------------ simulated images, truth sidecar


def test_truth_lists_every_mimic_inside_the_ct_field_of_view(params):
    p = small_grid(params, ureter_focus_probability=1.0, bowel_focus_probability=1.0)
    low, high = field_of_view(p)
    patient = simulate_patient(4, p, seed=p["seed"])
    truth = json.loads(json.dumps(patient.truth()))  # JSON-ready
    anatomy = sample_anatomy(np.random.default_rng([p["seed"], 4]), p)
    mimics = truth["mimics"]
    assert [m["id"] for m in mimics] == list(range(1, len(mimics) + 1))
    kinds = [m["kind"] for m in mimics]
    assert kinds.count("bladder") == 1
    assert kinds.count("ureter_focus") == sum(len(u.foci) for u in anatomy.ureters) > 0
    assert kinds.count("bowel_focus") == len(anatomy.bowel_foci) > 0
    for m in mimics:
        assert set(m) == {"id", "kind", "suv_max", "ct_hu", "ellipsoids"} and m["ellipsoids"]
        for e in m["ellipsoids"]:
            assert np.all(np.asarray(e["centre_mm"]) >= low) and np.all(np.asarray(e["centre_mm"]) <= high)
            assert np.all(np.asarray(e["radii_mm"]) > 0)
    phen = truth["phenomena"]
    assert phen["ureter_foci"] == kinds.count("ureter_focus")
    assert phen["bowel_foci"] == kinds.count("bowel_focus")
    for lesion in truth["lesions"]:
        assert {"id", "kind", "suv_max", "ct_delta_hu", "necrotic", "volume_ml", "centroid_mm", "lobes",
                "site", "pet_faint", "abuts_bladder"} <= set(lesion)
        sites = ("cervix",) if lesion["kind"] == "tumour" else ("fat", "muscle")
        assert lesion["site"] in sites
    assert phen["fat_nodes"] == sum(x["site"] == "fat" for x in truth["lesions"])
    assert phen["pet_faint_nodes"] == sum(x["pet_faint"] for x in truth["lesions"])
    assert phen["tumour_abuts_bladder"] == truth["lesions"][0]["abuts_bladder"]
    # label semantics unchanged: 1 tumour, 2 node, on the CT grid
    label = sitk.GetArrayFromImage(patient.label)
    assert set(np.unique(label)) <= {0, 1, 2} and (label == 1).any()


def test_switched_off_the_truth_has_the_bladder_only_and_the_patient_is_deterministic(params):
    p = small_grid(params, **OFF)
    a, b = simulate_patient(2, p, seed=5), simulate_patient(2, p, seed=5)
    assert [m["kind"] for m in a.mimics] == ["bladder"]
    phen = a.phenomena
    assert phen["ureter_foci"] == phen["bowel_foci"] == phen["fat_nodes"] == phen["pet_faint_nodes"] == 0
    assert phen["tumour_abuts_bladder"] is False and phen["bowel_shift_mm"] == 0.0
    for image in ("ct_hu", "pet_suv", "label"):
        same = sitk.GetArrayFromImage(getattr(a, image)), sitk.GetArrayFromImage(getattr(b, image))
        assert np.array_equal(*same)
    assert json.dumps(a.truth(), sort_keys=True) == json.dumps(b.truth(), sort_keys=True)
    c = simulate_patient(2, small_grid(params), seed=5)
    assert json.dumps(c.truth(), sort_keys=True) == json.dumps(simulate_patient(2, small_grid(params), seed=5)
                                                              .truth(), sort_keys=True)
    assert not np.array_equal(sitk.GetArrayFromImage(c.pet_suv), sitk.GetArrayFromImage(a.pet_suv))
