"""Rules across fields and sections of ``params.yaml``, and the values derived from others.

Every rule takes the params of one profile (already valid against
:mod:`crossmodal.params.schema`) and returns ``(dotted key, rule)`` problems. Values that
must agree are stated once: :data:`DERIVED` lists each key filled from another after
validation; a file may still state it, but only with the same value.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["DERIVED", "check", "cohort_at", "derive", "get"]

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
    for rule in (_ties, _label_ids, _studies, _cohorts, _hybrid_phantoms, _split, _fusion, _detect_inputs, _reference,
                 _part2, _skeleton_evidence):
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


def _hybrid_phantoms(params: dict) -> Problems:
    """A phantom ``based_on`` another names a phantom section without a base of its own,
    its ``real_data`` an entry of ``real_data``; a section of real ``cases`` finds each case's
    CT and lesion among that entry's files and an SUV for each of its tissue classes."""
    problems, phantoms = [], params.get("phantom") or {}
    for name, section in phantoms.items():
        if not isinstance(section, dict) or "based_on" not in section:
            continue
        base = phantoms.get(section["based_on"])
        if not isinstance(base, dict) or "based_on" in base:
            problems.append((f"phantom.{name}.based_on", f"{section['based_on']!r} is not a phantom section of its own"))
        if section.get("real_data") not in (params.get("real_data") or {}):
            problems.append((f"phantom.{name}.real_data", _missing([section.get("real_data")],
                                                                   list(params.get("real_data") or {}), "real_data")))
        elif "cases" in section:
            files = params["real_data"][section["real_data"]]["files"]
            needed = [f"{case}_{kind}.nrrd" for case in section["cases"] for kind in ("ct", "lesion")]
            problems.append((f"phantom.{name}.cases", _missing(needed, list(files), f"real_data.{section['real_data']}.files")))
        if "tissue_suv" in section:
            problems.append((f"phantom.{name}.tissue_suv", _missing(list(section["hu_tissues"]), list(section["tissue_suv"]),
                                                                   "tissue_suv")))
        if "bone_structures" in section:
            problems += _skeleton_sites(name, section, base if isinstance(base, dict) else {})
        elif "cases" not in section:
            problems += _lesion_sites(name, section)
    return [(key, problem) for key, problem in problems if problem]


def _lesion_sites(name: str, section: dict) -> Problems:
    """A hybrid's primary has one site (beside structures or within tissue classes); nodes
    beside structures need the tissues they may displace and their gap to the structure."""
    problems = []
    if bool(section.get("primary_beside")) == bool(section.get("primary_within")):
        problems.append((f"phantom.{name}.primary_beside", "give exactly one of primary_beside (structures) and "
                                                           "primary_within (activity classes)"))
    if section.get("node_beside") and not (section.get("node_tissues") and section.get("node_gap_mm")):
        problems.append((f"phantom.{name}.node_beside", "nodes beside structures need node_tissues and node_gap_mm"))
    return problems


def _skeleton_sites(name: str, section: dict, base: dict) -> Problems:
    """A real skeleton holds a bone group for every site its findings may be drawn at (the
    metastasis sites, and the groups the mimics use)."""
    sites = {**base, **section}.get("metastasis_sites") or {}
    needed = sorted({*sites, "vertebra", "pelvis", "rib", "femur"})
    return [(f"phantom.{name}.bone_structures",
             _missing(needed, list(section["bone_structures"]), "bone_structures"))]


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
        tested_on = cohort_at(params, source.get("test_root"))
        if tested_on is not None:
            problems += _tested_on_another(params, name, tested_on)
        elif source["source"] == "phantom" and source.get("test_root"):
            problems += _locked_phantom(params, name)
    return problems


def cohort_at(params: dict, root: str | None) -> str | None:
    """The cohort whose ``root`` is ``root`` (a locked test cohort may be another cohort's tree)."""
    return next((name for name, source in params["cohort"].items() if root and source["root"] == root), None)


def _tested_on_another(params: dict, name: str, other: str) -> Problems:
    """A locked test cohort that is another cohort's tree is read by this cohort's rules, so
    its labels must mean the same and its layout and modalities be the same."""
    dev, test = params["cohort"][name], params["cohort"][other]
    if other == name:
        return [(f"cohort.{name}.test_root", "is this cohort's own root: the test patients would be the "
                 "training patients")]
    if {int(k): v for k, v in dev["label_names"].items()} != {int(k): v for k, v in test["label_names"].items()}:
        return [(f"cohort.{name}.test_root", f"cohort.{other}, tested on, names its labels "
                 f"{test['label_names']}, not {dev['label_names']}")]
    differ = [key for key in TREE_RULES if dev.get(key) != test.get(key)]
    if differ:
        return [(f"cohort.{name}.test_root", f"cohort.{other}, tested on, differs in {', '.join(differ)}: "
                 "its tree is read by this cohort's rules")]
    return []


#: What a cohort's tree is read by: a locked test cohort that is another cohort's tree agrees on each.
TREE_RULES = ("modalities", "required_modalities", "label_modalities", "labels_dir", "truth_dir", "group_by",
              "require_nonempty_label")


