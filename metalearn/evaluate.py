"""Scoring few-shot learners on the same task batches, with 95% confidence intervals."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable

import torch

from metalearn.algorithms.base import FewShotLearner
from metalearn.tasks.batch import TaskBatch

Metric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Summary:
    """Mean of a per-task score with the half-width of its 95% confidence interval.

    ``ci95 = 1.96 * std / sqrt(n)`` (normal approximation over ``n`` tasks, the
    few-shot literature's convention); ``per_task`` keeps every score, shape ``[n]``.
    """

    mean: float
    ci95: float
    per_task: torch.Tensor

    def __str__(self) -> str:
        return f"{self.mean:.3f} ± {self.ci95:.3f}"


def summarize(per_task: torch.Tensor) -> Summary:
    """Mean and 95% confidence half-width of ``per_task`` (shape ``[n]``, ``n >= 1``)."""
    values = per_task.detach().flatten().double().cpu()
    if values.numel() == 0:
        raise ValueError("per_task is empty: need at least one task to summarise")
    spread = values.std(unbiased=True).item() if values.numel() > 1 else float("nan")
    return Summary(values.mean().item(), 1.96 * spread / math.sqrt(values.numel()), values)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-task accuracy: ``logits [T, Q, C]``, ``labels [T, Q]`` -> ``[T]``."""
    return (logits.argmax(dim=-1) == labels).float().mean(dim=-1)


def mse(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-task mean squared error: ``[T, Q, ...]`` twice -> ``[T]``."""
    return (predictions - targets).pow(2).flatten(start_dim=1).mean(dim=1)


def evaluate(
    learner: FewShotLearner, task_batches: Iterable[TaskBatch], metric: Metric = accuracy
) -> Summary:
    """Adapt ``learner`` on each task's support set and score its query predictions.

    Every learner scored on the same ``task_batches`` sees the very same episodes,
    so a comparison table is a loop over learners.
    """
    scores = []
    for batch in task_batches:
        predictions = learner.predict(batch.support_x, batch.support_y, batch.query_x)
        scores.append(metric(predictions.detach(), batch.query_y).cpu())
    if not scores:
        raise ValueError("task_batches is empty: nothing to evaluate")
    return summarize(torch.cat(scores))
