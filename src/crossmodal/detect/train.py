"""Train 2-D lesion detectors from scratch and run them.

Every detector reads the same YOLO-format dataset written by
:func:`crossmodal.detect.dataset.export_yolo` (same files, same split), is trained
from random weights (nothing can be downloaded), and writes to its ``out_dir``:

- ``weights.pt`` — the selected checkpoint (best validation AP50-95, as ultralytics'
  ``best.pt``);
- ``detector.json`` — the arguments, versions, per-epoch history and timings;
- ``dataset/`` — a view of the dataset made of symbolic links, so that the label
  caches ultralytics writes next to the labels land here and not in the (DVC-tracked)
  export folder.

Families
--------
``yolov5u``, ``yolov8``, ``yolo11`` (scale ``n`` by default) and ``rtdetr`` (scale
``l``; heavy on CPU) are ultralytics models built from their YAML. ``fasterrcnn`` is
torchvision's Faster R-CNN with a ResNet-FPN backbone (scale ``n`` = ResNet-18, ``s`` =
ResNet-34, ``m`` = ResNet-50), trained by a small loop here.
"""

from __future__ import annotations

import json
import math
import os
import platform
import random
import shutil
import time
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import numpy as np

from crossmodal.detect.dataset import SPLITS
from crossmodal.detect.env import configure_ultralytics

__all__ = [
    "DETECTORS",
    "DetectorSpec",
    "FASTERRCNN_DEFAULTS",
    "TrainedDetector",
    "ULTRALYTICS_DEFAULTS",
    "dataset_view",
    "load_detector",
    "predict",
    "resolve_device",
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

_RESNET_OF_SCALE = {"n": "resnet18", "s": "resnet34", "m": "resnet50"}

#: Ultralytics overrides applied unless given in ``**kw``. Hue and saturation jitter
#: mix the channels, which here are modalities (CT, PET, fused), not colours.
ULTRALYTICS_DEFAULTS: dict[str, Any] = {"hsv_h": 0.0, "hsv_s": 0.0}

#: Faster R-CNN training options (overridable through ``**kw``).
FASTERRCNN_DEFAULTS: dict[str, Any] = {
    "optimizer": "sgd",  # 'sgd' or 'adamw'
    "lr0": 0.01,  # 'adamw': 1e-3 is a sensible start
    "lrf": 0.01,  # final lr = lr0 * lrf (cosine)
    "momentum": 0.9,
    "weight_decay": 1e-4,
    "warmup_epochs": 1.0,
    "fliplr": 0.5,
    "grad_clip": 10.0,
    "val": True,
    # Hours of training (as ultralytics' ``time``): overrides ``epochs``; after the first
    # epoch the run is re-planned to the epochs that fit, cosine schedule included.
    "time": None,
    # Anchor sizes in pixels per FPN level P2..P6 (strides 4..64): 2 and 3 strides.
    # torchvision's 32..512 px defaults suit 800-px photos, not 5-40 px lesions.
    "anchor_sizes": ((8, 12), (16, 24), (32, 48), (64, 96), (128, 192)),
    "max_det": 300,
    "fpn_channels": 128,
    "representation": 256,  # box-head MLP width
    "rois_per_image": 64,  # sampled RoIs per image for the box-head loss (CPU cost)
}
_MODEL_OPTIONS = ("anchor_sizes", "max_det", "fpn_channels", "representation", "rois_per_image")


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


# --------------------------------------------------------------------------- helpers


def resolve_device(device: str | None = None) -> str:
    """``None``/``'auto'`` -> ``'cuda'`` if available else ``'cpu'``; otherwise unchanged."""
    import torch

    if device in (None, "auto", ""):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


def _ultralytics_device(device: str) -> str:
    # ultralytics wants '0' / '0,1' / 'cpu'; 'cuda' alone means the first GPU.
    if device == "cuda":
        return "0"
    return device.replace("cuda:", "")


def _seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _read_yaml(path: Path) -> dict:
    import yaml

    with open(path) as fh:
        return yaml.safe_load(fh)


# ultralytics.data.utils.IMG_FORMATS, copied: importing ultralytics here would fix its
# config folder before configure_ultralytics() runs.
_IMG_FORMATS = {
    "avif",
    "bmp",
    "dng",
    "heic",
    "heif",
    "jp2",
    "jpeg",
    "jpg",
    "mpo",
    "png",
    "tif",
    "tiff",
    "webp",
}


def _split_images(data: Mapping, split: str) -> list[Path]:
    if not data.get(split):
        return []
    folder = Path(data["path"]) / data[split]
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.suffix.lower().lstrip(".") in _IMG_FORMATS)


