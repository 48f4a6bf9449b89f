"""Pseudonymous identifiers: a keyed hash, so IDs are stable for a site but not reversible
without the key, and the same patient maps to the same pseudonym across studies."""

from __future__ import annotations

import hashlib
import hmac


def pseudonym(salt: str, *parts: str, prefix: str = "P", length: int = 8) -> str:
    digest = hmac.new(salt.encode(), "/".join(parts).encode(), hashlib.sha256).hexdigest()
    return f"{prefix}{digest[:length]}"


def redact(text: str, replacements: dict[str, str]) -> str:
    """Replace every identifier string in ``text`` (longest first) by its pseudonym."""
    for secret in sorted(replacements, key=len, reverse=True):
        if secret:
            text = text.replace(secret, replacements[secret])
    return text
