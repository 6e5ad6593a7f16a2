"""FS-Mol (Stanley et al., 2021): few-shot activity prediction on ChEMBL assays.

Each **assay** is one task: a set of molecules (SMILES) measured against one
protein target, labelled active or inactive by FS-Mol's threshold on the measured
activity. Data licence: CC BY-SA 3.0 (ChEMBL); cite FS-Mol and keep the notice.

Where the data come from, in this order (``<data>`` is
:func:`cache_dir("fsmol") <metalearn.data.download.cache_dir>`, i.e.
``$METALEARN_DATA_DIR/fsmol``):

1. ``source="subset"`` (the tested path): ``<data>/fsmol_subset.csv.gz`` (md5
   :data:`SUBSET_MD5`), columns ``split, assay, smiles, active, log_activity,
   assay_type`` -- 400 training, 39 validation and all 157 test assays;
2. ``source="full"``: the official archive ``<data>/fsmol.tar`` (extracted to
   ``<data>/fs-mol/{train,valid,test}/<assay>.jsonl.gz``), downloaded from
   :data:`FULL_URL` when absent. Its md5 is the named constant
   :data:`FULL_ARCHIVE_MD5`, which could not be verified offline and is therefore
   ``None``: set it (or pass ``md5=``) from figshare's published checksum before the
   first download -- an unverified archive is never used.
``source="auto"`` takes the full set when extracted, else the subset.

Features (Morgan fingerprints) are computed by :mod:`metalearn.data.featurize` and
cached in :func:`derived_dir("fsmol") <metalearn.data.download.derived_dir>`.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
import tarfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Literal

import numpy as np
import torch

from metalearn.data.download import DATA_ENV_VAR, cache_dir, derived_dir, fetch, find_local
from metalearn.tasks.fsmol_protocol import MoleculeTask

if TYPE_CHECKING:
    from metalearn.data.featurize import Featurizer

SUBSET_FILE = "fsmol_subset.csv.gz"
SUBSET_MD5 = "0072dc8c92214e34d34a8e40a0f734be"
SUBSET_COLUMNS = ("split", "assay", "smiles", "active", "log_activity", "assay_type")
FULL_URL = "https://figshare.com/ndownloader/files/31345321"
FULL_ARCHIVE = "fsmol.tar"
FULL_ARCHIVE_MD5: str | None = (
    None  # not verifiable offline: fill in from figshare before downloading
)
FULL_FOLDER = "fs-mol"
SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Assay:
    """One assay's molecules (raw, before featurisation).

    ``smiles`` has ``n`` strings; ``active [n]`` bool; ``log_activity [n]`` float32 (NaN if
    unknown).
    """

    name: str
    split: str
    assay_type: str
    smiles: tuple[str, ...]
    active: np.ndarray
    log_activity: np.ndarray

    def __len__(self) -> int:
        return len(self.smiles)

    @property
    def active_fraction(self) -> float:
        return float(self.active.mean())


@dataclass(frozen=True)
class FSMol:
    """FS-Mol's assays by split, and which data they came from (``source``, ``md5``)."""

    assays: dict[str, list[Assay]]
    source: str
    md5: str

    def split(self, name: str) -> list[Assay]:
        if name not in self.assays:
            raise ValueError(f"split must be one of {SPLITS}, got {name!r}")
        return self.assays[name]


def load_fsmol(
    data_dir: str | os.PathLike | None = None, source: Literal["auto", "subset", "full"] = "auto"
) -> FSMol:
    """FS-Mol's assays; see the module docstring for where they are looked for.

    Args:
        data_dir: the folder holding ``fsmol_subset.csv.gz`` or ``fs-mol/``; default
            ``$METALEARN_DATA_DIR/fsmol`` (else ``~/.cache/metalearn/fsmol``).
        source: ``"subset"``, ``"full"`` or ``"auto"``.

    Raises:
        FileNotFoundError: the subset is asked for (or ``auto`` finds nothing) and is not in
            ``data_dir``.
        ValueError: a file exists with the wrong checksum, or ``source`` is unknown.
    """
    if source not in ("auto", "subset", "full"):
        raise ValueError(f"source must be 'auto', 'subset' or 'full', got {source!r}")
    folder = Path(data_dir).expanduser() if data_dir is not None else cache_dir("fsmol")
    if source == "full" or (source == "auto" and (folder / FULL_FOLDER).is_dir()):
        root = extract_full(folder)
        return FSMol(read_full(root), "full", FULL_ARCHIVE_MD5 or _listing_digest(root))
    subset = find_local(folder, SUBSET_FILE, SUBSET_MD5)
    if subset is None:
        raise FileNotFoundError(
            f"data_dir={str(folder)!r} holds no {SUBSET_FILE}: set {DATA_ENV_VAR} to the folder "
            f"that contains fsmol/{SUBSET_FILE} (or pass data_dir=<that folder>/fsmol), or use "
            "source='full' to download FS-Mol"
        )
    return FSMol(read_subset(subset), "subset", SUBSET_MD5)


