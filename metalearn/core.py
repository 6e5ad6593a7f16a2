"""The core of ``metalearn``: what a task batch is, and what learners and task sources promise.

Read this module first. Everything else in the package either makes :class:`TaskBatch`
objects (a :class:`TaskSource`: sinusoids, image episodes, text tasks, assays), consumes
them (a :class:`FewShotLearner` or :class:`MetaLearner`: MAML, prototypical networks, the
LSTM meta-learners, the baselines), or runs the two together (``meta_train``, ``evaluate``).

One name per idea, in the code, the configuration (:mod:`metalearn.config`) and the book:

==================  ==========================================================================
name                meaning
==================  ==========================================================================
``n_way``           classes per task (N)
``k_shot``          support examples per class (per task, in regression) (K)
``k_query``         query examples per class (per task, in regression)
``support_size``    examples in a support set when classes are not balanced (FS-Mol)
``query_size``      examples in a query set when classes are not balanced (FS-Mol)
``num_tasks``       tasks drawn by one ``source.sample(num_tasks)`` call (T)
``meta_batch``      tasks per meta-update
``meta_steps``      meta-updates (outer steps)
``outer_lr``        learning rate of the meta-optimiser (the outer loop, beta)
``inner_lr``        step size of the adaptation (the inner loop, alpha)
``inner_steps``     adaptation steps during meta-training
``eval_steps``      adaptation steps at evaluation, when they differ from ``inner_steps``
``eval_tasks``      tasks a learner is scored on
``first_order``     drop the second-order terms of the meta-gradient (FOMAML)
``steps``, ``lr``   plain training: fine-tuning, training from scratch, pretraining
``seed``            the seed of a source's or a run's own random generator
==================  ==========================================================================

Tensors of a task batch: ``support_x [T, S, *x_shape]``, ``support_y [T, S, *y_shape]``,
``query_x [T, Q, *x_shape]``, ``query_y [T, Q, *y_shape]``, with ``S = n_way * k_shot`` and
``Q = n_way * k_query`` for classification episodes.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol, runtime_checkable

import torch


class TaskBatch(NamedTuple):
    """Four tensors with a leading task dimension ``T``; the one currency of the package.

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
        """Task ``index`` alone, keeping a task dimension of size 1: ``[1, S, ...]`` etc.

        Python's conventions: ``-1`` is the last task.

        Raises:
            TypeError: ``index`` is not an int (a bool or float is refused too).
            IndexError: ``index`` is outside ``-T .. T - 1``.
        """
        from metalearn.checks import normalise_index

        index = normalise_index(index, self.num_tasks)
        return TaskBatch(*(t[index : index + 1] for t in self))

    def select(self, indices: torch.Tensor) -> "TaskBatch":
        """The tasks at ``indices [T']`` (int64), in that order: ``[T', S, ...]`` etc."""
        return TaskBatch(*(t[indices.to(t.device)] for t in self))

    def validate(self) -> "TaskBatch":
        """Check shapes agree; raise ``ValueError`` naming the offending tensor."""
        check_task_batch(*self)
        return self


@runtime_checkable
class TaskSource(Protocol):
    """Anything that draws few-shot tasks: ``source.sample(num_tasks)`` -> a :class:`TaskBatch`.

    Sources own a seeded ``torch.Generator`` (their ``seed`` argument), so the same seed
    replays the same tasks; ``generator=`` draws from another one instead (a fixed test set,
    say, independent of how many tasks were drawn before). Sizes (``n_way``, ``k_shot``,
    ``k_query``) are set when the source is made.
    """

    def sample(self, num_tasks: int, generator: torch.Generator | None = None) -> TaskBatch:
        """``num_tasks`` new tasks as one :class:`TaskBatch`."""
        ...


