"""Read ``params.yaml`` with its profiles resolved, validated, and derived values filled.

``params.yaml`` holds a top-level ``profile`` key and a ``profiles`` mapping. Every
section may be overridden per profile: ``profiles.quick.phantom.pelvis.n_patients: 4``
replaces ``phantom.pelvis.n_patients`` when ``profile: quick``. Stages read only their
own section.

``studies`` lists Part 1's studies: each runs the Part 1 stages on its own cohort, and its
``sections`` replace entries of ``align_fuse``, ``data_card``, ``detect`` and
``cohort_report`` for its stages, merged as a profile is, before the profile. A load for one
study (``load_params(study="lung")``; default: the first listed) returns those merged
sections and ``study: {name, cohort}``.

:func:`load_params` checks the base sections under every study and profile, not only the chosen ones,
against :mod:`crossmodal.params.schema` (unknown keys, types, ranges) and
:mod:`crossmodal.params.rules` (rules across fields), and raises :class:`ParamsError`
naming the file, each offending key and its rule. Keys listed in
:data:`crossmodal.params.rules.DERIVED` are then filled from their source.
"""

from __future__ import annotations

import copy
import difflib
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic import ValidationError

from crossmodal.params import rules
from crossmodal.params.schema import Params

__all__ = ["DERIVED", "ParamsError", "deep_merge", "load_params", "study_cohort", "validate_params"]

DERIVED = rules.DERIVED


class ParamsError(ValueError):
    """Invalid params; ``problems`` holds ``(dotted key, rule)`` pairs, one line each."""

    def __init__(self, path: str | Path, problems: list[tuple[str, str]]):
        self.path, self.problems = str(path), problems
        super().__init__("\n".join(f"{path}: {key}: {rule}" for key, rule in problems))


def deep_merge(base: dict, override: dict) -> dict:
    """Return ``base`` with ``override`` merged in recursively (neither is changed)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_params(path: str | Path = "params.yaml", profile: str | None = None,
                study: str | None = None) -> dict[str, Any]:
    """Load ``params.yaml``, validate it, apply the study's sections and the selected
    profile, fill derived values.

    Parameters
    ----------
    path : path to the YAML file.
    profile : profile name; default is the file's own ``profile`` key.
    study : a key of ``studies`` (Part 1); default the first listed.

    Raises
    ------
    ParamsError
        (a ``ValueError``) naming the file, each offending key and its rule.
    """
    with open(path) as fh:
        raw = yaml.safe_load(fh)
    base, profiles = validate_params(raw, path)
    chosen = profile or base["profile"]
    if chosen not in profiles:
        raise ParamsError(path, [("profile", f"profile {chosen!r} is not defined under "
                                             f"'profiles' ({', '.join(profiles)})")])
    name = study or next(iter(base["studies"]))
    if name not in base["studies"]:
        raise ParamsError(path, [("study", f"study {name!r} is not defined under 'studies' "
                                           f"({', '.join(base['studies'])})")])
    resolved = deep_merge(with_study(base, name), profiles[chosen])
    rules.derive(resolved)
    resolved["profile"] = chosen
    return resolved


def with_study(base: dict, name: str) -> dict:
    """``base`` with study ``name``'s sections merged in and ``study: {name, cohort}`` set."""
    entry = base["studies"][name]
    sections = entry.get("sections")
    merged = deep_merge(base, sections if isinstance(sections, dict) else {})
    if isinstance(entry.get("cohort"), str):  # else the schema names the missing cohort
        merged["study"] = {"name": name, "cohort": entry["cohort"]}
    return merged


def study_cohort(params: dict[str, Any]) -> dict[str, Any]:
    """The ``cohort`` entry of the study ``params`` were loaded for (:func:`load_params`)."""
    return params["cohort"][params["study"]["cohort"]]


def validate_params(raw: Any, path: str | Path = "params.yaml") -> tuple[dict, dict[str, dict]]:
    """Check a parsed ``params.yaml``: the base sections under every study and profile.

    Returns the base sections (without ``profiles``) and ``{profile: overrides}`` with
    ``default`` always present; raises :class:`ParamsError` listing every problem.
    """
    if not isinstance(raw, dict):
        raise ParamsError(path, [("(file)", "must be a mapping of sections")])
    base = {k: v for k, v in raw.items() if k != "profiles"}
    profiles = raw.get("profiles") or {}
    problems = _profile_shape(profiles)
    if problems:
        raise ParamsError(path, problems)
    profiles = {"default": {}, **{name: over or {} for name, over in profiles.items()}}
    if base.get("profile") not in profiles:
        problems.append(("profile", f"{base.get('profile')!r} is not a profile "
                                    f"({', '.join(profiles)})"))
    studies = _study_shape(base.get("studies"))
    if not studies:
        problems.append(("studies", "must map at least one study name -> {cohort, sections}"))
        raise ParamsError(path, problems)
    reported = set()  # problems already listed, so that each is named once
    first = next(iter(studies))
    for study, sections in studies.items():
        for name, override in profiles.items():
            merged = deep_merge(with_study(base, study), override)
            for key, rule, from_profile in _problems(merged, override):
                if from_profile:
                    where, shown = f"profiles.{name}.{key}", rule
                elif _overridden(sections, key):
                    where, shown = f"studies.{study}.sections.{key}", rule
                else:
                    where, shown = key, f"{rule} (with profile {name})" if override else rule
                    if study != first:  # a base value wrong only for another study's cohort
                        shown += f" (in study {study})"
                if (where, rule) not in reported:
                    reported.add((where, rule))
                    problems.append((where, shown))
    if problems:
        raise ParamsError(path, problems)
    return base, profiles


