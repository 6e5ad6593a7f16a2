"""Fixtures shared by the data-loader tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def folders(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """An empty ``METALEARN_DATA_DIR/omniglot`` and the cache folder the loader decodes into."""
    data, cache = tmp_path / "data" / "omniglot", tmp_path / "cache"
    data.mkdir(parents=True)
    monkeypatch.setenv("METALEARN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("METALEARN_CACHE_DIR", str(cache))
    return data, cache / "omniglot"
