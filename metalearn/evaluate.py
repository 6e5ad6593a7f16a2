"""Scoring few-shot learners on the same task batches, with 95% confidence intervals."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

import torch

from metalearn.checks import check_labels
from metalearn.core import FewShotLearner, TaskBatch, check_task_batch

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


def paired(first: Summary, second: Summary) -> Summary:
    """``first - second`` task by task, with its 95% interval: the comparison of two learners
    scored on the very same tasks (in the same order), which is far tighter than comparing
    their two intervals, because the tasks' difficulty cancels.

    Raises:
        ValueError: the two were not scored on the same number of tasks.
    """
    if first.per_task.shape != second.per_task.shape:
        raise ValueError(
            f"first and second must score the same tasks, got {first.per_task.numel()} and "
            f"{second.per_task.numel()} scores"
        )
    return summarize(first.per_task - second.per_task)


def summarize(per_task: torch.Tensor) -> Summary:
    """Mean and 95% confidence half-width of ``per_task`` (shape ``[n]``, ``n >= 1``).

    A NaN score (a task whose predictions were NaN) makes the mean and interval NaN.

    Raises:
        ValueError: ``per_task`` is not one-dimensional (e.g. a per-example ``[T, Q]`` score,
            whose interval would treat examples as tasks), or is empty.
    """
    values = torch.as_tensor(per_task).detach()
    if values.dim() != 1:
        raise ValueError(
            f"per_task must have shape [n], one score per task, got {list(values.shape)}"
        )
    values = values.double().cpu()
    if values.numel() == 0:
        raise ValueError("per_task is empty: need at least one task to summarise")
    spread = values.std(unbiased=True).item() if values.numel() > 1 else float("nan")
    return Summary(values.mean().item(), 1.96 * spread / math.sqrt(values.numel()), values)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-task accuracy: ``logits [T, Q, C]``, ``labels [T, Q]`` in ``0..C-1`` -> ``[T]``.

    With ``C = 1`` the single logit is binary (class 1 when ``> 0``; labels 0 or 1). A query
    whose logits hold a NaN counts as NaN, so its task scores NaN (never "correct").

    Raises:
        ValueError: naming ``logits`` or ``labels`` when the shapes differ from the above
            (nothing is broadcast), the labels are not integers, or are out of range.
    """
    if not isinstance(logits, torch.Tensor) or logits.dim() != 3:
        raise ValueError(f"logits must have shape [T, Q, C], got {_shape(logits)}")
    if not logits.is_floating_point():
        raise ValueError(f"logits must be floating point, got {logits.dtype}")
    classes = logits.shape[-1]
    check_labels(labels, "labels", max(classes, 2), shape=logits.shape[:2])
    predicted = (logits[..., 0] > 0).long() if classes == 1 else logits.argmax(dim=-1)
    correct = (predicted == labels).to(logits.dtype)
    correct = correct.masked_fill(logits.isnan().any(dim=-1), float("nan"))
    return correct.mean(dim=-1)


def mse(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-task mean squared error: ``predictions [T, Q, ...]``, ``targets`` of the very same
    shape -> ``[T]``. NaN predictions give NaN.

    Raises:
        ValueError: naming ``predictions`` or ``targets`` when the shapes differ (``[T, Q, 1]``
            against ``[T, Q]`` is refused, not broadcast) or lack the ``[T, Q]`` dimensions.
    """
    if not isinstance(predictions, torch.Tensor) or predictions.dim() < 2:
        raise ValueError(f"predictions must have shape [T, Q, ...], got {_shape(predictions)}")
    if not isinstance(targets, torch.Tensor) or targets.shape != predictions.shape:
        raise ValueError(
            f"targets must have the shape of predictions, {list(predictions.shape)}, "
            f"got {_shape(targets)}"
        )
    if not predictions.is_floating_point():
        raise ValueError(f"predictions must be floating point, got {predictions.dtype}")
    return (predictions - targets).pow(2).flatten(start_dim=1).mean(dim=1)


def _shape(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return str(list(value.shape))
    return type(value).__name__


def evaluate(
    learner: FewShotLearner, task_batches: Iterable[TaskBatch], metric: Metric = accuracy
) -> Summary:
    """Adapt ``learner`` on each task's support set and score its query predictions.

    Every learner scored on the same ``task_batches`` sees the very same episodes,
    so a comparison table is a loop over learners.

    Args:
        learner: ``predict(support_x, support_y, query_x) -> [T, Q, ...]``.
        task_batches: :class:`TaskBatch` objects (a list, even for one batch).
        metric: ``metric(predictions [T, Q, ...], query_y [T, Q, ...]) -> [T]``, one score per
            task (:func:`accuracy`, :func:`mse`).

    Returns:
        The mean over all tasks with its 95% interval; NaN if a prediction was NaN.

    Raises:
        ValueError: ``task_batches`` is empty or is a single batch, a batch is malformed, the
            predictions are not ``[T, Q, ...]``, or ``metric`` does not return ``[T]`` (a
            per-example ``[T, Q]`` score would count examples as tasks).
    """
    if isinstance(task_batches, TaskBatch):
        raise ValueError("task_batches must be a list of TaskBatch: evaluate(learner, [batch])")
    scores = []
    for index, batch in enumerate(task_batches):
        if not isinstance(batch, TaskBatch):
            raise ValueError(
                f"task_batches[{index}] must be a TaskBatch, got {type(batch).__name__}"
            )
        try:
            check_task_batch(*batch)
        except ValueError as error:
            raise ValueError(f"task_batches[{index}]: {error}") from error
        num_tasks, num_queries = batch.query_x.shape[:2]
        predictions = learner.predict(batch.support_x, batch.support_y, batch.query_x)
        if (
            not isinstance(predictions, torch.Tensor)
            or predictions.shape[:2] != batch.query_x.shape[:2]
        ):
            raise ValueError(
                f"the learner's predictions for task_batches[{index}] must have shape "
                f"[T, Q, ...] = [{num_tasks}, {num_queries}, ...], got {_shape(predictions)}"
            )
        score = metric(predictions.detach().to(batch.query_y.device), batch.query_y)
        if not isinstance(score, torch.Tensor) or tuple(score.shape) != (num_tasks,):
            raise ValueError(
                f"metric must return one score per task, shape [T] = [{num_tasks}], got "
                f"{_shape(score)} for task_batches[{index}]; average a per-example score "
                "over the queries first"
            )
        scores.append(score.detach().cpu())
    if not scores:
        raise ValueError("task_batches is empty: nothing to evaluate")
    return summarize(torch.cat(scores))


def compare(
    learners: Mapping[str, FewShotLearner],
    task_batches: Sequence[TaskBatch],
    metric: Metric = accuracy,
) -> dict[str, Summary]:
    """:func:`evaluate` every learner on the very same ``task_batches``: ``{name: Summary}``,
    ready for :func:`paired` differences."""
    if not learners:
        raise ValueError("learners is empty: nothing to compare")
    return {name: evaluate(learner, task_batches, metric) for name, learner in learners.items()}
