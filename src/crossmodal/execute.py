"""Execute a jupytext percent notebook with papermill, as the DVC stages do."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def execute_notebook(source: str | Path, output: str | Path, parameters: dict[str, Any]) -> None:
    """Run ``source`` (``py:percent``) into ``output`` (``.ipynb``) with ``parameters``
    replacing its ``parameters`` cell; the working directory stays the repository root."""
    import jupytext
    import papermill

    nb = jupytext.read(source)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(nb, str(output), parameters=parameters, kernel_name="python3",
                               progress_bar=False, cwd=str(Path.cwd()))