def _label_path(image_path: Path) -> Path:
    # ultralytics' rule (data/utils.py::img2label_paths): last /images/ -> /labels/, .txt
    head, _, tail = str(image_path).rpartition(f"{os.sep}images{os.sep}")
    return Path(f"{head}{os.sep}labels{os.sep}{tail}").with_suffix(".txt")


def dataset_view(data_yaml: str | os.PathLike, view_dir: str | os.PathLike) -> Path:
    """Mirror a YOLO dataset as symbolic links and return the mirror's ``data.yaml``.

    Ultralytics writes ``labels/<split>.cache`` beside the labels; training from the
    mirror keeps the source folder (a DVC output of the export stage) unchanged.
    Falls back to copying where links are not allowed.
    """
    import yaml

    data_yaml = Path(data_yaml).absolute()
    data = _read_yaml(data_yaml)
    root = Path(data.get("path") or data_yaml.parent)
    if not root.is_absolute():
        root = (data_yaml.parent / root).resolve()
    data["path"] = str(root)
    view = Path(view_dir).absolute()
    if view.exists():
        shutil.rmtree(view)
    for split in SPLITS:
        if not data.get(split):
            continue
        rel = Path(data[split])
        for image in _split_images(data, split):
            label = _label_path(image)
            inner = image.relative_to(root / rel)
            targets = [(image, view / rel / inner)]
            if label.exists():
                label_rel = _label_path(view / rel / inner)
                targets.append((label, label_rel))
            for source, target in targets:
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.symlink(source, target)
                except OSError:
                    shutil.copyfile(source, target)
        (view / rel).mkdir(parents=True, exist_ok=True)  # empty splits stay valid
    data["path"] = str(view)
    out = view / "data.yaml"
    out.write_text(
        f"# Link mirror of {data_yaml} (label caches land here)\n"
        + yaml.safe_dump(data, sort_keys=False)
    )
    return out


def _versions() -> dict:
    import torch
    import torchvision

    import crossmodal

    out = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "crossmodal": crossmodal.__version__,
    }
    try:
        from importlib.metadata import version

        out["ultralytics"] = version("ultralytics")
    except Exception:  # pragma: no cover - not installed
        pass
    return out


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return value


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
        ``data.yaml`` from :func:`~crossmodal.detect.dataset.export_yolo`.
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
        :func:`dataset_view`).
    **kw
        Ultralytics: any ``model.train`` argument (e.g. ``lr0``, ``mosaic``,
        ``patience``; :data:`ULTRALYTICS_DEFAULTS` apply otherwise). Faster R-CNN: keys of
        :data:`FASTERRCNN_DEFAULTS`.

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
    if name not in DETECTORS:
        raise KeyError(f"unknown detector {name!r}; choose from {sorted(DETECTORS)}")
    spec = DETECTORS[name]
    out_dir = Path(out_dir).absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    source_yaml = Path(data_yaml).absolute()
    train_yaml = dataset_view(source_yaml, out_dir / "dataset") if isolate_cache else source_yaml
    device = resolve_device(device)
    scale = scale or spec.default_scale
    record = {
        "name": name,
        "family": spec.family,
        "model": spec.config(scale),
        "scale": scale,
        "data_yaml": str(source_yaml),
        "epochs": int(epochs),
        "imgsz": int(imgsz),
        "batch": int(batch),
        "seed": int(seed),
        "device": device,
        "workers": int(workers),
    }
    common = dict(epochs=epochs, imgsz=imgsz, batch=batch, seed=seed, device=device, workers=workers, **kw)
    start = time.perf_counter()
    if spec.family == "ultralytics":
        result = _train_ultralytics(spec, scale, train_yaml, out_dir, config_dir=config_dir, **common)
    else:
        result = _train_fasterrcnn(train_yaml, out_dir, scale=scale, **common)
    record.update(result)
    record["train_seconds"] = time.perf_counter() - start
    record["weights"] = "weights.pt"
    record["versions"] = _versions()
    (out_dir / "detector.json").write_text(json.dumps(_jsonable(record), indent=2))
    return load_detector(out_dir)


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


