"""The FS-Mol loader: the CSV subset, FS-Mol's own per-assay files, featurisation, errors."""

import csv
import gzip
import json
import os
from pathlib import Path

import numpy as np
import pytest

from metalearn.data import fsmol
from metalearn.data.fsmol import load_fsmol, read_subset, read_task_file
from metalearn.tasks.assays import featurize_assays

DATA_DIR = Path(
    os.environ.get("METALEARN_DATA_DIR")
    or Path(__file__).resolve().parents[1].parent / "shared" / "data"
)
ROWS = [
    # split, assay, smiles, active, log_activity, assay_type
    ("train", "CHEMBL2", "CCO", "1", "6.1", "B"),
    ("train", "CHEMBL2", "CCN", "0", "4.0", "B"),
    ("train", "CHEMBL2", "C1CC", "1", "5.5", "B"),  # unparseable: ring never closed
    ("train", "CHEMBL1", "c1ccccc1", "0", "", "F"),  # unknown activity
    ("train", "CHEMBL1", "c1ccccc1O", "1", "7.0", "F"),
    ("test", "CHEMBL9", "CC(=O)O", "1", "5.0", "A"),
    ("test", "CHEMBL9", "not a molecule", "0", "4.2", "A"),
]


@pytest.fixture(autouse=True)
def writable_cache(tmp_path, monkeypatch):
    """Features are cached here, never in the (read-only) data folder."""
    monkeypatch.setenv("METALEARN_CACHE_DIR", str(tmp_path / "cache"))


def _write_csv(
    path: Path,
    rows=ROWS,
    header=("split", "assay", "smiles", "active", "log_activity", "assay_type"),
):
    with gzip.open(path, "wt", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_read_subset_groups_rows_into_assays_by_split(tmp_path):
    assays = read_subset(_write_csv(tmp_path / "tiny.csv.gz"))
    assert [a.name for a in assays["train"]] == ["CHEMBL1", "CHEMBL2"] and assays["valid"] == []
    chembl2 = assays["train"][1]
    assert (
        chembl2.smiles == ("CCO", "CCN", "C1CC") and chembl2.assay_type == "B" and len(chembl2) == 3
    )
    np.testing.assert_array_equal(chembl2.active, [True, False, True])
    assert chembl2.active_fraction == pytest.approx(2 / 3)
    assert np.isnan(assays["train"][0].log_activity[0]) and assays["train"][0].log_activity[
        1
    ] == pytest.approx(7.0)


def test_unparseable_smiles_are_skipped_and_counted(tmp_path):
    assays = read_subset(_write_csv(tmp_path / "tiny.csv.gz"))
    tasks, dropped = featurize_assays(assays["train"] + assays["test"], data_key="tiny")
    assert dropped == 2
    assert [len(t) for t in tasks] == [
        2,
        2,
        1,
    ]  # CHEMBL1 keeps 2, CHEMBL2 loses C1CC, CHEMBL9 loses the nonsense
    chembl2 = tasks[1]
    assert chembl2.y.tolist() == [1, 0] and chembl2.x.shape == (2, 2048)
    assert (chembl2.x.sum(dim=1) > 0).all()  # no row of zeros stands in for a failed molecule
    assert list(
        (tmp_path / "cache" / "fsmol").glob("features-*.npz")
    )  # cached in METALEARN_CACHE_DIR


def test_csv_with_missing_columns_or_unknown_split_is_refused(tmp_path):
    with pytest.raises(ValueError, match="active"):
        read_subset(
            _write_csv(tmp_path / "a.csv.gz", [r[:3] for r in ROWS], ("split", "assay", "smiles"))
        )
    with pytest.raises(ValueError, match="split"):
        read_subset(_write_csv(tmp_path / "b.csv.gz", [("training",) + ROWS[0][1:]]))


def test_missing_data_raises_naming_data_dir_and_the_variable(tmp_path):
    with pytest.raises(FileNotFoundError, match="data_dir.*METALEARN_DATA_DIR"):
        load_fsmol(tmp_path)
    with pytest.raises(ValueError, match="source"):
        load_fsmol(tmp_path, source="everything")


def test_a_subset_file_with_another_checksum_is_refused(tmp_path):
    _write_csv(tmp_path / fsmol.SUBSET_FILE)
    with pytest.raises(ValueError, match="md5"):
        load_fsmol(tmp_path, source="subset")


def _write_task_file(path: Path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as stream:
        for record in records:
            stream.write(json.dumps(record) + "\n")


def test_fsmol_per_assay_jsonl_files_are_read(tmp_path):
    record = {
        "SMILES": "CCO",
        "Property": "1.0",
        "Assay_ID": "CHEMBL5",
        "RegressionProperty": "12.0",
        "LogRegressionProperty": "1.08",
        "Relation": "=",
        "AssayType": "B",
        "fingerprints": [0, 1],
        "graph": {"adjacency_lists": [[[0, 1]], [], []], "node_features": [[1], [2]]},
    }
    root = tmp_path / "fs-mol"
    _write_task_file(
        root / "train" / "CHEMBL5.jsonl.gz",
        [record, {**record, "SMILES": "CCN", "Property": "0.0"}],
    )
    _write_task_file(root / "test" / "CHEMBL7.jsonl.gz", [record])
    assay = read_task_file(root / "train" / "CHEMBL5.jsonl.gz", "train")
    assert (
        assay.name == "CHEMBL5"
        and assay.smiles == ("CCO", "CCN")
        and assay.active.tolist() == [True, False]
    )
    assert assay.assay_type == "B" and assay.log_activity[0] == pytest.approx(1.08)
    data = load_fsmol(tmp_path)  # "auto" prefers the extracted full set
    assert data.source == "full" and [len(data.split(s)) for s in ("train", "valid", "test")] == [
        1,
        0,
        1,
    ]
    assert data.md5.startswith(
        "full-"
    )  # no recorded archive md5: the cache key comes from the file listing


def test_the_shipped_task_lists_hold_fs_mols_splits_and_the_subset():
    lists = fsmol.task_lists()
    assert (len(lists["valid"]), len(lists["test"]), lists["train_count"]) == (40, 157, 4938)
    assert [len(lists["subset"][s]) for s in fsmol.SPLITS] == [400, 39, 157]
    assert set(lists["subset"]["test"]) == set(lists["test"])
    assert set(lists["subset"]["valid"]) <= set(lists["valid"])


@pytest.mark.skipif(
    not (DATA_DIR / "fsmol" / fsmol.SUBSET_FILE).is_file(), reason="shared FS-Mol subset not found"
)
def test_the_shared_subset_has_the_documented_assays():
    data = load_fsmol(DATA_DIR / "fsmol")
    assert data.source == "subset" and data.md5 == fsmol.SUBSET_MD5
    assert [len(data.split(s)) for s in ("train", "valid", "test")] == [400, 39, 157]
    assert sum(len(a) for a in data.split("test")) == 56_220
    fraction = np.concatenate([a.active for a in data.split("train")]).mean()
    assert fraction == pytest.approx(0.467, abs=0.001)
