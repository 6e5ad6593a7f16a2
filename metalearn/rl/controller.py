"""A Meta-LSTM controller: an LSTM reads the transitions seen so far and generates the control
policy.

The document's idea for robot control is a meta-model that, in a new
environment, *generates* the policy for it. Here the meta-model is an LSTM
(hochreiter1997lstm) whose input at each step is the last transition -- the
action taken and the displacement it caused -- and whose output is the gain
matrix ``K_t`` of a feedback controller

    a_t = max_action * tanh(K_t (goal - position_t) / max_action).

In the dynamics variant of :class:`~metalearn.envs.Navigation2D` the actuator
turns actions by an unknown angle and scales them by an unknown gain; the ideal
``K`` undoes them, and one transition is enough to identify it. The memory is
the whole adaptation: no gradient step happens in a new environment
(learning to learn by a recurrent network, as in RL^2 and Wang et al.'s
"learning to reinforcement learn", duan2016rl2 / wang2016learning; the
generated weights are a hypernetwork, ha2017hypernetworks).

The environment is differentiable, so the controller is trained by
backpropagating the return through the simulated episodes (a pathwise gradient,
far lower variance than REINFORCE). With ``memory=False`` the same controller
uses one learned ``K`` everywhere: a policy trained on the task family without
meta-learning.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from metalearn.checks import check_float, check_generator, check_int, check_seed
from metalearn.envs.navigation import Navigation2D

State = tuple[torch.Tensor, torch.Tensor]


class MetaLSTMController(nn.Module):
    """LSTM over transitions -> gain matrix ``K [.., 2, 2]`` of a saturated linear controller.

    Args:
        hidden: LSTM state size.
        memory: read the transitions (the meta-learner); ``False`` = a fixed learned ``K``.
        max_action: the environment's action bound (actions and displacements are scaled by it).
    """

    def __init__(self, hidden: int = 32, memory: bool = True, max_action: float = 0.1) -> None:
        super().__init__()
        hidden = check_int("hidden", hidden, minimum=1)
        max_action = check_float("max_action", max_action, minimum=0.0, strict=True)
        self.memory, self.max_action, self.hidden = memory, max_action, hidden
        self.lstm = nn.LSTMCell(4, hidden)
        self.to_gain = nn.Linear(hidden, 4)
        self.constant = nn.Parameter(
            torch.zeros(hidden)
        )  # the memory-less controller's fixed "state"

    def initial_state(self, batch_shape: tuple[int, ...]) -> State:
        """Zero LSTM state for a batch ``batch_shape`` (e.g. ``(T, N)``)."""
        zeros = self.constant.new_zeros(*batch_shape, self.hidden)
        return zeros, zeros

    def observe(self, state: State, actions: torch.Tensor, displacements: torch.Tensor) -> State:
        """Update the memory with one transition: ``actions [..., 2]`` caused
        ``displacements [..., 2]``."""
        if not self.memory:
            return state
        inputs = torch.cat([actions, displacements], dim=-1) / self.max_action
        shape = inputs.shape[:-1]
        h, c = self.lstm(
            inputs.reshape(-1, 4),
            (state[0].reshape(-1, self.hidden), state[1].reshape(-1, self.hidden)),
        )
        return h.reshape(*shape, self.hidden), c.reshape(*shape, self.hidden)

    def gain(self, state: State) -> torch.Tensor:
        """The generated controller ``K [..., 2, 2]``."""
        h = state[0] if self.memory else self.constant.expand_as(state[0])
        return self.to_gain(h).reshape(*h.shape[:-1], 2, 2)

    def forward(self, state: State, observations: torch.Tensor) -> torch.Tensor:
        """Actions ``[..., 2]`` for observations ``[..., 4]`` = (position, goal)."""
        error = (observations[..., 2:] - observations[..., :2]) / self.max_action
        return self.max_action * torch.tanh((self.gain(state) @ error[..., None])[..., 0])


def run_controller(
    controller: MetaLSTMController,
    env: Navigation2D,
    num_trajectories: int,
    prior_steps: int = 0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """An episode of the controller in each task, after ``prior_steps`` random transitions of
    experience.

    The prior experience comes from a separate exploratory episode (uniform random
    actions, which the controller only observes); the agent is then reset to the
    origin while the controller keeps its memory. Differentiable in the controller.

    Args:
        env: the dynamics variant (``observe_goal=True``), ``T`` tasks.
        num_trajectories: ``N`` episodes per task.
        prior_steps: transitions seen before the episode starts.

    Returns:
        rewards ``[T, N, H]`` of the episode and positions ``[T, N, H + 1, 2]``.
    """
    if not env.observe_goal:
        raise ValueError(
            "env must observe its goal (observe_goal=True): the controller steers towards it"
        )
    check_int("prior_steps", prior_steps, minimum=0)
    check_int("num_trajectories", num_trajectories, minimum=1)
    state = controller.initial_state((env.num_tasks, num_trajectories))
    obs = env.reset(num_trajectories)
    for _ in range(prior_steps):
        noise = torch.rand(*obs.shape[:-1], 2, generator=generator, dtype=obs.dtype).to(obs.device)
        actions = env.max_action * (2 * noise - 1)
        before = env.position
        obs = env.step(actions).observation
        state = controller.observe(state, actions, env.position - before)
    obs = env.reset(num_trajectories)
    reward_list, position_list = [], [env.position]
    for _ in range(env.horizon):
        actions = controller(state, obs)
        before = env.position
        obs, reward, done = env.step(actions)
        state = controller.observe(state, actions, env.position - before)
        reward_list.append(reward)
        position_list.append(env.position)
        if bool(done.all()):
            break
    rewards = torch.stack(reward_list, dim=-1)
    positions = torch.stack(position_list, dim=2)
    pad = env.horizon - rewards.shape[-1]
    if pad:  # every episode ended early: no more reward, the agent stays put
        rewards = torch.cat([rewards, rewards.new_zeros(*rewards.shape[:2], pad)], dim=-1)
        positions = torch.cat([positions, positions[:, :, -1:].expand(-1, -1, pad, -1)], dim=2)
    return rewards, positions


class ControllerEpisodes:
    """What one step of :func:`train_controller` trains on: ``sample(num_tasks)`` draws
    ``num_tasks`` dynamics variants (``Navigation2D.sample(..., dynamics=True)``) and an amount
    of prior experience uniform in ``0 .. max_prior_steps``."""

    def __init__(
        self, max_prior_steps: int = 0, seed: int = 0, env_options: Mapping[str, Any] | None = None
    ) -> None:
        self.max_prior_steps = check_int("max_prior_steps", max_prior_steps, minimum=0)
        self.env_options = {"dynamics": True, **(env_options or {})}
        self.generator = torch.Generator().manual_seed(check_seed("seed", seed))

    def sample(
        self, num_tasks: int, generator: torch.Generator | None = None
    ) -> tuple[Navigation2D, int]:
        g = check_generator(generator) or self.generator
        prior = int(torch.randint(self.max_prior_steps + 1, (1,), generator=g))
        return Navigation2D.sample(num_tasks, generator=g, **self.env_options), prior


def train_controller(
    controller: MetaLSTMController,
    steps: int,
    optimizer: torch.optim.Optimizer,
    *,
    meta_batch: int,
    num_trajectories: int = 1,
    max_prior_steps: int = 0,
    seed: int = 0,
    env_options: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> list[float]:
    """Maximise the mean return over fresh batches of ``meta_batch`` tasks by backpropagating
    through the simulator, with `metalearn.train.train_loop` (the package's one loop).

    The loss of a step is minus the mean return per time step of an episode
    (:func:`run_controller`) in each of the tasks drawn by :class:`ControllerEpisodes`
    (``env_options`` go to ``Navigation2D.sample``); gradients are clipped to norm 1.

    Returns:
        The mean return of every step.

    Raises:
        FloatingPointError: the return or a gradient became NaN or infinite (checked before
            every update; the step is named).
    """
    from metalearn.train import train_loop

    check_int("num_trajectories", num_trajectories, minimum=1)
    source = ControllerEpisodes(max_prior_steps, seed, env_options)
    returns: list[float] = []

    def loss_of(episode: tuple[Navigation2D, int]) -> torch.Tensor:
        env, prior = episode
        rewards, _ = run_controller(controller, env, num_trajectories, prior, source.generator)
        mean_return = rewards.sum(dim=-1).mean()
        returns.append(mean_return.item())
        return -mean_return / rewards.shape[-1]

    train_loop(
        controller,
        loss_of,
        source,
        steps,
        optimizer,
        meta_batch=meta_batch,
        grad_clip=1.0,
        progress=progress,
        desc="training the controller",
        metric="loss",
    )
    return returns
