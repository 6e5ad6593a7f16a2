"""Molecules as vectors: Morgan (ECFP) fingerprints with RDKit, computed once and cached.

A Morgan fingerprint (Rogers & Hahn, 2010) hashes every circular neighbourhood of
every atom, up to ``radius`` bonds, into one of ``n_bits`` positions; radius 2
is the classic ECFP4. Optional RDKit descriptors (``"MolWt"``, ``"MolLogP"``, ...)
are appended as extra columns.

SMILES that RDKit cannot parse are never featurised as zeros: :func:`featurize`
returns a mask, callers drop those molecules and report how many. RDKit's parse
warnings are silenced only while parsing (``rdBase.BlockLogs``).

The cache is one ``.npz`` file per (data key, settings) in a writable folder; it
holds a row per SMILES ever asked for, so featurising only the molecules a run
needs (the quick profile) and later more of them (the full profile) both reuse it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from rdkit import Chem, rdBase
from rdkit.Chem import Descriptors, rdFingerprintGenerator

CACHE_VERSION = 2


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
        """A file-name-safe digest of ``data_key`` (e.g. the data file's md5) and these settings."""
        text = json.dumps(
            {"data": data_key, "version": CACHE_VERSION, **asdict(self)}, sort_keys=True
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
    """Parse and featurise ``smiles`` with RDKit (no cache)."""
    generator = rdFingerprintGenerator.GetMorganGenerator(
        radius=featurizer.radius, fpSize=featurizer.n_bits
    )
    functions = [getattr(Descriptors, name) for name in featurizer.descriptors]
    fingerprints = np.zeros((len(smiles), featurizer.n_bits), dtype=np.uint8)
    descriptors = np.zeros((len(smiles), len(functions)), dtype=np.float32)
    valid = np.zeros(len(smiles), dtype=bool)
    with rdBase.BlockLogs():  # silence "Explicit valence ..." while parsing, and only then
        for row, text in enumerate(smiles):
            molecule = Chem.MolFromSmiles(text) if text else None
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
    """
    unique = list(dict.fromkeys(smiles))
    path = (
        Path(cache_dir) / f"features-{featurizer.key(data_key)}.npz"
        if cache_dir is not None
        else None
    )
    cached = _load(path, featurizer) if path is not None else {}
    missing = [text for text in unique if text not in cached]
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
    rows = [cached[text] for text in smiles]
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
    if not path.is_file():
        return {}
    with np.load(
        path, allow_pickle=False
    ) as stored:  # each stored["name"] reads the file: once each
        smiles, packed, descriptors, valid = (
            stored[name] for name in ("smiles", "packed", "descriptors", "valid")
        )
    fingerprints = np.unpackbits(packed, axis=1, count=featurizer.n_bits)
    texts = smiles.tobytes().decode().split("\n")
    return {text: (fingerprints[i], descriptors[i], bool(valid[i])) for i, text in enumerate(texts)}


def _save(path: Path, rows: dict[str, tuple[np.ndarray, np.ndarray, bool]]) -> None:
    """Write atomically (temporary file, then rename): a reader never sees half a cache."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".npz")
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez(
                out,
                smiles=np.frombuffer(
                    "\n".join(rows).encode(), dtype=np.uint8
                ),  # compact; SMILES hold no newline
                packed=np.packbits(np.stack([row[0] for row in rows.values()]), axis=1),
                descriptors=np.stack([row[1] for row in rows.values()]),
                valid=np.array([row[2] for row in rows.values()], dtype=bool),
            )
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
