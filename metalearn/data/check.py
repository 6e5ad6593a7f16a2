"""Is the data the book needs at hand? Answered in seconds, before a build spends minutes.

Chapters 6.1 (Omniglot) and 6.3 (FS-Mol) need data files; every other chapter makes its own
tasks. Each data set counts as at hand when its files are on disk (``$METALEARN_DATA_DIR/<name>``
or the cache, see :mod:`metalearn.data.download`) or, for Omniglot, when its download address
answers within a few seconds. ``make book`` and ``make test`` run this first:

    python -m metalearn.data.check      # prints what is missing and how to fix it; exit 1 if so
"""

from __future__ import annotations

import sys
import urllib.request

from metalearn.data import fsmol, omniglot
from metalearn.data.download import DATA_ENV_VAR, cache_dir, find_local


def _reachable(url: str, timeout: float) -> bool:
    """Whether ``url`` answers a HEAD request within ``timeout`` seconds."""
    try:
        request = urllib.request.Request(url, method="HEAD")
        with urllib.request.urlopen(request, timeout=timeout):
            return True
    except Exception:  # any failure (no network, DNS, HTTP error) means: not reachable
        return False


def missing(timeout: float = 5.0) -> list[str]:
    """One actionable message per data set that is neither on disk nor downloadable."""
    problems = []
    folder = cache_dir("omniglot")
    on_disk = any(
        all(
            find_local(folder, f"{name}.zip", md5) or (folder / name).is_dir()
            for name, md5 in names.items()
        )
        for names in (omniglot.FULL, omniglot.SMALL)
    )
    first = next(iter(omniglot.FULL))
    if not on_disk and not _reachable(f"{omniglot.URL}{first}.zip", timeout):
        wanted = " or ".join(
            ", ".join(f"{n}.zip" for n in names) for names in (omniglot.FULL, omniglot.SMALL)
        )
        problems.append(
            f"Omniglot (chapter 6.1): not in {folder} and {omniglot.URL} cannot be reached. "
            f"Put {wanted} there, or set {DATA_ENV_VAR} to a folder whose omniglot/ holds them."
        )
    folder = cache_dir("fsmol")
    subset = find_local(folder, fsmol.SUBSET_FILE, fsmol.SUBSET_MD5)
    if subset is None and not (folder / fsmol.FULL_FOLDER).is_dir():
        problems.append(
            f"FS-Mol (chapter 6.3): neither {fsmol.SUBSET_FILE} (md5 {fsmol.SUBSET_MD5}) nor an "
            f"extracted {fsmol.FULL_FOLDER}/ is in {folder}. Set {DATA_ENV_VAR} to a folder whose "
            f"fsmol/ holds one of them."
        )
    return problems


def main() -> int:
    problems = missing()
    for problem in problems:
        print(f"missing data: {problem}", file=sys.stderr)
    if not problems:
        print("data: Omniglot and FS-Mol at hand")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
