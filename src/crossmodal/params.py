"""Read ``params.yaml`` with its profiles resolved.

``params.yaml`` holds a top-level ``profile`` key and a ``profiles`` mapping. Every
section may be overridden per profile: ``profiles.quick.phantom.n_patients: 4`` replaces
``phantom.n_patients`` when ``profile: quick``. Stages read only their own section.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml


def deep_merge(base: dict, override: dict) -> dict:
    """Return ``base`` with ``override`` merged in recursively (neither is changed)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_params(path: str | Path = "params.yaml", profile: str | None = None) -> dict[str, Any]:
    """Load ``params.yaml`` and apply the selected profile's overrides.

    Parameters
    ----------
    path : path to the YAML file.
    profile : profile name; default is the file's own ``profile`` key.
    """
    with open(path) as fh:
        raw = yaml.safe_load(fh)
    profiles = raw.pop("profiles", {}) or {}
    chosen = profile or raw.get("profile", "default")
    if chosen not in profiles and chosen != "default":
        raise KeyError(f"{path}: profile {chosen!r} is not defined under 'profiles' ({sorted(profiles)})")
    resolved = deep_merge(raw, profiles.get(chosen, {}) or {})
    resolved["profile"] = chosen
    return resolved
