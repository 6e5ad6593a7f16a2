"""Non-meta baselines: fine-tune a (pretrained) network, or train one from scratch, on each
support set.

These answer the question every meta-learning result must face: would ordinary
training have done as well? Both follow the learner protocol of
:mod:`metalearn.algorithms.base`.
"""

from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import nn

from metalearn.tasks.batch import check_task_batch

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}


def fit(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn,
    lr: float,
    steps: int,
    optimizer: str,
) -> nn.Module:
    """Train ``model`` in place for ``steps`` full-batch steps on ``x [S, ...]``, ``y [S, ...]``;
    return it."""
    model.train()
    opt = OPTIMIZERS[optimizer](model.parameters(), lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()
            opt.step()
    return model


def _check(lr: float, steps: int, optimizer: str) -> None:
    if lr <= 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {optimizer!r}")


class FineTune(nn.Module):
    """Transfer learning: pretrain one network on all tasks, then fine-tune a copy per task.

    ``meta_loss`` is the plain loss on every example of the batch (support and
    query alike, no inner loop), so ``meta_train(FineTune(...), ...)`` pretrains
    the network jointly on the task family. ``predict`` fine-tunes a fresh copy of
    the pretrained network on each task's support set and predicts its queries.

    Args:
        model: the network ``[B, ...] -> [B, ...]`` to pretrain and fine-tune.
        loss_fn: ``loss_fn(predictions, targets) -> scalar``.
        lr: fine-tuning learning rate.
        steps: fine-tuning steps per task (0 = use the pretrained network as is).
        optimizer: ``"sgd"`` (default, like MAML's inner loop) or ``"adam"``.
    """

    def __init__(
        self, model: nn.Module, loss_fn: LossFn, lr: float, steps: int, optimizer: str = "sgd"
    ) -> None:
        super().__init__()
        _check(lr, steps, optimizer)
        self.model, self.loss_fn, self.lr, self.steps, self.optimizer = (
            model,
            loss_fn,
            lr,
            steps,
            optimizer,
        )

    def meta_loss(
        self,
        support_x: torch.Tensor,
        support_y: torch.Tensor,
        query_x: torch.Tensor,
        query_y: torch.Tensor,
    ) -> torch.Tensor:
        """Joint-training loss over all ``T * (S + Q)`` examples of the batch."""
        check_task_batch(support_x, support_y, query_x, query_y)
        x = torch.cat([support_x, query_x], dim=1).flatten(0, 1)
        y = torch.cat([support_y, query_y], dim=1).flatten(0, 1)
        return self.loss_fn(self.model(x), y)

    def predict(
        self,
        support_x: torch.Tensor,
        support_y: torch.Tensor,
        query_x: torch.Tensor,
        steps: int | None = None,
    ) -> torch.Tensor:
        """Fine-tune a copy per task on ``support_x [T, S, ...]``; return detached
        ``[T, Q, ...]``."""
        check_task_batch(support_x, support_y, query_x)
        steps = self.steps if steps is None else steps
        predictions = []
        for sx, sy, qx in zip(support_x, support_y, query_x):
            tuned = fit(
                copy.deepcopy(self.model), sx, sy, self.loss_fn, self.lr, steps, self.optimizer
            )
            with torch.no_grad():
                predictions.append(tuned(qx))
        return torch.stack(predictions)


class TrainFromScratch:
    """A freshly initialised network per task, trained on that task's support set only.

    Args:
        make_model: returns a new, randomly initialised network each call.
        loss_fn: ``loss_fn(predictions, targets) -> scalar``.
        lr: learning rate.
        steps: full-batch training steps on the support set.
        optimizer: ``"adam"`` (default) or ``"sgd"``.
    """

    def __init__(
        self,
        make_model: Callable[[], nn.Module],
        loss_fn: LossFn,
        lr: float,
        steps: int,
        optimizer: str = "adam",
    ) -> None:
        _check(lr, steps, optimizer)
        self.make_model, self.loss_fn, self.lr, self.steps, self.optimizer = (
            make_model,
            loss_fn,
            lr,
            steps,
            optimizer,
        )

    def predict(
        self, support_x: torch.Tensor, support_y: torch.Tensor, query_x: torch.Tensor
    ) -> torch.Tensor:
        """Train a new network per task on ``support_x [T, S, ...]``; return detached
        ``[T, Q, ...]``."""
        check_task_batch(support_x, support_y, query_x)
        predictions = []
        for sx, sy, qx in zip(support_x, support_y, query_x):
            model = fit(
                self.make_model().to(sx.device),
                sx,
                sy,
                self.loss_fn,
                self.lr,
                self.steps,
                self.optimizer,
            )
            with torch.no_grad():
                predictions.append(model(qx))
        return torch.stack(predictions)
