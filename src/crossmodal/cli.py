"""``crossmodal`` command line: every pipeline stage runs outside notebooks too.

    crossmodal data                           # make the input cohorts under data/ available
    crossmodal stage NAME key=value ...       # run stages.NAME.run(params, key=value, ...)
    crossmodal notebook NB.py OUT.ipynb -p key=value ...   # the same stage through its notebook
    crossmodal phantom pelvis|skeleton OUT    # write a simulated cohort as DICOM

``crossmodal stage export_nnunet ingest_dir=IN out=OUT`` writes ingested Part 1 cases in the
nnU-Net raw layout.

``NAME`` is a module of ``crossmodal.stages`` (``ingest``, ``pelvis.align_fuse``,
``skeleton.features``, ...), as ``dvc.yaml`` names them. This module holds no policy: it
loads the validated params and hands them, with the paths, to the stage.
"""

from __future__ import annotations

import datetime
import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import typer

from crossmodal.params import ParamsError
from crossmodal.params import load_params as _load_params
from crossmodal.reproducible import GENERATION_KERNELS
from crossmodal.reproducible import file_kernels
from crossmodal.reproducible import pin_cpu_kernels

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)

ParamsOption = typer.Option("params.yaml", "--params", help="Path to params.yaml")
ProfileOption = typer.Option(None, "--profile", help="Override the params.yaml profile")
StudyOption = typer.Option(None, "--study", help="Part 1: the study (a key of params studies; default the first)")


def load_params(path: Path, profile: str | None, study: str | None = None) -> dict:
    """Validated params; an invalid file stops the command with every problem named.

    Also holds the CPU libraries of this process, and of every process it starts, to the
    params' ``reproducibility.cpu_kernels`` (:func:`crossmodal.reproducible.pin_cpu_kernels`),
    before validation loads NumPy; an invalid value stops the command there.
    """
    try:
        pin_cpu_kernels(file_kernels(path, profile))
    except ValueError as error:
        typer.echo(f"{path}: {error}", err=True)
        raise typer.Exit(2) from None
    try:
        params = _load_params(path, profile, study=study)
    except (ParamsError, KeyError) as error:
        typer.echo(str(error).strip("'\""), err=True)
        raise typer.Exit(2) from None
    return params


def key_values(items: list[str]) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; a bad item is a usage error naming it."""
    values = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"argument {item!r} is not key=value")
        values[key] = value
    return values


def stage_module(name: str):
    """``crossmodal.stages.<name>``; a usage error naming the stage when it does not exist."""
    try:
        return importlib.import_module(f"crossmodal.stages.{name}")
    except ModuleNotFoundError as error:
        if not (error.name or "").startswith("crossmodal.stages"):
            raise
        raise typer.BadParameter(f"no stage {name!r} (a module of crossmodal.stages)") from None


@app.command()
def data(params: Path = ParamsOption, profile: str = ProfileOption, dvc_add: bool = True) -> None:
    """Make the input cohorts under data/ available, then record them in data.dvc."""
    # The cohorts' bytes are recorded in data.dvc: made on the same kernels on every machine.
    pin_cpu_kernels({"reproducibility": {"cpu_kernels": GENERATION_KERNELS}})
    from crossmodal.stages import data as data_stage

    settings = load_params(params, profile)
    try:
        data_stage.run(settings, dvc_add=dvc_add, echo=typer.echo)
    except RuntimeError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from None


@app.command()
def stage(name: str, arguments: list[str] = typer.Argument(None, help="key=value paths"),
          params: Path = ParamsOption, profile: str = ProfileOption, study: str = StudyOption) -> None:
    """Run one pipeline stage: ``crossmodal stage pelvis.align_fuse ingest_dir=... out=...``
    (a Part 1 stage of another study: ``--study lung``)."""
    settings = load_params(params, profile, study)  # first: it sets the CPU kernels before NumPy loads
    module, values = stage_module(name), key_values(arguments or [])
    try:
        module.run(settings, **values)
    except RuntimeError as error:
        typer.echo(f"{name}: {error}", err=True)
        raise typer.Exit(1) from None


@app.command()
def phantom(cohort: str, out: Path, params: Path = ParamsOption, profile: str = ProfileOption,
            locked_test: bool = typer.Option(False, help="its locked test cohort (phantom.<cohort>_test)")) -> None:
    """Write the simulated cohort COHORT (pelvis or skeleton: DICOM + labels + truth) to OUT."""
    from crossmodal.stages.data import write_phantom

    write_phantom(load_params(params, profile), cohort, out, locked_test=locked_test)


@app.command()
def notebook(
    source: Path,
    output: Path,
    parameter: list[str] = typer.Option([], "-p", "--parameter", help="key=value (repeatable)"),
    params: Path = ParamsOption,
    profile: str = ProfileOption,
) -> None:
    """Execute a jupytext percent notebook with papermill into OUTPUT (.ipynb).

    ``-p key=value`` replaces the notebook's ``parameters`` cell, as papermill's own ``-p``;
    ``--params`` and ``--profile`` reach the notebook as ``params_path`` and ``profile``, so
    a notebook always runs with the same settings as the stage that runs it.
    """
    from crossmodal.execute import execute_notebook

    settings = load_params(params, profile)
    values = {"params_path": str(params), **key_values(parameter)}
    if profile:
        values["profile"] = profile
    start = time.perf_counter()
    execute_notebook(source, output, values)
    record_wall_time(source, output, time.perf_counter() - start, settings.get("profile"))


#: The book's own pages (notebooks/book/<page>.py), executed at build time from what the
#: stages wrote (results at a glance, how this book was made), from the repository's own
#: files (how to fork a study) or from data outside the repository (the real-data checks).
BOOK_PAGES = ("00_results", "real_data_checks", "fork", "reproduce")


@app.command()
def book(params: Path = ParamsOption, profile: str = ProfileOption) -> None:
    """Execute the book's own pages, then build the HTML book into book/_build/html
    (jupyter-book 1; a warning or an unresolved reference fails the build)."""
    for page in BOOK_PAGES:
        notebook(Path(f"notebooks/book/{page}.py"), Path(f"book/executed/book/{page}.ipynb"), [], params, profile)
    jb = Path(sys.executable).with_name("jb")  # the environment's own jupyter-book
    code = subprocess.call([str(jb), "build", "book", "--config", "_config.yml",
                            "--toc", str(Path("book/_toc.yml").absolute()), "--path-output", "book",
                            "--warningiserror", "--nitpick", "--keep-going"])
    if code:
        raise typer.Exit(code)


#: Wall time of each executed notebook (one JSON per output; read by the book's Reproduce page).
#: Outside every DVC output: a time is not a result, and differs run to run.
TIMINGS_DIR = Path(".timings")


def record_wall_time(source: Path, output: Path, seconds: float, profile: str | None,
                     timings_dir: Path = TIMINGS_DIR) -> Path | None:
    """Write ``<timings_dir>/<output path, "/" as "__">.json``: source, output, seconds,
    finished (UTC, ISO 8601) and profile of one notebook run. Nothing for an output outside
    the working directory (not a page of this book)."""
    output = Path(os.path.relpath(Path(output).absolute(), Path.cwd()))
    if output.parts[:1] == ("..",):
        return None
    record = {"source": Path(source).as_posix(), "output": output.as_posix(), "seconds": round(seconds, 1),
              "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "profile": profile}
    timings_dir.mkdir(parents=True, exist_ok=True)
    path = timings_dir / (output.as_posix().replace("/", "__") + ".json")
    path.write_text(json.dumps(record, indent=1) + "\n")
    return path


if __name__ == "__main__":
    app()
