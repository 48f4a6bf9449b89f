"""Part 2 wall time per stage: phantom, ingestion, datasets, detectors, evaluation, features,
classifiers, C3D, claims.

    python benchmarks/bench_part2.py [--profile default] [--keep DIR]

Runs the DVC stages' own functions (``crossmodal.stages.ingest`` and
``crossmodal.stages.skeleton.*``) on the chosen profile in a temporary folder and prints
one JSON line per stage (seconds, peak RSS so far), one per detector, then the total. Not
a test: the numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="default")
    parser.add_argument("--keep", default=None, help="write here instead of a temporary folder")
    args = parser.parse_args()

    from crossmodal.params import load_params
    from crossmodal.stages import ingest
    from crossmodal.stages.data import write_phantom
    from crossmodal.stages.skeleton import c3d
    from crossmodal.stages.skeleton import claims
    from crossmodal.stages.skeleton import classify
    from crossmodal.stages.skeleton import datasets
    from crossmodal.stages.skeleton import evaluate
    from crossmodal.stages.skeleton import features
    from crossmodal.stages.skeleton import train

    params = load_params("params.yaml", args.profile)
    total = 0.0

    def step(name: str, fn, **extra):
        nonlocal total
        start = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - start
        total += seconds
        print(json.dumps({"step": name, "profile": args.profile, "seconds": round(seconds, 1), **extra,
                          "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}),
              flush=True)
        return result

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or tmp)
        params["cohort"]["skeleton"]["root"] = str(root / "cohort")
        clf = params["classify"]
        step("phantom", lambda: write_phantom(params, "skeleton", root / "cohort"),
             patients=params["phantom"]["skeleton"]["n_patients"])
        step("ingest", lambda: ingest.run(params, cohort="skeleton", out=root / "ingest"))
        step("datasets", lambda: datasets.run(params, ingest_dir=root / "ingest", out=root / "datasets"))
        runs = step("train", lambda: train.run(params, datasets_dir=root / "datasets", out=root / "runs"))
        for row in runs["training"].to_dict("records"):
            print(json.dumps({"detector": f"{row['modality']}/{row['detector']}",
                              "train_slices": row["train_slices"], "train_seconds": row["train_seconds"],
                              "scored_slices": row["scored_slices"],
                              "predict_seconds": row["predict_seconds"]}), flush=True)
        step("evaluate", lambda: evaluate.run(params, datasets_dir=root / "datasets", runs_dir=root / "runs",
                                              out=root / "evaluate"))
        step("features", lambda: features.run(params, datasets_dir=root / "datasets", runs_dir=root / "runs",
                                              out=root / "features"))
        step("classify", lambda: classify.run(params, features_dir=root / "features", out=root / "classify",
                                              metrics=root / "metrics" / "classify.json"),
             models=len(clf["classifiers"]) * 4 * clf["cv"]["n_splits"] * clf["cv"]["n_repeats"])
        step("c3d", lambda: c3d.run(params, ingest_dir=root / "ingest", features_dir=root / "features",
                                    out=root / "c3d", metrics=root / "metrics" / "c3d.json"))
        step("claims", lambda: claims.run(params, classify_dir=root / "classify", c3d_dir=root / "c3d",
                                          ap=root / "evaluate" / "ap.csv",
                                          out=root / "claims", metrics=root / "metrics" / "claims.json"))
    print(json.dumps({"step": "total (without the step notebooks)", "profile": args.profile,
                      "seconds": round(total, 1)}))


if __name__ == "__main__":
    main()