def read_subset(path: str | os.PathLike) -> dict[str, list[Assay]]:
    """Parse the subset's CSV (optionally gzipped) into assays by split, each sorted by name."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    rows: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    with opener(path, "rt", newline="") as stream:
        reader = csv.DictReader(stream)
        missing = set(SUBSET_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(
                f"path={str(path)!r} lacks the column(s) {sorted(missing)}; "
                f"expected {SUBSET_COLUMNS}"
            )
        for row in reader:
            if row["split"] not in SPLITS:
                raise ValueError(
                    f"path={str(path)!r}: split {row['split']!r} is not one of {SPLITS}"
                )
            rows[row["split"], row["assay"]].append(row)
    return _by_split(
        Assay(
            name=assay,
            split=split,
            assay_type=group[0]["assay_type"],
            smiles=tuple(row["smiles"] for row in group),
            active=np.array([float(row["active"]) > 0.5 for row in group], dtype=bool),
            log_activity=np.array([_float(row["log_activity"]) for row in group], dtype=np.float32),
        )
        for (split, assay), group in rows.items()
    )


def read_task_file(path: str | os.PathLike, split: str) -> Assay:
    """One FS-Mol ``<assay>.jsonl.gz`` file: a JSON object per molecule with ``SMILES``,
    ``Property`` (the active label, "1.0" / "0.0"), ``LogRegressionProperty`` and ``AssayType``."""
    path = Path(path)
    with gzip.open(path, "rt") as stream:
        records = [json.loads(line) for line in stream if line.strip()]
    return Assay(
        name=path.name.removesuffix(".jsonl.gz"),
        split=split,
        assay_type=str(records[0].get("AssayType", "")) if records else "",
        smiles=tuple(record["SMILES"] for record in records),
        active=np.array([float(record["Property"]) > 0.5 for record in records], dtype=bool),
        log_activity=np.array(
            [_float(record.get("LogRegressionProperty")) for record in records], dtype=np.float32
        ),
    )


def read_full(root: str | os.PathLike) -> dict[str, list[Assay]]:
    """Every ``<root>/<split>/*.jsonl.gz`` (FS-Mol's extracted archive) as assays by split."""
    root = Path(root)
    return _by_split(
        read_task_file(path, split)
        for split in SPLITS
        for path in sorted((root / split).glob("*.jsonl.gz"))
    )


def extract_full(data_dir: str | os.PathLike, md5: str | None = None) -> Path:
    """``data_dir/fs-mol``, downloading (md5-checked) and extracting the official archive if needed.

    Raises:
        ValueError: the archive must be downloaded or checked but no md5 is known (``md5`` and
            :data:`FULL_ARCHIVE_MD5` are both ``None``).
    """
    root = Path(data_dir) / FULL_FOLDER
    if root.is_dir():
        return root
    md5 = md5 or FULL_ARCHIVE_MD5
    if md5 is None:
        raise ValueError(
            f"md5 is None: FS-Mol's archive ({FULL_URL}) has no checksum recorded here; pass "
            "md5=<its md5 from figshare> or set metalearn.data.fsmol.FULL_ARCHIVE_MD5 -- an "
            "unverified download is never used"
        )
    archive = fetch(FULL_URL, md5, data_dir, FULL_ARCHIVE)
    with tarfile.open(archive) as tar:
        tar.extractall(data_dir, filter="data")
    if not root.is_dir():
        raise ValueError(f"{archive} did not contain the folder {FULL_FOLDER}/")
    return root


def featurize_assays(
    assays: Iterable[Assay], data_key: str, featurizer: Featurizer | None = None, cache: bool = True
) -> tuple[list[MoleculeTask], int]:
    """Featurise ``assays`` (default: Morgan radius 2, 2048 bits; cached in
    ``derived_dir("fsmol")`` when ``cache``).

    Molecules RDKit cannot parse are dropped. Returns the tasks (same order) and how many
    molecules were dropped.
    """
    from metalearn.data.featurize import (
        Featurizer,
        featurize,
    )  # RDKit (metalearn[chem]) only when featurising

    featurizer = featurizer or Featurizer()
    assays = list(assays)
    smiles = [text for assay in assays for text in assay.smiles]
    features = featurize(smiles, featurizer, derived_dir("fsmol") if cache else None, data_key)
    matrix, start, tasks = features.matrix(), 0, []
    for assay in assays:
        rows = slice(start, start + len(assay))
        keep = features.valid[rows]
        x = torch.from_numpy(np.ascontiguousarray(matrix[rows][keep]))
        tasks.append(
            MoleculeTask(assay.name, x, torch.from_numpy(assay.active[keep].astype(np.int64)))
        )
        start += len(assay)
    return tasks, features.num_invalid


def _by_split(assays: Iterable[Assay]) -> dict[str, list[Assay]]:
    by_split: dict[str, list[Assay]] = {split: [] for split in SPLITS}
    for assay in assays:
        by_split[assay.split].append(assay)
    return {split: sorted(group, key=lambda a: a.name) for split, group in by_split.items()}


def _listing_digest(root: Path) -> str:
    """Stands in for the archive's md5 (cache key) when none is recorded: the task files' names
    and sizes."""
    listing = sorted(
        (str(p.relative_to(root)), p.stat().st_size) for p in root.glob("*/*.jsonl.gz")
    )
    return "full-" + hashlib.md5(json.dumps(listing).encode()).hexdigest()


def _float(text: object) -> float:
    try:
        return float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")
