"""The Faster R-CNN family: torchvision's detector, trained from scratch by a small loop.

Reads the same YOLO-format folder as the ultralytics family (:mod:`crossmodal.detect.yolo_folder`)
and writes ``weights.pt`` with the best validation AP50-95 epoch (ties: the later one,
as ultralytics). Options: :data:`FASTERRCNN_DEFAULTS`.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from crossmodal.detect.env import jsonable
from crossmodal.detect.env import seed_everything
from crossmodal.detect.yolo_folder import class_names
from crossmodal.detect.yolo_folder import label_path
from crossmodal.detect.yolo_folder import read_yaml
from crossmodal.detect.yolo_folder import split_images

__all__ = [
    "FASTERRCNN_DEFAULTS",
    "MODEL_OPTIONS",
    "build_fasterrcnn",
    "fasterrcnn_from_record",
    "load_fasterrcnn",
    "predict_fasterrcnn",
    "read_image",
    "train_fasterrcnn",
]

_RESNET_OF_SCALE = {"n": "resnet18", "s": "resnet34", "m": "resnet50"}

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
MODEL_OPTIONS = ("anchor_sizes", "max_det", "fpn_channels", "representation", "rois_per_image")


def read_image(path: Path) -> np.ndarray:
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
        from crossmodal.detect.export import read_yolo_labels

        self.images = split_images(data, split)
        self.fliplr = fliplr
        self.seed = seed
        self.epoch = 0
        self._labels = []
        for image in self.images:
            h, w = _image_size(image)
            boxes, classes = read_yolo_labels(label_path(image), w, h)
            self._labels.append((boxes.astype(np.float32), classes))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        import torch

        image = read_image(self.images[i])
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
    image = read_image(path)
    return image.shape[0], image.shape[1]


def _collate(batch):
    return tuple(zip(*batch))


def build_fasterrcnn(
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
    """torchvision Faster R-CNN, ResNet-FPN backbone (scale n/s/m = ResNet-18/34/50), random weights."""
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


def fasterrcnn_from_record(record: Mapping):
    """An untrained Faster R-CNN with the architecture stored in a run record."""
    options = record["model_options"]
    return build_fasterrcnn(
        num_classes=len(record["class_names"]),
        channels=int(record["channels"]),
        imgsz=int(record["imgsz"]),
        scale=record["scale"],
        **options,
    )


def train_fasterrcnn(
    data_yaml, out_dir, *, scale, epochs, imgsz, batch, seed, device, workers, **kw
) -> dict:
    """Train Faster R-CNN from scratch; ``kw`` overrides :data:`FASTERRCNN_DEFAULTS`.

    Returns the run-record fields: ``train_args``, ``model_options``, ``class_names``,
    ``channels``, ``selected`` and the per-epoch ``history``.
    """
    import torch

    opts = {**FASTERRCNN_DEFAULTS, **kw}
    data = read_yaml(Path(data_yaml))
    names = class_names(data)
    channels = int(data.get("channels", 3))
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before CUDA starts
    seed_everything(seed)
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        train_set, val_set, loader = _data(data, opts, seed=seed, batch=batch, workers=workers)
        model_options = {key: opts[key] for key in MODEL_OPTIONS}
        model_options["anchor_sizes"] = [list(level) for level in model_options["anchor_sizes"]]
        model = build_fasterrcnn(
            num_classes=len(names), channels=channels, imgsz=imgsz, scale=scale, **model_options
        ).to(device)
        history, best_state, best_epoch = _fit(
            model, train_set, val_set, loader, opts, epochs=epochs, device=device
        )
        torch.save(
            {"model": best_state, "format": "crossmodal-fasterrcnn-1"}, out_dir / "weights.pt"
        )
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
    return {
        "train_args": jsonable(opts),
        "model_options": model_options,
        "class_names": names,
        "channels": channels,
        "selected": f"epoch {best_epoch}",
        "history": history,
    }


def _data(data: Mapping, opts: Mapping, *, seed, batch, workers):
    """Training set (with flips), validation set (or None) and the seeded training loader."""
    import torch
    from torch.utils.data import DataLoader

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
    return train_set, val_set, loader


def _optimizer(params, opts: Mapping):
    import torch

    if opts["optimizer"] == "sgd":
        return torch.optim.SGD(
            params, lr=opts["lr0"], momentum=opts["momentum"], weight_decay=opts["weight_decay"]
        )
    if opts["optimizer"] == "adamw":
        return torch.optim.AdamW(params, lr=opts["lr0"], weight_decay=opts["weight_decay"])
    raise ValueError(f"optimizer must be 'sgd' or 'adamw', not {opts['optimizer']!r}")


def _warmup_cosine(optimizer, opts: Mapping, plan: dict):
    """Linear warm-up, then cosine from ``lr0`` to ``lr0 * lrf`` over ``plan['total']`` steps.

    ``plan`` is read at every step, so re-planning the run (time budget) reshapes the
    rest of the schedule.
    """
    import torch

    def lr_factor(step: int) -> float:
        warmup, total = plan["warmup"], plan["total"]
        if step < warmup:
            return 0.001 + (1 - 0.001) * step / max(1, warmup)
        progress = (step - warmup) / max(1, total - warmup)
        return opts["lrf"] + (1 - opts["lrf"]) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)


def _train_epoch(model, loader, optimizer, scheduler, params, opts, *, epoch, device) -> dict:
    """One pass over the loader; summed losses (times batch size) per loss name."""
    import torch

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
    return sums


def _fit(model, train_set, val_set, loader, opts, *, epochs, device):
    """The epoch loop: history rows, best state dict and its epoch (1-based)."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = _optimizer(params, opts)
    total = max(1, epochs * len(loader))
    plan = {"total": total, "warmup": min(total - 1, int(round(opts["warmup_epochs"] * len(loader))))}
    scheduler = _warmup_cosine(optimizer, opts, plan)
    history, best_fitness, best_state, best_epoch = [], -math.inf, None, None
    started, epoch = time.perf_counter(), 0
    while epoch < epochs:
        train_set.epoch = epoch
        model.train()
        tic = time.perf_counter()
        sums = _train_epoch(model, loader, optimizer, scheduler, params, opts, epoch=epoch,
                            device=device)
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
                plan["total"] = max(1, epochs * len(loader))
            if spent >= budget:
                break
    return history, best_state, best_epoch