def _locked_phantom(params: dict, name: str) -> Problems:
    """A simulated locked test cohort needs its own section and its own seed."""
    test, dev = params["phantom"].get(f"{name}_test"), params["phantom"].get(name) or {}
    if test is None:
        return [(f"cohort.{name}.test_root", f"a simulated locked test cohort needs phantom.{name}_test")]
    if test["seed"] == dev.get("seed"):
        return [(f"phantom.{name}_test.seed", f"must differ from phantom.{name}.seed: the locked test "
                 "cohort shares no seed with the patients the detectors learn from")]
    return []


#: Fusion layouts whose channels 0 and 1 are CT and PET (what the non-learned reference reads).
CT_PET_FIRST = {"adaptive_region", "concat_ct_pet_ct"}


def _reference(params: dict) -> Problems:
    """The non-learned reference reads CT and PET from channels 0 and 1 of its input."""
    reference = params["detect"].get("reference")
    if not reference:
        return []
    spec = params["align_fuse"]["inputs"].get(reference["input"])
    if spec is None:
        return [("detect.reference.input", f"'{reference['input']}' not in align_fuse.inputs")]
    if spec["method"] not in CT_PET_FIRST and spec.get("layout", "method") != "ct_pet_fused":
        return [("detect.reference.input", f"'{reference['input']}' does not carry CT and PET in its first "
                 "two channels ([CT, PET, F], [CT, PET, CT] or a ct_pet_fused control)")]
    return []


def _study_cohort(params: dict) -> tuple[str, dict | None]:
    """The name and ``cohort`` entry of the study these params were resolved for."""
    name = (params.get("study") or {}).get("cohort", "")
    return name, params["cohort"].get(name)


def _studies(params: dict) -> Problems:
    """Each study's cohort is a ``cohort`` entry."""
    return [(f"studies.{name}.cohort", f"'{study['cohort']}' is not a cohort ({', '.join(params['cohort'])})")
            for name, study in params["studies"].items() if study["cohort"] not in params["cohort"]]


def _split(params: dict) -> Problems:
    """Two split fractions beside a locked test cohort, three without one."""
    name, cohort = _study_cohort(params)
    if cohort is None:
        return []  # _studies names the missing cohort
    locked = bool(cohort.get("test_root"))
    n = len(params["detect"]["split"]["fractions"])
    if locked and n != 2:
        return [("detect.split.fractions", f"with a locked test cohort (cohort.{name}.test_root) give "
                 "[train, val]: the test patients are that cohort")]
    if not locked and n != 3:
        return [("detect.split.fractions", "without a locked test cohort give [train, val, test]")]
    return []


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
    # The analysis may name inputs a small profile does not train (they are skipped), but
    # every one must be a fusion input.
    analysis = detect["analysis"]
    for claim, spec in analysis["claims"].items():
        checks.append((f"detect.analysis.claims.{claim}.references", spec["references"], fused,
                       "align_fuse.inputs"))
    for claim, names in analysis.get("controls", {}).items():
        checks.append((f"detect.analysis.controls.{claim}", names, fused, "align_fuse.inputs"))
        checks.append(("detect.analysis.controls", [claim], list(analysis["claims"]), "detect.analysis.claims"))
    name, cohort = _study_cohort(params)
    if cohort is not None:
        checks.append(("detect.analysis.primary_class", [analysis["primary_class"]],
                       [str(n) for n in cohort["label_names"].values()], f"cohort.{name}.label_names"))
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
    if detect["tile_size"] > min(detect["slice_size"]):
        problems.append(("part2_detect.tile_size", f"must fit in part2_detect.slice_size "
                                                   f"{detect['slice_size']}: tiles are cut from slices"))
    if params["c3d"]["n_repeats"] > params["classify"]["cv"]["n_repeats"]:
        problems.append(("c3d.n_repeats", "must be <= classify.cv.n_repeats "
                                          f"({params['classify']['cv']['n_repeats']}): C3D reuses those folds"))
    nested, cv = params["classify"]["nested"], params["classify"]["cv"]
    if set(nested) != {"inner_splits", "n_repeats"}:
        problems.append(("classify.nested", "needs inner_splits and n_repeats"))
    elif nested["inner_splits"] < 2 or nested["n_repeats"] > cv["n_repeats"]:
        problems.append(("classify.nested", f"inner_splits must be >= 2 and n_repeats <= classify.cv.n_repeats "
                                            f"({cv['n_repeats']}): the nested models reuse those folds"))
    skeleton = params["cohort"].get("skeleton")
    if skeleton is not None:
        modalities = skeleton["modalities"]
        for key in ("part2_detect.channels", "c3d.channels"):
            if message := _missing(modalities, list(get(params, key)), key):
                problems.append((key, f"every modality of cohort.skeleton needs channels: {message}"))
        if message := _missing(params["c3d"]["reference"], modalities, "cohort.skeleton.modalities"):
            problems.append(("c3d.reference", message))
        if message := _missing([params["c3d"]["gate"]["modality"]], modalities,
                               "cohort.skeleton.modalities"):
            problems.append(("c3d.gate.modality", message))
    return problems


def _skeleton_evidence(params: dict) -> Problems:
    """The marrow-only kinds share one draw per metastasis: their shares add up to at most 1."""
    skeleton = params["phantom"].get("skeleton")
    if skeleton is None:
        return []
    total = skeleton["mri_only_fraction"] + skeleton["ct_occult_fraction"]
    if total > 1:
        return [("phantom.skeleton.ct_occult_fraction",
                 f"mri_only_fraction + ct_occult_fraction must be <= 1 (shares of the metastases), got {total}")]
    return []
