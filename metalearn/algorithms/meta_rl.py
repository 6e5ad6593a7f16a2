"""MAML for reinforcement learning: task batches made of trajectories, and returns after adaptation.

Meta-training reuses :func:`metalearn.train.meta_train` and :class:`metalearn.MAML`
unchanged; what is particular to RL is only *where the task batch comes from*:

1. sample ``T`` tasks and ``N`` trajectories per task with the meta-parameters
   ``theta`` -> support set (observations; actions, advantages, valid flags);
2. adapt per task, ``theta'_i = theta - alpha grad L_inner`` (``maml.adapt``);
3. sample ``N`` fresh trajectories per task with ``theta'_i`` -> query set.

``maml.meta_loss`` then re-adapts (differentiably) and scores the query
trajectories with the REINFORCE surrogate. :class:`MetaRLSampler` does steps 1-3
and remembers the returns before and after adaptation, for a training curve.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import torch
from torch import nn
from torch.func import functional_call, vmap

from metalearn.algorithms.maml import MAML
from metalearn.algorithms.policy_gradient import reinforce_loss
from metalearn.algorithms.rollouts import PolicyFn, policy_batch, rollout
from metalearn.envs.navigation import Navigation2D
from metalearn.tasks.batch import TaskBatch
from metalearn.utils import check_float, check_int

Params = dict[str, torch.Tensor]


def task_policy(model: nn.Module, params: Sequence[Params]) -> PolicyFn:
    """A policy for ``T`` tasks where task ``i`` acts with ``params[i]`` (vmapped
    ``functional_call``).

    ``observations [T, N, obs_dim] -> outputs [T, N, 2 * act_dim]``.
    """
    if not params:
        raise ValueError("params is empty: give one parameter dict per task")
    stacked = {name: torch.stack([p[name].detach() for p in params]) for name in params[0]}
    return lambda obs: vmap(lambda p, o: functional_call(model, p, (o,)))(stacked, obs)


def adapt_all(maml: MAML, support_x: torch.Tensor, support_y: torch.Tensor) -> list[Params]:
    """``maml.adapt`` on every task of ``support_x [T, S, ...]``; detached adapted parameters
    per task."""
    with torch.no_grad():  # torch.func.grad inside adapt still computes the inner gradient
        return [
            {k: v.detach() for k, v in maml.adapt(sx, sy).items()}
            for sx, sy in zip(support_x, support_y)
        ]


class MetaRLSampler:
    """``sample_batch`` for ``meta_train(maml, ...)``: support and query trajectories of fresh
    tasks.

    Args:
        maml: the MAML learner around a policy (``maml.model``).
        make_env: returns a new batch of ``T`` tasks.
        num_trajectories: ``N`` trajectories per task, in the support and in the query set.
        generator: source of the action noise.
        discount: for the rewards-to-go.

    After each call, ``history`` holds the mean return before and after adaptation;
    ``state_dict()``/``load_state_dict()`` carry it through a ``meta_train`` checkpoint.
    """

    def __init__(
        self,
        maml: MAML,
        make_env: Callable[[], Navigation2D],
        num_trajectories: int,
        generator: torch.Generator | None = None,
        discount: float = 0.99,
    ) -> None:
        check_int("num_trajectories", num_trajectories, minimum=1)
        discount = check_float("discount", discount, minimum=0.0, maximum=1.0)
        self.maml, self.make_env, self.num_trajectories = maml, make_env, num_trajectories
        self.generator, self.discount = generator, discount
        self.history: list[tuple[float, float]] = []

    def __call__(self) -> TaskBatch:
        env = self.make_env()
        support = rollout(env, self.maml.model, self.num_trajectories, self.generator)
        support_x, support_y = policy_batch(support, self.discount)
        adapted = adapt_all(self.maml, support_x, support_y)
        query = rollout(
            env, task_policy(self.maml.model, adapted), self.num_trajectories, self.generator
        )
        query_x, query_y = policy_batch(query, self.discount)
        self.history.append((support.returns().mean().item(), query.returns().mean().item()))
        return TaskBatch(support_x, support_y, query_x, query_y)

    def state_dict(self) -> dict:
        """``{"history": [(before, after), ...]}``, saved in ``meta_train``'s checkpoints."""
        return {"history": list(self.history)}

    def load_state_dict(self, state: dict) -> None:
        self.history = [tuple(pair) for pair in state["history"]]


