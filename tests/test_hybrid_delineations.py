"""Hybrid PET/CT around real tumour delineations: the real CT and the real mask untouched,
PET uptake inside the real shape, and a cohort the ingestion reads as any other."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import SimpleITK as sitk
import yaml

from conftest import REPO
from conftest import with_real_source
from crossmodal.io.case import load_cases
from crossmodal.io.geometry import resample_to_reference
from crossmodal.io.geometry import transform_from_dict
from crossmodal.params import load_params
from crossmodal.params.rules import check
from crossmodal.phantom import hybrid_delineations as hybrid
from crossmodal.phantom.sources import HYBRID_DELINEATIONS_PARAMETER_SOURCES
from crossmodal.stages.data import phantom_params
from crossmodal.stages.ingest import ingest_tree

SECTION = "lung_real_delineations"


@pytest.fixture(scope="module")
def params(tmp_path_factory) -> dict:
    """The default params with ``real_data.pyradiomics`` fetched into a temporary root."""
    return with_real_source(load_params(REPO / "params.yaml"), "pyradiomics",
                            tmp_path_factory.mktemp("real") / "pyradiomics")


@pytest.fixture(scope="module")
def p(params) -> dict:
    return phantom_params(params, SECTION)


def _real(p: dict, case: str, kind: str) -> np.ndarray:
    image = sitk.DICOMOrient(sitk.ReadImage(f"{p['real_data']['root']}/{case}_{kind}.nrrd"), "LPS")
    return sitk.GetArrayFromImage(image)


def test_one_patient_per_real_case(p):
    assert p["n_patients"] == len(p["cases"]) >= 2


@pytest.mark.parametrize("index", [0, 1])
def test_real_ct_and_delineation_are_untouched_and_pet_is_hot_inside_the_real_shape(p, index):
    case = p["cases"][index]
    patient = hybrid.simulate_delineation_patient(index, p, seed=p["seed"])
    # every CT voxel is the scanner's own; the label is the real mask, nothing inserted
    np.testing.assert_array_equal(sitk.GetArrayFromImage(patient.ct_hu), _real(p, case, "ct").astype(np.float32))
    real_mask = _real(p, case, "lesion") > 0
    np.testing.assert_array_equal(sitk.GetArrayFromImage(patient.label), real_mask * p["label"])
    assert [lesion["inserted"] for lesion in patient.lesions] == [False]
    low, high = p["lesion_suvmax"]
    assert low <= patient.lesions[0]["suv_max"] <= high
    # PET, put back on the CT through the known misregistration: hotter inside the real shape
    # than in the tissue around it (a 10 mm shell), and the lesion's drawn SUV reached there
    truth = transform_from_dict(patient.pet_to_ct_truth)
    pet = sitk.GetArrayFromImage(resample_to_reference(patient.pet_suv, patient.ct_hu, transform=truth))
    near = sitk.GetArrayFromImage(sitk.BinaryDilate(sitk.Cast(patient.label > 0, sitk.sitkUInt8),
                                                    [int(round(10 / s)) for s in patient.ct_hu.GetSpacing()]))
    shell = (near > 0) & ~real_mask
    assert np.median(pet[real_mask]) > 1.5 * np.median(pet[shell])
    assert pet[real_mask].max() > 0.5 * patient.lesions[0]["suv_max"]


def test_tissue_uptake_follows_the_real_hu(p):
    """Aerated lung is cold and soft tissue warm, as the classes say, in the same real scan."""
    patient = hybrid.simulate_delineation_patient(1, p, seed=p["seed"])
    hu = sitk.GetArrayFromImage(patient.ct_hu)
    pet = sitk.GetArrayFromImage(resample_to_reference(
        patient.pet_suv, patient.ct_hu, transform=transform_from_dict(patient.pet_to_ct_truth)))
    lesion = sitk.GetArrayFromImage(patient.label) > 0
    lung = (hu > -850) & (hu < -700) & ~lesion
    soft = (hu > 20) & (hu < 80) & ~lesion
    assert np.median(pet[lung]) < np.median(pet[soft])
    organs = patient.organs
    assert organs["air"]["suv"] == 0.0 and organs["lung"]["suv"] < organs["soft_tissue"]["suv"]


def test_the_written_cohort_is_ingested_with_the_real_voxels_and_masks(params, p, tmp_path):
    root = hybrid.generate_hybrid_delineations_cohort(p, tmp_path / "cohort")
    assert hybrid.generate_hybrid_delineations_cohort(p, tmp_path / "again")  # byte-identical below
    for name in sorted(x.relative_to(root) for x in root.rglob("*") if x.is_file()):
        assert (root / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name
    ingest_tree(params, SECTION, root, tmp_path / "ingest")
    cases = load_cases(tmp_path / "ingest")
    assert len(cases) == len(p["cases"])
    by_lesion = {int((sitk.GetArrayFromImage(c.label) > 0).sum()): c for c in cases}
    for case in p["cases"]:
        mask = _real(p, case, "lesion") > 0
        ingested = by_lesion[int(mask.sum())]
        np.testing.assert_array_equal(sitk.GetArrayFromImage(ingested.label) > 0, mask)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(ingested.ct), _real(p, case, "ct").astype(np.float32))
    truths = [json.loads(f.read_text()) for f in (root / "truth").glob("*.json")]
    assert sorted(t["real_anatomy"]["case"] for t in truths) == sorted(p["cases"])
    assert {t["real_anatomy"]["lesions"] for t in truths} == {"real delineation"}


def test_a_missing_or_empty_delineation_is_refused_naming_the_file(p, tmp_path):
    root = tmp_path / "real"
    root.mkdir()
    ct = sitk.Image([8, 8, 4], sitk.sitkInt16)
    sitk.WriteImage(ct, str(root / "x_ct.nrrd"))
    broken = {**p, "real_data": {**p["real_data"], "root": str(root)}}
    with pytest.raises(FileNotFoundError, match="x_lesion.nrrd"):
        hybrid.load_real_scan(broken, "x")
    sitk.WriteImage(sitk.Image([8, 8, 4], sitk.sitkUInt8), str(root / "x_lesion.nrrd"))
    with pytest.raises(ValueError, match="x_lesion.nrrd: an empty lesion mask"):
        hybrid.load_real_scan(broken, "x")
    sitk.WriteImage(sitk.Image([8, 8, 5], sitk.sitkUInt8) + 1, str(root / "x_lesion.nrrd"))
    with pytest.raises(ValueError, match="x_lesion.nrrd: not on the grid"):
        hybrid.load_real_scan(broken, "x")


def test_every_parameter_has_a_source_and_the_rules_name_what_is_missing():
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    assert set(HYBRID_DELINEATIONS_PARAMETER_SOURCES) == set(raw["phantom"][SECTION])
    broken = copy.deepcopy(raw)
    broken["phantom"][SECTION]["cases"].append("lung9")
    del broken["phantom"][SECTION]["tissue_suv"]["bone"]
    problems = dict(check({**broken, "profile": "default"}))
    assert "'lung9_ct.nrrd', 'lung9_lesion.nrrd' not in real_data.pyradiomics.files" in problems[f"phantom.{SECTION}.cases"]
    assert "'bone' not in tissue_suv" in problems[f"phantom.{SECTION}.tissue_suv"]
