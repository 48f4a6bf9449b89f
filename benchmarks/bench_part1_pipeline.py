"""Wall time of every Part 1 pipeline stage for a profile, in a temporary copy of the repo.

    python benchmarks/bench_part1_pipeline.py --profile quick      # budget: <= 6 min
    python benchmarks/bench_part1_pipeline.py --profile default    # budget: <= 30 min (2 cores)
    python benchmarks/bench_part1_pipeline.py --profile gpu_sample --direct --results OUT

Copies the tracked files, sets the profile, then runs `crossmodal data` and each stage
with `dvc repro --single-item`, printing one JSON line per step and the total.

``--direct`` runs each stage without DVC and without its notebook: a stage's ``cmd``
(``crossmodal notebook notebooks/<cohort>/NN_<step>.py OUT.ipynb -p key=value ...``) becomes
``python -m crossmodal stage <cohort>.<step> key=value ...`` (``ingest`` for the ingest
step), which runs the same stage function with the same paths: for a machine that has the
package's compute dependencies but not DVC, papermill or jupyter (a lent GPU box).
``--results`` copies the evaluation tables, run list and alignment table there.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
STEPS = ["ingest", "align_fuse", "datasets", "train", "evaluate", "claims"]  # each a stage <step>_<study>
RESULT_FILES = ["evaluation/metrics.csv", "evaluation/differences.csv", "claims/claims.csv",
                "metrics/evaluate.json", "metrics/claims.json", "runs/runs.csv", "align_fuse/alignment.csv",
                "datasets/split.csv"]


def copy_tracked_files(work: Path) -> None:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO, capture_output=True, text=True)
    if listed.returncode != 0:  # a copy of the tree without .git (a lent machine): take the sources
        for rel in ("src", "benchmarks", "params.yaml", "dvc.yaml"):
            copy = shutil.copytree if (REPO / rel).is_dir() else shutil.copy2
            copy(REPO / rel, work / rel)
        return
    for rel in listed.stdout.split():
        if (REPO / rel).is_file():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, work / rel)


def stage_arguments(cmd: str) -> list[str]:
    """``crossmodal`` arguments of a dvc.yaml ``cmd`` run without its notebook: a notebook
    command ``notebook notebooks/<cohort>/NN_<step>.py OUT -p k=v ...`` becomes
    ``stage <cohort>.<step> k=v ...`` (``stage ingest ...`` for the ingest step), its
    ``-p study=<study>`` the option ``--study <study>``."""
    argv = shlex.split(cmd)
    assert argv[0] == "crossmodal", cmd
    if argv[1] != "notebook":
        return argv[1:]
    notebook = Path(argv[2])
    step = notebook.stem.split("_", 1)[1]
    name = step if step == "ingest" else f"{notebook.parent.name}.{step}"
    values = [argv[i + 1] for i, word in enumerate(argv) if word in ("-p", "--parameter")]
    study = [f"--study={v.split('=', 1)[1]}" for v in values if v.startswith("study=")]
    return ["stage", name, *study, *[v for v in values if not v.startswith("study=")]]


def steps(work: Path, direct: bool, study: str = "pelvis") -> list[tuple[str, list[str]]]:
    names = [f"{step}_{study}" for step in STEPS]
    if not direct:
        return [("data", ["crossmodal", "data"])] + [(s, ["dvc", "repro", "--single-item", s]) for s in names]
    stages = yaml.safe_load((work / "dvc.yaml").read_text())["stages"]
    cohort = yaml.safe_load((work / "params.yaml").read_text())["studies"][study]["cohort"]
    command = [sys.executable, "-m", "crossmodal"]
    # the ingest notebook passes its study's cohort to the stage itself
    extra = {f"ingest_{study}": [f"cohort={cohort}"]}
    return [("data", command + ["data", "--no-dvc-add"])] + [
        (name, command + stage_arguments(stages[name]["cmd"]) + extra.get(name, [])) for name in names]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="default")
    parser.add_argument("--study", default="pelvis", help="the Part 1 study whose stages run (params studies)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy")
    parser.add_argument("--direct", action="store_true", help="run the stage commands without DVC or notebooks")
    parser.add_argument("--results", type=Path, help="copy result tables here")
    parser.add_argument("--log", type=Path, help="append each step's output to this file (default: discard)")
    parser.add_argument("--workdir", type=Path, help="work (and stay) here instead of a temporary copy; "
                        "an existing one is reused, so --steps can resume where an earlier call stopped")
    parser.add_argument("--steps", help="comma-separated step names (default: all)")
    args = parser.parse_args()
    work = args.workdir.absolute() if args.workdir else Path(tempfile.mkdtemp(prefix="bench_part1_")) / "repo"
    if not (work / "params.yaml").exists():
        copy_tracked_files(work)
        params = work / "params.yaml"
        params.write_text(params.read_text().replace("\nprofile: default", f"\nprofile: {args.profile}", 1))
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(work / "src"),
           "DVC_NO_ANALYTICS": "1", "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(work / ".yolo")}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] += os.pathsep + os.environ["PYTHONPATH"]  # e.g. wheels unpacked beside
    if not args.direct and not (work / ".git").exists():  # DVC needs a git repository
        subprocess.run(["git", "init", "-q"], cwd=work, check=True)
    log = open(args.log, "a") if args.log else subprocess.DEVNULL
    total = 0.0
    try:
        chosen = args.steps.split(",") if args.steps else None
        for name, cmd in steps(work, args.direct, args.study):
            if chosen is not None and name not in chosen:
                continue
            start = time.perf_counter()
            subprocess.run(cmd, cwd=work, env=env, check=True, stdout=log, stderr=subprocess.STDOUT)
            seconds = time.perf_counter() - start
            total += seconds
            print(json.dumps({"profile": args.profile, "step": name, "seconds": round(seconds, 1)}), flush=True)
    finally:
        if args.results:
            args.results.mkdir(parents=True, exist_ok=True)
            for rel in RESULT_FILES:
                source = work / "results" / args.study / rel
                if source.exists():
                    shutil.copyfile(source, args.results / rel.replace("/", "_"))
    print(json.dumps({"profile": args.profile, "step": "total", "seconds": round(total, 1),
                      "minutes": round(total / 60, 1)}))
    if not args.keep and not args.workdir:
        shutil.rmtree(work.parent)


if __name__ == "__main__":
    main()
