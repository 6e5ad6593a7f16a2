"""Execute every chapter (or the ones named) under nbval, one summary line per chapter.

    python tests/run_chapters.py                 # every chapter, on the default device
    METALEARN_DEVICE=cuda python tests/run_chapters.py book/05_1_maml_code.ipynb

Prints ``<chapter>: passed|FAILED in S s`` per chapter and exits non-zero if any failed;
``make test-gpu`` runs it with ``METALEARN_DEVICE=cuda`` after the unit tests.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_timed(name: str, command: list[str], **options) -> bool:
    """Run one chapter's ``command`` (``options`` go to ``subprocess.run``); print
    ``<name>: passed|FAILED in S s``, and the tail of its output when it failed."""
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, **options)
    seconds = time.perf_counter() - start
    status = "passed" if result.returncode == 0 else "FAILED"
    print(f"{name}: {status} in {seconds:.1f} s", flush=True)
    if result.returncode != 0:
        print((result.stdout + result.stderr)[-3000:], flush=True)
    return result.returncode == 0


def main(paths: list[str]) -> int:
    chapters = [Path(p) for p in paths] or sorted((ROOT / "book").glob("*.ipynb"))
    nbval = [sys.executable, "-m", "pytest", "-q", "--nbval-lax", "--nbval-cell-timeout=3600"]
    failed = [
        chapter.stem
        for chapter in chapters
        if not run_timed(chapter.stem, nbval + ["-p", "no:cacheprovider", str(chapter)], cwd=ROOT)
    ]
    print(f"{len(chapters) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