@runtime_checkable
class FewShotLearner(Protocol):
    """Anything that adapts on a support set and predicts for a query set.

    Meta-learners also offer ``meta_loss`` (:class:`MetaLearner`); baselines need only
    ``predict``.
    """

    def predict(
        self, support_x: torch.Tensor, support_y: torch.Tensor, query_x: torch.Tensor
    ) -> torch.Tensor:
        """``[T, S, ...]``, ``[T, S, ...]``, ``[T, Q, ...]`` -> predictions ``[T, Q, ...]``."""
        ...


@runtime_checkable
class MetaLearner(FewShotLearner, Protocol):
    """A few-shot learner with a differentiable meta-training objective."""

    def meta_loss(
        self,
        support_x: torch.Tensor,
        support_y: torch.Tensor,
        query_x: torch.Tensor,
        query_y: torch.Tensor,
    ) -> torch.Tensor:
        """Mean over tasks of the query loss after adapting on the support set (a scalar)."""
        ...


def check_task_batch(
    support_x: torch.Tensor,
    support_y: torch.Tensor,
    query_x: torch.Tensor,
    query_y: torch.Tensor | None = None,
    *,
    num_classes: int | None = None,
    class_labels: bool = False,
    same_example_shape: bool = True,
) -> None:
    """Raise ``ValueError`` unless the tensors form a valid task batch; the one check every
    learner, evaluator and trainer runs.

    Shapes: ``support_x [T, S, *x_shape]``, ``support_y [T, S, *y_shape]``,
    ``query_x [T, Q, *x_shape]``, ``query_y [T, Q, *y_shape]`` with ``T, S, Q >= 1``.
    ``query_y`` may be ``None`` (at prediction time, when the query targets are unknown).

    Checks: each has a task dimension; all four agree on ``T`` (at least one task); each
    input agrees with its targets on the number of examples; support and query inputs have
    the same per-example shape (unless ``same_example_shape`` is False: sequences of other
    lengths); neither set is empty; all are on one device. With ``num_classes`` (or
    ``class_labels``), the targets must be integer class indices ``[T, S]`` / ``[T, Q]`` in
    ``0 .. num_classes - 1`` (``>= 0`` without ``num_classes``).
    The message names the offending tensor.
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
    if num_tasks == 0:
        raise ValueError("support_x has no tasks (T = 0): a task batch needs at least one task")
    for name, tensor in tensors.items():
        if tensor.shape[0] != num_tasks:
            raise ValueError(
                f"{name} has {tensor.shape[0]} tasks in its leading dimension but support_x has "
                f"{num_tasks}; all four tensors must share the task dimension T"
            )
    if support_x.shape[1] == 0:
        raise ValueError("support_x is empty: each task needs at least one support example")
    if query_x.shape[1] == 0:
        raise ValueError(
            "query_x is empty (Q = 0): each task needs at least one query example to be "
            "predicted or scored"
        )
    if support_y.shape[1] != support_x.shape[1]:
        raise ValueError(
            f"support_y has {support_y.shape[1]} examples per task but "
            f"support_x has {support_x.shape[1]}"
        )
    if query_y is not None and query_y.shape[1] != query_x.shape[1]:
        raise ValueError(
            f"query_y has {query_y.shape[1]} examples per task but query_x has {query_x.shape[1]}"
        )
    if same_example_shape and support_x.shape[2:] != query_x.shape[2:]:
        raise ValueError(
            f"query_x examples have shape {tuple(query_x.shape[2:])} but support_x examples have "
            f"{tuple(support_x.shape[2:])}; support and query must share the feature shape"
        )
    for name, tensor in tensors.items():
        if tensor.device != support_x.device:
            raise ValueError(
                f"{name} is on {tensor.device} but support_x is on {support_x.device}; "
                "all four tensors must be on one device (use batch.to(device))"
            )
    if num_classes is not None or class_labels:
        from metalearn.checks import check_labels

        check_labels(support_y, "support_y", num_classes, shape=support_x.shape[:2])
        if query_y is not None:
            check_labels(query_y, "query_y", num_classes, shape=query_x.shape[:2])
