"""The one currency of the book: a batch of few-shot tasks."""

from __future__ import annotations

from typing import NamedTuple

import torch


class TaskBatch(NamedTuple):
    """Four tensors with a leading task dimension ``T``.

    Attributes:
        support_x: ``[T, S, *x_shape]`` inputs the learner may adapt on.
        support_y: ``[T, S, *y_shape]`` their targets (class indices or values).
        query_x: ``[T, Q, *x_shape]`` inputs the adapted learner is scored on.
        query_y: ``[T, Q, *y_shape]`` their targets.

    It unpacks like a tuple: ``support_x, support_y, query_x, query_y = batch``.
    """

    support_x: torch.Tensor
    support_y: torch.Tensor
    query_x: torch.Tensor
    query_y: torch.Tensor

    @property
    def num_tasks(self) -> int:
        return self.support_x.shape[0]

    def to(self, device: torch.device | str) -> "TaskBatch":
        """The same batch with every tensor on ``device``."""
        return TaskBatch(*(t.to(device) for t in self))

    def task(self, index: int) -> "TaskBatch":
        """Task ``index`` alone, keeping a task dimension of size 1."""
        return TaskBatch(*(t[index : index + 1] for t in self))

    def validate(self) -> "TaskBatch":
        """Check shapes agree; raise ``ValueError`` naming the offending tensor."""
        check_task_batch(*self)
        return self


def check_task_batch(
    support_x: torch.Tensor,
    support_y: torch.Tensor,
    query_x: torch.Tensor,
    query_y: torch.Tensor | None = None,
) -> None:
    """Raise ``ValueError`` unless the tensors form a valid task batch.

    ``query_y`` may be ``None`` (at prediction time, when the query targets are unknown).

    Checks: each has a task dimension; all four agree on ``T``; each input agrees
    with its targets on the number of examples; support and query inputs have the
    same per-example shape; the support set is not empty.
    """
    tensors = dict(support_x=support_x, support_y=support_y, query_x=query_x)
    if query_y is not None:
        tensors["query_y"] = query_y
    for name, tensor in tensors.items():
        if not isinstance(tensor, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
        if tensor.dim() < 2:
            raise ValueError(
                f"{name} must have shape [T, examples, ...] with a leading task dimension, "
                f"got shape {tuple(tensor.shape)}"
            )
    num_tasks = support_x.shape[0]
    for name, tensor in tensors.items():
        if tensor.shape[0] != num_tasks:
            raise ValueError(
                f"{name} has {tensor.shape[0]} tasks in its leading dimension but support_x has "
                f"{num_tasks}; all four tensors must share the task dimension T"
            )
    if support_x.shape[1] == 0:
        raise ValueError("support_x is empty: each task needs at least one support example")
    if support_y.shape[1] != support_x.shape[1]:
        raise ValueError(
            f"support_y has {support_y.shape[1]} examples per task but "
            f"support_x has {support_x.shape[1]}"
        )
    if query_y is not None and query_y.shape[1] != query_x.shape[1]:
        raise ValueError(
            f"query_y has {query_y.shape[1]} examples per task but query_x has {query_x.shape[1]}"
        )
    if support_x.shape[2:] != query_x.shape[2:]:
        raise ValueError(
            f"query_x examples have shape {tuple(query_x.shape[2:])} but support_x examples have "
            f"{tuple(support_x.shape[2:])}; support and query must share the feature shape"
        )
