"""Data-parallel meta-training over tasks with ``torch.distributed``, launched by ``torchrun``.

Meta-training parallelises over tasks: the meta-gradient of a meta-batch of ``B`` tasks is
the mean of ``B`` per-task meta-gradients, and each of them needs only its own task. So
``W`` processes (ranks) can each take a share of the meta-batch, compute the meta-gradient
of the mean loss over their share, and average those gradients; every rank then applies the
same update to the same parameters and they stay identical without ever being sent.

Sharding. Every rank calls the same seeded the task source and so draws the same ``B``
tasks; rank ``r`` keeps the contiguous slice ``[r * B // W, (r + 1) * B // W)``
(:func:`shard`). The union of the shards is exactly the single-process meta-batch, which
makes a ``W``-process run equal to a one-process run with the same seed (to float rounding),
and lets a run checkpointed on ``W`` processes resume on any number. Drawing a task is cheap
next to adapting to it (an inner loop of forward and backward passes), so the redundant
draws cost little. Gradients are averaged with weights ``n_r / B`` (:func:`average_gradients`),
so shards of unequal size (``B`` not a multiple of ``W``) still give the global mean.

Why ``all_reduce`` and not ``DistributedDataParallel``. DDP wraps a module and hooks its
parameters' gradients to overlap communication with one ``forward``/``backward`` per step;
a meta-learner's ``meta_loss`` is a whole inner loop (several forward and backward passes
through ``torch.func``, with ``create_graph`` for second-order MAML) on functional copies of
the parameters, which those hooks do not expect. One ``all_reduce`` of all gradients,
flattened into a single buffer after ``loss.backward()``, is simpler, works for every
learner (MAML, ProtoNet, the LSTM meta-learners) and costs one collective per step.

Backend: ``nccl`` when the learner is on CUDA, ``gloo`` on CPU, chosen automatically;
``torchrun`` supplies ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``. Without ``torchrun`` (no ``WORLD_SIZE``) nothing here touches
``torch.distributed`` and every helper answers as a single process (rank 0 of 1).
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from metalearn.checks import check_seed
from metalearn.core import TaskBatch
from metalearn.utils import default_device


def launched() -> bool:
    """True in a process started by ``torchrun`` with more than one process in all."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    """True when this process belongs to a process group of more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank, ``0 .. world_size() - 1`` (0 without ``torchrun``)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    """The number of processes training together (1 without ``torchrun``)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return int(os.environ.get("WORLD_SIZE", "1"))


def local_rank() -> int:
    """This process's rank on its own machine (which GPU it uses)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """True on rank 0, the one process that shows progress, logs and writes files."""
    return rank() == 0


def device(name: str | torch.device | None = None) -> torch.device:
    """:func:`metalearn.default_device`, with CUDA meaning this rank's own GPU
    (``cuda:LOCAL_RANK``) under ``torchrun``."""
    chosen = default_device(name)
    if chosen.type == "cuda" and chosen.index is None and launched():
        return torch.device("cuda", local_rank() % torch.cuda.device_count())
    return chosen


def init(on: torch.device | str | None = None) -> bool:
    """Join the ``torchrun`` job, once; True when training is distributed.

    Args:
        on: the device the learner lives on: CUDA selects the ``nccl`` backend (and makes
            that GPU this process's current one), anything else ``gloo``. ``None`` means
            :func:`device`.

    Does nothing (and returns False) outside ``torchrun`` or with a single process; returns
    True at once when a process group of several ranks already exists.
    """
    if active():
        return True
    if not launched() or not dist.is_available():
        return False
    on = device() if on is None else torch.device(on)
    if on.type == "cuda":
        torch.cuda.set_device(on)
        dist.init_process_group("nccl", device_id=on)
    else:
        dist.init_process_group("gloo")
    return True


