"""Tests for crossmodal.params: load, profiles, validation with messages naming the key,
and the values derived from others."""

import copy
import re
from pathlib import Path

import pytest
import yaml

from crossmodal.params import DERIVED
from crossmodal.params import ParamsError
from crossmodal.params import deep_merge
from crossmodal.params import load_params

REPO = Path(__file__).resolve().parents[1]
PARAMS = REPO / "params.yaml"
PROFILES = ["default", "quick", "full", "gpu_sample"]


@pytest.fixture(scope="module")
def raw():
    return yaml.safe_load(PARAMS.read_text())


def write(tmp_path, data):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def assert_rejected(tmp_path, data, key, rule, profile=None):
    """Loading ``data`` fails with a line ``<file>: <key>: <rule...>``."""
    path = write(tmp_path, data)
    with pytest.raises(ParamsError) as caught:
        load_params(path, profile)
    message = str(caught.value)
    pattern = rf"^{re.escape(str(path))}: {re.escape(key)}: .*{rule}"
    assert re.search(pattern, message, flags=re.MULTILINE), message
    return message


# ----------------------------------------------------------------------------- the real file


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_of_the_real_file_loads(profile):
    params = load_params(PARAMS, profile)
    assert params["profile"] == profile
    assert params["detect"]["train"]["imgsz"] == params["align_fuse"]["image_size"]
    assert (params["align_fuse"]["method_options"]["adaptive_region"]["suv_max"]
            == params["align_fuse"]["enhance"]["suv_max"])


def test_profiles_override_and_derived_values_follow(raw):
    quick, full = load_params(PARAMS, "quick"), load_params(PARAMS, "full")
    assert quick["phantom"]["pelvis"]["n_patients"] == 6
    assert quick["phantom"]["pelvis"]["seed"] == raw["phantom"]["pelvis"]["seed"]
    assert quick["detect"]["train"]["imgsz"] == 96
    assert full["detect"]["train"]["imgsz"] == 512  # full sets align_fuse.image_size only
    assert load_params(PARAMS)["profile"] == raw["profile"]


def test_derived_keys_are_stated_once_in_the_real_file(raw):
    for profile in [raw, *raw["profiles"].values()]:
        for target in DERIVED:
            node = profile or {}
            for part in target.split("."):
                node = node.get(part, {}) if isinstance(node, dict) else {}
            assert node == {}, f"{target} is derived: params.yaml must not state it"


def test_loaded_values_are_the_files_own(raw):
    """Validation checks only: values keep their YAML types (no coercion to the schema's)."""
    params = load_params(PARAMS, "default")
    assert params["align_fuse"]["enhance"]["ct_window"] == [-160, 240]
    assert all(isinstance(v, int) for v in params["align_fuse"]["enhance"]["ct_window"])
    assert params["cohort"]["pelvis"]["label_names"] == {1: "cervical_tumour", 2: "lymph_node"}


def test_deep_merge_does_not_change_its_inputs():
    base, over = {"a": {"b": 1, "c": [1]}, "d": 2}, {"a": {"b": 3}, "e": 4}
    merged = deep_merge(base, over)
    assert merged == {"a": {"b": 3, "c": [1]}, "d": 2, "e": 4}
    assert base == {"a": {"b": 1, "c": [1]}, "d": 2} and over == {"a": {"b": 3}, "e": 4}


# ----------------------------------------------------------------------------- each rule


def mutate(raw, dotted, value):
    data = copy.deepcopy(raw)
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    node[leaf] = value
    return data


