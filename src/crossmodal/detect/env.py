"""Run environment of detector training: offline ultralytics, device, seeds, run records.

Ultralytics reads its configuration directory and its online status once, at import
time, and fetches fonts (``Arial.ttf``) and AMP-check weights from the internet on
demand. :func:`configure_ultralytics` makes all of that local and must run before the
first ``import ultralytics``; :mod:`crossmodal.detect.train` calls it for you.
:func:`resolve_device`, :func:`seed_everything`, :func:`library_versions` and
:func:`jsonable` serve both trainer families.
"""

from __future__ import annotations

import contextlib
import os
import platform
import random
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np

__all__ = [
    "DEFAULT_CONFIG_DIR",
    "configure_ultralytics",
    "output_to",
    "jsonable",
    "library_versions",
    "resolve_device",
    "seed_everything",
]

#: Relative to the current working directory (the repository root at run time).
DEFAULT_CONFIG_DIR = ".yolo"

# Font names ultralytics may ask for: ``check_det_dataset`` calls ``check_font`` with
# Arial.ttf (ASCII class names) or Arial.Unicode.ttf, and downloads it when missing.
_FONT_NAMES = ("Arial.ttf", "Arial.Unicode.ttf")


def _fallback_font() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"


def _place_fonts(user_dir: Path) -> None:
    user_dir.mkdir(parents=True, exist_ok=True)
    source = _fallback_font()
    for name in _FONT_NAMES:
        target = user_dir / name
        if not target.exists():
            shutil.copyfile(source, target)


def configure_ultralytics(config_dir: str | os.PathLike | None = None) -> Path:
    """Prepare a local, offline configuration for ultralytics.

    Sets ``YOLO_OFFLINE=1`` and ``YOLO_CONFIG_DIR``, and copies matplotlib's DejaVu Sans
    to ``$YOLO_CONFIG_DIR/Ultralytics/Arial.ttf`` (and ``Arial.Unicode.ttf``) so that
    ultralytics finds a font instead of downloading one. Calling it again is harmless.

    Parameters
    ----------
    config_dir : path-like, optional
        Folder for ultralytics' settings and fonts. Default: ``$YOLO_CONFIG_DIR`` when
        already set, else ``<cwd>/.yolo``.

    Returns
    -------
    pathlib.Path
        The ``Ultralytics`` folder actually used (where ``settings.json`` lives).

    Warns
    -----
    RuntimeWarning
        When ultralytics was already imported with another configuration folder; that
        folder keeps being used (it was fixed at import) and gets the fonts too.

    Notes
    -----
    Training must still pass ``amp=False``: the AMP check downloads ``yolo11n.pt``.
    """
    if config_dir is None:
        # A folder chosen earlier (previous call, or the caller's shell) stays in force.
        config_dir = os.environ.get("YOLO_CONFIG_DIR") or DEFAULT_CONFIG_DIR
    config_dir = Path(config_dir).expanduser().absolute()
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_CONFIG_DIR"] = str(config_dir)
    requested = config_dir / "Ultralytics"
    if "ultralytics" in sys.modules:
        from ultralytics.utils import USER_CONFIG_DIR

        active = Path(USER_CONFIG_DIR).absolute()
        if active != requested:
            warnings.warn(
                f"ultralytics was imported before configure_ultralytics(); it keeps using "
                f"{active} instead of {requested}",
                RuntimeWarning,
                stacklevel=2,
            )
        _place_fonts(active)
        return active
    _place_fonts(requested)
    return requested


def resolve_device(device: str | None = None) -> str:
    """``None``/``'auto'`` -> ``'cuda'`` if available else ``'cpu'``; otherwise unchanged."""
    import torch

    if device in (None, "auto", ""):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's global and torch's random generators."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def library_versions() -> dict:
    """Versions of Python, torch, torchvision, crossmodal and (if installed) ultralytics."""
    import torch
    import torchvision

    import crossmodal

    out = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "crossmodal": crossmodal.__version__,
    }
    try:
        from importlib.metadata import version

        out["ultralytics"] = version("ultralytics")
    except Exception:  # pragma: no cover - not installed
        pass
    return out


def jsonable(value):
    """``value`` with paths, tuples and NumPy scalars turned into JSON types (recursively)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return value


@contextlib.contextmanager
def output_to(path: str | Path):
    """Send everything this process prints, at the file-descriptor level (trainers' progress
    bars and logs, native libraries, child processes), to ``path`` while the block runs.

    A trainer's log is thousands of lines: in a stage run by a notebook it would otherwise
    land in the book page and cost the kernel time to relay. The log stays beside the run.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "a") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield path
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
