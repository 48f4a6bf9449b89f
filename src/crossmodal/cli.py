"""``crossmodal`` command line: every pipeline step runs outside notebooks too.

    crossmodal data                # make sure the input cohort under data/ exists (phantom or DVC)
    crossmodal phantom pelvis OUT  # write the simulated pelvic PET/CT cohort as DICOM
    crossmodal phantom skeleton OUT  # ... and the skeletal CT/MRI/PET cohort (Part 2)
    crossmodal ingest pelvis OUT   # DICOM tree -> pseudonymised cases + cohort report
    crossmodal ingest skeleton OUT
    crossmodal part2 detect|features|classify|c3d ...   # Part 2 stages (dvc.yaml)
    crossmodal export-nnunet IN OUT
    crossmodal notebook NB.py OUT.ipynb -p key value   # jupytext + papermill, as DVC runs it
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import typer

from crossmodal.params import load_params

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)

ParamsOption = typer.Option("params.yaml", "--params", help="Path to params.yaml")
ProfileOption = typer.Option(None, "--profile", help="Override the params.yaml profile")


def _compute(cfg: dict, key: str):
    """``compute.<key>`` of params.yaml; ``'auto'`` (every core) where a params file predates it."""
    return cfg.get("compute", {}).get(key, "auto")


def _dvc(*args: str) -> int:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    return subprocess.call([sys.executable, "-m", "dvc", *args], env=env)


def _phantom_generators() -> dict:
    """cohort name -> (generate(params, root, progress), is_up_to_date(root, params))."""
    from crossmodal.phantom.cohort import generate_pelvis_cohort
    from crossmodal.phantom.cohort import is_up_to_date
    from crossmodal.phantom.skeleton_cohort import generate_skeleton_cohort
    from crossmodal.phantom.skeleton_cohort import is_skeleton_up_to_date

    return {"pelvis": (generate_pelvis_cohort, is_up_to_date),
            "skeleton": (generate_skeleton_cohort, is_skeleton_up_to_date)}


@app.command()
def data(params: Path = ParamsOption, profile: str = ProfileOption, dvc_add: bool = True) -> None:
    """Make the input cohorts under data/ available, then record them in data.dvc.

    Phantom source: (re)generate when missing or made from other parameters (every
    cohort of `cohort:`), then one `dvc add data`. DICOM source: `dvc pull data.dvc`
    (your own remote, see README).
    """
    cfg = load_params(params, profile)
    generators = _phantom_generators()
    any_phantom = False
    for name, source in cfg["cohort"].items():
        if source["source"] == "phantom":
            any_phantom = True
            generate, up_to_date = generators[name]
            p = cfg["phantom"][name]
            root = Path(source["root"])
            if up_to_date(root, p):
                typer.echo(f"{root}: simulated cohort is up to date")
            else:
                typer.echo(f"{root}: generating the simulated cohort ({p['n_patients']} patients)")
                generate(p, root, progress=True, jobs=_compute(cfg, "jobs"))
        elif source["source"] == "dicom":
            if not Path(source["root"]).exists() and _dvc("pull", "data.dvc") != 0:
                typer.echo(f"{source['root']} is missing and `dvc pull data.dvc` failed; see README "
                           "'Your own data'", err=True)
                raise typer.Exit(1)
        else:
            raise typer.BadParameter(f"cohort.{name}.source must be phantom or dicom, "
                                     f"not {source['source']!r}")
    if any_phantom and dvc_add and _dvc("add", "--quiet", "data") != 0:
        raise typer.Exit(1)


def _echo_report(report) -> None:
    """Print an ingestion summary and every skipped item; fail when nothing was usable."""
    typer.echo(json.dumps({k: v for k, v in report.to_dict().items() if k != "problems"}))
    for problem in report.problems:
        typer.echo(f"skipped: {problem['where']}: {problem['rule']}: {problem['detail']}", err=True)
    if not report.cases:
        typer.echo("no usable case in the cohort", err=True)
        raise typer.Exit(1)


phantom_app = typer.Typer(help="Write simulated cohorts as DICOM.")
app.add_typer(phantom_app, name="phantom")


@phantom_app.command("pelvis")
def phantom_pelvis(out: Path, params: Path = ParamsOption, profile: str = ProfileOption) -> None:
    """Write the pelvic PET/CT phantom cohort (DICOM + labels + truth) to OUT."""
    from crossmodal.phantom.cohort import generate_pelvis_cohort

    cfg = load_params(params, profile)
    generate_pelvis_cohort(cfg["phantom"]["pelvis"], out, progress=True, jobs=_compute(cfg, "jobs"))


@phantom_app.command("skeleton")
def phantom_skeleton(out: Path, params: Path = ParamsOption, profile: str = ProfileOption) -> None:
    """Write the skeletal CT/MRI/PET phantom cohort (DICOM + labels + truth) to OUT."""
    from crossmodal.phantom.skeleton_cohort import generate_skeleton_cohort

    cfg = load_params(params, profile)
    generate_skeleton_cohort(cfg["phantom"]["skeleton"], out, progress=True, jobs=_compute(cfg, "jobs"))


ingest_app = typer.Typer(help="Read DICOM cohorts into pseudonymised case folders.")
app.add_typer(ingest_app, name="ingest")


@ingest_app.command("pelvis")
def ingest_pelvis(out: Path, params: Path = ParamsOption, profile: str = ProfileOption) -> None:
    """Ingest the Part 1 cohort (cohort.pelvis) into OUT/cases, OUT/cases.csv, OUT/report.json."""
    from crossmodal.io.cohort import ingest_dicom_cohort

    cfg = load_params(params, profile)
    source, rules = cfg["cohort"]["pelvis"], cfg["ingest"]
    report = ingest_dicom_cohort(
        source["root"], out, modalities=source["modalities"], label_modalities=["CT"],
        labels_dir=source["labels_dir"], truth_dir=source["truth_dir"], salt=rules["pseudonym_salt"],
        max_slice_gap_ratio=rules["max_slice_gap_ratio"],
        spacing_tolerance_mm=rules["spacing_tolerance_mm"], progress=True, jobs=_compute(cfg, "jobs"),
    )
    _echo_report(report)


@ingest_app.command("skeleton")
def ingest_skeleton(out: Path, params: Path = ParamsOption, profile: str = ProfileOption) -> None:
    """Ingest the Part 2 cohort (cohort.skeleton): one case per patient, 1-3 of CT/MR/PT."""
    from crossmodal.io.cohort import ingest_dicom_cohort

    cfg = load_params(params, profile)
    source, rules = cfg["cohort"]["skeleton"], cfg["ingest"]
    report = ingest_dicom_cohort(
        source["root"], out, modalities=source["modalities"], required_modalities=[],
        label_modalities=source["modalities"], labels_dir=source["labels_dir"],
        truth_dir=source["truth_dir"], salt=rules["pseudonym_salt"], group_by="patient",
        require_nonempty_label=False, max_slice_gap_ratio=rules["max_slice_gap_ratio"],
        spacing_tolerance_mm=rules["spacing_tolerance_mm"], progress=True, jobs=_compute(cfg, "jobs"),
    )
    _echo_report(report)


part1_app = typer.Typer(help="Part 1 (PET/CT lesion detection) stages.")
app.add_typer(part1_app, name="part1")


@part1_app.command("align-fuse")
def part1_align_fuse(ingest_dir: Path, out: Path, params: Path = ParamsOption,
                     profile: str = ProfileOption) -> None:
    """Align PET to CT, enhance, localise and fuse every input (params: align_fuse)."""
    from crossmodal.io.case import load_cases
    from crossmodal.part1 import run_align_fuse

    cfg = load_params(params, profile)
    tables = run_align_fuse(load_cases(ingest_dir), out, cfg["align_fuse"], progress=True,
                            jobs=_compute(cfg, "jobs"))
    alignment = tables["alignment"]
    if "error_after_mm" in alignment:
        typer.echo(f"alignment error: {alignment['error_before_mm'].mean():.2f} mm before, "
                   f"{alignment['error_after_mm'].mean():.2f} mm after refinement")


@part1_app.command("datasets")
def part1_datasets(align_dir: Path, out: Path, params: Path = ParamsOption, profile: str = ProfileOption) -> None:
    """Export one YOLO dataset + COCO JSON per fusion input, with one shared patient split."""
    from crossmodal.part1_detect import export_datasets

    cfg = load_params(params, profile)
    names = cfg["cohort"]["pelvis"]["label_names"]
    split = export_datasets(align_dir, out, cfg["detect"], class_names=[names[k] for k in sorted(names)],
                            jobs=_compute(cfg, "jobs"))
    typer.echo(split["split"].value_counts().to_dict())


@part1_app.command("train")
def part1_train(datasets_dir: Path, out: Path, params: Path = ParamsOption, profile: str = ProfileOption) -> None:
    """Train every (detector, input, seed) run from scratch and store val/test detections."""
    from crossmodal.detect.env import configure_ultralytics
    from crossmodal.part1_detect import train_and_predict

    configure_ultralytics()
    cfg = load_params(params, profile)
    train_and_predict(datasets_dir, out, cfg["detect"], progress=True,
                      runs_at_once=_compute(cfg, "detector_runs"))


@part1_app.command("evaluate")
def part1_evaluate(datasets_dir: Path, runs_dir: Path, out: Path, params: Path = ParamsOption,
                   profile: str = ProfileOption) -> None:
    """AP, FP per slice, lesion sensitivity with patient-bootstrap CIs; paired differences; claims."""
    from crossmodal.part1_detect import evaluate_runs

    cfg = load_params(params, profile)
    tables = evaluate_runs(datasets_dir, runs_dir, out, cfg["detect"])
    typer.echo(tables["claims"].to_string(index=False))


part2_app = typer.Typer(help="Part 2 (bone metastasis: detectors, features, classifiers, C3D) stages.")
app.add_typer(part2_app, name="part2")


@part2_app.command("detect")
def part2_detect(ingest_dir: Path, out: Path, params: Path = ParamsOption,
                 profile: str = ProfileOption) -> None:
    """Per-modality detectors under the leakage rule; detections on every scored slice; AP."""
    from crossmodal.detect.env import configure_ultralytics
    from crossmodal.io.case import load_cases
    from crossmodal.part2 import run_detect

    configure_ultralytics()
    cfg = load_params(params, profile)
    tables = run_detect(load_cases(ingest_dir), out, cfg["part2_detect"],
                        cohort_cfg=cfg["cohort"]["skeleton"], feature_conf=cfg["features"]["conf"],
                        progress=True)
    typer.echo(tables["ap"][["modality", "patients", "ap50", "ap50_ci_low", "ap50_ci_high"]]
               .to_string(index=False))


@part2_app.command("features")
def part2_features(detect_dir: Path, out: Path, params: Path = ParamsOption,
                   profile: str = ProfileOption) -> None:
    """Confidence-bin features per patient and the folds shared by classifiers and C3D."""
    from crossmodal.part2 import run_features

    cfg = load_params(params, profile)
    tables = run_features(detect_dir, out, cfg["features"], cv=cfg["classify"]["cv"],
                          cohort_cfg=cfg["cohort"]["skeleton"])
    typer.echo(f"{len(tables['features'])} patients, {len(tables['detections'])} detections counted")


@part2_app.command("classify")
def part2_classify(features_dir: Path, out: Path,
                   metrics: Path = typer.Option(..., help="DVC metrics JSON to write"),
                   plots: Path = typer.Option(..., help="folder for the DVC ROC / PR plot files"),
                   params: Path = ParamsOption, profile: str = ProfileOption) -> None:
    """Classifiers x feature sets (CT, MRI, PET, fused): OOF scores, metrics, comparisons, DeLong."""
    from crossmodal.part2 import run_classify
    from crossmodal.part2 import write_dvc_metrics

    cfg = load_params(params, profile)
    tables = run_classify(features_dir, out, cfg["classify"], cohort_cfg=cfg["cohort"]["skeleton"],
                          progress=True)
    summary = write_dvc_metrics(tables, metrics, plots)
    typer.echo(json.dumps(summary.get("fused_minus_single", {})))


@part2_app.command("c3d")
def part2_c3d(ingest_dir: Path, features_dir: Path, out: Path,
              metrics: Path = typer.Option(..., help="DVC metrics JSON to write"),
              params: Path = ParamsOption, profile: str = ProfileOption) -> None:
    """C3D early fusion on the stacked modalities, same patients and folds as the classifiers."""
    from crossmodal.io.case import load_cases
    from crossmodal.part2 import run_c3d
    from crossmodal.part2 import write_dvc_metrics

    cfg = load_params(params, profile)
    clf = cfg["classify"]
    tables = run_c3d(load_cases(ingest_dir), features_dir, out, cfg["c3d"],
                     cohort_cfg=cfg["cohort"]["skeleton"], n_boot=clf["n_boot"],
                     boot_seed=clf["boot_seed"], threshold=clf["threshold"])
    write_dvc_metrics(tables, metrics)
    typer.echo(tables["metrics"][["metric", "estimate", "ci_low", "ci_high"]].to_string(index=False))


@app.command("export-nnunet")
def export_nnunet(ingest_dir: Path, out: Path, params: Path = ParamsOption,
                  profile: str = ProfileOption) -> None:
    """Write ingested Part 1 cases in the nnU-Net raw layout (CT _0000, PET on CT grid _0001)."""
    from crossmodal.io.case import load_cases
    from crossmodal.io.nnunet import write_nnunet_dataset

    cfg = load_params(params, profile)
    dataset = cfg["ingest"]["nnunet_dataset"]
    write_nnunet_dataset(load_cases(ingest_dir), out, dataset_id=dataset["id"], name=dataset["name"],
                         label_names=cfg["cohort"]["pelvis"]["label_names"])


@app.command()
def notebook(
    source: Path,
    output: Path,
    parameter: list[str] = typer.Option([], "-p", "--parameter", help="key=value (repeatable)"),
) -> None:
    """Execute a jupytext percent notebook with papermill into OUTPUT (.ipynb).

    Parameters are given as ``-p key=value``; they replace the notebook's
    ``parameters`` cell, as with papermill's own ``-p``.
    """
    import jupytext
    import papermill

    values = {}
    for item in parameter:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"parameter {item!r} is not key=value")
        values[key] = value
    nb = jupytext.read(source)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    output.parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(nb, str(output), parameters=values, kernel_name="python3",
                               progress_bar=False, cwd=str(Path.cwd()))


if __name__ == "__main__":
    app()