def _validate(model, dataset: _YoloDataset, *, device) -> dict:
    from crossmodal.detect import metrics as ev

    detections = predict_fasterrcnn(model, dataset.images, conf=0.001, batch=8, device=device)
    ids = [p.name for p in dataset.images]
    boxes = [lab[0] for lab in dataset._labels]
    classes = [lab[1] for lab in dataset._labels]
    gt = ev.ground_truth(ids, ids, boxes, classes=classes)
    preds = ev.predictions(ids, detections)
    return {
        "metrics/mAP50(B)": float(np.nan_to_num(ev.ap50(gt, preds))),
        "metrics/mAP50-95(B)": float(np.nan_to_num(ev.ap50_95(gt, preds))),
    }


def predict_fasterrcnn(model, image_paths, *, conf, batch, device) -> list[np.ndarray]:
    """``(n, 6)`` detections ``x0, y0, x1, y1, score, class`` per image."""
    import torch

    model.eval()
    model.roi_heads.score_thresh = conf
    out = []
    with torch.inference_mode():
        for start in range(0, len(image_paths), batch):
            chunk = image_paths[start : start + batch]
            tensors = [
                torch.from_numpy(np.ascontiguousarray(read_image(Path(p)).transpose(2, 0, 1))).to(
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


def load_fasterrcnn(record: Mapping, weights: Path):
    """A trained Faster R-CNN from its run record and ``weights.pt`` (on the CPU)."""
    import torch

    model = fasterrcnn_from_record(record)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    return model
