"""The ultralytics family (YOLOv5u, YOLOv8, YOLO11, RT-DETR): train from scratch, predict.

Nothing here imports ultralytics at module level: :func:`crossmodal.detect.env.configure_ultralytics`
must run first, because ultralytics fixes its configuration folder at import.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from crossmodal.detect.env import configure_ultralytics
from crossmodal.detect.env import seed_everything
from crossmodal.detect.resident import LOADERS
from crossmodal.detect.resident import resident_trainer
from crossmodal.detect.yolo_folder import class_names
from crossmodal.detect.yolo_folder import read_yaml

__all__ = [
    "EpochClock",
    "ULTRALYTICS_DEFAULTS",
    "predict_ultralytics",
    "train_ultralytics",
    "ultralytics_class",
    "ultralytics_device",
    "ultralytics_options",
]

#: Ultralytics overrides applied unless given in ``**kw``. Hue and saturation jitter
#: mix the channels, which here are modalities (CT, PET, fused), not colours.
ULTRALYTICS_DEFAULTS: dict[str, Any] = {"hsv_h": 0.0, "hsv_s": 0.0}


def ultralytics_options(config_dir=None) -> tuple[str, ...]:
    """Every option ultralytics' ``model.train`` knows (the keys of its default config),
    and ours: ``loader`` (:data:`~crossmodal.detect.resident.LOADERS`).

    Configures ultralytics first (:func:`~crossmodal.detect.env.configure_ultralytics`
    with ``config_dir``), since importing it fixes its configuration folder.
    """
    configure_ultralytics(config_dir)
    from ultralytics.cfg import DEFAULT_CFG_DICT

    return tuple(sorted({*DEFAULT_CFG_DICT, "loader"}))


def ultralytics_device(device: str) -> str:
    """Ultralytics' device string: ``'0'`` / ``'0,1'`` / ``'cpu'``."""
    # 'cuda' alone means the first GPU.
    if device == "cuda":
        return "0"
    return device.replace("cuda:", "")


def _use_all_cpu_cores() -> None:
    # ultralytics pins CPU training to cpu_count - 1 threads (1 on a 2-core machine) at
    # every select_device(); a training job owns its share of the machine (every core,
    # unless runs train side by side), so let torch use all of it.
    import ultralytics.utils.torch_utils as torch_utils

    from crossmodal.parallel import cpu_threads

    torch_utils.NUM_THREADS = cpu_threads()


def ultralytics_class(model_config: str):
    """``ultralytics.RTDETR`` for an ``rtdetr*`` model config, else ``ultralytics.YOLO``."""
    _use_all_cpu_cores()
    if model_config.startswith("rtdetr"):
        from ultralytics import RTDETR

        return RTDETR
    from ultralytics import YOLO

    return YOLO