def _use_all_cpu_cores() -> None:
    # ultralytics pins CPU training to cpu_count - 1 threads (1 on a 2-core machine) at
    # every select_device(); a training job owns its share of the machine (every core,
    # unless runs train side by side), so let torch use all of it.
    import ultralytics.utils.torch_utils as torch_utils

    from crossmodal.parallel import cpu_threads

    torch_utils.NUM_THREADS = cpu_threads()


def _ultralytics_class(spec: DetectorSpec):
    _use_all_cpu_cores()
    if spec.model.startswith("rtdetr"):
        from ultralytics import RTDETR

        return RTDETR
    from ultralytics import YOLO

    return YOLO


def _train_ultralytics(
    spec,
    scale,
    data_yaml,
    out_dir,
    *,
    epochs,
    imgsz,
    batch,
    seed,
    device,
    workers,
    config_dir,
    **kw,
) -> dict:
    configure_ultralytics(config_dir)
    model_cls = _ultralytics_class(spec)
    _seed_everything(seed)
    model = model_cls(spec.config(scale))
    args = dict(ULTRALYTICS_DEFAULTS)
    args.update(
        data=str(data_yaml),
        epochs=int(epochs),
        imgsz=int(imgsz),
        batch=int(batch),
        seed=int(seed),
        deterministic=True,
        device=_ultralytics_device(device),
        workers=int(workers),
        amp=False,
        project=str(out_dir),  # absolute, or ultralytics nests it under runs/detect
        name="ultralytics",
        exist_ok=True,
        plots=False,
        pretrained=False,
        verbose=False,
    )
    args.update(kw)
    epoch_seconds: list[float] = []
    clock = {}
    # Training time per epoch without validation, comparable with Faster R-CNN's.
    model.add_callback(
        "on_train_epoch_start", lambda tr: clock.__setitem__("t", time.perf_counter())
    )
    model.add_callback(
        "on_train_epoch_end", lambda tr: epoch_seconds.append(time.perf_counter() - clock["t"])
    )
    model.train(**args)
    trainer = model.trainer
    best = Path(trainer.best) if Path(trainer.best).exists() else Path(trainer.last)
    shutil.copyfile(best, out_dir / "weights.pt")
    history = []
    results_csv = Path(trainer.save_dir) / "results.csv"
    if results_csv.exists():
        import pandas as pd

        frame = pd.read_csv(results_csv)
        frame.columns = [c.strip() for c in frame.columns]
        history = frame.to_dict(orient="records")
        for row, seconds in zip(history, epoch_seconds):
            row["train_seconds"] = seconds
    data = _read_yaml(Path(data_yaml))
    names = data["names"]
    names = [names[k] for k in sorted(names)] if isinstance(names, dict) else list(names)
    return {
        "train_args": {k: v for k, v in args.items() if k not in ("data", "project")},
        "class_names": names,
        "channels": int(data.get("channels", 3)),
        "selected": best.name,
        "history": history,
    }


# --------------------------------------------------------------------------- Faster R-CNN