def shutdown() -> None:
    """Leave the process group, if this process joined one (call once, at the end)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rank_generator(seed: int, rank_: int | None = None) -> torch.Generator:
    """A ``torch.Generator`` seeded from ``(seed, rank)``: the same on every run, a different
    independent stream on every rank (NumPy's ``SeedSequence`` spawning).

    For randomness that must differ between ranks, e.g. a sampler that draws only this
    rank's tasks. ``meta_train`` does not need it: its ranks slice one common draw.
    """
    seed = check_seed("seed", seed)
    rank_ = rank() if rank_ is None else rank_
    words = np.random.SeedSequence(seed, spawn_key=(rank_,)).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(words[0]) << 32 | int(words[1]))


def shard_range(num_tasks: int, rank_: int | None = None, world: int | None = None) -> range:
    """The tasks of the meta-batch that ``rank_`` trains on: ``[r * B // W, (r + 1) * B // W)``.

    Raises:
        ValueError: fewer tasks than ranks (a rank would have nothing to train on).
    """
    rank_ = rank() if rank_ is None else rank_
    world = world_size() if world is None else world
    if num_tasks < world:
        raise ValueError(
            f"a meta-batch of {num_tasks} tasks cannot be shared by {world} processes; "
            f"use a meta-batch of at least {world} tasks (a multiple of {world} is best)"
        )
    return range(rank_ * num_tasks // world, (rank_ + 1) * num_tasks // world)


def shard(batch: TaskBatch, rank_: int | None = None, world: int | None = None) -> TaskBatch:
    """This rank's contiguous share of ``batch``: ``[T, ...] -> [T_r, ...]`` for every tensor,
    ``T_r = |shard_range(T)|``; the shards of ranks ``0 .. W-1``, concatenated, are ``batch``."""
    part = shard_range(batch.num_tasks, rank_, world)
    return TaskBatch(*(tensor[part.start : part.stop] for tensor in batch))


def check_same_everywhere(batch: TaskBatch, on: torch.device) -> None:
    """Raise ``ValueError`` on every rank unless all ranks drew the same ``batch``.

    Compares a fingerprint (the sum of each tensor, in float64, NaN as 0) with one
    ``all_reduce``.
    """
    sums = torch.stack([t.detach().to(on, torch.float64).sum() for t in batch]).nan_to_num()
    both = torch.cat([sums, -sums])  # max of both = (max, -min)
    dist.all_reduce(both, op=dist.ReduceOp.MAX)
    if not torch.equal(both[:4], -both[4:]):
        raise ValueError(
            "the task source drew different tasks on different processes: under torchrun every "
            "process must seed its task source alike (e.g. metalearn.seed_everything(seed) and "
            "Sinusoid(seed=seed) with the same seed on every rank); meta_train then gives each "
            "process its own slice of the common meta-batch"
        )


def broadcast_state(learner: nn.Module | None, params: Sequence[torch.Tensor]) -> None:
    """Copy rank 0's ``params`` and the learner's parameters and buffers to every rank, so
    all start from the same point."""
    tensors = {id(t): t for t in params}
    if learner is not None:
        tensors.update((id(t), t) for t in [*learner.parameters(), *learner.buffers()])
    with torch.no_grad():
        for tensor in tensors.values():
            dist.broadcast(tensor.data, src=0)


def same_everywhere(value: int) -> bool:
    """True when ``value`` is the same integer on every rank."""
    both = torch.tensor([value, -value], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        both = both.cuda()
    dist.all_reduce(both, op=dist.ReduceOp.MAX)
    return bool(both[0] == -both[1])


def average_gradients(params: Sequence[torch.Tensor], loss: torch.Tensor, num_tasks: int) -> float:
    """Replace each gradient by the task-weighted mean over ranks; return the mean loss.

    Args:
        params: the parameters being trained, after ``loss.backward()`` on every rank.
        loss: this rank's meta-loss, the mean over its ``num_tasks`` tasks (a scalar).
        num_tasks: the tasks in this rank's share (``T_r``).

    With ``B = sum_r T_r``, each gradient becomes ``sum_r T_r g_r / B`` and the returned loss
    ``sum_r T_r L_r / B``: the gradient and loss of the mean over all ``B`` tasks, as one
    process with the whole meta-batch would compute them. A parameter without a gradient on
    a rank counts as zero there; one without a gradient on every rank keeps ``grad = None``.
    One ``all_reduce`` of a single flat buffer (gradients, has-gradient flags, loss, count).
    """
    on = params[0].device
    dtype = params[0].dtype
    for p in params:
        dtype = torch.promote_types(dtype, p.dtype)
    pieces = [
        (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).to(on, dtype)
        * num_tasks
        for p in params
    ]
    flags = torch.tensor([p.grad is not None for p in params], dtype=dtype, device=on)
    count = torch.tensor([num_tasks], dtype=dtype, device=on)
    buffer = torch.cat([*pieces, flags, loss.detach().reshape(1).to(on, dtype) * count, count])
    dist.all_reduce(buffer)
    total = buffer[-1]
    sizes = [p.numel() for p in params]
    gradients = (buffer[: sum(sizes)] / total).split(sizes)
    has_grad = buffer[sum(sizes) : sum(sizes) + len(params)] > 0
    for p, gradient, has in zip(params, gradients, has_grad.tolist()):
        p.grad = gradient.view_as(p).to(p.device, p.dtype) if has else None
    return float(buffer[-2] / total)
