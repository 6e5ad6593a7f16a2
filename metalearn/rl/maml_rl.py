"""MAML for reinforcement learning: task batches made of trajectories, and returns after adaptation.

Meta-training reuses :func:`metalearn.train.meta_train` and :class:`metalearn.MAML`
unchanged; what is particular to RL is only *where the task batch comes from*
(:class:`MAMLRollouts`, a task source):

1. sample ``T`` tasks and ``N`` trajectories' worth of transitions per task with the
   meta-parameters ``theta`` -> support set (observations; actions, advantages, valid flags);
2. adapt per task, ``theta'_i = theta - alpha grad L_inner`` (``maml.adapt``);
3. sample as many fresh transitions per task with ``theta'_i`` -> query set.

``maml.meta_loss`` then re-adapts (differentiably) and scores the query
trajectories with the REINFORCE surrogate. :class:`MAMLRollouts` does steps 1-3
and remembers the returns before and after adaptation, for a training curve.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple, Sequence

import torch
from torch import nn
from torch.func import functional_call, vmap

from metalearn.algorithms.maml import MAML
from metalearn.checks import check_float, check_generator, check_int, check_seed
from metalearn.core import TaskBatch
from metalearn.envs.navigation import Navigation2D
from metalearn.rl.policy_gradient import reinforce_loss
from metalearn.rl.rollouts import PolicyFn, policy_batch, rollout, rollout_transitions

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


class MAMLRollouts:
    """The task source of MAML-RL: support and query trajectories of fresh navigation tasks.

    ``sample(num_tasks)`` draws ``num_tasks`` tasks (``Navigation2D.sample``), rolls out
    ``num_trajectories`` trajectories' worth per task with the meta-parameters (the support set),
    adapts per task (``maml.adapt``), and rolls out as many with the adapted policies (the
    query set). ``meta_train(maml, source, ...)`` then re-adapts differentiably and scores the
    query trajectories -- as the reference code, which samples with adapted parameters
    computed outside the graph it differentiates.

    Args:
        maml: the MAML learner around a policy (``maml.model``).
        num_trajectories: the support and the query set of a task each hold this many
            trajectories' worth of transitions (``num_trajectories`` x horizon), in whole
            trajectories (:func:`~metalearn.rl.rollouts.rollout_transitions`; the reference's
            ``fast_batch_size``): more trajectories when episodes end early at the goal.
        seed: seeds the generator of the tasks and the action noise.
        discount: for the rewards-to-go.
        env_options: keyword arguments of ``Navigation2D.sample`` (``dynamics=True``, ...).

    After each call, ``history`` holds the mean return before and after adaptation;
    ``state_dict()``/``load_state_dict()`` carry it through a ``meta_train`` checkpoint.
    """

    def __init__(
        self,
        maml: MAML,
        num_trajectories: int,
        seed: int = 0,
        discount: float = 0.99,
        env_options: Mapping[str, Any] | None = None,
    ) -> None:
        check_int("num_trajectories", num_trajectories, minimum=1)
        self.discount = check_float("discount", discount, minimum=0.0, maximum=1.0)
        self.maml, self.num_trajectories = maml, num_trajectories
        self.env_options = dict(env_options or {})
        self.generator = torch.Generator().manual_seed(check_seed("seed", seed))
        self.history: list[tuple[float, float]] = []

    def sample(self, num_tasks: int, generator: torch.Generator | None = None) -> TaskBatch:
        g = check_generator(generator) or self.generator
        env = Navigation2D.sample(num_tasks, generator=g, **self.env_options)
        transitions = self.num_trajectories * env.horizon
        support = rollout_transitions(env, self.maml.model, transitions, g)
        support_x, support_y = policy_batch(support, self.discount)
        adapted = adapt_all(self.maml, support_x, support_y)
        query = rollout_transitions(env, task_policy(self.maml.model, adapted), transitions, g)
        query_x, query_y = policy_batch(query, self.discount)
        self.history.append((support.returns().mean().item(), query.returns().mean().item()))
        return TaskBatch(support_x, support_y, query_x, query_y)

    def state_dict(self) -> dict:
        """``{"history": [(before, after), ...]}``, saved in ``meta_train``'s checkpoints."""
        return {"history": list(self.history)}

    def load_state_dict(self, state: dict) -> None:
        self.history = [tuple(pair) for pair in state["history"]]