def _read_image(path: Path) -> np.ndarray:
    """(H, W, C) float32 in [0, 1]; PNG channels in (R, G, B) = model channel order."""
    import cv2

    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        image = tifffile.imread(path)
        if image.ndim == 3 and image.shape[-1] != 3:  # pages = channels (see export_yolo)
            image = np.moveaxis(image, 0, -1)
    else:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise OSError(f"cannot read {path}")
        if image.ndim == 3 and image.shape[2] == 3:
            image = image[..., ::-1]
    if image.ndim == 2:
        image = image[..., None]
    scale = float(np.iinfo(image.dtype).max) if image.dtype.kind in "ui" else 1.0
    return np.ascontiguousarray(image, dtype=np.float32) / np.float32(scale)


class _YoloDataset:
    """Torch dataset over one split of a YOLO-format folder (pixel xyxy targets)."""

    def __init__(self, data: Mapping, split: str, *, fliplr: float = 0.0, seed: int = 0):
        from crossmodal.detect.dataset import read_yolo_labels

        self.images = _split_images(data, split)
        self.fliplr = fliplr
        self.seed = seed
        self.epoch = 0
        self._labels = []
        for image in self.images:
            h, w = _image_size(image)
            boxes, classes = read_yolo_labels(_label_path(image), w, h)
            self._labels.append((boxes.astype(np.float32), classes))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        import torch

        image = _read_image(self.images[i])
        boxes, classes = self._labels[i]
        boxes = boxes.copy()
        # Flip decision from (seed, epoch, index): independent of worker scheduling.
        rng = np.random.default_rng((self.seed, self.epoch, i))
        if self.fliplr and rng.random() < self.fliplr:
            image = image[:, ::-1]
            w = image.shape[1]
            boxes[:, [0, 2]] = w - boxes[:, [2, 0]]
        tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        target = {
            "boxes": torch.from_numpy(boxes).reshape(-1, 4),
            "labels": torch.from_numpy(classes.astype(np.int64) + 1),  # 0 = background
        }
        return tensor, target


def _image_size(path: Path) -> tuple[int, int]:
    image = _read_image(path)
    return image.shape[0], image.shape[1]


def _collate(batch):
    return tuple(zip(*batch))


