"""Each inline script once per page.

Sphinx 7.4 adds the scripts that extensions register after the builder starts (the
sphinx-thebe settings, the sphinx-togglebutton selector) twice, once with no file name and
once with an empty one, so its de-duplication misses them; the second copy of
``const THEBE_JS_URL`` is a JavaScript error on every page.
"""

from __future__ import annotations


def _script_key(script) -> tuple:
    attributes = getattr(script, "attributes", {}) or {}
    return str(getattr(script, "filename", script) or ""), tuple(sorted(attributes.items()))


def drop_repeated_scripts(app, pagename, templatename, context, doctree) -> None:
    """Keep the first of scripts with the same file name (none = empty) and attributes."""
    seen, kept = set(), []
    for script in context.get("script_files", []):
        key = _script_key(script)
        if key not in seen:
            seen.add(key)
            kept.append(script)
    context["script_files"] = kept


def setup(app):
    app.connect("html-page-context", drop_repeated_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
