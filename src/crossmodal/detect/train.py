"""Train 2-D lesion detectors from scratch and run them.

Every detector reads the same YOLO-format dataset written by
:func:`crossmodal.detect.export.export_yolo` (same files, same split), is trained
from random weights (nothing can be downloaded), and writes to its ``out_dir``:

- ``weights.pt`` — the selected checkpoint: the best validation AP50-95 epoch, as
  ultralytics' ``best.pt``, or the last epoch with the option ``val=False``;
- ``detector.json`` — the arguments, versions, per-epoch history and timings (where
  each epoch's time went: waiting for data, training steps, validation);
- ``dataset/`` — a view of the dataset made of symbolic links, so that the label
  caches ultralytics writes next to the labels land here and not in the (DVC-tracked)
  export folder; :func:`tidy_run_folder` removes it once the run is trained.

Families
--------
``yolov5u``, ``yolov8``, ``yolo11`` (scale ``n`` by default) and ``rtdetr`` (scale
``l``; heavy on CPU) are ultralytics models built from their YAML. ``fasterrcnn`` is
torchvision's Faster R-CNN with a ResNet-FPN backbone (scale ``n`` = ResNet-18, ``s`` =
ResNet-34, ``m`` = ResNet-50), trained by a small loop (:mod:`crossmodal.detect.fasterrcnn`;
the ultralytics family is in :mod:`crossmodal.detect.ultralytics_trainer`). Both families
reject options they do not know (:func:`check_options`), naming option and detector.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import numpy as np

from crossmodal.detect.env import configure_ultralytics
from crossmodal.detect.env import jsonable
from crossmodal.detect.env import library_versions
from crossmodal.detect.env import resolve_device
from crossmodal.detect.fasterrcnn import FASTERRCNN_DEFAULTS
from crossmodal.detect.fasterrcnn import load_fasterrcnn
from crossmodal.detect.fasterrcnn import predict_fasterrcnn
from crossmodal.detect.fasterrcnn import train_fasterrcnn
from crossmodal.detect.ultralytics_trainer import ULTRALYTICS_DEFAULTS
from crossmodal.detect.ultralytics_trainer import predict_ultralytics
from crossmodal.detect.ultralytics_trainer import train_ultralytics
from crossmodal.detect.ultralytics_trainer import ultralytics_class
from crossmodal.detect.ultralytics_trainer import ultralytics_options
from crossmodal.detect.yolo_folder import dataset_view

__all__ = [
    "DETECTORS",
    "DetectorSpec",
    "FASTERRCNN_DEFAULTS",
    "TrainedDetector",
    "ULTRALYTICS_DEFAULTS",
    "UnknownOptionError",
    "check_options",
    "dataset_view",
    "detector_options",
    "load_detector",
    "predict",
    "resolve_device",
    "tidy_run_folder",
    "train_detector",
]


@dataclass(frozen=True)
class DetectorSpec:
    """A detector family.

    Attributes
    ----------
    family : {'ultralytics', 'torchvision'}
    model : str
        Ultralytics model YAML with a ``{scale}`` field, or the torchvision builder name.
    default_scale : str
    scales : tuple of str
    """

    family: str
    model: str
    default_scale: str
    scales: tuple[str, ...]
    description: str = ""

    def config(self, scale: str | None = None) -> str:
        scale = scale or self.default_scale
        if scale not in self.scales:
            raise ValueError(f"scale {scale!r} not in {self.scales}")
        return self.model.format(scale=scale)


#: Every detector :func:`train_detector` knows, by registry key.
DETECTORS: dict[str, DetectorSpec] = {
    # ultralytics maps yolov5n.yaml to its anchor-free "v5u" head (cfg/models/v5/yolov5.yaml).
    "yolov5u": DetectorSpec("ultralytics", "yolov5{scale}.yaml", "n", tuple("nsmlx"), "YOLOv5u"),
    "yolov8": DetectorSpec("ultralytics", "yolov8{scale}.yaml", "n", tuple("nsmlx"), "YOLOv8"),
    "yolo11": DetectorSpec("ultralytics", "yolo11{scale}.yaml", "n", tuple("nsmlx"), "YOLO11"),
    "rtdetr": DetectorSpec("ultralytics", "rtdetr-{scale}.yaml", "l", ("l", "x"), "RT-DETR"),
    "fasterrcnn": DetectorSpec(
        "torchvision", "fasterrcnn_{scale}", "n", ("n", "s", "m"), "Faster R-CNN, ResNet-FPN"
    ),
}


class UnknownOptionError(ValueError, TypeError):
    """A trainer option the detector family does not know (a misspelt key, usually).

    A ``ValueError`` naming the option and the detector; also a ``TypeError``, as an
    unexpected keyword argument would be.
    """


def detector_options(name: str, *, config_dir: str | os.PathLike | None = None) -> tuple[str, ...]:
    """The options ``train_detector(name, ..., **options)`` accepts beyond its named arguments.

    Ultralytics family: the keys of ultralytics' default training config
    (``ultralytics.cfg.DEFAULT_CFG_DICT``; ultralytics is configured offline first, with
    ``config_dir``). Faster R-CNN: the keys of :data:`~crossmodal.detect.fasterrcnn.FASTERRCNN_DEFAULTS`.
    """
    spec = _spec(name)
    if spec.family == "ultralytics":
        return ultralytics_options(config_dir)
    return tuple(sorted(FASTERRCNN_DEFAULTS))


def check_options(name: str, options: Mapping, *, config_dir: str | os.PathLike | None = None) -> None:
    """Raise :class:`UnknownOptionError` naming the first option ``name`` does not know."""
    known = detector_options(name, config_dir=config_dir)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise UnknownOptionError(
            f"detector {name!r} has no option {unknown[0]!r}"
            + (f" (nor {', '.join(map(repr, unknown[1:]))})" if len(unknown) > 1 else "")
            + f"; its options: {', '.join(known)}"
        )


def _spec(name: str) -> DetectorSpec:
    if name not in DETECTORS:
        raise KeyError(f"unknown detector {name!r}; choose from {sorted(DETECTORS)}")
    return DETECTORS[name]


@dataclass
class TrainedDetector:
    """A trained detector on disk (see module docstring for the files).

    Attributes
    ----------
    name : str
        Registry key in :data:`DETECTORS`.
    out_dir : pathlib.Path
    weights : pathlib.Path
    imgsz : int
    class_names : list of str
    record : dict
        Contents of ``detector.json``.
    """

    name: str
    out_dir: Path
    weights: Path
    imgsz: int
    class_names: list[str]
    record: dict = field(default_factory=dict)
    _model: Any = field(default=None, repr=False, compare=False)

    @property
    def family(self) -> str:
        return DETECTORS[self.name].family


# --------------------------------------------------------------------------- training


def train_detector(
    name: str,
    data_yaml: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    epochs: int,
    imgsz: int,
    batch: int,
    seed: int,
    device: str | None = None,
    workers: int = 0,
    scale: str | None = None,
    config_dir: str | os.PathLike | None = None,
    isolate_cache: bool = True,
    **kw,
) -> TrainedDetector:
    """Train a detector from scratch on a YOLO-format dataset.

    Parameters
    ----------
    name : str
        Key of :data:`DETECTORS`: ``yolov5u``, ``yolov8``, ``yolo11``, ``rtdetr``,
        ``fasterrcnn``.
    data_yaml : path-like
        ``data.yaml`` from :func:`~crossmodal.detect.export.export_yolo`.
    out_dir : path-like
        Output folder (created; previous ultralytics run files are overwritten).
    epochs, imgsz, batch, seed : int
        ``imgsz`` is the square network input (a multiple of 32).
    device : str, optional
        ``None`` = CUDA when available, else CPU; or ``'cpu'``, ``'cuda'``, ``'cuda:1'``.
    workers : int
        Data-loader worker processes (0 = in process, the most reproducible).
    scale : str, optional
        Model scale; default per family (``n``; RT-DETR ``l``).
    config_dir : path-like, optional
        Ultralytics config folder for :func:`~crossmodal.detect.env.configure_ultralytics`.
    isolate_cache : bool
        Train from a symbolic-link mirror in ``out_dir/dataset`` (see
        :func:`~crossmodal.detect.yolo_folder.dataset_view`).
    **kw
        Ultralytics: any ``model.train`` argument (e.g. ``lr0``, ``mosaic``,
        ``patience``; :data:`~crossmodal.detect.ultralytics_trainer.ULTRALYTICS_DEFAULTS` apply otherwise). Faster R-CNN: keys of
        :data:`~crossmodal.detect.fasterrcnn.FASTERRCNN_DEFAULTS`. Others raise :class:`UnknownOptionError`.

    Returns
    -------
    TrainedDetector

    Notes
    -----
    Seeds Python, NumPy and torch and turns on deterministic algorithms (warn-only:
    some CUDA kernels, e.g. ROI-align backward, have no deterministic version). On CPU
    with ``workers=0`` two runs with one seed give identical weights. Ultralytics
    always gets ``amp=False`` unless ``amp`` is passed: its AMP check downloads
    ``yolo11n.pt``, and half precision would change results between CPU and GPU.
    """
    spec = _spec(name)
    check_options(name, kw, config_dir=config_dir)
    out_dir = Path(out_dir).absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    source_yaml = Path(data_yaml).absolute()
    train_yaml = dataset_view(source_yaml, out_dir / "dataset") if isolate_cache else source_yaml
    device = resolve_device(device)
    scale = scale or spec.default_scale
    common = dict(epochs=epochs, imgsz=imgsz, batch=batch, seed=seed, device=device, workers=workers, **kw)
    record = _run_record(name, spec, scale, source_yaml, common)
    start = time.perf_counter()
    if spec.family == "ultralytics":
        result = train_ultralytics(spec.config(scale), train_yaml, out_dir, config_dir=config_dir,
                                   **common)
    else:
        result = train_fasterrcnn(train_yaml, out_dir, scale=scale, **common)
    record.update(result)
    record["train_seconds"] = time.perf_counter() - start
    record["weights"] = "weights.pt"
    record["versions"] = library_versions()
    (out_dir / "detector.json").write_text(json.dumps(jsonable(record), indent=2))
    return load_detector(out_dir)


def _run_record(name: str, spec: DetectorSpec, scale: str, source_yaml: Path, common: Mapping) -> dict:
    """The first fields of ``detector.json``: what was asked for."""
    return {
        "name": name,
        "family": spec.family,
        "model": spec.config(scale),
        "scale": scale,
        "data_yaml": str(source_yaml),
        "epochs": int(common["epochs"]),
        "imgsz": int(common["imgsz"]),
        "batch": int(common["batch"]),
        "seed": int(common["seed"]),
        "device": common["device"],
        "workers": int(common["workers"]),
    }


def load_detector(out_dir: str | os.PathLike) -> TrainedDetector:
    """Re-open a detector written by :func:`train_detector`."""
    out_dir = Path(out_dir).absolute()
    record = json.loads((out_dir / "detector.json").read_text())
    return TrainedDetector(
        name=record["name"],
        out_dir=out_dir,
        weights=out_dir / record["weights"],
        imgsz=int(record["imgsz"]),
        class_names=list(record["class_names"]),
        record=record,
    )


def tidy_run_folder(out_dir: str | os.PathLike) -> None:
    """Drop what a trained run does not need afterwards: the symbolic-link dataset view
    (a pipeline that records the folder would hash and store every image again through
    it) and ultralytics' duplicate checkpoints (``weights.pt`` is the selected one)."""
    out_dir = Path(out_dir)
    shutil.rmtree(out_dir / "dataset", ignore_errors=True)
    shutil.rmtree(out_dir / "ultralytics" / "weights", ignore_errors=True)


