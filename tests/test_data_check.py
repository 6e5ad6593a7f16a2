"""The up-front data check: what is missing, said in seconds, with what to do about it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from metalearn.data import check

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def empty_data(tmp_path, monkeypatch):
    monkeypatch.setenv("METALEARN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("METALEARN_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "data"


def test_offline_without_files_names_both_data_sets_the_folders_and_the_variable(
    empty_data, monkeypatch
):
    monkeypatch.setattr(check, "_reachable", lambda url, timeout: False)
    omniglot, fsmol = check.missing()
    assert "Omniglot (chapter 6.1)" in omniglot and str(empty_data / "omniglot") in omniglot
    assert "images_background_small1.zip" in omniglot and "METALEARN_DATA_DIR" in omniglot
    assert "FS-Mol (chapter 6.3)" in fsmol and "fsmol_subset.csv.gz" in fsmol
    assert check.main() == 1


def test_a_reachable_download_counts_for_omniglot(empty_data, monkeypatch):
    monkeypatch.setattr(check, "_reachable", lambda url, timeout: True)
    assert [problem[:6] for problem in check.missing()] == ["FS-Mol"]


def test_extracted_folders_count_as_at_hand(empty_data, monkeypatch):
    monkeypatch.setattr(check, "_reachable", lambda url, timeout: False)
    for name in ("images_background_small1", "images_background_small2"):
        (empty_data / "omniglot" / name).mkdir(parents=True)
    (empty_data / "fsmol" / "fs-mol").mkdir(parents=True)
    assert check.missing() == []


@pytest.mark.skipif(not SHARED.is_dir(), reason="no ../shared/data beside the repository")
def test_the_shared_data_is_at_hand(monkeypatch):
    monkeypatch.setenv("METALEARN_DATA_DIR", os.fspath(SHARED))
    monkeypatch.setattr(check, "_reachable", lambda url, timeout: False)
    assert check.missing() == []
