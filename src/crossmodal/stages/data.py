"""Stage ``data`` (run by ``make repro`` before ``dvc repro``): make every input cohort of
``cohort:`` available under ``data/`` and record it in ``data.dvc``.

A phantom cohort is (re)generated when missing or made by other parameters or generator
code; a ``dicom`` cohort is pulled with ``dvc pull data.dvc`` when missing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from crossmodal.parallel import compute_setting


def _dvc(*args: str) -> int:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    return subprocess.call([sys.executable, "-m", "dvc", *args], env=env)


def phantom_generators() -> dict:
    """cohort name -> (generate(params, root, progress, jobs), is_up_to_date(root, params))."""
    from crossmodal.phantom.cohort import generate_pelvis_cohort
    from crossmodal.phantom.cohort import is_up_to_date
    from crossmodal.phantom.skeleton_cohort import generate_skeleton_cohort
    from crossmodal.phantom.skeleton_cohort import is_skeleton_up_to_date

    return {"pelvis": (generate_pelvis_cohort, is_up_to_date),
            "skeleton": (generate_skeleton_cohort, is_skeleton_up_to_date)}


def write_phantom(params: dict[str, Any], cohort: str, out: str | Path) -> Path:
    """Write the simulated cohort ``cohort`` (``phantom.<cohort>``) as DICOM under ``out``."""
    generate, _ = phantom_generators()[cohort]
    return generate(params["phantom"][cohort], Path(out), progress=True,
                    jobs=compute_setting(params, "jobs"))


def run(params: dict[str, Any], *, dvc_add: bool = True, echo=print) -> None:
    """Make every cohort of ``cohort:`` available under its ``root``; ``dvc add data`` after
    generating phantoms. Raises ``RuntimeError`` naming the cohort when a source fails."""
    generators = phantom_generators()
    any_phantom = False
    for name, source in params["cohort"].items():
        root = Path(source["root"])
        if source["source"] == "phantom":
            any_phantom = True
            _, up_to_date = generators[name]
            if up_to_date(root, params["phantom"][name]):
                echo(f"{root}: simulated cohort is up to date")
            else:
                echo(f"{root}: generating the simulated cohort "
                     f"({params['phantom'][name]['n_patients']} patients)")
                write_phantom(params, name, root)
        elif not root.exists() and _dvc("pull", "data.dvc") != 0:
            raise RuntimeError(f"cohort.{name}: {root} is missing and `dvc pull data.dvc` failed; "
                               "see README 'Your own data'")
    if any_phantom and dvc_add and _dvc("add", "--quiet", "data") != 0:
        raise RuntimeError("`dvc add data` failed")
