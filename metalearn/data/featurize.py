"""Molecules as vectors: Morgan (ECFP) fingerprints with RDKit, computed once and cached.

A Morgan fingerprint (Rogers & Hahn, 2010) hashes every circular neighbourhood of
every atom, up to ``radius`` bonds, into one of ``n_bits`` positions; radius 2
is the classic ECFP4. Optional RDKit descriptors (``"MolWt"``, ``"MolLogP"``, ...)
are appended as extra columns.

SMILES that RDKit cannot parse are never featurised as zeros: :func:`featurize`
returns a mask, callers drop those molecules and report how many. RDKit's parse
warnings are silenced only while parsing (``rdBase.BlockLogs``).

The cache is one ``.npz`` file per (data key, settings, RDKit version) in a writable
folder; it holds a row per SMILES ever asked for, so featurising only the molecules a run
needs (the quick profile) and later more of them (the full profile) both reuse it. It is
written atomically with a sha256 of its contents (:mod:`metalearn.data.cache`) and checked
on every read: a damaged file (bit flips, truncation) or one whose arrays disagree is logged,
deleted and rebuilt. Malformed records -- a "SMILES" holding whitespace, a line break or a
control character -- are never featurised or cached: they are marked invalid and counted.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import rdkit
from rdkit import Chem, rdBase
from rdkit.Chem import Descriptors, rdFingerprintGenerator

from metalearn.data.cache import discard, load_verified, save_verified
from metalearn.data.records import smiles_problem

CACHE_VERSION = 3
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Featurizer:
    """Featuriser settings; part of the cache key.

    Args:
        radius: Morgan radius (2 = ECFP4).
        n_bits: fingerprint length.
        descriptors: names of ``rdkit.Chem.Descriptors`` functions to append, e.g. ``("MolWt",)``.
    """

    radius: int = 2
    n_bits: int = 2048
    descriptors: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not isinstance(self.radius, int) or self.radius < 0:
            raise ValueError(f"radius must be an int >= 0, got {self.radius!r}")
        if not isinstance(self.n_bits, int) or self.n_bits < 8 or self.n_bits % 8:
            raise ValueError(f"n_bits must be a positive multiple of 8, got {self.n_bits!r}")
        object.__setattr__(self, "descriptors", tuple(self.descriptors))
        unknown = [
            name for name in self.descriptors if not callable(getattr(Descriptors, name, None))
        ]
        if unknown:
            raise ValueError(f"descriptors {unknown} are not functions of rdkit.Chem.Descriptors")

    @property
    def num_features(self) -> int:
        return self.n_bits + len(self.descriptors)

    def key(self, data_key: str) -> str:
        """A file-name-safe digest of ``data_key`` (e.g. the data file's md5), these settings and
        the RDKit version (another RDKit may hash another way)."""
        text = json.dumps(
            {
                "data": data_key,
                "version": CACHE_VERSION,
                "rdkit": rdkit.__version__,
                **asdict(self),
            },
            sort_keys=True,
        )
        return hashlib.sha1(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Features:
    """Features of ``N`` molecules, in the order asked for.

    ``fingerprints [N, n_bits]`` uint8 in {0, 1}; ``descriptors [N, D]`` float32 (``D`` may be 0);
    ``valid [N]`` bool, False where RDKit could not parse the SMILES (those rows are all zero
    and must be dropped, never used).
    """

    fingerprints: np.ndarray
    descriptors: np.ndarray
    valid: np.ndarray

    @property
    def num_invalid(self) -> int:
        return int((~self.valid).sum())

    def matrix(self) -> np.ndarray:
        """``[N, n_bits + D]``: uint8 fingerprints alone, float32 when descriptors are appended."""
        if self.descriptors.shape[1] == 0:
            return self.fingerprints
        return np.concatenate([self.fingerprints.astype(np.float32), self.descriptors], axis=1)


def compute(smiles: Sequence[str], featurizer: Featurizer = Featurizer()) -> Features:
    """Parse and featurise ``smiles`` with RDKit (no cache).

    A malformed record (not a non-empty string of printable ASCII without whitespace, see
    :func:`~metalearn.data.records.smiles_problem`) is marked invalid without being parsed:
    RDKit would read ``"CCO\nCCN"`` as ethanol named "CCN".
    """
    generator = rdFingerprintGenerator.GetMorganGenerator(
        radius=featurizer.radius, fpSize=featurizer.n_bits
    )
    functions = [getattr(Descriptors, name) for name in featurizer.descriptors]
    fingerprints = np.zeros((len(smiles), featurizer.n_bits), dtype=np.uint8)
    descriptors = np.zeros((len(smiles), len(functions)), dtype=np.float32)
    valid = np.zeros(len(smiles), dtype=bool)
    with rdBase.BlockLogs():  # silence "Explicit valence ..." while parsing, and only then
        for row, text in enumerate(smiles):
            molecule = Chem.MolFromSmiles(text) if smiles_problem(text) is None else None
            if molecule is None:
                continue
            fingerprints[row] = generator.GetFingerprintAsNumPy(molecule)
            descriptors[row] = [function(molecule) for function in functions]
            valid[row] = np.isfinite(descriptors[row]).all()
    return Features(fingerprints, descriptors, valid)


def featurize(
    smiles: Sequence[str],
    featurizer: Featurizer = Featurizer(),
    cache_dir: str | os.PathLike | None = None,
    data_key: str = "",
) -> Features:
    """Features of ``smiles``, read from / added to the cache in ``cache_dir`` when given.

    Args:
        smiles: the molecules, in the order the rows are wanted (duplicates are computed once).
        featurizer: the settings.
        cache_dir: a writable folder for the cache file, or ``None`` for no caching.
        data_key: names the data the molecules come from (e.g. its md5); with the settings it
            names the cache file, so a changed data file or setting never reads stale rows.

    Malformed records (see :func:`compute`) are marked invalid, counted in a logged warning
    and never written to the cache, so the cache never holds an inconsistent state.

    Raises:
        TypeError: ``smiles`` is a single string, or an entry is not a string (the message
            names its index).
    """
    if isinstance(smiles, (str, bytes)):
        raise TypeError(f"smiles must be a sequence of SMILES strings, got one {type(smiles)}")
    for index, text in enumerate(smiles):
        if not isinstance(text, str):
            raise TypeError(f"smiles[{index}] must be a str, got {type(text).__name__} {text!r}")
    unique = list(dict.fromkeys(smiles))
    malformed = [text for text in unique if smiles_problem(text) is not None]
    if malformed:
        logger.warning(
            "%d malformed SMILES record(s) marked invalid and not cached, e.g. %r: %s",
            len(malformed),
            malformed[0],
            smiles_problem(malformed[0]),
        )
    path = (
        Path(cache_dir) / f"features-{featurizer.key(data_key)}.npz"
        if cache_dir is not None
        else None
    )
    cached = _load(path, featurizer) if path is not None else {}
    missing = [text for text in unique if text not in cached and smiles_problem(text) is None]
    if missing:
        new = compute(missing, featurizer)
        cached.update(
            {
                text: (new.fingerprints[i], new.descriptors[i], new.valid[i])
                for i, text in enumerate(missing)
            }
        )
        if path is not None:
            _save(path, cached)
    invalid = (
        np.zeros(featurizer.n_bits, np.uint8),
        np.zeros(len(featurizer.descriptors), np.float32),
        False,
    )
    rows = [cached.get(text, invalid) for text in smiles]
    return Features(
        fingerprints=np.stack([row[0] for row in rows])
        if rows
        else np.zeros((0, featurizer.n_bits), np.uint8),
        descriptors=np.stack([row[1] for row in rows])
        if rows
        else np.zeros((0, len(featurizer.descriptors)), np.float32),
        valid=np.array([row[2] for row in rows], dtype=bool),
    )


def _load(path: Path, featurizer: Featurizer) -> dict[str, tuple[np.ndarray, np.ndarray, bool]]:
    """The rows of the cache file ``path``; ``{}`` when it is absent, or damaged (then it is
    logged and deleted: the rows are computed again)."""
    payload = load_verified(path)
    if payload is None:
        return {}
    try:
        return _rows(payload, featurizer)
    except Exception as error:  # noqa: BLE001 - any inconsistent content means: rebuild
        discard(path, f"unusable content: {type(error).__name__}: {error}")
        return {}


def _rows(payload: bytes, featurizer: Featurizer) -> dict[str, tuple[np.ndarray, np.ndarray, bool]]:
    """Decode and check a cache payload: every array has a row per SMILES, of the right width."""
    with np.load(io.BytesIO(payload), allow_pickle=False) as stored:
        text, ends, packed, descriptors, valid = (
            stored[name] for name in ("smiles", "ends", "packed", "descriptors", "valid")
        )
    n = len(ends)
    width = (featurizer.n_bits + 7) // 8
    if (
        text.dtype != np.uint8
        or ends.dtype != np.int64
        or packed.shape != (n, width)
        or descriptors.shape != (n, len(featurizer.descriptors))
        or valid.shape != (n,)
        or (n and (ends[-1] != len(text) or (np.diff(ends, prepend=0) < 1).any()))
        or (not n and len(text))
    ):
        raise ValueError(
            f"arrays disagree: {n} SMILES, {len(text)} text bytes, packed {packed.shape}, "
            f"descriptors {descriptors.shape}, valid {valid.shape}"
        )
    raw = text.tobytes()
    texts = [raw[a:b].decode() for a, b in zip(np.r_[0, ends[:-1]], ends)]
    bad = next((t for t in texts if smiles_problem(t) is not None), None)
    if bad is not None or len(set(texts)) != n:
        raise ValueError(f"malformed or repeated SMILES record {bad!r}")
    fingerprints = np.unpackbits(packed, axis=1, count=featurizer.n_bits)
    return {t: (fingerprints[i], descriptors[i], bool(valid[i])) for i, t in enumerate(texts)}


def _save(path: Path, rows: dict[str, tuple[np.ndarray, np.ndarray, bool]]) -> None:
    """Write atomically with a checksum (:func:`~metalearn.data.cache.save_verified`): a reader
    never sees half a cache. Each SMILES is stored with its end offset, never split on a
    separator. A file that cannot be written is logged, not fatal (the rows are correct)."""
    if not rows:
        return
    encoded = [text.encode() for text in rows]
    buffer = io.BytesIO()
    np.savez(
        buffer,
        smiles=np.frombuffer(b"".join(encoded), dtype=np.uint8),
        ends=np.cumsum([len(e) for e in encoded], dtype=np.int64),
        packed=np.packbits(np.stack([row[0] for row in rows.values()]), axis=1),
        descriptors=np.stack([row[1] for row in rows.values()]),
        valid=np.array([row[2] for row in rows.values()], dtype=bool),
    )
    try:
        save_verified(path, buffer.getvalue())
    except OSError as error:
        logger.warning("could not write the cache file %s (%s): not cached", path, error)
