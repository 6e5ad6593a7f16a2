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

from typing import Callable

import torch
from torch import nn

from metalearn.envs.navigation import Navigation2D
from metalearn.progress import Progress
from metalearn.utils import check_finite_gradients, check_float, check_int

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
    rewards, positions = [], [env.position]
    for _ in range(env.horizon):
        actions = controller(state, obs)
        before = env.position
        obs, reward, done = env.step(actions)
        state = controller.observe(state, actions, env.position - before)
        rewards.append(reward)
        positions.append(env.position)
        if bool(done.all()):
            break
    rewards = torch.stack(rewards, dim=-1)
    positions = torch.stack(positions, dim=2)
    pad = env.horizon - rewards.shape[-1]
    if pad:  # every episode ended early: no more reward, the agent stays put
        rewards = torch.cat([rewards, rewards.new_zeros(*rewards.shape[:2], pad)], dim=-1)
        positions = torch.cat([positions, positions[:, :, -1:].expand(-1, -1, pad, -1)], dim=2)
    return rewards, positions


def train_controller(
    controller: MetaLSTMController,
    make_env: Callable[[], Navigation2D],
    steps: int,
    optimizer: torch.optim.Optimizer,
    num_trajectories: int = 1,
    max_prior_steps: int = 0,
    generator: torch.Generator | None = None,
    progress: bool = True,
) -> list[float]:
    """Maximise the mean return over fresh task batches by backpropagating through the simulator.

    A loop of its own rather than ``meta_train``: the loss is a rollout in an
    environment, not a function of a task batch of tensors. Each step draws the
    amount of prior experience uniformly from ``0..max_prior_steps``.

    Returns:
        The mean return of every step.

    Raises:
        FloatingPointError: the return or a gradient became NaN or infinite (checked before
            every update; the step is named).
    """
    check_int("steps", steps, minimum=1)
    check_int("num_trajectories", num_trajectories, minimum=1)
    check_int("max_prior_steps", max_prior_steps, minimum=0)
    history = []
    with Progress(steps, "training the controller", enabled=progress) as bar:
        for step in range(steps):
            prior = int(torch.randint(max_prior_steps + 1, (1,), generator=generator))
            rewards, _ = run_controller(controller, make_env(), num_trajectories, prior, generator)
            returns = rewards.sum(dim=-1).mean()
            if not torch.isfinite(returns):
                raise FloatingPointError(f"the mean return is {returns.item()} at step {step}")
            optimizer.zero_grad(set_to_none=True)
            (-returns / rewards.shape[-1]).backward()
            check_finite_gradients(
                controller.parameters(),
                f"at step {step}",
                {id(p): repr(n) for n, p in controller.named_parameters()},
            )
            nn.utils.clip_grad_norm_(controller.parameters(), 1.0)
            optimizer.step()
            history.append(returns.item())
            bar.update(mean_return=history[-1])
    return history
