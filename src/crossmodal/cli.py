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

import importlib
from pathlib import Path

import typer

from crossmodal.params import ParamsError
from crossmodal.params import load_params as _load_params

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)

ParamsOption = typer.Option("params.yaml", "--params", help="Path to params.yaml")
ProfileOption = typer.Option(None, "--profile", help="Override the params.yaml profile")


def load_params(path: Path, profile: str | None) -> dict:
    """Validated params; an invalid file stops the command with every problem named."""
    try:
        return _load_params(path, profile)
    except (ParamsError, KeyError) as error:
        typer.echo(str(error).strip("'\""), err=True)
        raise typer.Exit(2) from None


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
    from crossmodal.stages import data as data_stage

    settings = load_params(params, profile)
    try:
        data_stage.run(settings, dvc_add=dvc_add, echo=typer.echo)
    except RuntimeError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from None


@app.command()
def stage(name: str, arguments: list[str] = typer.Argument(None, help="key=value paths"),
          params: Path = ParamsOption, profile: str = ProfileOption) -> None:
    """Run one pipeline stage: ``crossmodal stage pelvis.align_fuse ingest_dir=... out=...``."""
    module, values = stage_module(name), key_values(arguments or [])
    settings = load_params(params, profile)
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

    values = {"params_path": str(params), **key_values(parameter)}
    if profile:
        values["profile"] = profile
    execute_notebook(source, output, values)


if __name__ == "__main__":
    app()
