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
   :data:`FULL_URL` when absent. Figshare publishes no checksum, so the archive is checked
   by its *contents* (:func:`check_full_contents`: every validation and test task of
   FS-Mol's task list ``fsmol-0.1.json`` and at least its 4,938 training tasks, by file name)
   before it is used, and its sha256 is then recorded beside it (``fsmol.tar.sha256``): a
   later use of another archive under that name is refused. The archive is extracted to a
   temporary folder and renamed to ``fs-mol/`` only when complete, so a half-finished
   extraction is never taken for the data set.
``source="auto"`` takes the full set when extracted, else the subset, else downloads the full
set (where there is a network: Colab). ``assays="subset"``
keeps only the offline subset's assays (their names ship with the package,
``fsmol_tasks.json``), so that the quick profile runs the same experiment on either.

Parsing is strict: a row whose ``active`` label is missing, empty, ``nan`` or not 0/1, or that
has too few or too many fields, is refused with a ``ValueError`` naming the file, the row and
the column -- never read as an inactive. A SMILES that is no valid record (empty, or holding
whitespace or a line break) is kept as read and quarantined at featurisation: marked invalid,
dropped and counted, never cached (:mod:`metalearn.data.featurize`).

Features (Morgan fingerprints) are computed by :mod:`metalearn.data.featurize` and
cached in :func:`derived_dir("fsmol") <metalearn.data.download.derived_dir>`.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
import re
import shutil
import tarfile
import zlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal

import numpy as np

from metalearn.data.cache import digest, file_digest
from metalearn.data.download import (
    DATA_ENV_VAR,
    EXTRACTED_MARKER,
    cache_dir,
    extract_archive,
    fetch,
    find_local,
)
from metalearn.data.records import parse_label, parse_optional_float

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
TASKS_FILE = Path(__file__).with_name("fsmol_tasks.json")
RECORDED_SHA256 = FULL_ARCHIVE + ".sha256"  # written beside the archive on its first use


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
    """FS-Mol's assays by split, and which data they came from: ``source`` (``"subset"`` or
    ``"full"``) and ``md5``, a key of the data's *contents* -- the subset file's md5, or for the
    extracted full set ``"full-"`` and a sha256 of its task files' names and bytes."""

    assays: dict[str, list[Assay]]
    source: str
    md5: str

    def split(self, name: str) -> list[Assay]:
        if name not in self.assays:
            raise ValueError(f"split must be one of {SPLITS}, got {name!r}")
        return self.assays[name]


def load_fsmol(
    data_dir: str | os.PathLike | None = None,
    source: Literal["auto", "subset", "full"] = "auto",
    assays: Literal["all", "subset"] = "all",
) -> FSMol:
    """FS-Mol's assays; see the module docstring for where they are looked for.

    Args:
        data_dir: the folder holding ``fsmol_subset.csv.gz`` or ``fs-mol/``; default
            ``$METALEARN_DATA_DIR/fsmol`` (else ``~/.cache/metalearn/fsmol``).
        source: ``"subset"``, ``"full"`` or ``"auto"``.
        assays: ``"all"``, or ``"subset"``: only the offline subset's 400 training, 39
            validation and 157 test assays, whichever source they are read from.

    Raises:
        FileNotFoundError: the subset is asked for (or ``auto`` finds nothing) and is not in
            ``data_dir``.
        ValueError: a file exists with the wrong checksum, or ``source`` is unknown.
    """
    if source not in ("auto", "subset", "full"):
        raise ValueError(f"source must be 'auto', 'subset' or 'full', got {source!r}")
    if assays not in ("all", "subset"):
        raise ValueError(f"assays must be 'all' or 'subset', got {assays!r}")
    folder = Path(data_dir).expanduser() if data_dir is not None else cache_dir("fsmol")
    if source == "full" or (source == "auto" and (folder / FULL_FOLDER).is_dir()):
        root = extract_full(folder)
        by_split, key = _read_full(root)
        if assays == "subset":
            names = task_lists()["subset"]
            by_split = {s: [a for a in by_split[s] if a.name in set(names[s])] for s in SPLITS}
            key += "-subset"
        return FSMol(by_split, "full", key)
    subset = find_local(folder, SUBSET_FILE, SUBSET_MD5)
    if subset is None and source == "auto":  # nothing local: FS-Mol itself (Colab)
        try:
            return load_fsmol(folder, "full", assays)
        except FileNotFoundError as error:
            raise FileNotFoundError(
                f"data_dir={str(folder)!r} holds neither {SUBSET_FILE} nor FS-Mol's archive, "
                f"and the archive could not be downloaded ({error}). Set {DATA_ENV_VAR} to the "
                f"folder that contains fsmol/{SUBSET_FILE} (or pass data_dir=<that folder>/fsmol)"
            ) from error
    if subset is None:
        raise FileNotFoundError(
            f"data_dir={str(folder)!r} holds no {SUBSET_FILE}: set {DATA_ENV_VAR} to the folder "
            f"that contains fsmol/{SUBSET_FILE} (or pass data_dir=<that folder>/fsmol), or use "
            "source='full' to download FS-Mol"
        )
    return FSMol(read_subset(subset), "subset", SUBSET_MD5)