class PolicySampler:
    """``sample_batch`` for pretraining one policy on all tasks
    (``meta_train(FineTune(policy, ...))``).

    Each call samples ``N`` trajectories per task with the current policy and
    splits them in halves (support, query); ``FineTune.meta_loss`` uses both.
    ``history`` holds the mean return of each batch (``state_dict()`` for checkpoints).
    """

    def __init__(
        self,
        policy: nn.Module,
        make_env: Callable[[], Navigation2D],
        num_trajectories: int,
        generator: torch.Generator | None = None,
        discount: float = 0.99,
    ) -> None:
        check_int("num_trajectories", num_trajectories, minimum=0)
        if num_trajectories < 2:
            raise ValueError(
                "num_trajectories must be >= 2 (split into support and query), "
                f"got {num_trajectories}"
            )
        discount = check_float("discount", discount, minimum=0.0, maximum=1.0)
        self.policy, self.make_env, self.num_trajectories = policy, make_env, num_trajectories
        self.generator, self.discount = generator, discount
        self.history: list[float] = []

    def __call__(self) -> TaskBatch:
        trajectories = rollout(self.make_env(), self.policy, self.num_trajectories, self.generator)
        x, y = policy_batch(trajectories, self.discount)
        half = (self.num_trajectories // 2) * trajectories.observations.shape[2]
        self.history.append(trajectories.returns().mean().item())
        return TaskBatch(x[:, :half], y[:, :half], x[:, half:], y[:, half:])

    def state_dict(self) -> dict:
        """``{"history": [mean return, ...]}``, saved in ``meta_train``'s checkpoints."""
        return {"history": list(self.history)}

    def load_state_dict(self, state: dict) -> None:
        self.history = list(state["history"])


def policy_gradient_step(
    model: nn.Module, params: Params, x: torch.Tensor, y: torch.Tensor, lr: float
) -> Params:
    """One REINFORCE step from ``params`` on one task's ``x [S, obs_dim]``, ``y [S, act_dim + 2]``.

    It is ``MAML.adapt`` (one inner step) started from ``params``: a second step in RL
    needs fresh trajectories from the once-adapted policy.
    """
    adapted = MAML(model, reinforce_loss, inner_lr=lr).adapt(x, y, steps=1, params=params)
    return {k: v.detach() for k, v in adapted.items()}


class Adaptation(NamedTuple):
    """What :func:`adapt_by_policy_gradient` returns.

    Attributes:
        returns: ``[K + 1, T]`` mean return per task before and after each of ``K`` steps.
        params: ``K + 1`` lists of ``T`` parameter dicts: the policy of each task at each step.
    """

    returns: torch.Tensor
    params: list[list[Params]]


def adapt_by_policy_gradient(
    model: nn.Module,
    env: Navigation2D,
    lrs: Sequence[float] = (0.1, 0.05, 0.05),
    num_trajectories: int = 20,
    generator: torch.Generator | None = None,
    discount: float = 0.99,
) -> Adaptation:
    """Adapt ``model`` to every task of ``env`` by ``len(lrs)`` REINFORCE steps; record the returns.

    Every task starts from ``model``'s parameters; step ``k`` uses ``num_trajectories``
    fresh trajectories of the current policy and step size ``lrs[k]`` (the MAML
    paper evaluates with 0.1 for the first step and 0.05 after). The same
    procedure scores a MAML initialisation, a pretrained policy and a random one.

    Raises:
        ValueError: naming ``lrs`` (finite, > 0), ``num_trajectories`` or ``discount``.
    """
    for i, lr in enumerate(lrs):
        check_float(f"lrs[{i}]", lr, minimum=0.0, strict=True)
    check_int("num_trajectories", num_trajectories, minimum=1)
    check_float("discount", discount, minimum=0.0, maximum=1.0)
    params = [{k: v.detach() for k, v in model.named_parameters()}] * env.num_tasks
    returns, history = [], [params]
    for step in range(len(lrs) + 1):
        trajectories = rollout(env, task_policy(model, params), num_trajectories, generator)
        returns.append(trajectories.returns())
        if step == len(lrs):
            break
        x, y = policy_batch(trajectories, discount)
        params = [
            policy_gradient_step(model, p, x[i], y[i], lrs[step]) for i, p in enumerate(params)
        ]
        history.append(params)
    return Adaptation(torch.stack(returns), history)
