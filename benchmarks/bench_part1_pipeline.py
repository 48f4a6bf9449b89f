"""Wall time of every Part 1 pipeline stage for a profile, in a temporary copy of the repo.

    python benchmarks/bench_part1_pipeline.py --profile quick      # budget: <= 6 min
    python benchmarks/bench_part1_pipeline.py --profile default    # budget: <= 30 min (2 cores)

Copies the tracked files, sets the profile, then runs `crossmodal data` and each stage
with `dvc repro --single-item`, printing one JSON line per step and the total.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAGES = ["ingest_pelvis", "cohort_chapter", "align_fuse_pelvis", "align_fuse_chapter",
          "detect_datasets_pelvis", "train_pelvis", "evaluate_pelvis", "detection_chapter"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="default")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_part1_")) / "repo"
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, work / rel)
    params = work / "params.yaml"
    params.write_text(params.read_text().replace("\nprofile: default", f"\nprofile: {args.profile}", 1))
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(work / "src"),
           "DVC_NO_ANALYTICS": "1", "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(work / ".yolo")}
    subprocess.run(["git", "init", "-q"], cwd=work, check=True)
    steps = [("data", ["crossmodal", "data"])] + [(s, ["dvc", "repro", "--single-item", s]) for s in STAGES]
    total = 0.0
    for name, cmd in steps:
        start = time.perf_counter()
        subprocess.run(cmd, cwd=work, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        total += seconds
        print(json.dumps({"profile": args.profile, "step": name, "seconds": round(seconds, 1)}), flush=True)
    print(json.dumps({"profile": args.profile, "step": "total", "seconds": round(total, 1),
                      "minutes": round(total / 60, 1)}))
    if not args.keep:
        shutil.rmtree(work.parent)


if __name__ == "__main__":
    main()
