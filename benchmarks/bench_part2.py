"""Part 2 wall time per step: phantom, ingestion, detectors, features, classifiers, C3D.

    python benchmarks/bench_part2.py [--profile default] [--keep DIR]

Runs the same functions as the DVC stages (``crossmodal ingest skeleton``, ``crossmodal
part2 detect|features|classify|c3d``) on the chosen profile in a temporary folder and
prints one JSON line per step (seconds, peak RSS so far), then the total. Not a test:
the numbers depend on the machine and on what else runs on it.
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

    from crossmodal.detect.env import configure_ultralytics
    from crossmodal.io.case import load_cases
    from crossmodal.io.cohort import ingest_dicom_cohort
    from crossmodal.params import load_params
    from crossmodal.part2 import run_c3d
    from crossmodal.part2 import run_classify
    from crossmodal.part2 import run_detect
    from crossmodal.part2 import run_features
    from crossmodal.phantom.skeleton_cohort import generate_skeleton_cohort

    configure_ultralytics()
    cfg = load_params("params.yaml", args.profile)
    cohort, clf = cfg["cohort"]["skeleton"], cfg["classify"]
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
        step("phantom", lambda: generate_skeleton_cohort(cfg["phantom"]["skeleton"], root / "cohort"),
             patients=cfg["phantom"]["skeleton"]["n_patients"])
        step("ingest", lambda: ingest_dicom_cohort(
            root / "cohort", root / "ingest", modalities=cohort["modalities"], required_modalities=[],
            label_modalities=cohort["modalities"], salt="bench", group_by="patient",
            require_nonempty_label=False))
        cases = load_cases(root / "ingest")
        detect = step("detect", lambda: run_detect(cases, root / "detect", cfg["part2_detect"],
                                                    cohort_cfg=cohort, feature_conf=cfg["features"]["conf"]))
        for row in detect["training"].to_dict("records"):
            print(json.dumps({"detector": f"{row['modality']}/{row['detector']}",
                              "train_slices": row["train_slices"], "train_seconds": row["train_seconds"],
                              "scored_slices": row["scored_slices"],
                              "predict_seconds": row["predict_seconds"]}), flush=True)
        step("features", lambda: run_features(root / "detect", root / "features", cfg["features"],
                                              cv=clf["cv"], cohort_cfg=cohort))
        step("classify", lambda: run_classify(root / "features", root / "classify", clf, cohort_cfg=cohort),
             models=len(clf["classifiers"]) * 4 * clf["cv"]["n_splits"] * clf["cv"]["n_repeats"])
        step("c3d", lambda: run_c3d(cases, root / "features", root / "c3d", cfg["c3d"], cohort_cfg=cohort,
                                    n_boot=clf["n_boot"], boot_seed=clf["boot_seed"],
                                    threshold=clf["threshold"]))
    print(json.dumps({"step": "total (without the chapter notebook)", "profile": args.profile,
                      "seconds": round(total, 1)}))


if __name__ == "__main__":
    main()