class PolicyRollouts:
    """The task source for pretraining one policy on all tasks (``pretrain(FineTune(policy))``).

    ``sample(num_tasks)`` rolls out ``num_trajectories`` trajectories per task with the
    current policy and splits them in halves (support, query); ``FineTune.joint_loss`` uses
    both. ``history`` holds the mean return of each batch (``state_dict()`` for checkpoints).
    """

    def __init__(
        self,
        policy: nn.Module,
        num_trajectories: int,
        seed: int = 0,
        discount: float = 0.99,
        env_options: Mapping[str, Any] | None = None,
    ) -> None:
        check_int("num_trajectories", num_trajectories, minimum=0)
        if num_trajectories < 2:
            raise ValueError(
                "num_trajectories must be >= 2 (split into support and query), "
                f"got {num_trajectories}"
            )
        self.discount = check_float("discount", discount, minimum=0.0, maximum=1.0)
        self.policy, self.num_trajectories = policy, num_trajectories
        self.env_options = dict(env_options or {})
        self.generator = torch.Generator().manual_seed(check_seed("seed", seed))
        self.history: list[float] = []

    def sample(self, num_tasks: int, generator: torch.Generator | None = None) -> TaskBatch:
        g = check_generator(generator) or self.generator
        env = Navigation2D.sample(num_tasks, generator=g, **self.env_options)
        trajectories = rollout(env, self.policy, self.num_trajectories, g)
        x, y = policy_batch(trajectories, self.discount)
        half = (self.num_trajectories // 2) * trajectories.observations.shape[2]
        self.history.append(trajectories.returns().mean().item())
        return TaskBatch(x[:, :half], y[:, :half], x[:, half:], y[:, half:])

    def state_dict(self) -> dict:
        """``{"history": [mean return, ...]}``, saved in ``meta_train``'s checkpoints."""
        return {"history": list(self.history)}

    def load_state_dict(self, state: dict) -> None:
        self.history = list(state["history"])


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
    lrs: Sequence[float] = (0.5, 0.25, 0.25),
    num_trajectories: int = 40,
    generator: torch.Generator | None = None,
    discount: float = 0.99,
) -> Adaptation:
    """Adapt ``model`` to every task of ``env`` by ``len(lrs)`` REINFORCE steps; record the returns.

    Every task starts from ``model``'s parameters; step ``k`` uses ``num_trajectories`` x
    horizon fresh transitions of the current policy, in whole trajectories
    (:func:`~metalearn.rl.rollouts.rollout_transitions`), and step size ``lrs[k]``; the return
    is averaged over those trajectories. The defaults are the MAML-RL code's evaluation
    (``maml_examples/test_maml_point.py``: ``batch_size=4000`` transitions per step, 40
    trajectories' worth; plain gradient steps of 0.5, then 0.25), for actions normalised as
    rllab's (``Navigation2D(normalized_actions=True)``). The same procedure scores a MAML
    initialisation, a pretrained policy and a random one.

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
        trajectories = rollout_transitions(
            env, task_policy(model, params), num_trajectories * env.horizon, generator
        )
        returns.append(trajectories.returns())
        if step == len(lrs):
            break
        x, y = policy_batch(trajectories, discount)
        maml = MAML(model, reinforce_loss, inner_lr=lrs[step])  # one REINFORCE step per task
        with torch.no_grad():  # torch.func.grad inside adapt still computes the inner gradient
            params = [
                {k: v.detach() for k, v in maml.adapt(x[i], y[i], steps=1, params=p).items()}
                for i, p in enumerate(params)
            ]
        history.append(params)
    return Adaptation(torch.stack(returns), history)
