"""The ingested case: the one domain object every later stage reads.

A :class:`Case` holds pseudonymous identifiers, CT (HU) and PET (SUVbw, own grid) as
``SimpleITK.Image``, the lesion label on the CT grid, and the evaluation-only truth when
the data are simulated. On disk a case is a folder in the nnU-Net spirit: one file per
channel, all readable by any NIfTI tool::

    <case_id>/ct.nii.gz  pt.nii.gz  label_ct.nii.gz  case.json  [truth.json]

(one ``<modality>.nii.gz`` per modality, one ``label_<modality>.nii.gz`` per labelled one).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk


@dataclass
class Case:
    case_id: str
    patient: str  # pseudonymous patient ID, for patient-level splits
    images: dict[str, sitk.Image]  # modality name ("CT", "PT", "MR") -> image
    labels: dict[str, sitk.Image] = field(default_factory=dict)  # modality -> label on its grid
    truth: dict[str, Any] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def ct(self) -> sitk.Image:
        return self.images["CT"]

    @property
    def pet(self) -> sitk.Image:
        return self.images["PT"]

    @property
    def label(self) -> sitk.Image | None:
        """The CT-grid lesion label (Part 1's reference label)."""
        return self.labels.get("CT")

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for modality, image in self.images.items():
            sitk.WriteImage(image, str(folder / f"{modality.lower()}.nii.gz"), useCompression=True)
        for modality, label in self.labels.items():
            sitk.WriteImage(label, str(folder / f"label_{modality.lower()}.nii.gz"), useCompression=True)
        record = {"case_id": self.case_id, "patient": self.patient, "modalities": sorted(self.images),
                  "labelled": sorted(self.labels), "meta": self.meta}
        (folder / "case.json").write_text(json.dumps(record, indent=1, sort_keys=True))
        if self.truth is not None:
            (folder / "truth.json").write_text(json.dumps(self.truth, indent=1, sort_keys=True))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "Case":
        folder = Path(folder)
        record = json.loads((folder / "case.json").read_text())
        images = {m: sitk.ReadImage(str(folder / f"{m.lower()}.nii.gz")) for m in record["modalities"]}
        labels = {m: sitk.ReadImage(str(folder / f"label_{m.lower()}.nii.gz")) for m in record["labelled"]}
        truth_path = folder / "truth.json"
        return cls(
            case_id=record["case_id"], patient=record["patient"], images=images, labels=labels,
            truth=json.loads(truth_path.read_text()) if truth_path.exists() else None,
            meta=record.get("meta", {}),
        )


def load_cases(ingest_dir: str | Path) -> list[Case]:
    """Every case under ``<ingest_dir>/cases``, sorted by case ID."""
    folders = sorted(p.parent for p in Path(ingest_dir, "cases").glob("*/case.json"))
    return [Case.load(f) for f in folders]


def same_grid(a: sitk.Image, b: sitk.Image, *, tolerance_mm: float = 1e-3) -> bool:
    """True when two images share size, spacing, origin and direction."""
    return (
        a.GetSize() == b.GetSize()
        and np.allclose(a.GetSpacing(), b.GetSpacing(), atol=tolerance_mm)
        and np.allclose(a.GetOrigin(), b.GetOrigin(), atol=tolerance_mm)
        and np.allclose(a.GetDirection(), b.GetDirection(), atol=1e-5)
    )
