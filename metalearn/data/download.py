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
of the data, say), the sources are read there and computed files are never written there.
A download or extraction into a read-only folder is refused up front
(:func:`check_writable`), and one that fails removes what it created (a temporary file,
the folders made for it), so a failed load leaves the data folder as it found it.
Archives are extracted all or nothing (:func:`extract_archive`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from metalearn.data.cache import file_digest

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
    """The hex md5 digest of the file at ``path`` (the checksums data sets publish)."""
    return file_digest(path, "md5")


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


def fetch(
    url: str, md5: str | None, dest_dir: str | os.PathLike, filename: str | None = None
) -> Path:
    """Download ``url`` to ``dest_dir/filename`` unless a copy with checksum ``md5`` is there.

    The bytes go to a temporary file in ``dest_dir`` and are renamed into place
    (atomically) only once their md5 matches, so ``dest_dir/filename`` is either
    absent or complete and verified — also when the download is interrupted.

    Args:
        url: where to download from.
        md5: the expected hex md5 digest of the file; ``None`` where none is published: then
            any existing copy is returned and a download is taken as it comes (still
            atomically), and the caller must check the contents (as FS-Mol's loader does).
        dest_dir: the folder to put it in (created if needed).
        filename: the name to give it; defaults to the last part of ``url``.

    Raises:
        ValueError: the downloaded bytes (or an existing copy) have another checksum;
            the message names the file and both checksums.
        OSError: the download failed (``urllib.error.URLError`` is one); nothing is left behind.
    """
    dest_dir = Path(dest_dir)
    filename = filename or url.rstrip("/").rsplit("/", 1)[-1]
    existing = find_local(dest_dir, filename, md5) if md5 else None
    if existing is not None:
        return existing
    if md5 is None and (dest_dir / filename).is_file():
        return dest_dir / filename
    check_writable(dest_dir)
    created = _make_folders(dest_dir)
    try:
        handle, temp_name = tempfile.mkstemp(dir=dest_dir, prefix=f".{filename}.", suffix=".part")
    except BaseException:
        _remove_folders(created)
        raise
    temp_path = Path(temp_name)
    try:
        digest = hashlib.md5()
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                digest.update(chunk)
                out.write(chunk)
        if md5 is not None and digest.hexdigest() != md5:
            raise ValueError(
                f"download of {filename} from {url} has md5 {digest.hexdigest()}, expected {md5}"
            )
        os.replace(temp_path, dest_dir / filename)
    except BaseException:  # also KeyboardInterrupt: never leave a partial file
        temp_path.unlink(missing_ok=True)
        _remove_folders(created)  # nor the folders made for it
        raise
    return dest_dir / filename


def check_writable(folder: str | os.PathLike) -> None:
    """Refuse, before anything is written, a ``folder`` that is (or would be created in) a
    read-only place: a read-only file system, no write permission, or no write bit at all (a
    folder made read-only with ``chmod a-w``, respected here even for root, whom the system
    would let write).

    Raises:
        PermissionError: the message names the read-only folder and the environment variables.
    """
    folder = Path(folder)
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is None:
        return
    mode = existing.stat().st_mode
    read_only = (
        not os.access(existing, os.W_OK | os.X_OK)
        or not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
        or bool(getattr(os, "statvfs", None) and os.statvfs(existing).f_flag & os.ST_RDONLY)
    )
    if read_only:
        raise PermissionError(
            f"{existing} is read-only, so nothing is written to {folder}: put the files there "
            f"by hand, or point {DATA_ENV_VAR} (sources) and {CACHE_ENV_VAR} (computed files) "
            "at writable folders"
        )


def extract_archive(archive: str | os.PathLike, dest_dir: str | os.PathLike, folder: str) -> Path:
    """Extract the tar or zip file ``archive``, which holds the top-level folder ``folder``, to
    ``dest_dir/folder`` -- all or nothing.

    The members go to a temporary folder inside ``dest_dir`` (tar: with the ``"data"`` filter,
    which refuses absolute paths, ``..`` and links out; zip: with its own path sanitising); only
    when every member is out is ``folder`` renamed into place, so an extraction that stops part
    way (a refused member, Ctrl-C, a full disk) leaves no ``dest_dir/folder`` behind to be
    mistaken for the data set. A file ``.extracted`` inside records the archive it came from.

    Returns:
        ``dest_dir/folder``.

    Raises:
        ValueError: ``archive`` does not contain ``folder/``, is neither a tar nor a zip file, is
            damaged, or holds a member that would land outside ``dest_dir`` (refused); the
            message names the archive. Nothing is left behind.
        OSError, KeyboardInterrupt: the extraction stopped part way (a full disk, Ctrl-C);
            nothing is left behind either.
        PermissionError: ``dest_dir`` is read-only (see :func:`check_writable`).
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    target = dest_dir / folder
    check_writable(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(dir=dest_dir, prefix=f".{folder}.", suffix=".part"))
    try:
        try:
            if tarfile.is_tarfile(archive):
                with tarfile.open(archive) as tar:
                    tar.extractall(temp, filter="data")
            elif zipfile.is_zipfile(archive):
                with zipfile.ZipFile(archive) as zipped:
                    zipped.extractall(temp)
            else:
                raise ValueError(f"archive={str(archive)!r} is neither a tar nor a zip file")
        except (tarfile.TarError, zipfile.BadZipFile, EOFError) as error:
            raise ValueError(
                f"archive={str(archive)!r} could not be extracted ({type(error).__name__}: "
                f"{error}); nothing was extracted"
            ) from error
        if not (temp / folder).is_dir():
            raise ValueError(f"archive={str(archive)!r} does not contain the folder {folder}/")
        (temp / folder / EXTRACTED_MARKER).write_text(f"{archive.name}\n")
        try:
            os.replace(temp / folder, target)
        except OSError:
            if not target.is_dir():  # else another process finished first: use its copy
                raise
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return target


EXTRACTED_MARKER = ".extracted"


def _make_folders(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return those created, deepest first."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    return missing


def _remove_folders(folders: list[Path]) -> None:
    """Remove ``folders`` (deepest first) where they are still empty."""
    for path in folders:
        try:
            path.rmdir()
        except OSError:
            break
