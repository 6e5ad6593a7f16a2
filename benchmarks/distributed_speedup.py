"""Meta-training time on one process against two (``torchrun``) on this machine's CPU cores.

Workloads, the quick profile's experiments run by the command line itself,
``python -m metalearn.train EXPERIMENT`` (one process) and
``torchrun --standalone --nproc_per_node=2 -m metalearn.train EXPERIMENT`` (two):
  maml.sinusoid      MAML on sinusoids: MLP 1-40-40-1, meta-batch 25, 2,000 steps (chapter 5.1);
  omniglot.few_shot  MAML on Omniglot as chapter 6.1's quick profile: the paper's strided Conv4
                     on 28x28 images, 5-way 1-shot, K queries per class, meta-batch 8, 400
                     meta-updates (needs the Omniglot files).
Each runs with one process on all cores, one process on one thread, and two processes of
one thread each (torchrun's default). The time is ``meta_train``'s own (``seconds`` in
``record.json``: no interpreter start, no data loading); the wall time of the whole command
follows in brackets. Median of ``--repeats`` runs.

    python benchmarks/distributed_speedup.py                # about 10 minutes on 2 cores
    python benchmarks/distributed_speedup.py --repeats 1 --steps 300   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
WORKLOADS = ("maml.sinusoid", "omniglot.few_shot")


def run_once(
    experiment: str, processes: int, threads: int, steps: int | None
) -> tuple[float, float]:
    """``(meta-training seconds, wall seconds)`` of one fresh run of the command line."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), METALEARN_DEVICE="cpu")
    if "METALEARN_DATA_DIR" not in env and SHARED_DATA.is_dir():
        env["METALEARN_DATA_DIR"] = str(SHARED_DATA)
    if sys.platform.startswith("linux"):
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    with tempfile.TemporaryDirectory() as out:
        command = ["-m", "metalearn.train", experiment, "--profile", "quick", "--out", out]
        command += [] if steps is None else ["--steps", str(steps)]
        if processes > 1:
            launch = ["-m", "torch.distributed.run", "--standalone"]
            command = [*launch, f"--nproc_per_node={processes}", *command]
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, *command], cwd=ROOT, env=env, capture_output=True, text=True
        )
        wall = time.perf_counter() - start
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
        record = json.loads((Path(out) / "record.json").read_text())
    return record["seconds"], wall


def has_data(experiment: str) -> bool:
    if experiment != "omniglot.few_shot":
        return True
    folder = Path(os.environ.get("METALEARN_DATA_DIR", SHARED_DATA)) / "omniglot"
    return folder.is_dir() and any(folder.glob("images_background*.zip"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, help="override the quick profile's steps")
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=WORKLOADS)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    settings = [(1, cores), (1, 1), (2, 1)]  # (processes, threads per process)
    heads = [f"{p} proc x {t} thr" for p, t in settings]
    print(f"{cores} CPU cores; median of {args.repeats} runs; meta_train seconds (wall seconds)")
    print(f"{'workload':18s} {'steps':>6s} " + " ".join(f"{h:>19s}" for h in heads) + "  speed-up")
    for experiment in args.workloads:
        if not has_data(experiment):
            print(f"{experiment:18s} skipped: no Omniglot files (set METALEARN_DATA_DIR)")
            continue
        cells, medians = [], []
        for processes, threads in settings:
            times = [
                run_once(experiment, processes, threads, args.steps) for _ in range(args.repeats)
            ]
            train = statistics.median(t for t, _ in times)
            wall = statistics.median(w for _, w in times)
            medians.append(train)
            cells.append(f"{train:7.2f} s ({wall:5.1f} s)")
        steps = args.steps or "quick"
        speedup = min(medians[:2]) / medians[2]  # two processes against the best single one
        print(f"{experiment:18s} {steps!s:>6s} " + " ".join(f"{c:>19s}" for c in cells), end="")
        print(f"  {speedup:7.2f}x", flush=True)
    print("speed-up: the faster one-process time divided by the two-process time (> 1 = faster)")


if __name__ == "__main__":
    main()