CASES = [
    # (dotted key set, value, key named in the error, rule)
    ("phantom.pelvis.n_patient", 3, "phantom.pelvis.n_patient", "unknown key; did you mean 'n_patients'"),
    ("align_fuse.register.iterationz", 9, "align_fuse.register.iterationz", "unknown key"),
    ("featurs", {}, "featurs", "unknown key; did you mean 'features'"),
    ("profiles.quick.phantom.pelvis.n_patient", 4, "profiles.quick.phantom.pelvis.n_patient",
     "unknown key"),
    ("profiles.full.detect.train.epoch", 4, "profiles.full.detect.train.epoch", "unknown key"),
    ("cohort.skeleton.modality_name", {}, "cohort.skeleton.modality_name", "unknown key"),
    ("phantom.pelvis.n_patients", "40", "phantom.pelvis.n_patients", "valid integer, got '40'"),
    ("features.presence_flags", "yes", "features.presence_flags", "valid boolean"),
    ("compute.jobs", "many", "compute.jobs", "'auto'"),
    ("profiles.quick.classify.n_boot", 2.5, "profiles.quick.classify.n_boot", "valid integer"),
    ("phantom.pelvis.necrosis_probability", 1.5, "phantom.pelvis.necrosis_probability",
     "less than or equal to 1"),
    ("phantom.skeleton.n_patients", 0, "phantom.skeleton.n_patients", "greater than 0"),
    ("detect.split.fractions", [0.6], "detect.split.fractions", "at least 2 items"),
    ("detect.split.fractions", [0.6, 0.2, 0.2], "detect.split.fractions", "with a locked test cohort"),
    ("phantom.pelvis.fat_mm", [35.0, 10.0], "phantom.pelvis.fat_mm", r"low <= high"),
    ("align_fuse.register.kind", "rigidd", "align_fuse.register.kind", "'rigid' or 'affine'"),
    ("align_fuse.register.bins", None, "align_fuse.register.bins", "valid integer"),
    ("detect.train.imgsz", 64, "detect.train.imgsz", r"must equal align_fuse.image_size \(192"),
    ("part2_detect.tile_size", 448, "part2_detect.tile_size", r"must fit in part2_detect.slice_size"),
    ("part2_detect.slice_size", [320, 400], "part2_detect.slice_size.1", "multiple of 32"),
    ("part2_detect.channels.CT.body_component", "biggest", "part2_detect.channels.CT.body_component",
     "'all' or 'largest'"),
    ("profiles.quick.detect.train.imgsz", 128, "profiles.quick.detect.train.imgsz",
     "must equal align_fuse.image_size"),
    ("align_fuse.method_options.adaptive_region.suv_max", 8.0,
     "align_fuse.method_options.adaptive_region.suv_max", r"must equal align_fuse.enhance.suv_max \(10.0"),
    ("cohort.pelvis.label_names", {1: "tumour", 3: "node"}, "cohort.pelvis.label_names",
     r"consecutive from 1 .* got \[1, 3\]"),
    ("cohort.skeleton.label_names", {2: "metastasis"}, "cohort.skeleton.label_names",
     "consecutive from 1"),
    ("align_fuse.inputs.pca.method", "pcaa", "align_fuse.inputs.pca.method",
     "unknown fusion method 'pcaa'"),
    ("align_fuse.method_options.guided_filter.r11", 3, "align_fuse.method_options.guided_filter.r11",
     "'guided_filter' has no such option"),
    ("align_fuse.method_options.dwtt", {}, "align_fuse.method_options.dwtt", "unknown fusion method"),
    ("detect.proposed", "adaptive", "detect.proposed", "'adaptive' not in detect.inputs"),
    ("detect.inputs", ["adaptive_region", "ct_only", "nope"], "detect.inputs",
     "'nope' not in align_fuse.inputs"),
    ("detect.detectors.0.inputs", ["adaptive_region", "pct_only"], "detect.detectors.0.inputs",
     "'pct_only' not in detect.inputs"),
    ("detect.analysis.claims.C3.references", ["pet"], "detect.analysis.claims.C3.references",
     "'pet' not in align_fuse.inputs"),
    ("cohort.pelvis.required_modalities", ["CT", "MR"], "cohort.pelvis.required_modalities",
     "'MR' not in cohort.pelvis.modalities"),
    ("part2_detect.predict.ap_conf", 0.5, "part2_detect.predict.ap_conf", "features.conf"),
    ("c3d.n_repeats", 9, "c3d.n_repeats", "classify.cv.n_repeats"),
    ("profile", "quik", "profile", "'quik' is not a profile"),
]


@pytest.mark.parametrize("dotted, value, key, rule", CASES, ids=[c[0] for c in CASES])
def test_each_rule_names_the_file_the_key_and_the_rule(tmp_path, raw, dotted, value, key, rule):
    assert_rejected(tmp_path, mutate(raw, dotted, value), key, rule)


