"""The one training loop of the package, on one process or data-parallel under ``torchrun``.

:func:`train_loop` is the loop: draw a batch, compute a loss, check it, step the optimiser, show
progress, checkpoint. Everything that trains in the book goes through it:

* :func:`meta_train` -- a :class:`~metalearn.core.MetaLearner` on tasks of a
  :class:`~metalearn.core.TaskSource` (MAML, ProtoNet, the LSTM meta-learners, MAML-RL);
* :func:`pretrain` -- joint training, the transfer-learning baseline: the plain loss on every
  example of every task, no inner loop (``FineTune.joint_loss``);
* the controller of chapter 6.2 (:func:`metalearn.rl.controller.train_controller`).

``python -m metalearn.train EXPERIMENT`` runs an experiment of :mod:`metalearn.config` by name
(see :mod:`metalearn.recipes`).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Protocol

import torch
import torch.distributed as dist
from torch import nn

from metalearn import checkpoints, distributed
from metalearn.checks import check_finite_gradients, check_float, check_int
from metalearn.core import MetaLearner, TaskBatch, TaskSource
from metalearn.progress import Progress

Callback = Callable[[int, float], None]


class Sampler(Protocol):
    """What :func:`train_loop` draws from: a :class:`~metalearn.core.TaskSource`, or anything whose
    ``sample(num_tasks)`` returns what ``loss_of`` takes (e.g. environments)."""

    def sample(self, num_tasks: int, generator: torch.Generator | None = None) -> Any: ...


class JointTrainable(Protocol):
    """A learner with a joint-training loss on a task batch (``FineTune``)."""

    def joint_loss(
        self,
        support_x: torch.Tensor,
        support_y: torch.Tensor,
        query_x: torch.Tensor,
        query_y: torch.Tensor,
    ) -> torch.Tensor: ...


def meta_train(
    learner: MetaLearner,
    source: TaskSource,
    steps: int,
    optimizer: torch.optim.Optimizer,
    *,
    meta_batch: int,
    **options: Any,
) -> list[float]:
    """Minimise ``learner.meta_loss`` over ``steps`` meta-batches of ``meta_batch`` fresh tasks
    from ``source`` (``source.sample(meta_batch)`` each step). ``options`` are :func:`train_loop`'s.

    Returns:
        The meta-loss of every step.
    """
    options.setdefault("desc", "meta-training")
    return _train_on(learner, "meta_loss", source, steps, optimizer, meta_batch, options)


def pretrain(
    learner: JointTrainable,
    source: TaskSource,
    steps: int,
    optimizer: torch.optim.Optimizer,
    *,
    meta_batch: int,
    **options: Any,
) -> list[float]:
    """Joint training (transfer learning's pretraining): minimise ``learner.joint_loss``, the
    plain loss on every support and query example of ``meta_batch`` tasks per step -- no
    inner loop, so it learns one model for all tasks rather than an initialisation to adapt.
    ``options`` are :func:`train_loop`'s.

    Returns:
        The loss of every step.
    """
    options.setdefault("desc", "pretraining")
    return _train_on(learner, "joint_loss", source, steps, optimizer, meta_batch, options)


def _train_on(
    learner: Any,
    method: str,
    source: TaskSource,
    steps: int,
    optimizer: torch.optim.Optimizer,
    meta_batch: int,
    options: dict[str, Any],
) -> list[float]:
    """:func:`train_loop` with the loss ``learner.<method>(*batch)``."""
    loss = getattr(learner, method, None)
    if not callable(loss):
        raise ValueError(f"learner must have a {method} method, got {type(learner).__name__}")
    return train_loop(
        learner,
        lambda batch: loss(*batch),
        source,
        steps,
        optimizer,
        meta_batch=meta_batch,
        **options,
    )


def train_loop(
    module: Any,
    loss_of: Callable[[Any], torch.Tensor],
    source: Sampler,
    steps: int,
    optimizer: torch.optim.Optimizer,
    *,
    meta_batch: int,
    grad_clip: float | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
    desc: str = "training",
    metric: str = "loss",
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: float = 300.0,
    callback: Callback | None = None,
) -> list[float]:
    """The loop: ``steps`` times, ``batch = source.sample(meta_batch)``, minimise
    ``loss_of(batch)``.

    Args:
        module: what is trained (its ``named_parameters`` name a parameter whose gradient
            turns NaN; an ``nn.Module`` is needed for ``checkpoint``).
        loss_of: ``batch -> scalar loss`` depending on the optimiser's parameters.
        source: anything with ``sample(num_tasks)``; a :class:`~metalearn.core.TaskSource`
            returns a :class:`~metalearn.core.TaskBatch` (other batches, e.g. environments,
            are passed to ``loss_of`` as they are, but cannot be moved or sharded).
        steps: number of updates (an int >= 1).
        optimizer: the optimiser over the trained parameters.
        meta_batch: tasks drawn per step (an int >= 1).
        grad_clip: if given (finite, > 0), clip the gradient's total norm to this value.
        device: move each task batch there before the step (``None`` keeps it).
        progress: show a live progress bar that ends as a one-line summary
            (steps, smoothed loss, seconds).
        desc: what the progress bar calls the run.
        metric: what the progress bar calls the loss.
        checkpoint: a file to save the run to, every ``checkpoint_every`` seconds and after
            the last step; if it exists when training starts, the run resumes from it
            (see below). ``None`` (default) saves nothing.
        checkpoint_every: seconds between checkpoints (``0`` = after every step).
        callback: ``callback(step, loss)`` after every update (logging, a live plot).

    Checkpoints. A run of minutes or hours survives an interruption (a killed kernel, a
    Colab timeout, Ctrl-C) losing at most ``checkpoint_every`` seconds of training: call
    again with the same arguments and it continues where the last checkpoint left off, and
    returns the whole loss history. The checkpoint holds the module's and the optimizer's
    ``state_dict``, the step, the loss history, the random states of Python, NumPy and
    PyTorch (CPU and CUDA) and those of the generators reachable from ``source`` (e.g. a
    :class:`~metalearn.tasks.Sinusoid`'s or an ``EpisodeSampler``'s generator), plus
    ``source.state_dict()`` when it has one; so a resumed run continues with the very tasks
    and numbers an uninterrupted run would have drawn. It is written to a temporary file in
    the same folder, flushed to disk, then renamed over the old one (``os.replace``): an
    interruption while saving leaves the previous checkpoint intact, never a half-written
    one. It is read with ``torch.load(..., weights_only=True)``, which runs no code from the
    file. A finished run's checkpoint stays: calling again loads the trained state and
    returns the history without training (pass a larger ``steps`` to train on); delete the
    file to start afresh.

    Several processes. Launched by ``torchrun`` (``WORLD_SIZE`` > 1), the loop joins the job
    (:mod:`metalearn.distributed`: ``gloo`` on CPU, ``nccl`` when the parameters are on
    CUDA) and trains data-parallel over tasks: every rank draws the same seeded meta-batch
    (a rank that draws other tasks is an error) and keeps its contiguous share of the
    ``meta_batch`` tasks, computes the gradient of its mean loss, and the gradients are
    averaged over ranks with one ``all_reduce`` (weighted by share size), so the run equals
    a one-process run on the whole meta-batch up to float rounding, and every rank returns
    the same history (the mean loss over all tasks). Rank 0's parameters and buffers are
    copied to every rank first. Only rank 0 shows progress and writes the checkpoint; every
    rank resumes from it (it must be on a file system they all see).

    Returns:
        The loss of every step, for plotting a training curve.

    Raises:
        FloatingPointError: the loss became NaN or infinite, or a gradient did (checked
            before every update, with or without clipping: the parameters are left as they
            were after the previous step); the message names the step.
        ValueError: a bad argument (named), a loss that is not a scalar depending on the
            parameters, or a checkpoint that is damaged or belongs to another run; under
            ``torchrun``, a meta-batch with fewer tasks than processes, ranks that drew
            different tasks, or a checkpoint that not every rank sees.
    """
    steps = check_int("steps", steps, minimum=1)
    meta_batch = check_int("meta_batch", meta_batch, minimum=1)
    if not callable(getattr(source, "sample", None)):
        raise ValueError(
            f"source must be a task source with a sample(num_tasks) method, got "
            f"{type(source).__name__}; wrap a fixed batch in metalearn.tasks.TaskPool"
        )
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ValueError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer)}")
    if grad_clip is not None:
        grad_clip = check_float("grad_clip", grad_clip, minimum=0.0, strict=True)
    checkpoint_every = check_float("checkpoint_every", checkpoint_every, minimum=0.0)
    if callback is not None and not callable(callback):
        raise ValueError(f"callback must be callable as callback(step, loss), got {callback!r}")
    _check_optimizer(optimizer)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    names = (
        {id(p): repr(name) for name, p in module.named_parameters()}
        if isinstance(module, nn.Module)
        else {}
    )
    path = None if checkpoint is None else Path(checkpoint)
    generators: dict[str, Any] = {}
    history: list[float] = []
    start = 0
    if path is not None:
        if not isinstance(module, nn.Module):
            raise ValueError("checkpoint needs a learner that is an nn.Module (a state_dict)")
        if path.is_dir():
            raise ValueError(f"checkpoint must be a file path, got the folder {str(path)!r}")
        generators = checkpoints.find_generators(source)
        if path.exists():
            start, history = checkpoints.resume(path, module, optimizer, source, generators, steps)
    parallel = distributed.init(params[0].device)
    if parallel:
        if not distributed.same_everywhere(start):
            raise ValueError(
                f"checkpoint {str(path)!r} is not the same on every process (rank "
                f"{distributed.rank()} resumes at step {start}): put it on a file system "
                "that every process of the torchrun job sees"
            )
        distributed.broadcast_state(module if isinstance(module, nn.Module) else None, params)
    is_main = distributed.is_main()
    last_save = time.monotonic()
    title = f"{desc} (resumed at step {start})" if start else desc
    with Progress(steps, title, enabled=progress and is_main) as bar:
        if start:
            bar.update(start, **{metric: history[-1]})
        for step in range(start, steps):
            batch = source.sample(meta_batch)
            if isinstance(batch, TaskBatch):
                if parallel:
                    if step == start:
                        distributed.check_same_everywhere(batch, params[0].device)
                    batch = distributed.shard(batch)
                if device is not None:
                    batch = batch.to(device)
            elif parallel:
                raise ValueError(
                    f"source.sample must return a TaskBatch under torchrun, got "
                    f"{type(batch).__name__} at step {step}"
                )
            loss = loss_of(batch)
            if parallel:  # no rank may stop before the all_reduce: check the mean loss after it
                _check_loss(loss, step, finite=False)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                value = _check_finite_loss(
                    distributed.average_gradients(params, loss, batch.num_tasks), step
                )
            else:
                value = _check_loss(loss, step)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
            check_finite_gradients(params, f"at step {step}", names)
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
            optimizer.step()
            history.append(value)
            bar.update(**{metric: value})
            if callback is not None:
                callback(step, value)
            done = step + 1 == steps
            due = done or time.monotonic() - last_save >= checkpoint_every
            save = path is not None and is_main and due
            if done or save:  # a NaN parameter would show in the next step's loss, but a
                _check_finite_parameters(params, step, names)  # last or saved one must not
            if path is not None and save:
                checkpoints.save(
                    path, module, optimizer, step + 1, steps, history, source, generators
                )
                last_save = time.monotonic()
    if parallel and path is not None:
        dist.barrier()  # rank 0's last checkpoint is written before any rank goes on
    return history


def _check_optimizer(optimizer: torch.optim.Optimizer) -> None:
    """Every float setting of every parameter group (lr, betas, eps, ...) must be finite."""
    for index, group in enumerate(optimizer.param_groups):
        for key, value in group.items():
            values = value if isinstance(value, (tuple, list)) and key != "params" else [value]
            for item in values:
                if isinstance(item, float) and not math.isfinite(item):
                    raise ValueError(
                        f"optimizer setting {key}={value!r} (parameter group {index}) "
                        "must be finite"
                    )


def _check_loss(loss: Any, step: int, finite: bool = True) -> float:
    """The loss as a float; it must be a scalar tensor that depends on the parameters, and
    finite unless ``finite`` is False (then the value returned is not read: NaN)."""
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise ValueError(
            f"the loss must be a scalar tensor, got "
            f"{list(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__} "
            f"at step {step}"
        )
    value = _check_finite_loss(loss.item(), step) if finite else math.nan
    if not loss.requires_grad:
        raise ValueError(
            f"the loss at step {step} does not depend on any parameter (requires_grad is "
            "False): the learner has nothing to train (a model without parameters?), or "
            "meta_loss ran under torch.no_grad()"
        )
    return value


def _check_finite_loss(value: float, step: int) -> float:
    if not math.isfinite(value):
        raise FloatingPointError(f"the loss is {value} at step {step}; lower the learning rates")
    return value


def _check_finite_parameters(params: list[torch.Tensor], step: int, names: dict) -> None:
    finite = torch.stack([torch.isfinite(p.detach()).all().to(params[0].device) for p in params])
    if not bool(finite.all()):
        first = params[int((~finite).nonzero()[0, 0])]
        label = names.get(id(first), f"a parameter of shape {tuple(first.shape)}")
        raise FloatingPointError(
            f"{label} became NaN or infinite in the update of step {step} (its gradient was "
            "finite): lower the learning rate"
        )


if __name__ == "__main__":  # python -m metalearn.train EXPERIMENT ...: see metalearn.recipes
    from metalearn.recipes import main

    raise SystemExit(main())
