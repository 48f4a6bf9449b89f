"""What holding the CPU libraries to AVX2 kernels costs in training time, and what it changes.

    python benchmarks/bench_cpu_kernels.py [--data results/pelvis/datasets/adaptive_region/data.yaml]
        [--epochs 2] [--repeats 2]

Trains YOLOv8n from scratch (one thread, seed 0, no validation) on one exported dataset,
each time in a fresh process: with the libraries' fastest kernels for this CPU
(``cpu_kernels: null``) and with ``reproducibility.cpu_kernels: avx2``
(:mod:`crossmodal.reproducible`), alternating, ``--repeats`` times each. Prints one JSON
line per run: the variant, torch's kernel family, training seconds and a hash of the
trained weights (same hash = byte-identical weights). Not a test: the times depend on the
machine and on what else runs on it; run it alone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = {"fastest": None, "avx2": "avx2"}


def weights_hash(weights: Path) -> str:
    import torch

    model = torch.load(weights, map_location="cpu", weights_only=False)["model"].float()
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def train_once(variant: str, data: str, epochs: int, imgsz: int) -> dict:
    from crossmodal.detect.train import train_detector
    from crossmodal.reproducible import cpu_kernels_in_use
    from crossmodal.reproducible import threads_for_training

    with tempfile.TemporaryDirectory() as out, threads_for_training(1):
        start = time.perf_counter()
        detector = train_detector("yolov8", data, out, epochs=epochs, imgsz=imgsz, batch=16, seed=0,
                                  device="cpu", val=False, hsv_h=0.0, hsv_s=0.0, hsv_v=0.0)
        seconds = time.perf_counter() - start
        weights = weights_hash(Path(out) / detector.record["weights"])
    return {"variant": variant, "kernels": cpu_kernels_in_use(), "epochs": epochs,
            "train_seconds": round(seconds, 1), "weights": weights}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="results/pelvis/datasets/adaptive_region/data.yaml")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--imgsz", type=int, default=192, help="the default profile's align_fuse.image_size")
    parser.add_argument("--one", choices=sorted(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = str(Path(args.data).absolute())
    if args.one:
        print(json.dumps(train_once(args.one, data, args.epochs, args.imgsz)), flush=True)
        return
    from crossmodal.reproducible import cpu_kernel_environment

    for _ in range(args.repeats):
        for variant, kernels in VARIANTS.items():
            env = {k: v for k, v in os.environ.items() if k not in cpu_kernel_environment("avx2")}
            env.update(cpu_kernel_environment(kernels))
            run = subprocess.run([sys.executable, __file__, "--one", variant, "--data", data,
                                  "--epochs", str(args.epochs), "--imgsz", str(args.imgsz)], env=env, capture_output=True, text=True)
            if run.returncode:
                sys.exit(run.stderr[-3000:])
            print(run.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