def test_a_missing_key_is_named(tmp_path, raw):
    data = copy.deepcopy(raw)
    del data["align_fuse"]["register"]["bins"]
    assert_rejected(tmp_path, data, "align_fuse.register.bins", "required key is missing")


def test_every_profile_is_checked_not_only_the_chosen_one(tmp_path, raw):
    data = mutate(raw, "profiles.gpu_sample.phantom.pelvis.n_patient", 220)
    assert_rejected(tmp_path, data, "profiles.gpu_sample.phantom.pelvis.n_patient", "unknown key",
                    profile="quick")


def test_a_tie_broken_by_a_profile_names_the_profile(tmp_path, raw):
    # imgsz stated in the base agrees with the base image size, not with full's 512
    message = assert_rejected(tmp_path, mutate(raw, "detect.train.imgsz", 192), "detect.train.imgsz",
                              r"must equal align_fuse.image_size \(512.*\(with profile full\)")
    assert "with profile default" not in message


def test_every_problem_is_reported_at_once(tmp_path, raw):
    data = mutate(mutate(raw, "features.n_binz", 3), "profiles.quick.c3d.grid_size", [24, 24])
    message = assert_rejected(tmp_path, data, "features.n_binz", "unknown key")
    assert "profiles.quick.c3d.grid_size: " in message


def test_open_mappings_take_free_keys_but_check_values(tmp_path, raw):
    data = mutate(raw, "detect.train.options.rtdetr", {"hsv_h": 0.0})
    data = mutate(data, "phantom.pelvis.hu.liver", 60)
    data = mutate(data, "cohort.pelvis_copy", copy.deepcopy(raw["cohort"]["pelvis"]))
    data["cohort"]["pelvis_copy"]["source"] = "dicom"
    load_params(write(tmp_path, data))  # free keys are fine
    assert_rejected(tmp_path, mutate(raw, "phantom.pelvis.hu.liver", "sixty"),
                    "phantom.pelvis.hu.liver", "valid number")
    assert_rejected(tmp_path, mutate(raw, "detect.train.options.rtdetr", {"hsv_h": {"a": 1}}),
                    "detect.train.options.rtdetr.hsv_h", "valid")
    assert_rejected(tmp_path, mutate(raw, "cohort.pelvis_copy", {"source": "phantom"}),
                    "cohort.pelvis_copy.root", "required key is missing")


def test_unknown_profile_and_error_type(tmp_path, raw):
    with pytest.raises(ParamsError, match=r"profile 'nope' is not defined") as caught:
        load_params(PARAMS, "nope")
    assert isinstance(caught.value, ValueError)
    path = write(tmp_path, mutate(raw, "features.n_binz", 3))
    with pytest.raises(ValueError) as caught:
        load_params(path)
    assert caught.value.problems == [("features.n_binz", "unknown key; did you mean 'n_bins'?")]


def test_a_window_must_be_low_then_high(tmp_path):
    text = PARAMS.read_text().replace("ct_window: [-160, 240]", "ct_window: [240, -160]", 1)
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(ParamsError, match="align_fuse.enhance.ct_window"):
        load_params(tmp_path / "params.yaml", "default")


# ----------------------------------------------------------------------------- studies


def with_lung_study(raw, **sections):
    """``raw`` with a second Part 1 study on the real-delineation chest cohort (one class,
    no locked test cohort), its sections replaced by ``sections``."""
    data = copy.deepcopy(raw)
    lung = {"detect": {"analysis": {"primary_class": "lung_tumour"}, "split": {"fractions": [0.6, 0.2, 0.2]}},
            "align_fuse": {"image_size": 256}}
    data["studies"]["lung"] = {"cohort": "lung_real_delineations", "sections": deep_merge(lung, sections)}
    return data


