"""Omniglot-shaped fixture files that the loader tests write (shared by several test files)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from metalearn.data import md5sum


def write_zip(path: Path, files: dict[str, bytes]) -> str:
    """Write ``files`` (name -> bytes) into the zip at ``path``; return the zip's md5."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return md5sum(path)
