"""Hybrid pelvic PET/CT: the real CT untouched outside inserted lesions, PET uptake from the
real structures, lesions where they belong, and a cohort the ingestion reads as any other."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import yaml

from conftest import ingest_by_cohort_rules
from conftest import with_real_source
from crossmodal.io.geometry import transform_from_dict
from crossmodal.params import load_params
from crossmodal.phantom import hybrid_pelvis as hybrid
from crossmodal.phantom.pelvis import LABEL_NODE
from crossmodal.phantom.pelvis import LABEL_TUMOUR
from crossmodal.phantom.pelvis import grid_points
from crossmodal.phantom.sources import HYBRID_PELVIS_PARAMETER_SOURCES
from crossmodal.stages.data import phantom_params

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def hybrid_params(tmp_path_factory) -> dict:
    """``phantom.pelvis_real_anatomy`` resolved, its real scan fetched from the registry
    (archive cached between runs) into a temporary root."""
    params = with_real_source(load_params(REPO / "params.yaml"), "totalsegmentator",
                              tmp_path_factory.mktemp("real") / "ts")
    return phantom_params(params, "pelvis_real_anatomy")


@pytest.fixture(scope="module")
def real(hybrid_params):
    return hybrid.load_real_pelvis(hybrid_params)


@pytest.fixture(scope="module")
def patients(hybrid_params, real):
    return [hybrid.simulate_hybrid_patient(i, hybrid_params, seed=hybrid_params["seed"], real=real) for i in range(6)]


def test_the_real_ct_is_reoriented_and_cut_to_the_pelvis_without_resampling(hybrid_params, real):
    original = sitk.ReadImage(str(Path(hybrid_params["real_data"]["root"]) / "ct.nii.gz"), sitk.sitkFloat32)
    assert np.allclose(real.ct.GetDirection(), np.eye(3).ravel())  # LPS
    # A permutation of the original voxels: every cut slice is one of the original slices, flipped.
    flipped = sitk.GetArrayFromImage(sitk.DICOMOrient(original, "LPS"))
    z0 = int(round((real.ct.GetOrigin()[2] - sitk.DICOMOrient(original, "LPS").GetOrigin()[2]) / real.ct.GetSpacing()[2]))
    assert np.array_equal(sitk.GetArrayFromImage(real.ct), flipped[z0:z0 + real.ct.GetSize()[2]])
    bladder_z = np.flatnonzero(real.mask(["urinary_bladder"]).any(axis=(1, 2)))
    assert 0 < bladder_z[0] and bladder_z[-1] < real.ct.GetSize()[2] - 1  # bladder inside, with margin
    assert real.ct.GetSize()[2] < original.GetSize()[2]  # the chest is cut away
    assert not real.mask(["liver"]).any(axis=(1, 2))[:bladder_z[-1]].any()  # nothing of the liver beside the bladder


def test_real_voxels_are_untouched_outside_the_inserted_lesions(real, patients):
    original = sitk.GetArrayFromImage(real.ct)
    for patient in patients:
        ct, label = sitk.GetArrayFromImage(patient.ct_hu), sitk.GetArrayFromImage(patient.label)
        assert np.array_equal(ct[label == 0], original[label == 0])
        assert (label == LABEL_TUMOUR).any()
        assert not np.array_equal(ct[label > 0], original[label > 0])  # the lesions are in the CT
        assert patient.ct_hu.GetSpacing() == real.ct.GetSpacing() and patient.ct_hu.GetOrigin() == real.ct.GetOrigin()


def test_lesions_sit_at_the_bladder_base_and_beside_the_iliac_vessels(hybrid_params, real, patients):
    points = grid_points(real.ct)
    bladder = points[real.mask(["urinary_bladder"])]
    vessels = points[real.mask(["iliac_*"])]
    nodes = 0
    for patient in patients:
        label = sitk.GetArrayFromImage(patient.label)
        tumour = points[label == LABEL_TUMOUR].mean(axis=0)
        assert tumour[2] <= bladder[:, 2].min() + (np.ptp(bladder[:, 2])) / 3 + 15  # lower third (+ jitter)
        assert np.linalg.norm(bladder - tumour, axis=1).min() < 25.0  # against the bladder wall
        assert tumour[1] > bladder[:, 1].mean()  # posterior (+y in LPS)
        for lesion in [x for x in patient.lesions if x["kind"] == "node"]:
            nodes += 1
            centre = np.asarray(lesion["centroid_mm"])
            assert np.linalg.norm(vessels - centre, axis=1).min() < 8.0 + hybrid_params["node_gap_mm"][1] + 3.0
        # a node displaces fat or soft tissue only: none of its voxels is a vessel, bone or organ
        node_voxels = label == LABEL_NODE
        assert not (node_voxels & real.mask(["iliac_*", "hip_*", "sacrum", "urinary_bladder", "colon"])).any()
    assert nodes > 0  # the draws place some nodes


def test_pet_uptake_follows_the_real_structures(hybrid_params, real):
    # No noise, no misregistration and a narrow PSF, so the PET shows the activity map itself.
    p = {**hybrid_params, "pet_counts_per_suv": 0.0, "pet_fwhm_mm": 1.0, "misregistration_shift_mm": [0.0] * 3,
         "misregistration_rotation_deg": [0.0] * 3}
    patient = hybrid.simulate_hybrid_patient(0, p, seed=p["seed"], real=real)
    pet = sitk.GetArrayFromImage(sitk.Resample(patient.pet_suv, real.ct, sitk.Transform(), sitk.sitkNearestNeighbor))
    label = sitk.GetArrayFromImage(patient.label)
    core = lambda mask: sitk.GetArrayFromImage(sitk.BinaryErode(sitk.GetImageFromArray(mask.astype(np.uint8)), [2, 2, 1])) > 0
    bladder = core(real.mask(["urinary_bladder"]) & (label == 0))
    assert np.median(pet[bladder]) == pytest.approx(patient.organs["bladder"]["suv"], rel=0.05)
    fat = core((sitk.GetArrayFromImage(real.ct) < -60) & (sitk.GetArrayFromImage(real.ct) > -400) & ~real.mask(["*"]))
    assert np.median(pet[fat]) == pytest.approx(p["suv"]["fat"], abs=0.05)
    bone = core(real.mask(["hip_*"]))
    assert np.median(pet[bone]) == pytest.approx(p["suv"]["bone"], abs=0.05)
    tumour = patient.lesions[0]  # (its edge against the bladder mixes both on the 4 mm PET grid)
    assert np.median(pet[label == LABEL_TUMOUR]) == pytest.approx(tumour["suv_max"], rel=0.1)


def test_the_misregistration_turns_about_the_ct_centre_and_is_recorded(real, patients):
    centre = real.ct.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in real.ct.GetSize()])
    for patient in patients:
        truth = patient.pet_to_ct_truth
        assert np.allclose(truth["center_mm"], centre)
        moved = np.asarray(transform_from_dict(truth).TransformPoint(centre)) - centre
        assert np.linalg.norm(moved) < 12.0  # a shift of millimetres, not a swing about a far origin


def test_patients_are_seeded_by_index_and_share_the_anatomy(hybrid_params, real, patients):
    again = hybrid.simulate_hybrid_patient(2, hybrid_params, seed=hybrid_params["seed"], real=real)
    assert np.array_equal(sitk.GetArrayFromImage(again.pet_suv), sitk.GetArrayFromImage(patients[2].pet_suv))
    assert json.dumps(again.truth(), sort_keys=True) == json.dumps(patients[2].truth(), sort_keys=True)
    centroids = {tuple(np.round(p.lesions[0]["centroid_mm"], 1)) for p in patients}
    assert len(centroids) == len(patients)  # other lesions in every patient


def test_the_cohort_is_written_as_dicom_and_ingested_like_any_other(hybrid_params, tmp_path):
    p = {**hybrid_params, "n_patients": 2}
    root = hybrid.generate_hybrid_pelvis_cohort(p, tmp_path / "hybrid")
    truth = [json.loads(f.read_text()) for f in sorted((root / "truth").glob("*.json"))]
    assert len(truth) == 2 and all(t["real_anatomy"]["ct"] == "real" for t in truth)
    assert all(t["real_anatomy"]["sha256"] == p["real_data"]["sha256"] for t in truth)
    assert all(lesion["inserted"] for t in truth for lesion in t["lesions"])
    report = ingest_by_cohort_rules(root, tmp_path / "ingested", "pelvis_real_anatomy")
    assert len(report.cases) == 2 and not report.problems
    from crossmodal.io.case import load_cases
    from crossmodal.stages.pelvis.real_anatomy import inserted_lesions

    lesions = inserted_lesions(load_cases(tmp_path / "ingested"))
    assert len(lesions) == sum(len(t["lesions"]) for t in truth) and lesions["case_id"].nunique() == 2
    assert set(lesions["kind"]) <= {"tumour", "node"} and (lesions["kind"] == "tumour").sum() == 2


def test_structure_names_are_read_without_running_the_file(tmp_path):
    source = tmp_path / "map_to_binary.py"
    source.write_text('raise SystemExit("executed")\nclass_map = {"other": {1: "x"}, "total": {1: "spleen", 21: '
                      '"urinary_bladder"}}\nclass_map["total_v3"] = class_map["total"].copy()\n')
    assert hybrid.structure_names(source) == {1: "spleen", 21: "urinary_bladder"}
    source.write_text("class_map = dict(total={1: 'spleen'})\n")
    with pytest.raises(ValueError, match="no class_map\\['total'\\] literal"):
        hybrid.structure_names(source)


def test_every_hybrid_parameter_has_a_source_and_names_resolve():
    from crossmodal.params.phantoms import HybridPelvisPhantom

    from crossmodal.params.phantoms import PelvisPhantom

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    assert set(params["phantom"]["pelvis_real_anatomy"]) <= set(HYBRID_PELVIS_PARAMETER_SOURCES)
    # a source for each hybrid key; the based_on phantom's keys are sourced with that phantom
    own = set(HybridPelvisPhantom.model_fields) - set(PelvisPhantom.model_fields) - {"sources"} | {"seed", "n_patients"}
    assert set(HYBRID_PELVIS_PARAMETER_SOURCES) == own
    broken = copy.deepcopy(params)
    broken["phantom"]["pelvis_real_anatomy"]["real_data"] = "nowhere"
    broken["phantom"]["pelvis_real_anatomy"]["based_on"] = "absent"
    from crossmodal.params.rules import check

    problems = dict(check({**broken, "profile": "default"}))
    assert "'nowhere' not in real_data" in problems["phantom.pelvis_real_anatomy.real_data"]
    assert "not a phantom section of its own" in problems["phantom.pelvis_real_anatomy.based_on"]


def test_a_primary_has_one_site_and_nodes_beside_structures_have_their_tissues():
    from crossmodal.params.rules import check

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for change, key, rule in [
            ({"primary_within": ["fat"]}, "primary_beside", "exactly one of primary_beside"),
            ({"primary_beside": []}, "primary_beside", "exactly one of primary_beside"),
            ({"node_tissues": []}, "node_beside", "need node_tissues and node_gap_mm")]:
        broken = copy.deepcopy(params)
        broken["phantom"]["pelvis_real_anatomy"].update(change)
        problems = dict(check({**broken, "profile": "default", "study": {"name": "pelvis", "cohort": "pelvis"}}))
        assert rule in problems[f"phantom.pelvis_real_anatomy.{key}"], change


# ----------------------------------------------------------- a real CT of another region


#: A real chest CT of the same source distribution (1.5 mm, no structures shipped with it).
CHEST_FILES = {"ct.nii.gz": "tests/reference_files/aorta_report/example_ct.nii.gz", "LICENSE": "LICENSE"}
CHEST_TISSUES = {"air": [-2000.0, -900.0], "lung": [-900.0, -400.0], "fat": [-400.0, -30.0],
                 "soft_tissue": [-30.0, 150.0], "bone": [150.0, 5000.0]}


@pytest.fixture(scope="module")
def chest_params(tmp_path_factory) -> dict:
    """A hybrid of the real chest CT configured as a fork would (checked by the params schema):
    HU classes only, the primary within aerated lung, smaller tumours, no nodes (every other
    value the pelvic phantom's)."""
    from crossmodal.params.phantoms import HybridPelvisPhantom

    params = load_params(REPO / "params.yaml")
    params["real_data"]["chest"] = {**params["real_data"]["totalsegmentator"], "files": CHEST_FILES}
    params = with_real_source(params, "chest", tmp_path_factory.mktemp("real") / "chest")
    section = {"based_on": "pelvis", "real_data": "chest", "seed": 7, "n_patients": 3, "sex": "O", "region": "chest",
               "hu_tissues": CHEST_TISSUES, "organ_suv": {"lung": [0.3, 0.6], "soft_tissue": [1.2, 2.0]},
               "primary_within": ["lung"], "primary_within_fraction": 0.9, "primary_hu_tissue": "muscle", "tumour_radius_mm": [6.0, 15.0],
               "tumour_abuts_bladder_probability": 0.0, "nodes": [0, 0], "pet_margin_voxels": 2}
    HybridPelvisPhantom.model_validate(section)
    params["phantom"]["chest"] = section
    return phantom_params(params, "chest")


def test_a_chest_ct_without_structures_takes_a_primary_within_the_lung(chest_params):
    real = hybrid.load_real_pelvis(chest_params)
    original = sitk.DICOMOrient(sitk.ReadImage(str(Path(chest_params["real_data"]["root"]) / "ct.nii.gz"),
                                               sitk.sitkFloat32), "LPS")
    assert real.ct.GetSize() == original.GetSize() and not real.structures.any()  # the whole CT, HU classes only
    hu = sitk.GetArrayFromImage(real.ct)
    lung = (hu >= -900) & (hu < -400)
    sites = set()
    for index in range(3):
        patient = hybrid.simulate_hybrid_patient(index, chest_params, seed=chest_params["seed"], real=real)
        ct, label = sitk.GetArrayFromImage(patient.ct_hu), sitk.GetArrayFromImage(patient.label)
        assert np.array_equal(ct[label == 0], hu[label == 0])  # real voxels untouched
        tumour = label == LABEL_TUMOUR
        assert tumour.any() and not (label == LABEL_NODE).any()  # one primary, no nodes
        assert lung[tumour].mean() >= chest_params["primary_within_fraction"]  # in aerated lung
        assert np.median(ct[tumour]) > -100  # solid: soft-tissue CT numbers where the lung was air
        (lesion,) = patient.lesions
        assert lesion["site"] == "within lung" and patient.organs == {}
        # PET on the CT grid through the recorded misregistration: the tumour is hot in cold lung
        pet = sitk.GetArrayFromImage(sitk.Resample(patient.pet_suv, patient.ct_hu,
                                                   transform_from_dict(patient.pet_to_ct_truth), sitk.sitkLinear))
        assert np.median(pet[tumour]) > 3 * np.median(pet[lung & (label == 0)])
        sites.add(tuple(np.round(lesion["centroid_mm"])))
    assert len(sites) == 3  # another place in every patient


def test_a_chest_hybrid_is_written_with_its_sex_and_region(chest_params, tmp_path):
    root = hybrid.generate_hybrid_pelvis_cohort({**chest_params, "n_patients": 1}, tmp_path / "chest")
    (truth,) = [json.loads(f.read_text()) for f in (root / "truth").glob("*.json")]
    assert truth["real_anatomy"]["sex"] == "not stated by the source"
    import pydicom

    ct_file = next(p for p in root.rglob("*.dcm") if pydicom.dcmread(p, stop_before_pixels=True).Modality == "CT")
    header = pydicom.dcmread(ct_file, stop_before_pixels=True)
    assert header.SeriesDescription == "CT chest (real; lesions inserted)" and header.PatientSex == "O"


def test_a_primary_with_no_room_in_its_tissue_is_refused_naming_it(chest_params):
    real = hybrid.load_real_pelvis(chest_params)
    huge = {**chest_params, "tumour_radius_mm": [150.0, 150.0]}
    with pytest.raises(ValueError, match=r"no place for a primary .* in \['lung'\]"):
        hybrid.simulate_hybrid_patient(0, huge, seed=1, real=real)


def test_a_hybrid_reads_none_of_the_base_keys_its_data_card_leaves_out(hybrid_params, chest_params, tmp_path):
    """The data card shows a hybrid without the base phantom's grids, geometry and mimics
    (HYBRID_UNUSED_BASE_KEYS): generating patients of both hybrids reads none of them."""
    from crossmodal.stages.pelvis.data_card import HYBRID_UNUSED_BASE_KEYS

    read: set[str] = set()

    class Tracked(dict):
        def __getitem__(self, key):
            read.add(key)
            return super().__getitem__(key)

        def get(self, key, default=None):
            read.add(key)
            return super().get(key, default)

    for k, p in enumerate((hybrid_params, chest_params)):
        for index in range(3):
            hybrid.write_hybrid_patient(index, Tracked(p), tmp_path / str(k), seed=p["seed"])
    assert {"hu", "suv", "tumour_suvmax", "misregistration_shift_mm"} <= read  # the tracking sees reads
    assert not read & HYBRID_UNUSED_BASE_KEYS
