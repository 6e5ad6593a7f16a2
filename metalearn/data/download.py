"""Where data sets live, and downloads that never leave a corrupt or partial file.

Two folders per data set, kept apart so that source files may sit on a read-only share:

* :func:`cache_dir` — the *source* files (official zips, csv files) are looked for
  and downloaded here: ``$METALEARN_DATA_DIR/<name>`` when that variable is set, else
  ``<cache>/<name>``.
* :func:`derived_dir` — files *computed* from the sources (decoded tensors) are
  written here, always ``<cache>/<name>``, which must be writable.

``<cache>`` is ``$METALEARN_CACHE_DIR`` when set, else ``$XDG_CACHE_HOME/metalearn``,
else ``~/.cache/metalearn``. So with only ``METALEARN_CACHE_DIR`` set, downloads and
decoded files share one folder; with ``METALEARN_DATA_DIR`` set too (a read-only copy
of the data, say), the sources are read there and nothing is written there.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from pathlib import Path

DATA_ENV_VAR = "METALEARN_DATA_DIR"
CACHE_ENV_VAR = "METALEARN_CACHE_DIR"
_CHUNK = 1 << 20


def _user_cache() -> Path:
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.environ[CACHE_ENV_VAR]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "metalearn"


def cache_dir(name: str) -> Path:
    """The folder where the source files of data set ``name`` are found or downloaded to.

    ``$METALEARN_DATA_DIR/<name>`` if the variable is set, else ``<cache>/<name>`` (see above).
    The folder is not created (it may be a read-only share).
    """
    root = os.environ.get(DATA_ENV_VAR)
    return (Path(root).expanduser() if root else _user_cache()) / name


def derived_dir(name: str) -> Path:
    """A writable folder (created if needed) for files computed from data set ``name``.

    ``<cache>/<name>`` (see above); never inside ``$METALEARN_DATA_DIR``, which may be read-only.
    """
    folder = _user_cache() / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def md5sum(path: str | os.PathLike) -> str:
    """The hex md5 digest of the file at ``path``."""
    digest = hashlib.md5()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def find_local(directory: str | os.PathLike, filename: str, md5: str) -> Path | None:
    """``directory/filename`` if it exists and its md5 is ``md5``; ``None`` if it does not exist.

    Raises:
        ValueError: the file exists but its checksum differs (a corrupt or different copy);
            the message names the file and both checksums. The file is left alone.
    """
    path = Path(directory) / filename
    if not path.is_file():
        return None
    actual = md5sum(path)
    if actual != md5:
        raise ValueError(f"{path} has md5 {actual}, expected {md5}: delete or replace this file")
    return path


def fetch(url: str, md5: str, dest_dir: str | os.PathLike, filename: str | None = None) -> Path:
    """Download ``url`` to ``dest_dir/filename`` unless a copy with checksum ``md5`` is there.

    The bytes go to a temporary file in ``dest_dir`` and are renamed into place
    (atomically) only once their md5 matches, so ``dest_dir/filename`` is either
    absent or complete and verified — also when the download is interrupted.

    Args:
        url: where to download from.
        md5: the expected hex md5 digest of the file.
        dest_dir: the folder to put it in (created if needed).
        filename: the name to give it; defaults to the last part of ``url``.

    Raises:
        ValueError: the downloaded bytes (or an existing copy) have another checksum;
            the message names the file and both checksums.
        OSError: the download failed (``urllib.error.URLError`` is one); nothing is left behind.
    """
    dest_dir = Path(dest_dir)
    filename = filename or url.rstrip("/").rsplit("/", 1)[-1]
    existing = find_local(dest_dir, filename, md5)
    if existing is not None:
        return existing
    dest_dir.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=dest_dir, prefix=f".{filename}.", suffix=".part")
    temp_path = Path(temp_name)
    try:
        digest = hashlib.md5()
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != md5:
            raise ValueError(
                f"download of {filename} from {url} has md5 {digest.hexdigest()}, expected {md5}"
            )
        os.replace(temp_path, dest_dir / filename)
    except BaseException:  # also KeyboardInterrupt: never leave a partial file
        temp_path.unlink(missing_ok=True)
        raise
    return dest_dir / filename