# --------------------------------------------------------------------------- inference


def predict(
    detector: TrainedDetector,
    image_paths: Sequence[str | os.PathLike],
    *,
    conf: float = 0.001,
    batch: int = 16,
    max_det: int = 300,
    iou: float = 0.7,
    device: str | None = None,
    imgsz: int | Sequence[int] | None = None,
) -> list[np.ndarray]:
    """Run a trained detector on image files.

    Parameters
    ----------
    detector : TrainedDetector
    image_paths : sequence of path-like
        Images as written by ``export_yolo`` (same channels and size as in training).
    conf : float
        Minimum score kept (low, so that AP sees the whole curve).
    batch : int
    max_det : int
        Per image.
    iou : float
        NMS IoU (ultralytics YOLO only; Faster R-CNN uses its built-in 0.5 per class,
        RT-DETR has no NMS).
    device : str, optional
        As in :func:`train_detector`.
    imgsz : int or (height, width), optional
        Network input for these images (ultralytics YOLO only; a fully convolutional
        detector trained on tiles reads whole slices at the tiles' magnification);
        default: the training size.

    Returns
    -------
    list of (n_i, 6) float arrays
        ``x0, y0, x1, y1, score, class`` per image, in the image's own pixel coordinates
        (pixel-edge convention), sorted by decreasing score.
    """
    device = resolve_device(device)
    paths = [str(Path(p)) for p in image_paths]
    if not paths:
        return []
    if detector.family == "ultralytics":
        configure_ultralytics()
        if detector._model is None:
            model_cls = ultralytics_class(DETECTORS[detector.name].model)
            detector._model = model_cls(str(detector.weights))
        size = detector.imgsz if imgsz is None else imgsz
        return predict_ultralytics(detector._model, paths, conf=conf, iou=iou, imgsz=size,
                                   max_det=max_det, device=device, batch=batch)
    if detector._model is None:
        detector._model = load_fasterrcnn(detector.record, detector.weights)
    model = detector._model.to(device)
    model.roi_heads.detections_per_img = max_det
    return predict_fasterrcnn(model, paths, conf=conf, batch=batch, device=device)
