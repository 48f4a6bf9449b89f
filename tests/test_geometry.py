"""Geometry through DICOM: a lesion sits at the same patient coordinates on CT and PET,
up to the misregistration the phantom stored."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import tiny_pelvis_params

from crossmodal.io.case import load_cases
from crossmodal.io.cohort import ingest_dicom_cohort
from crossmodal.phantom.cohort import generate_pelvis_cohort
from crossmodal.phantom.pelvis import grid_points
from crossmodal.io.geometry import transform_from_dict


@pytest.fixture(scope="module")
def isolated_lesion_case(tmp_path_factory):
    """A phantom whose tumour is the only hot structure (cold bladder, no bowel, no nodes, no
    ureteric or bowel foci), so the PET lesion centroid can be measured without neighbours pulling it."""
    p = tiny_pelvis_params(n_patients=1)
    p.update(bladder_suv=[0.5, 0.5], bowel_suv=[0.5, 0.5], nodes=[0, 0], pet_counts_per_suv=0,
             ureter_focus_probability=0.0, bowel_focus_probability=0.0,
             ct_noise_hu=0.0, tumour_radius_mm=[15.0, 15.0], tumour_suvmax=[12.0, 12.0],
             necrosis_probability=0.0, misregistration_shift_mm=[8.0, 8.0, 6.0])
    root = generate_pelvis_cohort(p, tmp_path_factory.mktemp("geo") / "cohort")
    out = tmp_path_factory.mktemp("geo_ingest")
    ingest_dicom_cohort(root, out, modalities=["CT", "PT"], salt="geo")
    return load_cases(out)[0]


def centroid_mm(image: sitk.Image, weights: np.ndarray) -> np.ndarray:
    points = grid_points(image)
    return (points * weights[..., None]).sum(axis=(0, 1, 2)) / weights.sum()


def test_lesion_centroid_agrees_on_ct_and_pet_up_to_stored_misregistration(isolated_lesion_case):
    case = isolated_lesion_case
    label = sitk.GetArrayFromImage(case.label) == 1
    ct_centroid = centroid_mm(case.ct, label.astype(float))

    suv = sitk.GetArrayFromImage(case.pet)
    hot = np.where(suv > 0.5 * suv.max(), suv, 0.0)  # tumour only: everything else is cold
    pet_centroid = centroid_mm(case.pet, hot)

    ct_to_pet = transform_from_dict(case.truth["misregistration"])
    expected_on_pet = np.asarray(ct_to_pet.TransformPoint(tuple(ct_centroid)))
    pet_voxel = max(case.pet.GetSpacing())
    error_with_truth = np.linalg.norm(pet_centroid - expected_on_pet)
    assert error_with_truth < 0.5 * pet_voxel
    # and the stored misregistration is real: ignoring it, the centroids disagree
    error_without = np.linalg.norm(pet_centroid - ct_centroid)
    assert error_without > 2.0 and error_without > 3 * error_with_truth
