"""Run the chapters as Colab would: a fresh environment, the package from a wheel, one folder each.

    python tests/colab_simulation.py --torch "torch==2.4.1"        # every chapter
    python tests/colab_simulation.py --torch "torch==2.4.1" book/05_1_maml_code.ipynb

What it does, in a new folder (``--work``, default a temporary one):

1. builds a wheel of this checkout (``pip wheel --no-deps``), as the Colab install cell would
   install the package from the repository;
2. creates a virtual environment with ``--torch`` installed first (Colab brings its own torch;
   ``pyproject.toml`` promises ``torch>=2.3``), then the wheel with its ``chem`` extra, whose
   loose dependencies must keep that torch, and a Jupyter kernel;
3. copies each chapter alone into an empty folder and executes it there, top to bottom, in that
   environment, so that it can rely on nothing of the repository but the installed package.

Prints ``<chapter>: passed|FAILED in S s`` per chapter and the versions it ran with, and exits
non-zero if any failed. Data: offline, set ``METALEARN_DATA_DIR`` (``make`` uses
``../shared/data``); with a network the loaders download as they do in Colab. ``--pip-args``
passes options to every ``pip install`` (e.g. ``--index-url`` of PyTorch's CPU wheels).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from run_chapters import run_timed  # this script runs from tests/, beside it

ROOT = Path(__file__).resolve().parents[1]
EXECUTE = """
import sys, nbformat
from nbclient import NotebookClient
notebook = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(notebook, timeout=int(sys.argv[2]), kernel_name="python3").execute()
nbformat.write(notebook, sys.argv[1])
"""


def run(command: list[str], **options) -> None:
    print("$", " ".join(shlex.quote(c) for c in command), flush=True)
    subprocess.run(command, check=True, **options)


def prepare(work: Path, torch_spec: str, pip_args: list[str]) -> Path:
    """The environment: ``work/venv`` with ``torch_spec``, the checkout's wheel and a kernel;
    returns its Python."""
    wheels = work / "wheels"
    shutil.rmtree(wheels, ignore_errors=True)  # never an older build of the checkout
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)])
    (wheel,) = wheels.glob("metalearn-*.whl")
    run([sys.executable, "-m", "venv", str(work / "venv")])
    python = work / "venv" / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "-q", *pip_args]
    run(pip + [torch_spec])
    run(pip + [f"metalearn[chem] @ {wheel.as_uri()}", "ipykernel", "nbclient", "nbformat"])
    run(pip + ["--force-reinstall", "--no-deps", str(wheel)])  # this build, in a reused --work
    return python


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("chapters", nargs="*", help="notebooks (default: every chapter)")
    parser.add_argument("--torch", required=True, help='the torch to test, e.g. "torch==2.4.1"')
    parser.add_argument("--pip-args", default="", help="options for every pip install")
    parser.add_argument("--work", type=Path, help="folder for the environment (default: temp)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    args = parser.parse_args(argv)
    chapters = [Path(p).resolve() for p in args.chapters] or sorted((ROOT / "book").glob("*.ipynb"))
    work = args.work or Path(tempfile.mkdtemp(prefix="colab-simulation-"))
    work.mkdir(parents=True, exist_ok=True)
    python = prepare(work, args.torch, shlex.split(args.pip_args))
    versions = subprocess.run(
        [
            str(python),
            "-c",
            "import torch, numpy, metalearn; print(f'torch {torch.__version__}, "
            "numpy {numpy.__version__}, metalearn from {metalearn.__file__}')",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=work,  # not the checkout, whose metalearn/ folder would shadow the installed one
    ).stdout.strip()
    print(versions, flush=True)
    # the chapters see neither the checkout nor its virtual environment
    environment = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    environment["PATH"] = f"{python.parent}{os.pathsep}{environment.get('PATH', '')}"
    failed = []
    for chapter in chapters:
        folder = work / "chapters" / chapter.stem
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        copy = folder / chapter.name
        shutil.copyfile(chapter, copy)
        command = [str(python), "-c", EXECUTE, str(copy), str(args.timeout)]
        if not run_timed(chapter.stem, command, cwd=folder, env=environment):
            failed.append(chapter.stem)
    print(f"{versions}: {len(chapters) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
