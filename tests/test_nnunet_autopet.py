"""nnU-Net raw layout export and the autoPET NIfTI reader."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from crossmodal.io.autopet import find_autopet_studies
from crossmodal.io.autopet import read_autopet_study
from crossmodal.io.case import load_cases
from crossmodal.io.errors import IngestError
from crossmodal.io.errors import LabelGridMismatchError
from crossmodal.io.geometry import resample_to_reference
from crossmodal.io.nnunet import write_nnunet_dataset


def test_nnunet_layout(ingested, tmp_path):
    cases = load_cases(ingested)
    root = write_nnunet_dataset(cases, tmp_path, dataset_id=501, name="Pelvis",
                                label_names={1: "cervical_tumour", 2: "lymph_node"})
    assert root.name == "Dataset501_Pelvis"
    dataset = json.loads((root / "dataset.json").read_text())
    assert dataset["channel_names"] == {"0": "CT", "1": "PET"}
    assert dataset["labels"] == {"background": 0, "cervical_tumour": 1, "lymph_node": 2}
    assert dataset["numTraining"] == len(cases)
    for case in cases:
        ct = sitk.ReadImage(str(root / "imagesTr" / f"{case.case_id}_0000.nii.gz"))
        pet = sitk.ReadImage(str(root / "imagesTr" / f"{case.case_id}_0001.nii.gz"))
        label = sitk.ReadImage(str(root / "labelsTr" / f"{case.case_id}.nii.gz"))
        for image in (pet, label):  # every channel on the same grid, as nnU-Net requires
            assert image.GetSize() == ct.GetSize()
            np.testing.assert_allclose(image.GetOrigin(), ct.GetOrigin(), atol=1e-4)
            np.testing.assert_allclose(image.GetSpacing(), ct.GetSpacing(), atol=1e-5)
        assert sitk.GetArrayFromImage(pet).max() > 1.0  # SUV, not [0, 1]
        assert set(np.unique(sitk.GetArrayFromImage(label))) <= {0, 1, 2}


def write_autopet(case, folder):
    folder.mkdir(parents=True)
    ct_res = resample_to_reference(case.ct, case.pet, default_value=-1024.0)
    seg = resample_to_reference(case.label, case.pet, interpolator="nearest")
    sitk.WriteImage(ct_res, str(folder / "CTres.nii.gz"))
    sitk.WriteImage(case.pet, str(folder / "SUV.nii.gz"))
    sitk.WriteImage(sitk.Cast(seg > 0, sitk.sitkUInt8), str(folder / "SEG.nii.gz"))


def test_autopet_reader_round_trip(ingested, tmp_path):
    cases = load_cases(ingested)
    for i, case in enumerate(cases[:2]):
        write_autopet(case, tmp_path / f"PETCT_{i:04d}" / "01-01-2001-NA-PET-CT")
    studies = find_autopet_studies(tmp_path)
    assert len(studies) == 2
    case = read_autopet_study(studies[0], salt="s")
    assert set(case.images) == {"CT", "PT"}
    assert case.label.GetSize() == case.ct.GetSize() == case.pet.GetSize()
    assert sitk.GetArrayFromImage(case.label).sum() > 0
    assert "PETCT_0000" not in case.case_id and case.case_id == read_autopet_study(studies[0], salt="s").case_id


def test_autopet_reader_errors(ingested, tmp_path):
    case = load_cases(ingested)[0]
    folder = tmp_path / "p" / "s"
    write_autopet(case, folder)
    (folder / "SEG.nii.gz").unlink()
    with pytest.raises(IngestError, match="SEG.nii.gz"):
        read_autopet_study(folder, salt="s")
    write_autopet(case, tmp_path / "q" / "s")
    seg = sitk.ReadImage(str(tmp_path / "q" / "s" / "SEG.nii.gz"))
    seg.SetOrigin([o + 10 for o in seg.GetOrigin()])
    sitk.WriteImage(seg, str(tmp_path / "q" / "s" / "SEG.nii.gz"))
    with pytest.raises(LabelGridMismatchError, match="SEG.nii.gz"):
        read_autopet_study(tmp_path / "q" / "s", salt="s")
