"""Meta-iterations per second of MAML on the papers' workloads: a plain loop against metalearn.

Prints one table: workload x order x {plain loop, metalearn's loop, vmap, metalearn's default}, in
meta-iterations per second (median over interleaved repeats, each in a fresh process, so no path
inherits another's warm caches), with the largest float64 meta-gradient difference from the plain
loop beside each path. Workloads and paths: metalearn/benchmark.py.

    python benchmarks/maml_throughput.py                      # all workloads, 2 threads (~8 min)
    python benchmarks/maml_throughput.py --repeats 1 --workloads omniglot-5way   # a quick look
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

import torch

from metalearn import benchmark

MEASURED = ("plain", "loop", "vmap")  # "default" is whichever of loop and vmap it chooses


def measure_in_fresh_process(
    workload: str, path: str, order: str, threads: int, seconds: float
) -> float:
    code = (
        "import torch; from metalearn import benchmark as b; "
        f"torch.set_num_threads({threads}); "
        f"print(b.iterations_per_second(b.WORKLOADS[{workload!r}], {path!r}, "
        f"{order == 'first'}, {seconds}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats per path")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per process")
    parser.add_argument("--seconds", type=float, default=2.0, help="timed seconds per measure")
    parser.add_argument(
        "--workloads", nargs="+", default=list(benchmark.WORKLOADS), choices=benchmark.WORKLOADS
    )
    parser.add_argument("--orders", nargs="+", default=["second", "first"])
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, {args.threads} threads, meta-iterations per second: median "
        f"of {args.repeats} interleaved runs in fresh processes; gap = largest float64 "
        "meta-gradient difference from the plain loop"
    )
    for name in args.workloads:
        print(f"  {name}: {benchmark.WORKLOADS[name].description}")
    header = f"{'workload':15s} {'order':6s} " + " ".join(f"{p:>8s}" for p in MEASURED)
    print(f"{header} {'default':>14s} {'vmap/plain':>10s} {'gap loop':>9s} {'gap vmap':>9s}")
    torch.set_num_threads(args.threads)
    for name in args.workloads:
        workload = benchmark.WORKLOADS[name]
        chosen = benchmark.chosen_path(workload)
        for order in args.orders:
            runs: dict[str, list[float]] = {path: [] for path in MEASURED}
            for _ in range(args.repeats):
                for path in MEASURED:
                    runs[path].append(
                        measure_in_fresh_process(name, path, order, args.threads, args.seconds)
                    )
            rate = {path: statistics.median(r) for path, r in runs.items()}
            gaps = {
                path: benchmark.gradient_gap(workload, path, order == "first")
                for path in ("loop", "vmap")
            }
            print(
                f"{name:15s} {order:6s} "
                + " ".join(f"{rate[p]:8.2f}" for p in MEASURED)
                + f" {rate[chosen]:8.2f} ({chosen:4s}) {rate['vmap'] / rate['plain']:10.2f}"
                + f" {gaps['loop']:9.1e} {gaps['vmap']:9.1e}",
                flush=True,
            )


if __name__ == "__main__":
    main()
