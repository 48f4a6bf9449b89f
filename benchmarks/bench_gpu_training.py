"""Detector training on a GPU: where the time goes, which loader keeps the GPU busy, and
how many runs one GPU holds side by side (issue #13, items 1, 3 and 5).

    python benchmarks/bench_gpu_training.py [--data results/pelvis/datasets/adaptive_region/data.yaml]
        [--imgsz 512] [--repeat 4] [--epochs 3] [--batch 32]
        [--variants ultralytics_w0,ultralytics_w8_ram,resident] [--shared 4,8] [--out bench_gpu]

1. Makes a thesis-sized training set from an exported one: every training slice resized
   to ``--imgsz`` (boxes are normalised, so labels carry over) and written ``--repeat``
   times; the validation slices once. Throughput (slices per second) is what is measured,
   not accuracy, so repeated slices serve.
2. Trains YOLOv8n from scratch once per variant, one run on the GPU, and prints one JSON
   line per variant: the medians over epochs (the first left out) of the wait for data,
   the training steps and the epoch (:class:`crossmodal.detect.ultralytics_trainer.EpochClock`),
   slices per second, and the GPU's mean utilisation and peak memory while it trained
   (``nvidia-smi`` sampled every 0.5 s). Variants:

   - ``ultralytics_w0``: ultralytics' loader in the training process (``workers=0``,
     the pipeline's default, the most reproducible);
   - ``ultralytics_w8_ram``: ultralytics' loader with 8 worker processes and images
     decoded once into memory (``cache='ram'``);
   - ``resident``: our loader (``loader='resident'``, :mod:`crossmodal.detect.resident`):
     the training set on the GPU as uint8, augmented there.

3. For each count in ``--shared``, that many ``resident`` runs (seeds 0, 1, ...) train at
   once in separate processes sharing the one GPU, as the pipeline's ``detector_runs``
   processes do; prints the wall time, the summed throughput and the utilisation.

Not a test: the numbers depend on the machine; run it alone. Needs a CUDA GPU (``--device``
to try another).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

VARIANTS = {
    "ultralytics_w0": {"workers": 0},
    "ultralytics_w8_ram": {"workers": 8, "cache": "ram"},
    "resident": {"workers": 0, "loader": "resident"},
}


class GpuSampler:
    """``nvidia-smi``'s utilisation (%) and memory (MiB) every ``period`` seconds, in a thread."""

    def __init__(self, period: float = 0.5) -> None:
        self.period, self.samples, self._stop = period, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                line = subprocess.run(
                    ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits"],
                    capture_output=True, text=True, timeout=5).stdout.splitlines()[0]
                self.samples.append(tuple(float(v) for v in line.split(",")))
            except (OSError, IndexError, ValueError, subprocess.SubprocessError):
                pass
            self._stop.wait(self.period)

    def __enter__(self) -> GpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict:
        if not self.samples:
            return {"gpu_util_mean": None, "gpu_mem_peak_mib": None}
        return {"gpu_util_mean": round(statistics.mean(s[0] for s in self.samples), 1),
                "gpu_mem_peak_mib": max(s[1] for s in self.samples)}


def scaled_dataset(source_yaml: Path, out: Path, imgsz: int, repeat: int) -> Path:
    """The training slices resized to ``imgsz`` and written ``repeat`` times, the validation
    slices once; returns the new ``data.yaml``."""
    from crossmodal.detect.yolo_folder import read_yaml

    data = read_yaml(source_yaml)
    root = Path(data["path"])
    jobs = []
    for split, copies in (("train", repeat), ("val", 1)):
        for image in sorted((root / data[split]).glob("*.png")):
            label = root / "labels" / split / (image.stem + ".txt")
            for k in range(copies):
                jobs.append((image, label, out / "images" / split / f"{image.stem}_r{k}.png",
                             out / "labels" / split / f"{image.stem}_r{k}.txt", imgsz))
    for split in ("train", "val"):
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(max(1, (os.cpu_count() or 2) - 1)) as pool:
        list(pool.map(_resize_one, jobs, chunksize=32))
    names = "\n".join(f"  {k}: {v}" for k, v in data["names"].items())
    (out / "data.yaml").write_text(
        f"path: {out}\ntrain: images/train\nval: images/val\nchannels: {data.get('channels', 3)}\nnames:\n{names}\n")
    return out / "data.yaml"


