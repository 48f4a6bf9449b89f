"""Phantom generation and ingestion throughput (slices/s) and peak memory.

    python benchmarks/bench_phantom_ingest.py [--profile default] [--patients N]

Runs each phase in a fresh subprocess so that peak RSS (ru_maxrss) is that phase's own.
Prints one JSON line per phase. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def phase(kind: str, profile: str, patients: int | None, root: str) -> None:
    from crossmodal.params import load_params

    cfg = load_params("params.yaml", profile)
    p = dict(cfg["phantom"]["pelvis"])
    if patients:
        p["n_patients"] = patients
    slices = p["n_patients"] * (p["ct_size"][2] + p["pet_size"][2])
    start = time.perf_counter()
    if kind == "phantom":
        from crossmodal.phantom.cohort import generate_pelvis_cohort

        generate_pelvis_cohort(p, Path(root) / "cohort")
    else:
        from crossmodal.io.cohort import ingest_dicom_cohort

        report = ingest_dicom_cohort(Path(root) / "cohort", Path(root) / "ingest", modalities=["CT", "PT"],
                                     salt="bench")
        assert len(report.cases) == p["n_patients"], report.problems
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"phase": kind, "profile": profile, "patients": p["n_patients"], "slices": slices,
                      "seconds": round(seconds, 2), "slices_per_s": round(slices / seconds, 1),
                      "peak_rss_mb": round(peak_mb, 1)}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="default")
    parser.add_argument("--patients", type=int, default=None)
    parser.add_argument("--phase", choices=["phantom", "ingest"], default=None)
    parser.add_argument("--root", default=None)
    args = parser.parse_args()
    if args.phase:
        phase(args.phase, args.profile, args.patients, args.root)
        return
    with tempfile.TemporaryDirectory() as root:
        for kind in ("phantom", "ingest"):
            cmd = [sys.executable, __file__, "--phase", kind, "--profile", args.profile, "--root", root]
            if args.patients:
                cmd += ["--patients", str(args.patients)]
            subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
