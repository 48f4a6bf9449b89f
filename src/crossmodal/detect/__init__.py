"""2-D lesion detection: dataset export, offline ultralytics setup, detector training.

Modules are imported on demand so that ``import crossmodal.detect`` does not pull in
torch or ultralytics:

- :mod:`crossmodal.detect.env` — :func:`~crossmodal.detect.env.configure_ultralytics` (offline setup; call it
  before anything imports ``ultralytics``).
- :mod:`crossmodal.detect.dataset` — boxes from masks, 3-D lesion labels, patient split,
  slice sampling.
- :mod:`crossmodal.detect.export` — YOLO / COCO export and readers.
- :mod:`crossmodal.detect.train` — ``DETECTORS`` registry, :func:`~crossmodal.detect.train.train_detector`,
  :func:`~crossmodal.detect.train.predict`.

Metrics live in :mod:`crossmodal.detect.metrics` (inputs and COCO matching in
:mod:`crossmodal.detect.matching`).
"""

from __future__ import annotations

import importlib

__all__ = [
    "DETECTORS",
    "SliceRecord",
    "TrainedDetector",
    "boxes_from_mask",
    "configure_ultralytics",
    "export_coco",
    "export_yolo",
    "label_lesions_3d",
    "load_detector",
    "patient_split",
    "predict",
    "read_split",
    "read_yolo_labels",
    "sample_slices",
    "train_detector",
]

_WHERE = {
    "configure_ultralytics": "env",
    "SliceRecord": "dataset",
    "boxes_from_mask": "dataset",
    "export_coco": "export",
    "export_yolo": "export",
    "label_lesions_3d": "dataset",
    "patient_split": "dataset",
    "read_split": "export",
    "read_yolo_labels": "export",
    "sample_slices": "dataset",
    "DETECTORS": "train",
    "TrainedDetector": "train",
    "load_detector": "train",
    "predict": "train",
    "train_detector": "train",
}


def __getattr__(name: str):
    # Lazy: the train module imports torch, which costs seconds.
    if name in _WHERE:
        module = importlib.import_module(f"{__name__}.{_WHERE[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
