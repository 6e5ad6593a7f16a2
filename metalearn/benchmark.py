"""MAML's speed on the papers' workloads: the workloads, a plain reference loop, and a timer.

``benchmarks/maml_throughput.py`` times every path in fresh processes with interleaved repeats;
chapter 7 runs a short version in the notebook. A *path* is how a meta-batch of tasks goes
through the network:

* ``"plain"``: a Python loop over tasks with ``functional_call`` and ``torch.autograd.grad``
  (``create_graph=True`` for second order) -- what learn2learn and higher do, written here as an
  independent reference for the gradients too;
* ``"loop"``: :class:`~metalearn.MAML` with ``batched=False``;
* ``"vmap"``: :class:`~metalearn.MAML` with ``batched=True`` (tasks batched by ``torch.func.vmap``);
* ``"default"``: :class:`~metalearn.MAML` as it chooses (:meth:`~metalearn.MAML.batches_tasks`).

One meta-iteration is the meta-loss, its backward pass and an Adam step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from metalearn.algorithms.maml import MAML
from metalearn.core import TaskBatch
from metalearn.losses import shot_scaled_cross_entropy
from metalearn.models.conv4 import Conv4
from metalearn.models.mlp import MLP

PATHS = ("plain", "loop", "vmap", "default")


@dataclass(frozen=True)
class Workload:
    """A meta-batch of random tasks of one shape, and the network MAML trains on them.

    ``network`` is ``"strided"`` (the MAML paper's Omniglot Conv4: 64 filters, stride-2
    convolutions, batch norm), ``"maxpool"`` (its max-pool variant) or ``"mlp"`` (1-40-40-1).
    For images, ``n_way`` classes with one support and ``k_query`` query images each (28x28);
    for the MLP, ``k_shot`` support and as many query points.
    """

    description: str
    network: str
    meta_batch: int
    inner_steps: int
    inner_lr: float
    n_way: int = 1
    k_query: int = 1
    k_shot: int = 1

    def build(
        self, dtype: torch.dtype = torch.float32, meta_batch: int | None = None, seed: int = 0
    ) -> tuple[nn.Module, Callable[[Tensor, Tensor], Tensor], TaskBatch]:
        """The network (seeded, without touching the global random state), its loss and a
        meta-batch of ``meta_batch`` random tasks."""
        g = torch.Generator().manual_seed(seed)
        tasks = meta_batch or self.meta_batch
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            network: nn.Module = (
                MLP(1, [40, 40], 1)
                if self.network == "mlp"
                else Conv4(1, self.n_way, 64, max_pool=self.network == "maxpool")
            )
        network = network.to(dtype)
        if self.network == "mlp":
            points = torch.rand(tasks, 2 * self.k_shot, 1, generator=g, dtype=dtype) * 10 - 5
            targets = torch.sin(points)
            batch = TaskBatch(
                points[:, : self.k_shot],
                targets[:, : self.k_shot],
                points[:, self.k_shot :],
                targets[:, self.k_shot :],
            )
            return network, F.mse_loss, batch
        shape = (tasks, self.n_way, 1, 28, 28)
        query_shape = (tasks, self.n_way * self.k_query, 1, 28, 28)
        batch = TaskBatch(
            torch.rand(shape, generator=g, dtype=dtype).round(),
            torch.arange(self.n_way).repeat(tasks, 1),
            torch.rand(query_shape, generator=g, dtype=dtype).round(),
            torch.arange(self.n_way).repeat(tasks, self.k_query),
        )
        return network, shot_scaled_cross_entropy, batch


WORKLOADS = {
    "omniglot-5way": Workload(
        "MAML paper, Omniglot 5-way 1-shot: strided Conv4, 1 query/class, meta-batch 32, 1 step",
        "strided",
        meta_batch=32,
        inner_steps=1,
        inner_lr=0.4,
        n_way=5,
    ),
    "omniglot-20way": Workload(
        "MAML paper, Omniglot 20-way 1-shot: strided Conv4, meta-batch 16, 5 steps",
        "strided",
        meta_batch=16,
        inner_steps=5,
        inner_lr=0.1,
        n_way=20,
    ),
    "sinusoid": Workload(
        "MAML paper, sinusoid: MLP 1-40-40-1, K = 10, meta-batch 25, 1 step",
        "mlp",
        meta_batch=25,
        inner_steps=1,
        inner_lr=0.01,
        k_shot=10,
    ),
    "maxpool-q15": Workload(
        "max-pool Conv4, 5-way 1-shot, 15 queries/class, meta-batch 16, 1 step",
        "maxpool",
        meta_batch=16,
        inner_steps=1,
        inner_lr=0.4,
        n_way=5,
        k_query=15,
    ),
}


def plain_meta_loss(
    model: nn.Module,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    inner_lr: float,
    inner_steps: int,
    first_order: bool,
    batch: TaskBatch,
) -> Tensor:
    """The reference: MAML's meta-loss by a Python loop over tasks, ``functional_call`` and
    ``torch.autograd.grad`` (``create_graph=not first_order``); the mean over tasks."""
    params: dict[str, Tensor] = dict(model.named_parameters())
    losses = []
    for support_x, support_y, query_x, query_y in zip(*batch):
        weights = params
        for _ in range(inner_steps):
            loss = loss_fn(functional_call(model, weights, (support_x,)), support_y)
            grads = torch.autograd.grad(loss, list(weights.values()), create_graph=not first_order)
            weights = {n: w - inner_lr * g for (n, w), g in zip(weights.items(), grads)}
        losses.append(loss_fn(functional_call(model, weights, (query_x,)), query_y))
    return torch.stack(losses).mean()


def meta_loss_fn(
    path: str, workload: Workload, model: nn.Module, loss_fn: Callable, first_order: bool
) -> Callable[[TaskBatch], Tensor]:
    """``batch -> meta-loss`` on ``path`` (one of :data:`PATHS`)."""
    if path not in PATHS:
        raise ValueError(f"path must be one of {PATHS}, got {path!r}")
    if path == "plain":
        return lambda batch: plain_meta_loss(
            model, loss_fn, workload.inner_lr, workload.inner_steps, first_order, batch
        )
    batched = {"loop": False, "vmap": True, "default": None}[path]
    maml = MAML(
        model,
        loss_fn,
        workload.inner_lr,
        workload.inner_steps,
        first_order,
        batched=batched,
    )
    return lambda batch: maml.meta_loss(*batch)


def chosen_path(workload: Workload) -> str:
    """The path :class:`~metalearn.MAML` takes by default on ``workload``'s meta-batch:
    ``"vmap"`` or ``"loop"``."""
    model, loss_fn, batch = workload.build()
    maml = MAML(model, loss_fn, workload.inner_lr, workload.inner_steps)
    return "vmap" if maml.batches_tasks(batch.support_x, batch.query_x) else "loop"


def iterations_per_second(
    workload: Workload,
    path: str,
    first_order: bool,
    seconds: float = 2.0,
    meta_batch: int | None = None,
) -> float:
    """Meta-iterations per second on ``path``: one warm-up iteration, then as many as fit in
    ``seconds`` (at least two); ``meta_batch`` tasks (default: the workload's)."""
    model, loss_fn, batch = workload.build(meta_batch=meta_batch)
    meta_loss = meta_loss_fn(path, workload, model, loss_fn, first_order)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-6)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        meta_loss(batch).backward()
        optimizer.step()

    step()
    return steps_per_second(step, seconds)


def steps_per_second(step: Callable[[], None], seconds: float, minimum: int = 2) -> float:
    """Calls of ``step`` per second: as many as fit in ``seconds``, at least ``minimum``."""
    count, start = 0, time.perf_counter()
    while count < minimum or time.perf_counter() - start < seconds:
        step()
        count += 1
    return count / (time.perf_counter() - start)


def gradient_gap(workload: Workload, path: str, first_order: bool, meta_batch: int = 4) -> float:
    """The largest difference between ``path``'s float64 meta-gradient and the plain loop's,
    on ``meta_batch`` tasks of ``workload``."""
    gradients = []
    for which in ("plain", path):
        model, loss_fn, batch = workload.build(torch.float64, meta_batch=meta_batch)
        loss = meta_loss_fn(which, workload, model, loss_fn, first_order)(batch)
        grads = torch.autograd.grad(loss, list(model.parameters()))
        gradients.append(torch.cat([g.flatten() for g in grads]))
    return (gradients[0] - gradients[1]).abs().max().item()
