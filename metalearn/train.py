"""The meta-training loop every chapter shares."""

from __future__ import annotations

import math
from typing import Callable

import torch

from metalearn.algorithms.base import MetaLearner
from metalearn.progress import Progress
from metalearn.tasks.batch import TaskBatch


def meta_train(
    learner: MetaLearner,
    sample_batch: Callable[[], TaskBatch],
    steps: int,
    optimizer: torch.optim.Optimizer,
    *,
    grad_clip: float | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
    desc: str = "meta-training",
) -> list[float]:
    """Minimise ``learner.meta_loss`` over ``steps`` freshly sampled task batches.

    Args:
        learner: anything with ``meta_loss(support_x, support_y, query_x, query_y)``.
        sample_batch: called once per step; returns a new :class:`TaskBatch`.
        steps: number of meta-updates.
        optimizer: the outer (meta) optimiser over the learner's meta-parameters.
        grad_clip: if given, clip the meta-gradient's total norm to this value.
        device: move each batch there before the step (``None`` keeps it).
        progress: show a live progress bar that ends as a one-line summary
            (steps, smoothed loss, seconds).

    Returns:
        The meta-loss of every step, for plotting a training curve.

    Raises:
        FloatingPointError: the meta-loss became NaN or infinite.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    params = [p for group in optimizer.param_groups for p in group["params"]]
    history: list[float] = []
    with Progress(steps, desc, enabled=progress) as bar:
        for step in range(steps):
            batch = sample_batch()
            if device is not None:
                batch = batch.to(device)
            loss = learner.meta_loss(*batch)
            if not math.isfinite(loss.item()):
                raise FloatingPointError(
                    f"meta-loss is {loss.item()} at step {step}; lower the learning rates"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
            optimizer.step()
            history.append(loss.item())
            bar.update(loss=history[-1])
    return history
