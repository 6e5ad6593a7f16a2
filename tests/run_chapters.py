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


def main(paths: list[str]) -> int:
    chapters = [Path(p) for p in paths] or sorted((ROOT / "book").glob("*.ipynb"))
    failed = []
    for chapter in chapters:
        start = time.perf_counter()
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "--nbval-lax",
                "--nbval-cell-timeout=3600",
                "-p",
                "no:cacheprovider",
                str(chapter),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - start
        status = "passed" if result.returncode == 0 else "FAILED"
        print(f"{chapter.stem}: {status} in {seconds:.1f} s", flush=True)
        if result.returncode != 0:
            failed.append(chapter.stem)
            print(result.stdout[-3000:], flush=True)
    print(f"{len(chapters) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