def _build_fasterrcnn(
    *,
    num_classes: int,
    channels: int,
    imgsz: int,
    scale: str,
    anchor_sizes: Sequence[Sequence[int]],
    max_det: int,
    fpn_channels: int = 128,
    representation: int = 256,
    rois_per_image: int = 64,
):
    import torch.nn as nn
    import torchvision
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
    from torchvision.models.detection.faster_rcnn import TwoMLPHead
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

    # From scratch: trainable BatchNorm (the default FrozenBatchNorm2d only suits
    # pretrained weights), all stages trainable.
    body = getattr(torchvision.models, _RESNET_OF_SCALE[scale])(
        weights=None, norm_layer=nn.BatchNorm2d
    )
    if channels != 3:
        body.conv1 = nn.Conv2d(channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    stage2 = body.inplanes // 8
    backbone = BackboneWithFPN(
        body,
        return_layers={"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"},
        in_channels_list=[stage2 * 2**i for i in range(4)],
        out_channels=fpn_channels,
        extra_blocks=LastLevelMaxPool(),
    )
    sizes = tuple(tuple(int(v) for v in level) for level in anchor_sizes)
    anchors = AnchorGenerator(sizes=sizes, aspect_ratios=((0.5, 1.0, 2.0),) * len(sizes))
    # torchvision's box head (256 x 7 x 7 -> 1024, 512 RoIs per image) is sized for
    # 800-px images and would dominate the cost on 128-256 px slices.
    box_head = TwoMLPHead(fpn_channels * 7 * 7, representation)
    return FasterRCNN(
        backbone,
        rpn_anchor_generator=anchors,
        box_head=box_head,
        box_predictor=FastRCNNPredictor(representation, num_classes + 1),
        min_size=imgsz,
        max_size=imgsz,
        # Same [0, 1] input as the YOLO models; BatchNorm does the rest.
        image_mean=[0.0] * channels,
        image_std=[1.0] * channels,
        rpn_pre_nms_top_n_train=1000,
        rpn_post_nms_top_n_train=1000,
        rpn_pre_nms_top_n_test=1000,
        rpn_post_nms_top_n_test=500,
        box_batch_size_per_image=rois_per_image,
        box_score_thresh=0.001,
        box_detections_per_img=max_det,
    )


def _fasterrcnn_from_record(record: Mapping):
    options = record["model_options"]
    return _build_fasterrcnn(
        num_classes=len(record["class_names"]),
        channels=int(record["channels"]),
        imgsz=int(record["imgsz"]),
        scale=record["scale"],
        **options,
    )


def _train_fasterrcnn(
    data_yaml, out_dir, *, scale, epochs, imgsz, batch, seed, device, workers, **kw
) -> dict:
    import torch
    from torch.utils.data import DataLoader

    unknown = set(kw) - set(FASTERRCNN_DEFAULTS)
    if unknown:
        raise TypeError(
            f"unknown Faster R-CNN options {sorted(unknown)}; known: {sorted(FASTERRCNN_DEFAULTS)}"
        )
    opts = {**FASTERRCNN_DEFAULTS, **kw}
    data = _read_yaml(Path(data_yaml))
    names = data["names"]
    names = [names[k] for k in sorted(names)] if isinstance(names, dict) else list(names)
    channels = int(data.get("channels", 3))
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before CUDA starts
    _seed_everything(seed)
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        train_set = _YoloDataset(data, "train", fliplr=float(opts["fliplr"]), seed=seed)
        val_set = _YoloDataset(data, "val") if opts["val"] else None
        if len(train_set) == 0:
            raise ValueError(f"no training images under {data['path']}/{data['train']}")
        generator = torch.Generator().manual_seed(seed)
        loader = DataLoader(
            train_set,
            batch_size=int(batch),
            shuffle=True,
            generator=generator,
            num_workers=int(workers),
            collate_fn=_collate,
        )
        model_options = {key: opts[key] for key in _MODEL_OPTIONS}
        model_options["anchor_sizes"] = [list(level) for level in model_options["anchor_sizes"]]
        model = _build_fasterrcnn(
            num_classes=len(names), channels=channels, imgsz=imgsz, scale=scale, **model_options
        ).to(device)
        params = [p for p in model.parameters() if p.requires_grad]
        if opts["optimizer"] == "sgd":
            optimizer = torch.optim.SGD(
                params, lr=opts["lr0"], momentum=opts["momentum"], weight_decay=opts["weight_decay"]
            )
        elif opts["optimizer"] == "adamw":
            optimizer = torch.optim.AdamW(params, lr=opts["lr0"], weight_decay=opts["weight_decay"])
        else:
            raise ValueError(f"optimizer must be 'sgd' or 'adamw', not {opts['optimizer']!r}")
        total = max(1, epochs * len(loader))
        warmup = min(total - 1, int(round(opts["warmup_epochs"] * len(loader))))

        def lr_factor(step: int) -> float:
            if step < warmup:
                return 0.001 + (1 - 0.001) * step / max(1, warmup)
            progress = (step - warmup) / max(1, total - warmup)
            return opts["lrf"] + (1 - opts["lrf"]) * 0.5 * (1 + math.cos(math.pi * progress))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
        history, best_fitness, best_state, best_epoch = [], -math.inf, None, None
        started, epoch = time.perf_counter(), 0
        while epoch < epochs:
            train_set.epoch = epoch
            model.train()
            tic = time.perf_counter()
            sums: dict[str, float] = {}
            for images, targets in loader:
                images = [im.to(device) for im in images]
                targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
                losses = model(images, targets)
                loss = sum(losses.values())
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"Faster R-CNN loss became {loss.item()} at epoch {epoch}; lower lr0 "
                        f"({opts['lr0']}) or use optimizer='adamw'"
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, opts["grad_clip"])
                optimizer.step()
                scheduler.step()
                for key, value in losses.items():
                    sums[key] = sums.get(key, 0.0) + float(value.detach()) * len(images)
            row = {"epoch": epoch + 1, "train_seconds": time.perf_counter() - tic}
            row.update({f"train/{k}": v / len(train_set) for k, v in sums.items()})
            row["lr"] = optimizer.param_groups[0]["lr"]
            fitness = float(epoch)  # without validation: keep the last epoch
            if val_set is not None and len(val_set):
                metrics = _validate(model, val_set, device=device)
                row.update(metrics)
                fitness = metrics["metrics/mAP50-95(B)"]
            history.append(row)
            if fitness >= best_fitness:  # ties -> later epoch, as ultralytics
                best_fitness, best_epoch = fitness, epoch + 1
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            epoch += 1
            if opts["time"]:
                budget, spent = float(opts["time"]) * 3600.0, time.perf_counter() - started
                if epoch == 1:  # re-plan: the epochs that fit, and the schedule over them
                    epochs = max(1, int(budget / spent))
                    total = max(1, epochs * len(loader))
                if spent >= budget:
                    break
        torch.save(
            {"model": best_state, "format": "crossmodal-fasterrcnn-1"}, out_dir / "weights.pt"
        )
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
    return {
        "train_args": _jsonable(opts),
        "model_options": model_options,
        "class_names": names,
        "channels": channels,
        "selected": f"epoch {best_epoch}",
        "history": history,
    }


