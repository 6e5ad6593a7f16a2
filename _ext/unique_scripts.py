"""Sphinx extension: each inline script once per page.

sphinx-thebe and sphinx-togglebutton (pulled in by Jupyter Book) register their inline
configuration scripts twice, at two priorities; the second ``const THEBE_JS_URL = ...``
throws "Identifier 'THEBE_JS_URL' has already been declared" in every reader's browser.
This drops repeats of a script (same file or body and attributes) from a page's list
before the page is written.
"""

from __future__ import annotations

from typing import Any


def _drop_repeated_scripts(app: Any, pagename: str, templatename: str, context: dict, doctree: Any):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        # the same file or inline body (the copies differ in priority or filename None vs "")
        key = (
            getattr(script, "filename", None) or "",  # inline scripts: None or ""
            repr(sorted(getattr(script, "attributes", {}).items())),
        )
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def setup(app: Any) -> dict[str, Any]:
    app.connect("html-page-context", _drop_repeated_scripts, priority=1000)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
