"""Sphinx extension: when a chapter is executed, and where its outputs come from.

``make book`` executes every chapter it reads (``execute_notebooks: force``). Sphinx reads a
page again only when it changed, but a chapter's numbers also depend on the ``metalearn``
package, so every package file is made a dependency of every chapter: edit the package and
the next build executes the chapters again, instead of keeping their old outputs.

``make test`` executes the chapters under nbval first and stores them in a jupyter-cache
(``book/conftest.py``). With ``METALEARN_EXECUTED_CACHE`` set to that folder, the build takes
each chapter's outputs from the cache instead of executing it a second time; a chapter the
cache lacks is a warning (an error under ``-W``), since the build would otherwise execute it
silently.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sphinx.util import logging

logger = logging.getLogger(__name__)
PACKAGE = Path(__file__).resolve().parent.parent / "metalearn"


def _executed_cache() -> str | None:
    """The folder of the chapters nbval executed (``METALEARN_EXECUTED_CACHE``), if set."""
    folder = os.environ.get("METALEARN_EXECUTED_CACHE")
    return str(Path(folder).resolve()) if folder else None


def _use_executed_cache(app: Any, config: Any) -> None:
    folder = _executed_cache()
    if folder:
        config.nb_execution_mode = "cache"
        config.nb_execution_cache_path = folder


def _is_chapter(app: Any, docname: str) -> bool:
    return Path(app.env.doc2path(docname)).suffix == ".ipynb"


def _note_package(app: Any, docname: str, source: list[str]) -> None:
    """Every file of the package is a dependency of every chapter."""
    if _is_chapter(app, docname):
        for module in sorted(PACKAGE.rglob("*.py")):
            app.env.note_dependency(str(module))


def _check_executed(app: Any, docname: str, source: list[str]) -> None:
    """Warn when a chapter is not among the executed ones (the build would execute it)."""
    folder = _executed_cache()
    if not folder or not _is_chapter(app, docname):
        return
    import nbformat
    from jupyter_cache import get_cache

    try:
        get_cache(folder).match_cache_notebook(nbformat.reads(source[0], as_version=4))
    except KeyError:
        logger.warning(
            f"{docname}: not in the executed chapters at {folder} (did it pass under nbval?); "
            "the build executes it"
        )


def setup(app: Any) -> dict[str, Any]:
    app.connect("config-inited", _use_executed_cache)
    app.connect("source-read", _note_package)
    app.connect("source-read", _check_executed)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