def _resize_one(job) -> None:
    from PIL import Image

    image, label, image_out, label_out, imgsz = job
    with Image.open(image) as im:
        im.resize((imgsz, imgsz), Image.BILINEAR).save(image_out, compress_level=1)
    if label.exists():
        shutil.copyfile(label, label_out)
    else:
        label_out.write_text("")


def train_once(data_yaml: str, out_dir: str, *, imgsz: int, batch: int, epochs: int, seed: int, device: str,
               options: dict) -> dict:
    """One YOLOv8n run; its median epoch times and throughput."""
    from crossmodal.detect.train import train_detector

    detector = train_detector("yolov8", data_yaml, out_dir, epochs=epochs, imgsz=imgsz, batch=batch, seed=seed,
                              device=device, val=False, hsv_h=0.0, hsv_s=0.0, hsv_v=0.0, **options)
    history = detector.record["history"]
    epochs_timed = history[1:] or history
    median = {k: statistics.median(e[k] for e in epochs_timed) for k in ("load_seconds", "step_seconds",
                                                                         "train_seconds")}
    n_train = len(list((Path(data_yaml).parent / "images" / "train").glob("*.png")))
    return {"train_slices": n_train, **{f"median_{k}": round(v, 2) for k, v in median.items()},
            "slices_per_s": round(n_train / median["train_seconds"], 1),
            "run_seconds": round(detector.record["train_seconds"], 1),
            "first_epoch_seconds": round(history[0]["train_seconds"], 1)}


def _train_in_child(args) -> dict:
    return train_once(*args[:2], **args[2])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="results/pelvis/datasets/adaptive_region/data.yaml")
    parser.add_argument("--imgsz", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--shared", default="4,8", help="runs at once sharing the GPU ('' for none)")
    parser.add_argument("--out", default="bench_gpu")
    args = parser.parse_args()
    out = Path(args.out).absolute()
    start = time.perf_counter()
    data_yaml = scaled_dataset(Path(args.data).absolute(), out / "data", args.imgsz, args.repeat)
    print(json.dumps({"step": "dataset", "seconds": round(time.perf_counter() - start, 1)}), flush=True)
    common = dict(imgsz=args.imgsz, batch=args.batch, epochs=args.epochs, device=args.device)
    for name in filter(None, args.variants.split(",")):
        with GpuSampler() as gpu:
            result = train_once(str(data_yaml), str(out / "runs" / name), seed=0, options=VARIANTS[name], **common)
        print(json.dumps({"variant": name, "options": VARIANTS[name], **common, **result, **gpu.summary()}),
              flush=True)
    for count in (int(c) for c in filter(None, args.shared.split(","))):
        jobs = [(str(data_yaml), str(out / "runs" / f"shared{count}_{k}"),
                 dict(seed=k, options=VARIANTS["resident"], **common)) for k in range(count)]
        wall = time.perf_counter()
        with GpuSampler() as gpu, ProcessPoolExecutor(count, mp_context=_spawn()) as pool:
            results = list(pool.map(_train_in_child, jobs))
        wall = time.perf_counter() - wall
        print(json.dumps({"variant": "resident", "runs_at_once": count, **common, "wall_seconds": round(wall, 1),
                          "slices_per_s_summed": round(sum(r["slices_per_s"] for r in results), 1),
                          "slices_per_s_per_run": [r["slices_per_s"] for r in results], **gpu.summary()}),
              flush=True)


def _spawn():
    import multiprocessing

    return multiprocessing.get_context("spawn")  # CUDA cannot be forked into a child


if __name__ == "__main__":
    sys.exit(main())
