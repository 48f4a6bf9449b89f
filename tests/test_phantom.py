"""The pelvic phantom: determinism and the phenomena the method spec asks for."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from conftest import tiny_pelvis_params

from crossmodal.io.geometry import resample_to_reference
from crossmodal.phantom.cohort import generate_pelvis_cohort
from crossmodal.phantom.cohort import is_up_to_date
from crossmodal.phantom.pelvis import LABEL_TUMOUR
from crossmodal.phantom.pelvis import simulate_patient


def tree_hash(root: Path) -> str:
    digest = hashlib.md5()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def test_same_parameters_give_byte_identical_dicom_trees(tmp_path):
    p = tiny_pelvis_params(n_patients=2)
    a = generate_pelvis_cohort(p, tmp_path / "a")
    b = generate_pelvis_cohort(p, tmp_path / "b", jobs=2)  # patients written by two processes
    assert tree_hash(a) == tree_hash(b)
    assert is_up_to_date(a, p)
    assert not is_up_to_date(a, {**p, "seed": p["seed"] + 1})
    c = generate_pelvis_cohort({**p, "seed": p["seed"] + 1}, tmp_path / "c")
    assert tree_hash(c) != tree_hash(a)


def test_phenomena_tumour_isodense_on_ct_hot_on_pet_bladder_hottest():
    p = tiny_pelvis_params()
    p.update(pet_counts_per_suv=0, ct_noise_hu=0.0)
    patient = simulate_patient(0, p, seed=1)
    ct = sitk.GetArrayFromImage(patient.ct_hu)
    label = sitk.GetArrayFromImage(patient.label)
    tumour = label == LABEL_TUMOUR
    assert tumour.sum() > 5
    # near-isodense: the tumour differs from the cervix/uterus value by the small delta only
    delta = patient.lesions[0]["ct_delta_hu"]
    assert abs(np.median(ct[tumour]) - (p["hu"]["uterus"] + delta)) < 1.0 and delta <= p["tumour_ct_delta_hu"][1]
    pet = sitk.GetArrayFromImage(patient.pet_suv)
    assert pet.max() >= 0.8 * patient.organs["bladder"]["suv"]  # the bladder is the hottest thing
    pet_on_ct = sitk.GetArrayFromImage(resample_to_reference(patient.pet_suv, patient.ct_hu))
    body = ct > -500
    assert np.percentile(pet_on_ct[tumour], 90) > 2 * np.median(pet_on_ct[body])
    assert set(patient.pet_to_ct_truth) >= {"translation_mm", "angles_rad", "center_mm"}


def test_pet_dicom_carries_every_suv_tag(pelvis_cohort):
    path = next(pelvis_cohort.rglob("PET/0001.dcm"))
    ds = pydicom.dcmread(path)
    assert ds.Modality == "PT" and ds.Units == "BQML" and ds.DecayCorrection == "START"
    assert {"ATTN", "DECY"} <= set(ds.CorrectedImage)
    drug = ds.RadiopharmaceuticalInformationSequence[0]
    for tag in ("RadiopharmaceuticalStartDateTime", "RadionuclideTotalDose", "RadionuclideHalfLife"):
        assert getattr(drug, tag)
    assert float(ds.PatientWeight) > 0 and ds.SeriesTime and ds.PatientName and ds.PatientBirthDate
