"""Sphinx extension: each inline script once per page.

sphinx-thebe (pulled in by Jupyter Book) registers its inline configuration script,
``const THEBE_JS_URL = ...``, twice; the second copy throws "Identifier 'THEBE_JS_URL'
has already been declared" in every reader's browser. This drops exact repeats of a
script from a page's list before the page is written.
"""

from __future__ import annotations

from typing import Any


def _drop_repeated_scripts(app: Any, pagename: str, templatename: str, context: dict, doctree: Any):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        key = (
            str(script),
            repr(sorted(getattr(script, "attributes", {}).items())),
        )
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def setup(app: Any) -> dict[str, Any]:
    app.connect("html-page-context", _drop_repeated_scripts, priority=1000)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
