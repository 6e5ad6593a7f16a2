"""Cache files that are written atomically, checked on every read and rebuilt when damaged.

Every file a loader computes from its sources (decoded images, fingerprints) goes through
:func:`cached` or the pair :func:`load_verified` / :func:`save_verified`:

* **content-addressed**: the caller names the file after a digest of the *contents* of its
  sources and settings (:func:`digest`, :func:`folder_digest`), so a changed source is a
  different file and a stale result is never served;
* **atomic**: the bytes go to a temporary file in the same folder, are flushed to disk
  (``fsync``) and renamed into place (``os.replace``), so a reader sees the old file or the
  complete new one, never half of one -- also when the writer is killed midway;
* **checked**: the file starts with a header holding the payload's length and sha256; a file
  whose header, length or checksum does not match (bit flips, truncation, an older format) is
  logged as a warning naming the file, deleted and rebuilt from the sources.

Layout of a file: ``b"metalearn-cache 1\\n"``, then ``b"<sha256 hex> <length>\\n"``, then the
payload (``length`` bytes).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable, TypeVar

logger = logging.getLogger(__name__)

MAGIC = b"metalearn-cache 1\n"
_CHUNK = 1 << 20
T = TypeVar("T")


class CacheDamaged(ValueError):
    """A cache file failed its integrity check (the message names the file and why)."""


def digest(*parts: str | bytes) -> str:
    """The hex sha256 of ``parts`` (each length-prefixed, so ``("ab", "c") != ("a", "bc")``)."""
    hasher = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else bytes(part)
        hasher.update(len(data).to_bytes(8, "little"))
        hasher.update(data)
    return hasher.hexdigest()


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """The hex digest (``"sha256"``, ``"md5"``, ...) of the bytes of the file at ``path``."""
    hasher = hashlib.new(algorithm)
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def files_digest(files: Iterable[tuple[str, bytes]]) -> str:
    """A hex sha256 of ``(name, content)`` pairs in the order given: of the names *and* the
    contents, so a file changed in place -- even to one of the same size -- changes it."""
    return digest(*(part for name, content in files for part in (name, _sha(content))))


def folder_digest(folder: str | os.PathLike, suffixes: tuple[str, ...] | None = None) -> str:
    """:func:`files_digest` of every file under ``folder`` (ending in ``suffixes`` when given),
    named by its ``/``-separated relative path, in sorted order. Reads every byte once (a few
    MB for Omniglot), never trusting names, sizes or times."""
    folder = Path(folder)
    files = sorted(
        (p.relative_to(folder).as_posix(), p)
        for p in folder.rglob("*")
        if p.is_file() and (suffixes is None or p.name.endswith(suffixes))
    )
    return digest(*(part for name, path in files for part in (name, file_digest(path))))


def _sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def wrap(payload: bytes) -> bytes:
    """``payload`` with the header (:data:`MAGIC`, sha256, length) in front."""
    checksum = hashlib.sha256(payload).hexdigest()
    return MAGIC + f"{checksum} {len(payload)}\n".encode() + payload


def unwrap(data: bytes, name: str = "<bytes>") -> bytes:
    """The payload of a cache file's bytes ``data``.

    Raises:
        CacheDamaged: the header is missing or malformed, or the payload's length or sha256
            differs from the header's; the message names ``name`` and what is wrong.
    """
    if not data.startswith(MAGIC):
        raise CacheDamaged(f"{name}: not a metalearn cache file (no header {MAGIC!r})")
    end = data.find(b"\n", len(MAGIC))
    if end < 0:
        raise CacheDamaged(f"{name}: truncated within its header")
    try:
        checksum, length_text = data[len(MAGIC) : end].decode("ascii").split(" ")
        length = int(length_text)
    except (UnicodeDecodeError, ValueError):
        raise CacheDamaged(f"{name}: malformed cache header") from None
    payload = data[end + 1 :]
    if len(payload) != length:
        raise CacheDamaged(f"{name}: holds {len(payload)} payload bytes, its header says {length}")
    actual = hashlib.sha256(payload).hexdigest()
    if actual != checksum:
        raise CacheDamaged(f"{name}: payload has sha256 {actual}, its header says {checksum}")
    return payload


def save_verified(path: str | os.PathLike, payload: bytes) -> None:
    """Write ``payload`` (with its checksum header) to ``path`` atomically: a temporary file in
    the same folder, ``fsync``, then ``os.replace``. Nothing is left behind on failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(wrap(payload))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp_name, path)
    except BaseException:  # also KeyboardInterrupt: never leave a partial file
        Path(temp_name).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def load_verified(path: str | os.PathLike) -> bytes | None:
    """The payload stored at ``path``; ``None`` when there is no file or it is damaged.

    A damaged file (see :func:`unwrap`) is logged as a warning naming it and deleted, so the
    caller rebuilds it from the sources.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return unwrap(data, str(path))
    except CacheDamaged as error:
        discard(path, str(error))
        return None


def discard(path: str | os.PathLike, reason: str) -> None:
    """Log that the cache file ``path`` is damaged (``reason``) and delete it."""
    logger.warning(
        "damaged cache file %s (%s): deleted, rebuilding it from the sources", path, reason
    )
    try:
        Path(path).unlink(missing_ok=True)
    except OSError as error:
        logger.warning("could not delete %s (%s): delete it by hand", path, error)


def cached(
    path: str | os.PathLike,
    build: Callable[[], T],
    to_bytes: Callable[[T], bytes],
    from_bytes: Callable[[bytes], T],
) -> T:
    """``from_bytes`` of the intact cache file ``path``, else ``build()`` -- saved there.

    ``from_bytes`` should check the structure of what it reads and raise (any ``Exception``)
    when it is wrong: a file whose checksum matches but whose content cannot be used (written
    by another version, say) is treated as damaged too. A file that cannot be written (a full
    disk, a read-only folder) is logged as a warning and the built value is returned.
    """
    path = Path(path)
    payload = load_verified(path)
    if payload is not None:
        try:
            return from_bytes(payload)
        except Exception as error:  # noqa: BLE001 - any unusable content means: rebuild
            discard(path, f"unusable content: {type(error).__name__}: {error}")
    value = build()
    try:
        save_verified(path, to_bytes(value))
    except OSError as error:
        logger.warning("could not write the cache file %s (%s): not cached", path, error)
    return value


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX); a no-op where folders cannot be opened."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)