def test_a_study_replaces_its_sections_for_its_own_load_only(tmp_path, raw):
    path = write(tmp_path, with_lung_study(raw))
    pelvis, lung = load_params(path), load_params(path, study="lung")
    assert pelvis["study"] == {"name": "pelvis", "cohort": "pelvis"}
    assert lung["study"] == {"name": "lung", "cohort": "lung_real_delineations"}
    assert lung["detect"]["analysis"]["primary_class"] == "lung_tumour"
    assert lung["detect"]["train"]["imgsz"] == lung["align_fuse"]["image_size"] == 256   # derived after the study
    assert lung["detect"]["analysis"]["claims"] == pelvis["detect"]["analysis"]["claims"]   # merged, not replaced
    mine = {k: v for k, v in pelvis.items() if k != "studies"}
    assert mine == {k: v for k, v in load_params(PARAMS).items() if k != "studies"}   # untouched by the other study
    quick = load_params(path, "quick", study="lung")
    assert quick["align_fuse"]["image_size"] == 96   # the profile applies after the study
    assert quick["detect"]["analysis"]["primary_class"] == "lung_tumour"


def test_a_study_problem_names_the_study(tmp_path, raw):
    data = with_lung_study(raw, detect={"split": {"fractions": [0.8, 0.2]}})
    assert_rejected(tmp_path, data, "studies.lung.sections.detect.split.fractions", "without a locked test cohort")
    data = with_lung_study(raw, detect={"analysis": {"primary_class": "cervical_tumour"}})
    assert_rejected(tmp_path, data, "studies.lung.sections.detect.analysis.primary_class",
                    "not in cohort.lung_real_delineations.label_names")
    data = with_lung_study(raw)
    data["studies"]["lung"]["cohort"] = "lungs"
    message = assert_rejected(tmp_path, data, "studies.lung.cohort", "'lungs' is not a cohort")
    assert "split.fractions" not in message  # no second, false problem from the missing cohort
    data = with_lung_study(raw)
    del data["studies"]["lung"]["sections"]["detect"]["split"]   # the pelvic [train, val] for a cohort without a test set
    assert_rejected(tmp_path, data, "detect.split.fractions", r"without a locked test cohort .*\(in study lung\)")
    data = with_lung_study(raw, ingest={"pseudonym_salt": "x"})
    assert_rejected(tmp_path, data, "studies.lung.sections.ingest", "unknown key")
    data = copy.deepcopy(raw)
    data["studies"] = {}
    assert_rejected(tmp_path, data, "studies", "at least one study")
    with pytest.raises(ParamsError, match="study 'lungs' is not defined under 'studies'"):
        load_params(write(tmp_path, with_lung_study(raw)), study="lungs")


def test_part1_stages_read_their_studys_cohort(tmp_path, raw):
    from crossmodal.stages.pelvis.claims import resolved_analysis
    from crossmodal.stages.pelvis.evaluate import evaluation_config

    path = write(tmp_path, with_lung_study(raw))
    assert evaluation_config(load_params(path))["evaluate"]["class_names"] == ["cervical_tumour", "lymph_node"]
    lung = load_params(path, study="lung")
    assert evaluation_config(lung)["evaluate"]["class_names"] == ["lung_tumour"]
    assert resolved_analysis(lung)["secondary"] == ["AP50"]   # no second class in the lung cohort


def test_a_phantom_section_of_any_name_is_checked_as_its_kind(tmp_path, raw):
    # A fork's cohort names its own phantom section; its keys say which generator it is for.
    data = copy.deepcopy(raw)
    data["phantom"]["lung"] = copy.deepcopy(raw["phantom"]["pelvis_real_anatomy"])
    assert load_params(write(tmp_path, data))["phantom"]["lung"] == raw["phantom"]["pelvis_real_anatomy"]
    data["phantom"]["lung"]["seeed"] = 3
    assert_rejected(tmp_path, data, "phantom.lung.seeed", "unknown key")
    del data["phantom"]["lung"]["seeed"], data["phantom"]["lung"]["pet_margin_voxels"]
    assert_rejected(tmp_path, data, "phantom.lung.pet_margin_voxels", "required key is missing")
    data["phantom"]["lung"] = {**raw["phantom"]["pelvis_test"], "seed": "x"}   # a locked test cohort's section
    assert_rejected(tmp_path, data, "phantom.lung.seed", "valid integer")
