"""Part 1 learning curve: validation AP50 per class against the training epochs.

    python benchmarks/bench_learning_curve.py [--datasets results/pelvis/datasets]
        [--inputs adaptive_region,pet_only] [--epochs 6,12,18] [--seed 0] [--runs-at-once 2]
        [--options '{"nbs": 16, "warmup_epochs": 0}']

Trains the params' detector (``detect.train``: batch, image size, trainer options; the
first detector of ``detect.detectors``) from scratch once per (input, epoch budget), each
with its own learning-rate schedule over that budget, predicts the validation patients'
slices and prints one JSON line per run: the AP50 of every class on the validation
patients (the primary endpoint's class among them), the training seconds and the
seconds per epoch. ``--options`` adds trainer options over the params' (to compare
optimizer settings on the same budgets). Only validation patients are scored: the locked test cohort is never
used to choose a setting. This is the measurement behind ``detect.train.epochs``.
Not a test; run it alone (the seconds depend on what else runs).
"""

from __future__ import annotations

import argparse
import functools
import json
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", default="results/pelvis/datasets")
    parser.add_argument("--inputs", default="adaptive_region,pet_only")
    parser.add_argument("--epochs", default="6,12,18")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs-at-once", default="auto")
    parser.add_argument("--profile", default="default")
    parser.add_argument("--options", default="{}", help="JSON trainer options over detect.train.options")
    args = parser.parse_args()

    from crossmodal.params import load_params
    from crossmodal.parallel import map_jobs
    from crossmodal.parallel import resolve_jobs

    params = load_params("params.yaml", args.profile)
    plan = [(name, int(e)) for name in args.inputs.split(",") for e in args.epochs.split(",")]
    plan.sort(key=lambda item: -item[1])  # longest first: the runs finish closer together
    jobs = resolve_jobs(args.runs_at_once, len(plan))
    with tempfile.TemporaryDirectory() as tmp:
        for row in map_jobs(functools.partial(curve_point, params=params, datasets=Path(args.datasets).absolute(),
                                              seed=args.seed, out=Path(tmp), options=json.loads(args.options)), plan, jobs=jobs):
            print(json.dumps(row), flush=True)


def curve_point(item: tuple[str, int], *, params: dict, datasets: Path, seed: int, out: Path,
                options: dict | None = None) -> dict:
    """Train one (input, epochs) run and score its validation patients."""
    from crossmodal.detect.env import configure_ultralytics
    from crossmodal.detect.env import output_to
    from crossmodal.detect.export import dataset_ground_truth
    from crossmodal.detect.export import read_split
    from crossmodal.detect.matching import predictions
    from crossmodal.detect.metrics import ap50_per_class
    from crossmodal.detect.train import predict
    from crossmodal.detect.train import train_detector

    configure_ultralytics()
    name, epochs = item
    train = params["detect"]["train"]
    detector_name = params["detect"]["detectors"][0]["name"]
    folder = out / f"{name}_e{epochs}"
    folder.mkdir(parents=True)
    with output_to(folder / "train.log"):
        detector = train_detector(detector_name, datasets / name / "data.yaml", folder, epochs=epochs,
                                  imgsz=int(train["imgsz"]), batch=int(train["batch"]), seed=seed,
                                  device=train.get("device"),
                                  **{**train.get("options", {}).get(detector_name, {}), **(options or {})})
        items = read_split(datasets / name, "val")
        detections = predict(detector, [i["image_path"] for i in items],
                             conf=float(params["detect"]["predict"]["conf"]),
                             max_det=int(params["detect"]["predict"]["max_det"]))
    truth = dataset_ground_truth([datasets / name], "val")
    per_class = ap50_per_class(truth, predictions([i["image_id"] for i in items], detections),
                               class_ids=range(len(detector.class_names)))
    history = detector.record["history"]
    return {"input": name, "epochs": epochs, "seed": seed, "detector": detector_name, "options": options or {},
            **{f"val_AP50_{detector.class_names[c]}": round(float(v), 4) for c, v in per_class.items()},
            "train_seconds": round(detector.record["train_seconds"], 1),
            "seconds_per_epoch": round(sum(e["train_seconds"] for e in history) / max(len(history), 1), 1)}


if __name__ == "__main__":
    main()
