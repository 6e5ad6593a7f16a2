"""Where the book's chapters are, shared by the notebook and HTML checks."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
REPOSITORY = "metalearn-book/metalearn-book"

# The first code cell of every chapter, verbatim (tests/test_notebooks.py checks it).
COLAB_CELL = """# Colab: install metalearn from the book's repository when it is not importable
# (keeps Colab's own torch).
try:
    import metalearn
except ImportError:
    %pip install -q "metalearn[chem] @ git+https://github.com/metalearn-book/metalearn-book@main"
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
