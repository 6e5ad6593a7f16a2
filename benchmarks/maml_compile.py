"""Does ``torch.compile`` speed up MAML's meta-iteration? One workload, 2 threads, one process.

    python benchmarks/maml_compile.py [WORKLOAD]     # default: sinusoid

For first and second order: meta-iterations per second of the plain loop, of ``ml.MAML``'s vmap
path eager and compiled (``torch.compile`` around the meta-loss; the backward pass and Adam step
stay eager), the compile time, and the largest difference between the compiled and the eager
meta-gradient (float32, same parameters and tasks). Not a path ``ml.MAML`` takes by itself: the
compile costs tens of seconds per shape, more than a chapter's quick run on small workloads.
"""

from __future__ import annotations

import sys
import time

import torch

from metalearn.benchmark import WORKLOADS, meta_loss_fn, steps_per_second


def main(name: str = "sinusoid") -> None:
    torch.set_num_threads(2)
    workload = WORKLOADS[name]
    print(f"{workload.description}; 2 threads, torch {torch.__version__}")
    for first_order in (False, True):
        order = "first order" if first_order else "second order"
        results = {}
        for label, path, compiled in (
            ("plain loop", "plain", False),
            ("vmap, eager", "vmap", False),
            ("vmap, compiled", "vmap", True),
        ):
            model, loss_fn, batch = workload.build()
            meta_loss = meta_loss_fn(path, workload, model, loss_fn, first_order)
            if compiled:
                torch._dynamo.reset()
                meta_loss = torch.compile(meta_loss)
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-6)
            start = time.perf_counter()
            gradient = torch.autograd.grad(meta_loss(batch), list(model.parameters()))
            warm_up = time.perf_counter() - start
            results[label] = torch.cat([g.flatten() for g in gradient])

            def step() -> None:
                optimizer.zero_grad(set_to_none=True)
                meta_loss(batch).backward()
                optimizer.step()

            speed = steps_per_second(step, seconds=3.0, minimum=5)
            gap = (results[label] - results["plain loop"]).abs().max().item()
            print(
                f"{order:12s} {label:15s} {speed:7.1f} it/s   first call {warm_up:5.1f} s   "
                f"gradient vs plain loop {gap:.1e}",
                flush=True,
            )


if __name__ == "__main__":
    main(*sys.argv[1:])
