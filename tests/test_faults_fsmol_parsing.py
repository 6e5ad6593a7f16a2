"""Class 9 of issue 16: a missing value is not a negative.

FS-Mol's CSV subset and its per-assay JSON-lines files are parsed strictly: an ``active``
label that is ``nan``, empty, ``yes``, 0.5 or absent (a short row), a row with too many
fields, or an unreadable activity raises a ``ValueError`` naming the file, the row and the
column -- it is never read as inactive.
"""

import csv
import gzip
import json
import math
from pathlib import Path

import pytest

from metalearn.data import fsmol
from metalearn.data.fsmol import load_fsmol, read_subset, read_task_file

HEADER = ("split", "assay", "smiles", "active", "log_activity", "assay_type")
GOOD = [
    ("train", "CHEMBL1", "CCO", "1", "6.1", "B"),
    ("train", "CHEMBL1", "CCN", "0", "", "B"),
]


def write_csv(path: Path, rows, header=HEADER) -> Path:
    with gzip.open(path, "wt", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.mark.parametrize("label", ["nan", "NaN", "", " ", "yes", "no", "0.5", "2", "-1", "inf"])
def test_a_label_that_is_not_0_or_1_names_file_row_and_column(tmp_path, label):
    path = write_csv(tmp_path / "s.csv.gz", GOOD + [("train", "CHEMBL1", "CCC", label, "5", "B")])
    with pytest.raises(ValueError) as raised:
        read_subset(path)
    message = str(raised.value)
    assert str(path) in message and "row 3 (line 4)" in message and "column 'active'" in message
    assert f"got {label!r}" in message and "expected 0 or 1" in message


def test_a_short_row_names_the_first_missing_column(tmp_path):
    path = write_csv(tmp_path / "s.csv.gz", GOOD + [("train", "CHEMBL1", "CCC")])
    with pytest.raises(ValueError, match=r"row 3 \(line 4\), column 'active': missing") as raised:
        read_subset(path)
    assert str(path) in str(raised.value)


def test_a_long_row_names_the_field_count(tmp_path):
    path = write_csv(tmp_path / "s.csv.gz", [GOOD[0] + ("extra",)] + GOOD)
    with pytest.raises(ValueError, match=r"row 1 \(line 2\): 7 fields, expected 6") as raised:
        read_subset(path)
    assert str(path) in str(raised.value)


@pytest.mark.parametrize("value", ["yes", "inf", "-inf", "1,5"])
def test_an_unreadable_activity_names_its_column(tmp_path, value):
    path = write_csv(tmp_path / "s.csv.gz", [GOOD[0][:4] + (value, "B")])
    with pytest.raises(ValueError, match=r"row 1 \(line 2\), column 'log_activity'"):
        read_subset(path)


def test_an_empty_assay_or_unknown_split_names_row_and_column(tmp_path):
    with pytest.raises(ValueError, match=r"row 2 \(line 3\), column 'assay'"):
        read_subset(
            write_csv(tmp_path / "a.csv.gz", GOOD[:1] + [("train", " ", "C", "1", "", "B")])
        )
    with pytest.raises(ValueError, match=r"row 1 \(line 2\), column 'split'"):
        read_subset(write_csv(tmp_path / "b.csv.gz", [("tran",) + GOOD[0][1:]]))


def test_accepted_spellings_of_labels_and_missing_activities(tmp_path):
    rows = [
        ("train", "A", "C", "1", "nan", "B"),
        ("train", "A", "CC", "0.0", " ", "B"),
        ("train", "A", "CCC", "1.0", "7", "B"),
        ("train", "A", "CCCC", " 0", "-1.5", "B"),
    ]
    (assay,) = read_subset(write_csv(tmp_path / "s.csv.gz", rows))["train"]
    assert assay.active.tolist() == [True, False, True, False]
    assert math.isnan(assay.log_activity[0]) and math.isnan(assay.log_activity[1])
    assert assay.log_activity[2:].tolist() == [7.0, -1.5]


def write_task(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return path


def record(**fields) -> str:
    return json.dumps({"SMILES": "CCO", "Property": "1.0", "AssayType": "B", **fields})


@pytest.mark.parametrize("value", ["nan", "", "yes", None, 0.5, "short"])
def test_a_jsonl_property_that_is_not_0_or_1_names_file_row_and_column(tmp_path, value):
    bad = record(Property=value) if value != "short" else json.dumps({"SMILES": "CCN"})
    path = write_task(tmp_path / "fs-mol" / "train" / "CHEMBL7.jsonl.gz", [record(), bad])
    with pytest.raises(ValueError) as raised:
        read_task_file(path, "train")
    message = str(raised.value)
    assert str(path) in message and "row 2" in message and "column 'Property'" in message
    with pytest.raises(ValueError, match="column 'Property'"):  # and so does the loader
        load_fsmol(tmp_path)


def test_jsonl_malformed_lines_and_values_name_file_and_row(tmp_path):
    path = tmp_path / "CHEMBL8.jsonl.gz"
    cases = {
        "not json {": "row 2: not valid JSON",
        "[1, 2]": "row 2: got list, expected a JSON object",
        json.dumps({"Property": "1.0"}): "row 2, column 'SMILES': missing",
        record(SMILES=None): "row 2, column 'SMILES': got None",
        record(LogRegressionProperty="high"): "row 2, column 'LogRegressionProperty'",
    }
    for line, expected in cases.items():
        write_task(path, [record(), line])
        with pytest.raises(ValueError, match=expected.replace("(", r"\(")) as raised:
            read_task_file(path, "train")
        assert str(path) in str(raised.value)


def test_jsonl_accepts_fsmol_spellings(tmp_path):
    lines = [
        record(Property="1.0", LogRegressionProperty="1.5"),
        record(SMILES="CCN", Property="0.0"),
        record(SMILES="CCC", Property=1, LogRegressionProperty=None),
        record(SMILES="CCCC", Property=False, LogRegressionProperty=2),
    ]
    assay = read_task_file(write_task(tmp_path / "CHEMBL9.jsonl.gz", lines), "valid")
    assert assay.active.tolist() == [True, False, True, False] and assay.assay_type == "B"
    assert assay.log_activity[0] == pytest.approx(1.5) and math.isnan(assay.log_activity[1])


@pytest.mark.skipif(
    not (Path(__file__).resolve().parents[2] / "shared/data/fsmol" / fsmol.SUBSET_FILE).is_file(),
    reason="shared FS-Mol subset absent",
)
def test_the_shared_subset_parses_strictly_without_error():
    data = read_subset(
        Path(__file__).resolve().parents[2] / "shared/data/fsmol" / fsmol.SUBSET_FILE
    )
    assert sum(len(a) for split in data.values() for a in split) == 30_572 + 14_311 + 56_220
