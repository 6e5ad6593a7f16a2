"""Sampling trajectories in a batched environment, and turning them into policy-gradient targets.

``rollout`` steps ``T`` tasks x ``N`` trajectories together; ``rollout_transitions`` collects
whole trajectories until each task has a number of transitions, as rllab's samplers do;
``policy_batch`` computes discounted rewards-to-go, subtracts the MAML paper's linear feature
baseline (fitted per task by ridge regression, as in rllab; duan2016benchmarking)
and returns ``x = observations [T, N*H, obs_dim]`` and ``y = pack_targets(...)
[T, N*H, act_dim + 2]``: a task batch's support or query half.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch

from metalearn.checks import check_float, check_int
from metalearn.envs.navigation import Navigation2D
from metalearn.rl.policy_gradient import pack_targets, sample_actions

PolicyFn = Callable[
    [torch.Tensor], torch.Tensor
]  # observations [T, N, obs_dim] -> outputs [T, N, 2 * act_dim]


class Trajectories(NamedTuple):
    """``T`` tasks x ``N`` trajectories x ``H`` steps, padded after an episode ends.

    Attributes:
        observations: ``[T, N, H, obs_dim]`` the state each action was taken in.
        actions: ``[T, N, H, act_dim]`` the sampled (unclipped) actions.
        rewards: ``[T, N, H]``, 0 on padding.
        valid: ``[T, N, H]`` 1.0 on real steps, 0.0 on padding.
    """

    observations: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    valid: torch.Tensor

    def returns(self) -> torch.Tensor:
        """Undiscounted return of each task, averaged over its trajectories: ``[T]``.

        A trajectory whose first step is not valid is absent (``rollout_transitions`` pads
        tasks that needed fewer trajectories than others) and does not count.
        """
        present = self.valid[..., 0]  # [T, N]
        return self.rewards.sum(dim=-1).sum(dim=-1) / present.sum(dim=-1).clamp_min(1.0)


@torch.no_grad()
def rollout(
    env: Navigation2D,
    policy: PolicyFn,
    num_trajectories: int,
    generator: torch.Generator | None = None,
    deterministic: bool = False,
) -> Trajectories:
    """Run ``num_trajectories`` episodes in every task of ``env`` with a Gaussian ``policy``.

    Args:
        env: a batch of ``T`` tasks.
        policy: maps observations ``[T, N, obs_dim]`` to outputs ``[T, N, 2 * act_dim]``
            (each task may use its own parameters, see ``meta_rl.task_policy``).
        num_trajectories: ``N`` episodes per task.
        generator: source of the action noise.
        deterministic: act with the mean instead of sampling.
    """
    check_int("num_trajectories", num_trajectories, minimum=1)
    obs = env.reset(num_trajectories)
    steps: list[tuple[torch.Tensor, ...]] = []
    for _ in range(env.horizon):
        output = policy(obs)
        if deterministic:
            actions = output[..., : env.act_dim]
        else:
            actions = sample_actions(output, generator)
        valid = (~env.done).to(obs.dtype)
        next_obs, reward, done = env.step(actions)
        steps.append((obs, actions, reward, valid))
        obs = next_obs
        if bool(done.all()):
            break
    observations, actions, rewards, valid = (torch.stack(parts, dim=2) for parts in zip(*steps))
    pad = env.horizon - observations.shape[2]
    if pad:  # every episode ended early: pad to the horizon so all batches share a shape
        observations, actions, rewards, valid = (
            torch.cat([t, t.new_zeros(*t.shape[:2], pad, *t.shape[3:])], dim=2)
            for t in (observations, actions, rewards, valid)
        )
    return Trajectories(observations, actions, rewards, valid)


def rollout_transitions(
    env: Navigation2D,
    policy: PolicyFn,
    transitions: int,
    generator: torch.Generator | None = None,
) -> Trajectories:
    """Whole trajectories in every task of ``env`` until each task has ``transitions`` steps.

    rllab's samplers, which the MAML-RL code uses, collect a batch as a number of
    transitions (``batch_size``), not of trajectories: ``test_maml_point.py`` evaluates with
    4,000 per step, and ``batch_maml_polopt.py`` meta-trains with ``fast_batch_size`` x
    ``max_path_length`` per task. When episodes end early at the goal, a better policy thus
    gets more trajectories. The first round draws ``ceil(transitions / H)`` trajectories per
    task; each further round as many as the neediest task still lacks at its mean length so
    far. A task keeps its trajectories in order while it has fewer than ``transitions``
    steps, so its last trajectory may end past the count. Tasks that needed fewer
    trajectories than the most demanding one are padded with absent ones (``valid`` all 0).

    Returns:
        ``Trajectories`` of shape ``[T, N, H, ...]``, ``N`` the most trajectories any task kept.
    """
    check_int("transitions", transitions, minimum=1)
    size = -(-transitions // env.horizon)
    rounds: list[Trajectories] = []
    lengths = env.goals.new_zeros(env.num_tasks, 0)  # [T, N]: steps of each trajectory so far
    while True:  # every round adds at least one step to every task, so this ends
        rounds.append(rollout(env, policy, size, generator))
        lengths = torch.cat([lengths, rounds[-1].valid.sum(dim=-1)], dim=1)
        total = lengths.sum(dim=1)  # [T]
        if bool((total >= transitions).all()):
            break
        missing = (transitions - total).clamp_min(0) * lengths.shape[1] / total
        size = max(1, int(missing.ceil().max().item()))
    keep = ((lengths.cumsum(dim=1) - lengths) < transitions).to(lengths.dtype)  # [T, N]
    count = int(keep.sum(dim=1).max().item())
    observations, actions, rewards, valid = (
        torch.cat(parts, dim=1)[:, :count] for parts in zip(*rounds)
    )
    keep = keep[:, :count, None]
    return Trajectories(observations, actions, rewards * keep, valid * keep)


def discounted_returns(rewards: torch.Tensor, discount: float) -> torch.Tensor:
    """Rewards-to-go ``G_t = sum_{k >= t} discount^(k - t) r_k`` along the last dim:
    ``[..., H] -> [..., H]``; ``discount`` in ``[0, 1]``."""
    discount = check_float("discount", discount, minimum=0.0, maximum=1.0)
    if not isinstance(rewards, torch.Tensor) or rewards.dim() < 1:
        raise ValueError(f"rewards must be a tensor [..., H], got {rewards!r:.60}")
    horizon = rewards.shape[-1]
    steps = torch.arange(horizon, device=rewards.device)
    lag = steps[:, None] - steps[None, :]  # [k, t]: k - t
    weights = (discount ** lag.clamp_min(0).to(rewards.dtype)) * (lag >= 0).to(rewards.dtype)
    return rewards @ weights


def linear_baseline(
    observations: torch.Tensor, returns: torch.Tensor, valid: torch.Tensor, reg: float = 1e-5
) -> torch.Tensor:
    """rllab's linear feature baseline, fitted and evaluated per task.

    Features of a step: ``[s, s^2, t, t^2, t^3, 1]`` with ``t = step / 100``; the
    weights solve the ridge regression of the returns on the valid steps of each task.

    Args:
        observations: ``[T, N, H, obs_dim]``.
        returns: ``[T, N, H]`` discounted rewards-to-go.
        valid: ``[T, N, H]`` 1 on real steps.

    Returns:
        The fitted values, ``[T, N, H]``.

    Raises:
        ValueError: naming ``observations``, ``returns``, ``valid`` or ``reg`` (finite, >= 0).
    """
    reg = check_float("reg", reg, minimum=0.0)
    if observations.dim() != 4:
        raise ValueError(
            f"observations must have shape [T, N, H, obs_dim], got {list(observations.shape)}"
        )
    for name, tensor in (("returns", returns), ("valid", valid)):
        if tensor.shape != observations.shape[:3]:
            raise ValueError(
                f"{name} must have shape {list(observations.shape[:3])} (observations' "
                f"[T, N, H]), got {list(tensor.shape)}"
            )
    num_tasks, num_traj, horizon, _ = observations.shape
    time = torch.arange(horizon, device=observations.device, dtype=torch.float64) / 100.0
    time = time[None, None, :, None].expand(num_tasks, num_traj, horizon, 1)
    obs = observations.double().clamp(-10, 10)
    features = torch.cat(
        [obs, obs.pow(2), time, time.pow(2), time.pow(3), torch.ones_like(time)], dim=-1
    )
    features = features.reshape(num_tasks, num_traj * horizon, -1)
    weights = valid.double().reshape(num_tasks, -1, 1)
    targets = returns.double().reshape(num_tasks, -1, 1)
    gram = features.transpose(1, 2) @ (weights * features)
    eye = torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
    coef = torch.linalg.solve(gram + reg * eye, features.transpose(1, 2) @ (weights * targets))
    return (features @ coef).reshape(num_tasks, num_traj, horizon).to(returns.dtype)


def policy_batch(
    trajectories: Trajectories, discount: float = 0.99
) -> tuple[torch.Tensor, torch.Tensor]:
    """Observations and packed targets for the REINFORCE surrogate, steps flattened per task.

    Advantages are the discounted returns minus the linear baseline, normalised
    to mean 0 and standard deviation 1 over each task's valid steps (rllab's
    ``center_adv``), and 0 on padding.

    Returns:
        ``x [T, N*H, obs_dim]`` and ``y [T, N*H, act_dim + 2]`` (see ``pack_targets``).
    """
    observations, actions, rewards, valid = trajectories
    returns = discounted_returns(rewards, discount)
    advantages = (returns - linear_baseline(observations, returns, valid, reg=1e-5)) * valid
    count = valid.sum(dim=(1, 2), keepdim=True).clamp_min(1.0)
    mean = advantages.sum(dim=(1, 2), keepdim=True) / count
    std = (((advantages - mean) * valid).pow(2).sum(dim=(1, 2), keepdim=True) / count).sqrt()
    advantages = (advantages - mean) / (std + 1e-8) * valid
    num_tasks = observations.shape[0]
    x = observations.reshape(num_tasks, -1, observations.shape[-1])
    y = pack_targets(actions, advantages, valid).reshape(num_tasks, x.shape[1], -1)
    return x, y