def _train_args(data_yaml, out_dir, *, epochs, imgsz, batch, seed, device, workers, kw) -> dict:
    args = dict(ULTRALYTICS_DEFAULTS)
    args.update(
        data=str(data_yaml),
        epochs=int(epochs),
        imgsz=int(imgsz),
        batch=int(batch),
        seed=int(seed),
        deterministic=True,
        device=ultralytics_device(device),
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
    return args


class EpochClock:
    """Where each training epoch's time goes, from ultralytics' callbacks.

    Per epoch: ``load_seconds`` (waiting for the data loader: reading, decoding,
    augmenting and collating the batch), ``step_seconds`` (preprocessing, forward,
    backward and optimiser step), ``train_seconds`` (the two together, with the epoch's
    bookkeeping) and ``val_seconds`` (checkpoint saving, plus validation after an epoch
    that validates: every epoch, or with ``val=False`` the last only).
    """

    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []
        self._mark = 0.0

    def attach(self, model) -> None:
        for event in ("on_train_epoch_start", "on_train_batch_start", "on_train_batch_end",
                      "on_train_epoch_end", "on_fit_epoch_end"):
            model.add_callback(event, getattr(self, event))

    def on_train_epoch_start(self, trainer) -> None:
        self._mark = self._epoch_start = time.perf_counter()
        self.epochs.append({"load_seconds": 0.0, "step_seconds": 0.0, "val_seconds": 0.0})

    def _lap(self) -> float:
        now = time.perf_counter()
        seconds, self._mark = now - self._mark, now
        return seconds

    def on_train_batch_start(self, trainer) -> None:
        self.epochs[-1]["load_seconds"] += self._lap()

    def on_train_batch_end(self, trainer) -> None:
        self.epochs[-1]["step_seconds"] += self._lap()

    def on_train_epoch_end(self, trainer) -> None:
        self._lap()
        self.epochs[-1]["train_seconds"] = self._mark - self._epoch_start

    def on_fit_epoch_end(self, trainer) -> None:
        self.epochs[-1]["val_seconds"] = self._lap()


def _history(trainer, clock: EpochClock) -> list[dict]:
    """Ultralytics' ``results.csv`` rows, each with its epoch's :class:`EpochClock` times."""
    results_csv = Path(trainer.save_dir) / "results.csv"
    if not results_csv.exists():
        return []
    import pandas as pd

    frame = pd.read_csv(results_csv)
    frame.columns = [c.strip() for c in frame.columns]
    history = frame.to_dict(orient="records")
    for row, seconds in zip(history, clock.epochs):
        row.update(seconds)
    return history


def train_ultralytics(
    model_config: str,
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
    """Train one ultralytics model from its YAML; ``weights.pt`` = the best validated epoch
    (the last with ``val=False``, which validates after the last epoch only).

    Returns the run-record fields: ``train_args``, ``class_names``, ``channels``,
    ``selected`` and the per-epoch ``history``.
    """
    kw = dict(kw)
    loader = kw.pop("loader", "ultralytics")
    if loader not in LOADERS:
        raise ValueError(f"loader {loader!r} is not one of {LOADERS}")
    if loader == "resident" and "," in ultralytics_device(device):
        # Ultralytics' data-parallel training starts its own processes, which rebuild the
        # trainer by class name and cannot rebuild ours.
        raise ValueError(f"loader 'resident' trains one run on one device, not on {device!r}: give each run "
                         "its own GPU with compute.devices instead")
    configure_ultralytics(config_dir)
    model_cls = ultralytics_class(model_config)
    seed_everything(seed)
    model = model_cls(model_config)
    args = _train_args(data_yaml, out_dir, epochs=epochs, imgsz=imgsz, batch=batch, seed=seed,
                       device=device, workers=workers, kw=kw)
    clock = EpochClock()
    clock.attach(model)
    trainer_class = resident_trainer(model._smart_load("trainer")) if loader == "resident" else None
    model.train(trainer=trainer_class, **args)
    trainer = model.trainer
    # val=False validates after the last epoch only: the last epoch is the selected one.
    every_epoch = args.get("val", True)
    best = Path(trainer.best) if every_epoch and Path(trainer.best).exists() else Path(trainer.last)
    shutil.copyfile(best, out_dir / "weights.pt")
    history = _history(trainer, clock)
    data = read_yaml(Path(data_yaml))
    return {
        "train_args": {k: v for k, v in args.items() if k not in ("data", "project")}
        | ({"loader": loader} if loader != "ultralytics" else {}),
        "class_names": class_names(data),
        "channels": int(data.get("channels", 3)),
        "selected": best.name,
        "history": history,
    }


def predict_ultralytics(model, paths, *, conf, iou, imgsz, max_det, device, batch) -> list[np.ndarray]:
    """``(n, 6)`` detections ``x0, y0, x1, y1, score, class`` per image, score descending."""
    out = []
    for start in range(0, len(paths), batch):
        results = model.predict(
            paths[start : start + batch],
            conf=conf,
            iou=iou,
            imgsz=imgsz,
            max_det=max_det,
            device=ultralytics_device(device),
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
