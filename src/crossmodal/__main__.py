"""``python -m crossmodal`` = the ``crossmodal`` command (where no console script is installed)."""

from crossmodal.cli import app

app()