def read_subset(path: str | os.PathLike) -> dict[str, list[Assay]]:
    """Parse the subset's CSV (optionally gzipped) into assays by split, each sorted by name.

    Raises:
        ValueError: a column is missing from the header, or a row is malformed: too few or
            too many fields, an unknown ``split``, an empty ``assay``, an ``active`` label that is
            not 0 or 1 (empty and ``nan`` included), or a ``log_activity`` that is neither a
            number nor empty. The message names the file, the row (1 = the first after the
            header; and its line in the file) and the column; nothing is returned or cached.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    rows: dict[tuple[str, str], list[tuple[str, bool, float, str]]] = defaultdict(list)
    with opener(path, "rt", newline="") as stream:
        reader = csv.DictReader(stream)
        missing = set(SUBSET_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(
                f"path={str(path)!r} lacks the column(s) {sorted(missing)}; "
                f"expected {SUBSET_COLUMNS}"
            )
        width = len(reader.fieldnames or ())
        for number, row in enumerate(reader, start=1):
            where = f"{path}, row {number} (line {reader.line_num})"
            extra = row.get(None)  # type: ignore[call-overload]
            if extra is not None:
                raise ValueError(
                    f"{where}: {width + len(extra)} fields, expected {width} "
                    f"({', '.join(reader.fieldnames or ())})"
                )
            short = [column for column in SUBSET_COLUMNS if row[column] is None]
            if short:
                raise ValueError(
                    f"{where}, column {short[0]!r}: missing (the row has too few fields, "
                    f"expected {width})"
                )
            if row["split"] not in SPLITS:
                raise ValueError(
                    f"{where}, column 'split': split {row['split']!r} is not one of {SPLITS}"
                )
            if not row["assay"].strip():
                raise ValueError(f"{where}, column 'assay': empty, expected an assay name")
            rows[row["split"], row["assay"]].append(
                (
                    row["smiles"],
                    parse_label(row["active"], f"{where}, column 'active'"),
                    parse_optional_float(row["log_activity"], f"{where}, column 'log_activity'"),
                    row["assay_type"],
                )
            )
    return _by_split(
        Assay(
            name=assay,
            split=split,
            assay_type=group[0][3],
            smiles=tuple(record[0] for record in group),
            active=np.array([record[1] for record in group], dtype=bool),
            log_activity=np.array([record[2] for record in group], dtype=np.float32),
        )
        for (split, assay), group in rows.items()
    )


def read_task_file(path: str | os.PathLike, split: str) -> Assay:
    """One FS-Mol ``<assay>.jsonl.gz`` file: a JSON object per molecule with ``SMILES``,
    ``Property`` (the active label, "1.0" / "0.0"), ``LogRegressionProperty`` and ``AssayType``.

    Raises:
        ValueError: the file is not a complete gzip file (truncated or damaged), a line is not a
            JSON object, or a record lacks ``SMILES`` or ``Property`` or has a malformed value;
            the message names the file, the row (line) and the field.
    """
    path = Path(path)
    return _parse_task_file(path, path.read_bytes(), split)


def _parse_task_file(path: Path, data: bytes, split: str) -> Assay:
    """:func:`read_task_file` of the bytes ``data`` read from ``path``."""
    try:
        text = gzip.decompress(data).decode("utf-8")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as error:
        raise ValueError(
            f"{path} is not a complete gzip file of UTF-8 text ({type(error).__name__}: {error}); "
            "a truncated or damaged copy: replace it, or delete the extracted folder to extract "
            "it again"
        ) from None
    smiles, active, log_activity, assay_type = [], [], [], ""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}, row {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{where}: not valid JSON ({error})") from None
        if not isinstance(record, dict):
            raise ValueError(f"{where}: got {type(record).__name__}, expected a JSON object")
        for key in ("SMILES", "Property"):
            if key not in record:
                raise ValueError(f"{where}, column {key!r}: missing")
        if not isinstance(record["SMILES"], str):
            raise ValueError(
                f"{where}, column 'SMILES': got {record['SMILES']!r}, expected a SMILES string"
            )
        smiles.append(record["SMILES"])
        active.append(parse_label(record["Property"], f"{where}, column 'Property'"))
        log_activity.append(
            parse_optional_float(
                record.get("LogRegressionProperty"), f"{where}, column 'LogRegressionProperty'"
            )
        )
        if len(smiles) == 1:
            assay_type = str(record.get("AssayType", ""))
    return Assay(
        name=path.name.removesuffix(".jsonl.gz"),
        split=split,
        assay_type=assay_type,
        smiles=tuple(smiles),
        active=np.array(active, dtype=bool),
        log_activity=np.array(log_activity, dtype=np.float32),
    )


def read_full(root: str | os.PathLike) -> dict[str, list[Assay]]:
    """Every ``<root>/<split>/*.jsonl.gz`` (FS-Mol's extracted archive) as assays by split."""
    return _read_full(Path(root))[0]


def _read_full(root: Path) -> tuple[dict[str, list[Assay]], str]:
    """:func:`read_full`, and ``"full-"`` + a sha256 of the task files' names and bytes (read
    once for both), the key of the data's contents."""
    files = [
        (f"{split}/{path.name}", path, split)
        for split in SPLITS
        for path in sorted((root / split).glob("*.jsonl.gz"))
    ]
    assays, parts = [], []
    for name, path, split in files:  # one file in memory at a time
        data = path.read_bytes()
        parts += [name, hashlib.sha256(data).hexdigest()]
        assays.append(_parse_task_file(path, data, split))
    return _by_split(assays), "full-" + digest(*parts)  # = cache.files_digest of the files


def task_lists() -> dict:
    """The task names shipped with the package (``fsmol_tasks.json``): FS-Mol's validation and
    test tasks, the number of its training tasks, and the offline subset's assays by split."""
    return json.loads(TASKS_FILE.read_text())


def check_full_contents(root: str | os.PathLike) -> None:
    """Check an extracted FS-Mol archive by its contents, as no checksum is published: every
    validation and test task of FS-Mol's ``fsmol-0.1.json`` is there, and at least as many
    training tasks as that list names, every file a ``<split>/CHEMBL<digits>.jsonl.gz``.

    Raises:
        ValueError: naming the folder and what is missing or unexpected.
    """
    root, tasks = Path(root), task_lists()
    found = {
        split: {p.name for p in (root / split).iterdir()} if (root / split).is_dir() else set()
        for split in SPLITS
    }
    for split in SPLITS:
        odd = sorted(n for n in found[split] if not re.fullmatch(r"CHEMBL\d+\.jsonl\.gz", n))
        if odd:
            raise ValueError(f"{root / split} holds files that are no FS-Mol task: {odd[:3]}")
    for split in ("valid", "test"):
        missing = sorted(set(tasks[split]) - {n.removesuffix(".jsonl.gz") for n in found[split]})
        if missing:
            raise ValueError(
                f"{root / split} lacks {len(missing)} of FS-Mol's {len(tasks[split])} {split} "
                f"tasks (e.g. {missing[:3]}): this is not FS-Mol's archive, or it is incomplete"
            )
    if len(found["train"]) < tasks["train_count"]:
        raise ValueError(
            f"{root / 'train'} holds {len(found['train'])} tasks, FS-Mol has at least "
            f"{tasks['train_count']}: this is not FS-Mol's archive, or it is incomplete"
        )


def extract_full(data_dir: str | os.PathLike, md5: str | None = None) -> Path:
    """``data_dir/fs-mol``, downloading and extracting the official archive if needed.

    The extraction goes to a temporary folder that is renamed to ``fs-mol`` only when complete
    (:func:`~metalearn.data.download.extract_archive`), then is checked by its contents
    (:func:`check_full_contents`; a failed check removes the extraction). The archive's sha256
    is recorded beside it on that first use (``fsmol.tar.sha256``) and compared on every
    later extraction. With ``md5`` (or :data:`FULL_ARCHIVE_MD5`) the download is also checked
    by it. A ``fs-mol`` folder that this package did not extract but that sits beside
    ``fsmol.tar`` is compared with the archive's listing first: an earlier extraction that
    stopped part way is refused, never used.

    Raises:
        ValueError: the archive's contents are not FS-Mol's, its sha256 differs from the one
            recorded on its first use, its md5 differs from ``md5``, or ``fs-mol`` is an
            incomplete extraction of the archive beside it (the message names the folder or
            file to delete).
        FileNotFoundError: the archive is needed but can be neither found nor downloaded (no
            network, or ``data_dir`` is read-only); the message says where to put it.
        OSError: the extraction failed (a full disk, say); nothing extracted is left behind.
    """
    data_dir = Path(data_dir)
    root = data_dir / FULL_FOLDER
    if root.is_dir():
        _check_complete(root, data_dir / FULL_ARCHIVE)
        return root
    md5 = md5 or FULL_ARCHIVE_MD5
    try:
        archive = fetch(FULL_URL, md5, data_dir, FULL_ARCHIVE)
    except OSError as error:
        raise FileNotFoundError(
            f"FS-Mol's full set is not in data_dir={str(data_dir)!r} and could not be downloaded "
            f"({error}). Put {FULL_ARCHIVE} (from {FULL_URL}) into that folder, or point "
            f"{DATA_ENV_VAR} at a folder whose 'fsmol' subfolder holds it."
        ) from error
    sha256 = file_digest(archive, "sha256")
    recorded = data_dir / RECORDED_SHA256
    if recorded.is_file() and recorded.read_text().split()[0] != sha256:
        raise ValueError(
            f"{archive} has sha256 {sha256}, but {recorded.read_text().split()[0]} was recorded "
            f"in {recorded} when it was first used: delete {archive} (and {recorded} if the "
            "new archive is the one you want)"
        )
    root = extract_archive(archive, data_dir, FULL_FOLDER)
    try:
        check_full_contents(root)
    except ValueError:
        shutil.rmtree(root)
        raise
    if not recorded.is_file():
        temporary = recorded.with_suffix(".part")
        temporary.write_text(f"{sha256}  {FULL_ARCHIVE}\n")
        os.replace(temporary, recorded)
    return root


def _check_complete(root: Path, archive: Path) -> None:
    """Refuse ``root`` when it is an incomplete extraction of ``archive`` (files missing or of
    another size). A folder this package extracted (it holds the marker) is complete."""
    if (root / EXTRACTED_MARKER).is_file() or not archive.is_file():
        return
    try:
        with tarfile.open(archive) as tar:
            members = [m for m in tar if m.isfile()]
    except (tarfile.TarError, OSError):
        return  # not a readable tar: nothing to compare with
    parent = root.parent
    for member in members:
        path = parent / member.name
        if member.name.startswith(f"{FULL_FOLDER}/") and (
            not path.is_file() or path.stat().st_size != member.size
        ):
            raise ValueError(
                f"{root} is an incomplete extraction of {archive}: {member.name} is missing or "
                f"of another size than in the archive ({member.size} bytes). Delete the folder "
                f"{root} and load again to extract the archive afresh."
            )


def _by_split(assays: Iterable[Assay]) -> dict[str, list[Assay]]:
    by_split: dict[str, list[Assay]] = {split: [] for split in SPLITS}
    for assay in assays:
        by_split[assay.split].append(assay)
    return {split: sorted(group, key=lambda a: a.name) for split, group in by_split.items()}
