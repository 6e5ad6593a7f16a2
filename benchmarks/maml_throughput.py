"""Meta-iterations per second of metalearn.MAML: vmap-batched against looped tasks.

Workloads (as in Finn et al. 2017):
  sinusoid  MLP 1-40-40-1, meta-batch 25, K=10 support and 10 query points, 1 inner step;
  conv4     Conv4 on 28x28 images, 5-way 1-shot, 15 queries per class, meta-batch 16, 1 inner step.
For each: first and second order, batched (vmap) and looped paths, and the path MAML picks by
itself ("auto"), at 1 and 2 CPU threads (or on CUDA with --device cuda). One meta-iteration is
meta_loss + backward + Adam step. Prints the median over --repeats timed runs.

    python benchmarks/maml_throughput.py            # a few minutes on 2 cores
    python benchmarks/maml_throughput.py --short --threads 1   # a quick look (~1 min)
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

import metalearn as ml
from metalearn.models import Conv4
from metalearn.tasks import Sinusoid


def sinusoid_workload(device):
    model = ml.MLP(1, [40, 40], 1)
    batch = Sinusoid(seed=0).sample(25, k_shot=10, k_query=10).to(device)
    return model, F.mse_loss, 0.01, batch


def conv4_workload(device):
    g = torch.Generator().manual_seed(0)
    ways, shots, queries, tasks = 5, 1, 15, 16
    batch = ml.TaskBatch(
        torch.randn(tasks, ways * shots, 1, 28, 28, generator=g),
        torch.arange(ways).repeat(tasks, shots),
        torch.randn(tasks, ways * queries, 1, 28, 28, generator=g),
        torch.arange(ways).repeat(tasks, queries),
    ).to(device)
    return Conv4(1, ways), F.cross_entropy, 0.4, batch


WORKLOADS = {"sinusoid": sinusoid_workload, "conv4": conv4_workload}


def iterations_per_second(
    maml: ml.MAML, batch: ml.TaskBatch, iterations: int, repeats: int
) -> float:
    """Median over ``repeats`` runs of ``iterations`` meta-iterations, after one warm-up
    iteration."""
    opt = torch.optim.Adam(maml.parameters(), lr=1e-6)

    def step():
        opt.zero_grad(set_to_none=True)
        maml.meta_loss(*batch).backward()
        opt.step()

    step()
    rates = []
    for _ in range(repeats):
        if batch.support_x.is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(iterations):
            step()
        if batch.support_x.is_cuda:
            torch.cuda.synchronize()
        rates.append(iterations / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--short", action="store_true", help="fewer iterations and repeats, one thread count"
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed runs per setting (median is printed)"
    )
    parser.add_argument(
        "--threads", nargs="+", type=int, default=None, help="CPU thread counts (default 1 2)"
    )
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    args = parser.parse_args()
    device = ml.default_device(args.device)
    repeats = args.repeats or (3 if args.short else 5)
    threads = [torch.get_num_threads()] if device.type == "cuda" else (args.threads or [1, 2])
    print(
        f"torch {torch.__version__}, device {device}, median of {repeats} runs, meta-iterations/s"
    )
    print(
        f"{'workload':9s} {'order':6s} {'threads':>7s} {'vmap':>8s} {'loop':>8s} {'auto':>5s} "
        f"{'vmap/loop':>9s}"
    )
    for name in args.workloads:
        for first_order in (False, True):
            for num_threads in threads:
                torch.set_num_threads(num_threads)
                torch.manual_seed(0)
                model, loss_fn, inner_lr, batch = WORKLOADS[name](device)
                model = model.to(device)
                small = args.short or name == "conv4"
                rates = {}
                for batched in (True, False):
                    maml = ml.MAML(
                        model, loss_fn, inner_lr, first_order=first_order, batched=batched
                    )
                    iterations = (
                        (2 if device.type == "cpu" else 10)
                        if name == "conv4"
                        else (10 if small else 50)
                    )
                    if not batched and name == "sinusoid":
                        iterations = max(2, iterations // 5)
                    rates[batched] = iterations_per_second(maml, batch, iterations, repeats)
                auto = "vmap" if ml.MAML(model, loss_fn, inner_lr).uses_vmap else "loop"
                order = "first" if first_order else "second"
                print(
                    f"{name:9s} {order:6s} {num_threads:7d} {rates[True]:8.2f} {rates[False]:8.2f} "
                    f"{auto:>5s} {rates[True] / rates[False]:9.2f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
