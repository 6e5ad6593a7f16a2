"""One task at a time: ``vmap`` or the loop? ``ml.MAML.predict`` on chapter 6.3's workload.

    python benchmarks/maml_single_task.py

FS-Mol's test adapts to one assay at a time (its query, every other molecule of the assay, has a
size of its own): an MLP 2048-128-1 on ECFP fingerprints (65 of 2048 bits on), 160 inner steps
of 0.5, 200 query molecules. Prints milliseconds per inner step of ``ml.MAML.predict`` forced
through vmap (``batched=True``) and through the loop (the default for one task since this
measurement), the median of 5 interleaved runs, one thread, and the largest difference between
the two paths' predictions in float64.
"""

from __future__ import annotations

import statistics
import time

import torch

import metalearn as ml
from metalearn.losses import binary_cross_entropy

STEPS = 160


def main() -> None:
    torch.set_num_threads(1)
    print(f"one task, MLP 2048-128-1, {STEPS} steps; 1 thread, torch {torch.__version__}")
    generator = torch.Generator().manual_seed(0)
    model = ml.MLP(2048, [128], 1)
    paths = {
        label: ml.MAML(model, binary_cross_entropy, inner_lr=0.5, batched=batched)
        for label, batched in (("vmap", True), ("loop", False))
    }
    for support in (16, 128):
        x = (torch.rand(1, support, 2048, generator=generator) < 0.03).float()
        y = (torch.rand(1, support, generator=generator) < 0.5).long()
        query = (torch.rand(1, 200, 2048, generator=generator) < 0.03).float()
        times: dict[str, list[float]] = {label: [] for label in paths}
        for _ in range(5):
            for label, maml in paths.items():
                start = time.perf_counter()
                maml.predict(x, y, query, steps=STEPS)
                times[label].append((time.perf_counter() - start) * 1000 / STEPS)
        model.double()
        gap = (
            (
                paths["vmap"].predict(x.double(), y, query.double(), steps=STEPS)
                - paths["loop"].predict(x.double(), y, query.double(), steps=STEPS)
            )
            .abs()
            .max()
            .item()
        )
        model.float()
        medians = {label: statistics.median(t) for label, t in times.items()}
        print(
            f"support {support:3d}: vmap {medians['vmap']:.2f} ms/step, "
            f"loop {medians['loop']:.2f} ms/step ({medians['vmap'] / medians['loop']:.1f}x), "
            f"float64 gap {gap:.1e}"
        )


if __name__ == "__main__":
    main()
