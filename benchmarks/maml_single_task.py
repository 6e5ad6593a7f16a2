"""One task at a time: ``vmap``, the loop, or the support span? MAML's test on chapter 6.3's
workload.

    python benchmarks/maml_single_task.py

FS-Mol's test adapts to one assay at a time (its query, every other molecule of the assay, has a
size of its own): an MLP 2048-128-1 on ECFP fingerprints (65 of 2048 bits on), 160 inner steps
of 0.5, 200 query molecules. Prints milliseconds per inner step of ``ml.MAML.predict`` forced
through vmap (``batched=True``), through the loop (the default for one task), and of
:class:`~metalearn.algorithms.SupportSpan` (the same steps computed in the span of the support
fingerprints, as chapter 6.3 adapts), the median of 5 interleaved runs, one thread, and the
largest difference of each path's predictions from the loop's in float64.
"""

from __future__ import annotations

import statistics
import time

import torch

import metalearn as ml
from metalearn.algorithms import SupportSpan
from metalearn.losses import binary_cross_entropy

STEPS = 160


def main() -> None:
    torch.set_num_threads(1)
    print(f"one task, MLP 2048-128-1, {STEPS} steps; 1 thread, torch {torch.__version__}")
    generator = torch.Generator().manual_seed(0)
    model = ml.MLP(2048, [128], 1)
    loop = ml.MAML(model, binary_cross_entropy, inner_lr=0.5, batched=False)
    vmap = ml.MAML(model, binary_cross_entropy, inner_lr=0.5, batched=True)
    paths = {
        "vmap": lambda x, y, q: vmap.predict(x, y, q, steps=STEPS),
        "loop": lambda x, y, q: loop.predict(x, y, q, steps=STEPS),
        "span": SupportSpan(loop, STEPS).predict,
    }
    for support in (16, 128):
        x = (torch.rand(1, support, 2048, generator=generator) < 0.03).float()
        y = (torch.rand(1, support, generator=generator) < 0.5).long()
        query = (torch.rand(1, 200, 2048, generator=generator) < 0.03).float()
        times: dict[str, list[float]] = {label: [] for label in paths}
        for _ in range(5):
            for label, predict in paths.items():
                start = time.perf_counter()
                predict(x, y, query)
                times[label].append((time.perf_counter() - start) * 1000 / STEPS)
        model.double()
        reference = paths["loop"](x.double(), y, query.double())
        gaps = {
            label: (predict(x.double(), y, query.double()) - reference).abs().max().item()
            for label, predict in paths.items()
            if label != "loop"
        }
        model.float()
        medians = {label: statistics.median(t) for label, t in times.items()}
        print(
            f"support {support:3d}: "
            + ", ".join(
                f"{label} {ms:.2f} ms/step ({medians['loop'] / ms:.1f}x the loop's speed"
                + (f", float64 gap {gaps[label]:.1e})" if label in gaps else ")")
                for label, ms in medians.items()
            )
        )


if __name__ == "__main__":
    main()
