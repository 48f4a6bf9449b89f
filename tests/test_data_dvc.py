"""``data.dvc`` cannot drift from the code that generates the embedded cohort: it records a
fingerprint of each phantom cohort's parameters and generator code (``meta.phantom``)."""

from __future__ import annotations

import shutil

import yaml

from conftest import REPO
from crossmodal.params import load_params
from crossmodal.stages.data import generator_fingerprint
from crossmodal.stages.data import input_trees
from crossmodal.stages.data import phantom_params
from crossmodal.stages.data import record_fingerprints
from crossmodal.stages.data import recorded_fingerprints


def test_data_dvc_was_recorded_by_the_current_generator_and_params():
    params = load_params(REPO / "params.yaml")
    recorded = recorded_fingerprints(REPO / "data.dvc")
    for name, cohort, source in input_trees(params):
        if source["source"] == "phantom":
            p = phantom_params(params, cohort, locked_test=name != cohort)
            assert recorded.get(name) == generator_fingerprint(p), (
                f"the {name} phantom's code or parameters changed since data.dvc was recorded: "
                "run `make data` (crossmodal data) and commit data.dvc")


def test_fingerprint_follows_every_parameter():
    p = load_params(REPO / "params.yaml", "quick")["phantom"]["pelvis"]
    base = generator_fingerprint(p)
    assert generator_fingerprint({**p, "seed": p["seed"] + 1}) != base
    assert generator_fingerprint({**p, "ct_noise_hu": p["ct_noise_hu"] * 2}) != base
    assert generator_fingerprint(dict(reversed(list(p.items())))) == base


def test_recording_keeps_the_data_hash(tmp_path):
    dvc_file = tmp_path / "data.dvc"
    shutil.copy(REPO / "data.dvc", dvc_file)
    outs = yaml.safe_load(dvc_file.read_text())["outs"]
    record_fingerprints({"pelvis": "abc", "skeleton": "def"}, dvc_file)
    assert recorded_fingerprints(dvc_file) == {"pelvis": "abc", "skeleton": "def"}
    assert yaml.safe_load(dvc_file.read_text())["outs"] == outs


def test_locked_test_cohort_is_its_own_tree_with_its_own_seed():
    params = load_params(REPO / "params.yaml")
    trees = {name: (cohort, source["root"]) for name, cohort, source in input_trees(params)}
    assert trees["pelvis_test"] == ("pelvis", params["cohort"]["pelvis"]["test_root"])
    assert trees["pelvis_test"][1] != trees["pelvis"][1]
    dev, test = phantom_params(params, "pelvis"), phantom_params(params, "pelvis", locked_test=True)
    assert test["seed"] != dev["seed"] and test["n_patients"] >= 100
    assert {k: v for k, v in test.items() if k not in ("seed", "n_patients")} == \
        {k: v for k, v in dev.items() if k not in ("seed", "n_patients")}


def with_cohort_tested_on_real_scans(params: dict) -> dict:
    """``params`` with a cohort ``lung`` (a simulated chest cohort) whose locked test cohort
    is the real-delineation cohort's tree."""
    import copy

    params = copy.deepcopy(params)
    real = params["cohort"]["lung_real_delineations"]
    params["cohort"]["lung"] = {**real, "root": "data/lung-simulated", "test_root": real["root"]}
    params["phantom"]["lung"] = copy.deepcopy(params["phantom"]["pelvis_real_anatomy"])
    return params


def test_a_locked_test_cohort_may_be_another_cohorts_tree():
    from crossmodal.params.rules import check

    params = with_cohort_tested_on_real_scans(load_params(REPO / "params.yaml"))
    trees = [name for name, _, _ in input_trees(params)]
    assert "lung" in trees and "lung_test" not in trees  # made as lung_real_delineations, not regenerated
    assert trees.count("lung_real_delineations") == 1
    assert not [p for p in check(params) if p[0].startswith("cohort.lung")]  # no phantom.lung_test needed
    params["cohort"]["lung"]["truth_dir"] = "sidecars"
    assert "differs in truth_dir" in dict(check(params))["cohort.lung.test_root"]
    params["cohort"]["lung"]["label_names"] = {1: "lung_nodule"}
    assert "names its labels" in dict(check(params))["cohort.lung.test_root"]
    params["cohort"]["lung"]["test_root"] = params["cohort"]["lung"]["root"]
    assert "own root" in dict(check(params))["cohort.lung.test_root"]


def test_a_phantom_section_finds_its_generator_by_its_keys_not_its_name():
    from crossmodal.stages.data import cohort_generator
    from crossmodal.stages.data import phantom_generators
    from crossmodal.params.phantoms import phantom_kind

    params = with_cohort_tested_on_real_scans(load_params(REPO / "params.yaml"))
    kinds = {name: phantom_kind(section) for name, section in params["phantom"].items() if name != "pelvis_test"}
    assert kinds == {"pelvis": "pelvis", "pelvis_real_anatomy": "hybrid", "lung_real_delineations": "delineations",
                     "skeleton": "skeleton", "lung": "hybrid", "skeleton_real_anatomy": "hybrid_skeleton"}
    assert cohort_generator(params, "lung")[0] is phantom_generators()["hybrid"][0]
    assert cohort_generator(params, "skeleton_real_anatomy")[0] is phantom_generators()["hybrid_skeleton"][0]
