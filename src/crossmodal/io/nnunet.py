"""Write cases in the nnU-Net raw dataset layout (``documentation/dataset_format.md``).

One file per channel with a 4-digit channel suffix, all channels on the CT grid::

    Dataset<ID>_<Name>/imagesTr/<case>_0000.nii.gz   CT (HU)
                       imagesTr/<case>_0001.nii.gz   PET (SUVbw) resampled onto the CT grid
                       labelsTr/<case>.nii.gz        lesion labels 0..n
                       dataset.json
"""

from __future__ import annotations

import json
from pathlib import Path

import SimpleITK as sitk

from crossmodal.io.case import Case
from crossmodal.io.geometry import resample_to_reference


def write_nnunet_dataset(cases: list[Case], out_dir: str | Path, *, dataset_id: int, name: str,
                         label_names: dict[int, str]) -> Path:
    """Export Part 1 cases; PET goes through patient coordinates onto the CT grid (linear)."""
    root = Path(out_dir) / f"Dataset{int(dataset_id):03d}_{name}"
    (root / "imagesTr").mkdir(parents=True, exist_ok=True)
    (root / "labelsTr").mkdir(parents=True, exist_ok=True)
    for case in cases:
        sitk.WriteImage(case.ct, str(root / "imagesTr" / f"{case.case_id}_0000.nii.gz"), useCompression=True)
        pet_on_ct = resample_to_reference(case.pet, case.ct)
        sitk.WriteImage(pet_on_ct, str(root / "imagesTr" / f"{case.case_id}_0001.nii.gz"), useCompression=True)
        sitk.WriteImage(case.label, str(root / "labelsTr" / f"{case.case_id}.nii.gz"), useCompression=True)
    labels = {"background": 0, **{str(v): int(k) for k, v in sorted(label_names.items(), key=lambda kv: int(kv[0]))}}
    dataset = {
        "channel_names": {"0": "CT", "1": "PET"},
        "labels": labels,
        "numTraining": len(cases),
        "file_ending": ".nii.gz",
        "name": name,
        "description": "PET resampled onto the CT grid through DICOM geometry (no registration)",
    }
    (root / "dataset.json").write_text(json.dumps(dataset, indent=1))
    return root
