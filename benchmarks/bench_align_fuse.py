"""Part 1 imaging throughput: align + enhance + localise, then fuse per input method.

    python benchmarks/bench_align_fuse.py [--profile default] [--cases 3]

Generates a few phantom patients of the chosen profile in a temporary folder, ingests
them, then times (a) alignment + enhancement + localisation per case and (b) fusion +
letterbox per slice for every input. Prints JSON lines; peak RSS at the end.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from crossmodal.imaging.petct import fuse_slice
from crossmodal.imaging.petct import prepare
from crossmodal.io.case import load_cases
from crossmodal.io.cohort import ingest_dicom_cohort
from crossmodal.params import load_params
from crossmodal.phantom.cohort import generate_pelvis_cohort


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="default")
    parser.add_argument("--cases", type=int, default=3)
    args = parser.parse_args()
    cfg = load_params("params.yaml", args.profile)
    p = {**cfg["phantom"]["pelvis"], "n_patients": args.cases}
    af = cfg["align_fuse"]
    with tempfile.TemporaryDirectory() as tmp:
        generate_pelvis_cohort(p, Path(tmp) / "cohort")
        ingest_dicom_cohort(Path(tmp) / "cohort", Path(tmp) / "ingest", modalities=["CT", "PT"], salt="b")
        cases = load_cases(Path(tmp) / "ingest")
    prep_seconds, prepared = 0.0, []
    for case in cases:
        start = time.perf_counter()
        prepared.append(prepare(case, af)[0])
        prep_seconds += time.perf_counter() - start
    n_slices = sum(len(pc.ct01) for pc in prepared)
    print(json.dumps({"step": "align+enhance+localise", "cases": len(cases), "seconds": round(prep_seconds, 2),
                      "seconds_per_case": round(prep_seconds / len(cases), 2),
                      "slices_per_s": round(n_slices / prep_seconds, 1)}))
    for name, spec in af["inputs"].items():
        start, count = time.perf_counter(), 0
        for pc in prepared:
            for z in range(len(pc.ct01)):
                fuse_slice(pc, z, spec, size=af["image_size"], options=af["method_options"])
                count += 1
        seconds = time.perf_counter() - start
        print(json.dumps({"step": f"fuse:{name}", "slices": count, "seconds": round(seconds, 2),
                          "slices_per_s": round(count / seconds, 1)}))
    print(json.dumps({"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


if __name__ == "__main__":
    main()
