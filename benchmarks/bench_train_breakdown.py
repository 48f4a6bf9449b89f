"""Where a detector training epoch's time goes, and what the training options change.

    python benchmarks/bench_train_breakdown.py [--data results/pelvis/datasets/adaptive_region/data.yaml]
        [--epochs 3] [--threads 1] [--device cpu] [--variants default,cache_ram,val_at_end]

Trains YOLOv8n from scratch on one exported dataset (same images, same model, same
seed) once per variant and prints one JSON line per variant: the medians over epochs of
the data-loader wait (reading, decoding, mosaic and the other augmentations, collation),
the training step (forward, backward, optimiser) and validation with checkpoint saving,
from :class:`crossmodal.detect.ultralytics_trainer.EpochClock`, and the training
throughput in slices per second. Variants:

- ``default``: ultralytics' own loader settings (images read from disk each time,
  validation after every epoch);
- ``cache_ram``: images decoded once into memory (``cache='ram'``);
- ``val_at_end``: validation only after the last epoch (``val=False``; the last epoch is
  the selected checkpoint);
- ``no_mosaic``: ``mosaic=0`` (what mosaic augmentation costs; not a setting we use).

The first epoch is left out of the medians (it builds the loader and warms caches).
Not a test: the numbers depend on the machine and on what else runs on it; run it alone.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

VARIANTS = {
    "default": {},
    "cache_ram": {"cache": "ram"},
    "val_at_end": {"val": False},
    "no_mosaic": {"mosaic": 0.0},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="results/pelvis/datasets/adaptive_region/data.yaml")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--imgsz", type=int, default=None, help="default: the dataset's image size")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--variants", default="default,cache_ram,val_at_end")
    args = parser.parse_args()
    os.environ["CROSSMODAL_THREADS"] = str(args.threads)

    import torch

    from crossmodal.detect.train import train_detector
    from crossmodal.detect.yolo_folder import read_yaml

    torch.set_num_threads(args.threads)
    data_yaml = Path(args.data).absolute()
    data = read_yaml(data_yaml)
    train_images = sorted((Path(data["path"]) / data["train"]).glob("*.png"))
    imgsz = args.imgsz or _image_size(train_images[0])
    for name in args.variants.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            detector = train_detector("yolov8", data_yaml, Path(tmp) / name, epochs=args.epochs, imgsz=imgsz,
                                      batch=args.batch, seed=0, device=args.device,
                                      hsv_h=0.0, hsv_s=0.0, hsv_v=0.0, **VARIANTS[name])
        epochs = detector.record["history"][1:] or detector.record["history"]
        median = {key: statistics.median(e[key] for e in epochs)
                  for key in ("load_seconds", "step_seconds", "val_seconds", "train_seconds")}
        print(json.dumps({
            "variant": name, "options": VARIANTS[name], "device": args.device, "threads": args.threads,
            "imgsz": imgsz, "train_slices": len(train_images), "epochs": args.epochs,
            **{f"median_{k}": round(v, 2) for k, v in median.items()},
            "slices_per_s": round(len(train_images) / median["train_seconds"], 1),
            "epoch_with_val_seconds": round(median["train_seconds"] + median["val_seconds"], 2),
            "run_seconds": round(detector.record["train_seconds"], 1),
        }), flush=True)


def _image_size(path: Path) -> int:
    from PIL import Image

    with Image.open(path) as image:
        return max(image.size)


if __name__ == "__main__":
    main()
