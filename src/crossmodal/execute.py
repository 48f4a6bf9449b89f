"""Execute a jupytext percent notebook with papermill, as the DVC stages do."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# Papermill's clock readings: they change on every run and say nothing about the results.
VOLATILE_METADATA = ("start_time", "end_time", "duration")


def execute_notebook(source: str | Path, output: str | Path, parameters: dict[str, Any]) -> None:
    """Run ``source`` (``py:percent``) into ``output`` (``.ipynb``) with ``parameters``
    replacing its ``parameters`` cell; the working directory stays the repository root.

    Progress bars are off in the kernel and papermill's timings are dropped from the saved
    notebook, so the same inputs give the same page, byte for byte, run after run.
    """
    import jupytext
    import nbformat
    import papermill

    nb = jupytext.read(source)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    saved = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"  # the kernel inherits this process's environment
    try:
        executed = papermill.execute_notebook(nb, str(output), parameters=parameters,
                                              kernel_name="python3", progress_bar=False,
                                              cwd=str(Path.cwd()))
    finally:
        if saved is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = saved
    nbformat.write(without_timings(executed), str(output))


def without_timings(nb):
    """``nb`` with papermill's start/end times and durations removed (in place)."""
    for holder in [nb.metadata] + [cell.metadata for cell in nb.cells]:
        record = holder.get("papermill", {})
        for key in VOLATILE_METADATA:
            record.pop(key, None)
        holder.pop("execution", None)
    return nb
