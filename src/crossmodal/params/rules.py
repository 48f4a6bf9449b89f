"""Rules across fields and sections of ``params.yaml``, and the values derived from others.

Every rule takes the params of one profile (already valid against
:mod:`crossmodal.params.schema`) and returns ``(dotted key, rule)`` problems. Values that
must agree are stated once: :data:`DERIVED` lists each key filled from another after
validation; a file may still state it, but only with the same value.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["DERIVED", "check", "derive", "get"]

Problems = list[tuple[str, str]]

#: derived key -> the key it is copied from (and why they must agree).
DERIVED: dict[str, tuple[str, str]] = {
    "detect.train.imgsz": (
        "align_fuse.image_size", "the datasets are exported at that size"),
    "align_fuse.method_options.adaptive_region.suv_max": (
        "align_fuse.enhance.suv_max", "PET is scaled to [0, 1] by that SUV"),
}

_MISSING = object()


def get(params: dict, dotted: str, default: Any = _MISSING) -> Any:
    """``params[a][b][c]`` for ``"a.b.c"``; ``default`` (or ``KeyError``) when absent."""
    node = params
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            if default is _MISSING:
                raise KeyError(dotted)
            return default
        node = node[part]
    return node


def derive(params: dict) -> None:
    """Fill every :data:`DERIVED` key from its source, in place."""
    for target, (source, _why) in DERIVED.items():
        *parents, leaf = target.split(".")
        node = params
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = copy.deepcopy(get(params, source))


def check(params: dict) -> Problems:
    """Every cross-field problem of one profile's params."""
    problems: Problems = []
    for rule in (_ties, _label_ids, _cohorts, _fusion, _detect_inputs, _part2):
        problems += rule(params)
    return problems


def _ties(params: dict) -> Problems:
    problems = []
    for target, (source, why) in DERIVED.items():
        stated, wanted = get(params, target, None), get(params, source)
        if stated is not None and stated != wanted:
            problems.append((target, f"must equal {source} ({wanted!r}, {why}), got {stated!r}; "
                                     f"it is derived from {source}: leave it out"))
    return problems


def _label_ids(params: dict) -> Problems:
    problems = []
    for name, source in params["cohort"].items():
        ids = sorted(source["label_names"])
        if ids != list(range(1, len(ids) + 1)):
            problems.append((f"cohort.{name}.label_names",
                             f"label ids must be consecutive from 1 (1..{len(ids)}), got {ids}"))
    return problems


def _missing(names, known, what: str) -> str | None:
    unknown = [n for n in names if n not in known]
    return f"{', '.join(map(repr, unknown))} not in {what} ({', '.join(known)})" if unknown else None


def _cohorts(params: dict) -> Problems:
    problems = []
    for name, source in params["cohort"].items():
        key, modalities = f"cohort.{name}", source["modalities"]
        for field in ("required_modalities", "label_modalities"):
            if message := _missing(source[field], modalities, f"{key}.modalities"):
                problems.append((f"{key}.{field}", message))
        names = source.get("modality_names")
        if names is not None and sorted(names) != sorted(modalities):
            problems.append((f"{key}.modality_names",
                             f"must name each of {key}.modalities {modalities}, got {sorted(names)}"))
        if source["source"] == "phantom" and params["phantom"].get(name) is None:
            problems.append((f"{key}.source", f"'phantom' needs a phantom.{name} section"))
    return problems


def _fusion(params: dict) -> Problems:
    from crossmodal.imaging.fusion.methods import list_methods
    from crossmodal.imaging.fusion.methods import method_options

    known = list_methods()
    cfg = params["align_fuse"]
    problems = [(f"align_fuse.inputs.{name}.method",
                 f"unknown fusion method {spec['method']!r} (known: {', '.join(known)})")
                for name, spec in cfg["inputs"].items() if spec["method"] not in known]
    for method, options in cfg["method_options"].items():
        key = f"align_fuse.method_options.{method}"
        if method not in known:
            problems.append((key, f"unknown fusion method {method!r} (known: {', '.join(known)})"))
            continue
        accepted = method_options(method)
        for option in options:
            if accepted is not None and option not in accepted:
                problems.append((f"{key}.{option}", f"fusion method {method!r} has no such option "
                                                    f"(its options: {', '.join(accepted) or 'none'})"))
    return problems


def _detect_inputs(params: dict) -> Problems:
    detect, fused = params["detect"], list(params["align_fuse"]["inputs"])
    checks = [("detect.inputs", detect["inputs"], fused, "align_fuse.inputs"),
              ("detect.proposed", [detect["proposed"]], detect["inputs"], "detect.inputs")]
    for i, run in enumerate(detect["detectors"]):
        if run["inputs"] != "all":
            checks.append((f"detect.detectors.{i}.inputs", run["inputs"], detect["inputs"],
                           "detect.inputs"))
    # Claims may name inputs a small profile does not train (they are skipped), but every
    # one must be a fusion input.
    claims = detect["claims"]
    for field in ("single_modality", "baseline_fusions", "fp_reference"):
        names = claims[field] if isinstance(claims[field], list) else [claims[field]]
        checks.append((f"detect.claims.{field}", names, fused, "align_fuse.inputs"))
    return [(key, message) for key, names, known, what in checks
            if (message := _missing(names, known, what))]


def _part2(params: dict) -> Problems:
    problems = []
    detect, features = params["part2_detect"], params["features"]
    if detect["predict"]["ap_conf"] > features["conf"]:
        problems.append(("part2_detect.predict.ap_conf",
                         f"must be <= features.conf ({features['conf']}): the features count "
                         "detections from that confidence"))
    if features["high"] <= features["conf"]:
        problems.append(("features.high", f"must be above features.conf ({features['conf']})"))
    if params["c3d"]["n_repeats"] > params["classify"]["cv"]["n_repeats"]:
        problems.append(("c3d.n_repeats", "must be <= classify.cv.n_repeats "
                                          f"({params['classify']['cv']['n_repeats']}): C3D reuses those folds"))
    skeleton = params["cohort"].get("skeleton")
    if skeleton is not None:
        modalities = skeleton["modalities"]
        for key in ("part2_detect.channels", "c3d.channels"):
            if message := _missing(modalities, list(get(params, key)), key):
                problems.append((key, f"every modality of cohort.skeleton needs channels: {message}"))
        if message := _missing(params["c3d"]["reference"], modalities, "cohort.skeleton.modalities"):
            problems.append(("c3d.reference", message))
    return problems
