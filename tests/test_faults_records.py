"""Class 3 of issue 16: one malformed record never poisons a cache.

A "SMILES" with a line break (or other whitespace, a control character, nothing at all) is
quarantined before anything is featurised or cached: marked invalid, counted, never written.
The fingerprint cache stores each SMILES with its length (no separator to split on) and a
cache whose arrays disagree is rebuilt, so a later call never fails with an ``IndexError``.
"""

import csv
import gzip
import io
import logging

import numpy as np
import pytest

from metalearn.data.cache import load_verified
from metalearn.data.featurize import Featurizer, compute, featurize
from metalearn.data.fsmol import Assay, read_subset
from metalearn.data.records import smiles_problem
from metalearn.tasks.assays import featurize_assays

GOOD = ["CCO", "c1ccccc1O", "CCN(CC)CC"]
MALFORMED = ["CCO\nCCN", "CCO\r\nCCN", "CC\tO", "CCO CCN", "CC\x00O", "", "CCÖ"]


def cached_smiles(folder) -> list[str]:
    """The SMILES stored in the (single) fingerprint cache file in ``folder``."""
    (path,) = folder.glob("features-*.npz")
    with np.load(io.BytesIO(load_verified(path))) as stored:
        raw, ends = stored["smiles"].tobytes(), stored["ends"]
        assert len(ends) == len(stored["packed"]) == len(stored["valid"])
    return [raw[a:b].decode() for a, b in zip(np.r_[0, ends[:-1]], ends)]


@pytest.mark.parametrize("bad", MALFORMED)
def test_a_malformed_smiles_is_quarantined_never_cached(tmp_path, caplog, bad):
    smiles = GOOD[:2] + [bad] + GOOD[2:]
    with caplog.at_level(logging.WARNING, logger="metalearn.data.featurize"):
        features = featurize(smiles, Featurizer(), tmp_path, data_key="k")
    assert features.valid.tolist() == [True, True, False, True] and features.num_invalid == 1
    assert features.fingerprints.shape == (4, 2048) and features.fingerprints[2].sum() == 0
    np.testing.assert_array_equal(features.fingerprints[[0, 1, 3]], compute(GOOD).fingerprints)
    assert "1 malformed SMILES" in caplog.text and repr(bad) in caplog.text
    assert sorted(cached_smiles(tmp_path)) == sorted(GOOD), "the bad record was cached"
    for later in (smiles, GOOD, [bad], ["CCCC"] + smiles):  # no IndexError, ever after
        again = featurize(later, Featurizer(), tmp_path, data_key="k")
        np.testing.assert_array_equal(again.valid, [s in GOOD or s == "CCCC" for s in later])


def test_a_line_break_is_never_read_as_the_molecule_before_it():
    features = compute(["CCO\nCCN", "CCO"])
    assert features.valid.tolist() == [False, True], "RDKit would read 'CCO\\nCCN' as ethanol"


def test_smiles_problem_names_what_is_wrong():
    assert smiles_problem("CC(=O)O") is None
    assert "'\\n' at position 3" in smiles_problem("CCO\nC")
    assert "empty" in smiles_problem("")
    assert "int" in smiles_problem(5)


def test_a_non_string_record_is_refused_by_index_before_anything_is_written(tmp_path):
    with pytest.raises(TypeError, match=r"smiles\[1\].*float"):
        featurize(["CCO", float("nan"), "CCN"], Featurizer(), tmp_path, data_key="k")
    with pytest.raises(TypeError, match="smiles must be a sequence"):
        featurize("CCO", Featurizer(), tmp_path, data_key="k")
    assert list(tmp_path.iterdir()) == []


def write_csv(path, rows):
    with gzip.open(path, "wt", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(("split", "assay", "smiles", "active", "log_activity", "assay_type"))
        writer.writerows(rows)
    return path


def test_a_line_break_inside_a_quoted_csv_smiles_is_dropped_and_counted(tmp_path, monkeypatch):
    monkeypatch.setenv("METALEARN_CACHE_DIR", str(tmp_path / "cache"))
    rows = [
        ("train", "A", "CCO", "1", "5", "B"),
        ("train", "A", "CCN\nCCC", "0", "4", "B"),  # csv quotes it: one field over two lines
        ("train", "A", "c1ccccc1O", "0", "4", "B"),
        ("train", "B", "CCCl", "1", "", "B"),
    ]
    assays = read_subset(write_csv(tmp_path / "s.csv.gz", rows))["train"]
    assert assays[0].smiles == ("CCO", "CCN\nCCC", "c1ccccc1O")
    for _ in range(2):  # the second run reads the cache the first wrote
        tasks, dropped = featurize_assays(assays, data_key="s")
        assert dropped == 1 and [len(t) for t in tasks] == [2, 1]
        assert tasks[0].y.tolist() == [1, 0] and (tasks[0].x.sum(1) > 0).all()
    assert sorted(cached_smiles(tmp_path / "cache" / "fsmol")) == sorted(
        ["CCO", "c1ccccc1O", "CCCl"]
    )


def test_an_assay_built_in_code_with_a_bad_record_keeps_rows_and_labels_aligned(tmp_path):
    assay = Assay(
        name="X",
        split="train",
        assay_type="B",
        smiles=("CCO", "C C", "CCN", "CCCl"),
        active=np.array([True, True, False, False]),
        log_activity=np.zeros(4, np.float32),
    )
    tasks, dropped = featurize_assays([assay], data_key="x", cache=False)
    assert dropped == 1 and tasks[0].y.tolist() == [1, 0, 0]
    expected = compute(["CCO", "CCN", "CCCl"]).fingerprints
    np.testing.assert_array_equal(tasks[0].x.numpy(), expected)