def _study_shape(studies: Any) -> dict[str, dict]:
    """``{study: its sections}`` of the well-formed entries (the schema reports the others)."""
    if not isinstance(studies, dict):
        return {}
    return {name: (entry.get("sections") if isinstance(entry.get("sections"), dict) else {})
            for name, entry in studies.items() if isinstance(entry, dict)}


def _profile_shape(profiles: Any) -> list[tuple[str, str]]:
    if not isinstance(profiles, dict):
        return [("profiles", "must be a mapping of profile name -> overrides")]
    return [(f"profiles.{name}", "must be a mapping of overrides (or empty)")
            for name, over in profiles.items()
            if not isinstance(name, str) or not isinstance(over, (dict, type(None)))]


def _problems(params: dict, override: dict) -> list[tuple[str, str, bool]]:
    """Schema problems, else cross-field problems, of one profile's params: ``(dotted key,
    rule, whether the profile's overrides set that key)``."""
    try:
        Params.model_validate(params)
    except ValidationError as error:
        found = _schema_problems(params, error)
    else:
        found = rules.check(params)
    return [(key, rule, _overridden(override, key)) for key, rule in found]


def _overridden(override: dict, dotted: str) -> bool:
    node = override
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return True  # the profile replaced this whole value (e.g. a list)
        if part not in node and _int_key(part) not in node:
            return False
        node = node.get(part, node.get(_int_key(part)))
    return True


def _int_key(part: str) -> int | str:
    return int(part) if part.isdigit() else part


def _schema_problems(params: dict, error: ValidationError) -> list[tuple[str, str]]:
    """One ``(dotted key, rule)`` per offending key; union alternatives joined by 'or'."""
    grouped: dict[str, list[str]] = {}
    got: dict[str, str] = {}
    for item in error.errors():
        loc = _data_loc(params, item["loc"], keep_last=item["type"] == "missing")
        dotted = ".".join(str(part) for part in loc)
        rule = _rule(item, loc)
        if rule not in grouped.setdefault(dotted, []):
            grouped[dotted].append(rule)
        if item["type"] not in ("missing", "extra_forbidden"):
            got[dotted] = f", got {repr(item['input'])[:60]}"
    return [(key, " or ".join(found) + got.get(key, "")) for key, found in grouped.items()]


def _data_loc(params: dict, loc: tuple, *, keep_last: bool) -> list:
    """The parts of a pydantic error location that are keys of the data (union member
    tags such as ``'int'`` are dropped); a missing key is kept as the last part."""
    node, kept = params, []
    for i, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        elif keep_last and i == len(loc) - 1:
            pass
        else:
            continue
        kept.append(part)
    return kept


def _rule(item: dict, loc: list) -> str:
    if item["type"] == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        if close:
            return f"unknown key; did you mean {close[0]!r}?"
        return f"unknown key (allowed: {', '.join(allowed)})" if allowed else "unknown key"
    if item["type"] == "missing":
        return "required key is missing"
    message = item["msg"].removeprefix("Input ").removeprefix("Value error, ")
    return f"key {message}" if item["loc"][-1:] == ("[key]",) else message


def _allowed_keys(loc: list) -> list[str]:
    """Keys the schema allows at ``loc`` (empty when it is not a fixed section)."""
    annotation: Any = Params
    for part in loc:
        fields = _fields(annotation)
        if part in fields:
            annotation = fields[part]
        elif typing.get_origin(_strip(annotation)) in (dict, list):
            annotation = typing.get_args(_strip(annotation))[-1]
        else:
            return []
    return list(_fields(annotation))


def _fields(annotation: Any) -> dict[str, Any]:
    """Key -> annotation of the pydantic model in ``annotation`` (``Model``, ``Model | None``)."""
    annotation = _strip(annotation)
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    for candidate in (annotation, *(typing.get_args(annotation) if union else ())):
        candidate = _strip(candidate)
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return {field.alias or name: field.annotation
                    for name, field in candidate.model_fields.items()}
    return {}


def _strip(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation
