"""Non-meta baselines: fine-tune a (pretrained) network, or train one from scratch, on each
support set.

These answer the question every meta-learning result must face: would ordinary
training have done as well? Both follow the learner protocol of :mod:`metalearn.core`.
"""

from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import nn

from metalearn.checks import call_model, check_float, check_int, check_model_batch, check_targets
from metalearn.core import check_task_batch

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
    *,
    names: tuple[str, str] = ("x", "y"),
) -> nn.Module:
    """Train ``model`` in place for ``steps`` full-batch steps on ``x [S, ...]``, ``y [S, ...]``;
    return it (left in train mode). ``names`` name ``x`` and ``y`` in error messages.

    Raises:
        ValueError: a bad setting (named); ``x`` and ``y`` disagree on ``S``; ``y`` does not
            fit the model's outputs without broadcasting, or holds labels out of range
            (see :func:`~metalearn.checks.check_targets`); a model without parameters.

    A loss that turns NaN is not stopped here: the predictions turn NaN, and so do the
    scores of :func:`metalearn.evaluate`.
    """
    _check(lr, steps, optimizer)
    x_name, y_name = names
    for name, tensor in ((x_name, x), (y_name, y)):
        if not isinstance(tensor, torch.Tensor) or tensor.dim() < 1 or len(tensor) == 0:
            raise ValueError(f"{name} must be a non-empty tensor [S, ...], got {tensor!r:.80}")
    if len(x) != len(y):
        raise ValueError(f"{y_name} has {len(y)} examples but {x_name} has {len(x)}")
    model.train()
    if steps == 0:
        return model
    parameters = list(model.parameters())
    if not parameters:
        raise ValueError("model has no parameters to train")
    opt = OPTIMIZERS[optimizer](parameters, lr=lr)
    with torch.enable_grad():
        for step in range(steps):
            opt.zero_grad(set_to_none=True)
            output = call_model(model, x, x_name) if step == 0 else model(x)
            if step == 0 and output.dim() >= 1 and len(output) == len(x):
                check_targets(output.shape[1:], y, y_name, batch_dims=1)
            loss_fn(output, y).backward()
            opt.step()
    return model


def _check(lr: float, steps: int, optimizer: str) -> None:
    check_float("lr", lr, minimum=0.0, strict=True)
    check_int("steps", steps, minimum=0)
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {optimizer!r}")


class FineTune(nn.Module):
    """Transfer learning: pretrain one network on all tasks, then fine-tune a copy per task.

    ``joint_loss`` is the plain loss on every example of a task batch (support and
    query alike, no inner loop): ``metalearn.pretrain(FineTune(...), source, ...)`` pretrains
    the network jointly on the task family -- transfer learning, not meta-learning.
    ``predict`` fine-tunes a fresh copy of the pretrained network on each task's support set
    and predicts its queries.

    Args:
        model: the network ``[B, ...] -> [B, ...]`` to pretrain and fine-tune.
        loss_fn: ``loss_fn(predictions, targets) -> scalar``.
        lr: fine-tuning learning rate.
        steps: fine-tuning steps per task (0 = use the pretrained network as is).
        optimizer: ``"sgd"`` (default, like MAML's inner loop) or ``"adam"``.

    Modes: the copies are fine-tuned in train mode, then predict in the mode of ``model``
    (``learner.eval()`` turns dropout off for the predictions; the default is train mode).
    """

    def __init__(
        self, model: nn.Module, loss_fn: LossFn, lr: float, steps: int, optimizer: str = "sgd"
    ) -> None:
        super().__init__()
        _check(lr, steps, optimizer)
        if not isinstance(model, nn.Module) or next(model.parameters(), None) is None:
            raise ValueError("model must be an nn.Module with parameters to pretrain and tune")
        if not callable(loss_fn):
            raise ValueError("loss_fn must be callable as loss_fn(predictions, targets)")
        self.model, self.loss_fn, self.lr, self.steps, self.optimizer = (
            model,
            loss_fn,
            lr,
            steps,
            optimizer,
        )

    def joint_loss(
        self,
        support_x: torch.Tensor,
        support_y: torch.Tensor,
        query_x: torch.Tensor,
        query_y: torch.Tensor,
    ) -> torch.Tensor:
        """Joint-training loss over all ``T * (S + Q)`` examples of the batch (a scalar).

        Shapes: ``support_x [T, S, ...]``, ``support_y [T, S, ...]``, ``query_x [T, Q, ...]``,
        ``query_y [T, Q, ...]``; targets must fit the model's outputs without broadcasting.
        """
        check_model_batch(self.model, support_x, support_y, query_x, query_y, cache=self._cache)
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
        """Fine-tune a copy per task on ``support_x [T, S, ...]``, ``support_y [T, S, ...]``;
        return detached predictions ``[T, Q, ...]`` for ``query_x [T, Q, ...]``, made in the
        mode of ``self.model`` (after ``eval()``, without dropout)."""
        check_model_batch(self.model, support_x, support_y, query_x, cache=self._cache)
        steps = self.steps if steps is None else check_int("steps", steps, minimum=0)
        mode = self.model.training
        predictions = []
        for sx, sy, qx in zip(support_x, support_y, query_x):
            tuned = fit(
                copy.deepcopy(self.model),
                sx,
                sy,
                self.loss_fn,
                self.lr,
                steps,
                self.optimizer,
                names=("support_x", "support_y"),
            )
            tuned.train(mode)
            with torch.no_grad():
                predictions.append(tuned(qx))
        return torch.stack(predictions)

    @property
    def _cache(self) -> dict:
        """Output shapes seen by :func:`check_model_batch`, per input shape."""
        return self.__dict__.setdefault("_output_shapes", {})


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
        if not callable(make_model):
            raise ValueError("make_model must be callable, returning a new network")
        if not callable(loss_fn):
            raise ValueError("loss_fn must be callable as loss_fn(predictions, targets)")
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
        """Train a new network per task on ``support_x [T, S, ...]``, ``support_y [T, S, ...]``;
        return detached predictions ``[T, Q, ...]`` for ``query_x [T, Q, ...]``."""
        check_task_batch(support_x, support_y, query_x)
        predictions = []
        for sx, sy, qx in zip(support_x, support_y, query_x):
            model = self.make_model()
            if not isinstance(model, nn.Module):
                raise ValueError(f"make_model() must return an nn.Module, got {type(model)}")
            model = fit(
                model.to(sx.device),
                sx,
                sy,
                self.loss_fn,
                self.lr,
                self.steps,
                self.optimizer,
                names=("support_x", "support_y"),
            )
            with torch.no_grad():
                predictions.append(call_model(model, qx, "query_x"))
        return torch.stack(predictions)