def _validate(model, dataset: _YoloDataset, *, device) -> dict:
    from crossmodal.detect import metrics as ev

    detections = _fasterrcnn_predict(model, dataset.images, conf=0.001, batch=8, device=device)
    ids = [p.name for p in dataset.images]
    boxes = [lab[0] for lab in dataset._labels]
    classes = [lab[1] for lab in dataset._labels]
    gt = ev.ground_truth(ids, ids, boxes, classes=classes)
    preds = ev.predictions(ids, detections)
    return {
        "metrics/mAP50(B)": float(np.nan_to_num(ev.ap50(gt, preds))),
        "metrics/mAP50-95(B)": float(np.nan_to_num(ev.ap50_95(gt, preds))),
    }


def _fasterrcnn_predict(model, image_paths, *, conf, batch, device) -> list[np.ndarray]:
    import torch

    model.eval()
    model.roi_heads.score_thresh = conf
    out = []
    with torch.inference_mode():
        for start in range(0, len(image_paths), batch):
            chunk = image_paths[start : start + batch]
            tensors = [
                torch.from_numpy(np.ascontiguousarray(_read_image(Path(p)).transpose(2, 0, 1))).to(
                    device
                )
                for p in chunk
            ]
            for result in model(tensors):
                out.append(
                    np.column_stack(
                        [
                            result["boxes"].cpu().numpy().astype(np.float64).reshape(-1, 4),
                            result["scores"].cpu().numpy().astype(np.float64),
                            result["labels"].cpu().numpy().astype(np.float64) - 1,
                        ]
                    )
                )
    return out


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
            detector._model = _ultralytics_class(DETECTORS[detector.name])(str(detector.weights))
        out = []
        for start in range(0, len(paths), batch):
            results = detector._model.predict(
                paths[start : start + batch],
                conf=conf,
                iou=iou,
                imgsz=detector.imgsz,
                max_det=max_det,
                device=_ultralytics_device(device),
                verbose=False,
                batch=batch,
            )
            for r in results:
                boxes = r.boxes
                arr = np.column_stack(
                    [
                        boxes.xyxy.cpu().numpy().astype(np.float64).reshape(-1, 4),
                        boxes.conf.cpu().numpy().astype(np.float64),
                        boxes.cls.cpu().numpy().astype(np.float64),
                    ]
                )
                out.append(arr[np.argsort(-arr[:, 4], kind="stable")])
        return out
    import torch

    if detector._model is None:
        model = _fasterrcnn_from_record(detector.record)
        state = torch.load(detector.weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        detector._model = model
    model = detector._model.to(device)
    model.roi_heads.detections_per_img = max_det
    return _fasterrcnn_predict(model, paths, conf=conf, batch=batch, device=device)
