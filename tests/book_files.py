"""Where the book's chapters are, shared by the notebook and HTML checks."""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
# The repository's one recorded address is _config.yml's repository.url; the Colab cell of
# every chapter, the Colab links and the README are checked against it (test_notebooks.py).
REPOSITORY = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"].removeprefix(
    "https://github.com/"
)

# The first code cell of every chapter, verbatim (tests/test_notebooks.py checks it).
COLAB_CELL = f"""# Colab: install metalearn from the book's repository when it is not importable
# (keeps Colab's own torch; pip into this kernel's Python, so no restart is needed).
try:
    import metalearn
except ImportError:
    import subprocess
    import sys

    package = "metalearn[chem] @ git+https://github.com/{REPOSITORY}@main"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=True)
    import metalearn"""


def toc_files() -> list[str]:
    """Every page of ``_toc.yml`` as a path relative to the root, without suffix."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]

    def walk(entries: list[dict]) -> None:
        for entry in entries:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("sections", []))
            for part in entry.get("parts", []):
                walk(part.get("chapters", []))

    walk(toc.get("chapters", []))
    for part in toc.get("parts", []):
        walk(part.get("chapters", []))
    return pages


def notebooks() -> list[Path]:
    return sorted(BOOK.glob("*.ipynb"))


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def source(cell: dict) -> str:
    text = cell["source"]
    return text if isinstance(text, str) else "".join(text)


# A code cell plots when it shows a matplotlib figure (the chapters end each figure with
# plt.show()) or calls one of metalearn.plotting's figure functions at the top level.
PLOTS = re.compile(r"^\s*plt\.show\(\)|^(\w+\s*=\s*)?(ml\.plotting\.)?(show|draw)_\w+\(", re.M)


def tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def plotting_cells(path: Path) -> list[tuple[int, dict]]:
    """``(i, cell)`` for each code cell that plots; ``i`` counts the code cells a page shows.

    Jupyter Book drops cells tagged ``remove-cell`` and the outputs of cells tagged
    ``remove-output`` (the live widgets, which have a static figure beside them).
    """
    shown = [
        cell
        for cell in load(path)["cells"]
        if cell["cell_type"] == "code" and "remove-cell" not in tags(cell)
    ]
    return [
        (i, cell)
        for i, cell in enumerate(shown)
        if PLOTS.search(source(cell)) and "remove-output" not in tags(cell)
    ]


@contextlib.contextmanager
def served_site(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on a free localhost port; yield its base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # no line per request in the test log
            pass

    handler = functools.partial(Quiet, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
