"""The MAML paper's 2D navigation, batched: many tasks x many trajectories in one tensor op.

A point agent starts at the origin and must reach a goal drawn uniformly from
``[-0.5, 0.5]^2``. It observes its position, moves by its action (a velocity,
clipped to ``[-0.1, 0.1]^2``), and is rewarded by minus its distance to the
goal; an episode ends after ``horizon`` (100) steps or once the agent is within
``goal_radius`` (0.01) of the goal in both coordinates, as in the MAML code
(``abs(dx) < 0.01 and abs(dy) < 0.01``).

With ``normalized_actions=True`` the policy acts in ``[-1, 1]^2`` and the environment scales its
action to ``[-max_action, max_action]^2``, as rllab's ``normalize()`` wrapper does in the MAML-RL
code (``rllab/envs/normalized_env.py``: ``lb + (action + 1) * 0.5 * (ub - lb)``, then clipped);
``maml_examples/maml_trpo_point.py`` trains on ``normalize(PointEnvRandGoal())``. A Gaussian
policy with standard deviation 1 then explores at a tenth of the speed limit's scale, not ten
times it.

The *dynamics variant* hides a per-task actuator instead: the action is turned
by an unknown angle and scaled by an unknown gain before it moves the agent, so
a controller must infer the environment from the transitions it has seen. Its
goal is part of the observation (``observe_goal=True``), so the only unknown is
the dynamics.

Every tensor carries a task dimension ``T`` and a trajectory dimension ``N``;
stepping ``T`` tasks together equals stepping them one by one, and the whole
step is differentiable in the actions (used to train the Meta-LSTM controller).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from metalearn.checks import check_float, check_int, normalise_index


class Step(NamedTuple):
    """What :meth:`Navigation2D.step` returns.

    Attributes:
        observation: ``[T, N, obs_dim]`` after the move.
        reward: ``[T, N]``, minus the distance to the goal; 0 for trajectories already done.
        done: ``[T, N]`` bool, the episode has ended (goal reached or horizon hit).
    """

    observation: torch.Tensor
    reward: torch.Tensor
    done: torch.Tensor


class Navigation2D:
    """A batch of ``T`` navigation tasks, each run with ``N`` trajectories at once.

    Args:
        goals: ``[T, 2]`` finite goal positions, one per task (floating point).
        rotations: ``[T]`` actuator angles in radians (dynamics variant), ``None`` for none.
        gains: ``[T]`` actuator gains (dynamics variant), ``None`` for 1.
        observe_goal: observation is ``[position, goal]`` (4 numbers) instead of the position.
        horizon: steps per episode (an int >= 1).
        max_action: actions are clipped to ``[-max_action, max_action]`` per coordinate (> 0).
        goal_radius: the episode ends when both coordinates are within this of the goal (>= 0).
        normalized_actions: actions are in ``[-1, 1]`` units, scaled by ``max_action`` (rllab's
            ``normalize()``); ``False``: actions are velocities, clipped to ``max_action``.

    Every tensor must be finite and on the goals' device, every number finite; otherwise a
    ``ValueError`` names the argument.

    Example::

        env = Navigation2D.sample(num_tasks=20, generator=torch.Generator().manual_seed(0))
        obs = env.reset(num_trajectories=10)          # [20, 10, 2]
        obs, reward, done = env.step(torch.zeros(20, 10, 2))
    """

    act_dim = 2

    def __init__(
        self,
        goals: torch.Tensor,
        *,
        rotations: torch.Tensor | None = None,
        gains: torch.Tensor | None = None,
        observe_goal: bool = False,
        horizon: int = 100,
        max_action: float = 0.1,
        goal_radius: float = 0.01,
        normalized_actions: bool = False,
    ) -> None:
        if not isinstance(goals, torch.Tensor) or goals.dim() != 2 or goals.shape[1] != 2:
            raise ValueError(f"goals must be a tensor of shape [T, 2], got {_shape_of(goals)}")
        num_tasks = goals.shape[0]
        if num_tasks == 0:
            raise ValueError("goals has no tasks (T = 0): give at least one goal")
        if not goals.is_floating_point():
            raise ValueError(f"goals must be floating point, got dtype {goals.dtype}")
        if not torch.isfinite(goals).all():
            raise ValueError("goals must be finite; got NaN or inf")
        for name, value in (("rotations", rotations), ("gains", gains)):
            if value is not None and (
                not isinstance(value, torch.Tensor) or value.shape != (num_tasks,)
            ):
                raise ValueError(
                    f"{name} must be a tensor of shape [T] = [{num_tasks}], got {_shape_of(value)}"
                )
            if value is not None and not torch.isfinite(value).all():
                raise ValueError(f"{name} must be finite; got NaN or inf")
            if value is not None and value.device != goals.device:
                raise ValueError(f"{name} is on {value.device} but goals on {goals.device}")
        horizon = check_int("horizon", horizon, minimum=1)
        max_action = check_float("max_action", max_action, minimum=0.0, strict=True)
        goal_radius = check_float("goal_radius", goal_radius, minimum=0.0)
        self.goals = goals
        self.rotations = rotations
        self.gains = gains
        self.observe_goal = observe_goal
        self.horizon = horizon
        self.max_action = max_action
        self.goal_radius = goal_radius
        if not isinstance(normalized_actions, bool):
            raise ValueError(
                f"normalized_actions must be True or False, got {normalized_actions!r}"
            )
        self.normalized_actions = normalized_actions
        self.position = torch.zeros(num_tasks, 0, 2, dtype=goals.dtype, device=goals.device)
        self.done = torch.zeros(num_tasks, 0, dtype=torch.bool, device=goals.device)
        self.time = 0

    @classmethod
    def sample(
        cls,
        num_tasks: int,
        *,
        generator: torch.Generator | None = None,
        dynamics: bool = False,
        max_rotation: float = math.pi,
        gain_range: tuple[float, float] = (0.5, 1.5),
        device: torch.device | str | None = None,
        **kwargs,
    ) -> "Navigation2D":
        """``num_tasks`` tasks with goals uniform in ``[-0.5, 0.5]^2``.

        With ``dynamics=True`` (the dynamics variant) each task also draws an
        actuator angle uniform in ``[-max_rotation, max_rotation]`` and a gain
        uniform in ``gain_range``, and the goal is observed. Sampling happens on the
        CPU (so a seed gives the same tasks on every device), then moves to ``device``.

        Raises:
            ValueError: naming ``num_tasks``, ``max_rotation`` (finite, >= 0) or ``gain_range``
                (finite ``(low, high)`` with ``low <= high``).
        """
        check_int("num_tasks", num_tasks, minimum=1)
        max_rotation = check_float("max_rotation", max_rotation, minimum=0.0)
        if not isinstance(gain_range, (tuple, list)) or len(gain_range) != 2:
            raise ValueError(f"gain_range must be a pair (low, high), got {gain_range!r}")
        low, high = (check_float(f"gain_range[{i}]", g) for i, g in enumerate(gain_range))
        gain_range = (low, high)
        if low > high:
            raise ValueError(f"gain_range must be (low, high) with low <= high, got {gain_range}")
        goals = torch.rand(num_tasks, 2, generator=generator) - 0.5
        if dynamics:
            rotations = (2 * torch.rand(num_tasks, generator=generator) - 1) * max_rotation
            low, high = gain_range
            gains = low + (high - low) * torch.rand(num_tasks, generator=generator)
            kwargs.setdefault("observe_goal", True)
            return cls(
                goals.to(device), rotations=rotations.to(device), gains=gains.to(device), **kwargs
            )
        return cls(goals.to(device), **kwargs)

    @property
    def num_tasks(self) -> int:
        return self.goals.shape[0]

    @property
    def obs_dim(self) -> int:
        return 4 if self.observe_goal else 2

    def task(self, index: int) -> "Navigation2D":
        """Task ``index`` alone, as an environment with ``T = 1`` (``-1`` is the last task).

        Raises:
            TypeError: ``index`` is not an int.
            IndexError: ``index`` is outside ``-T .. T - 1``.
        """
        index = normalise_index(index, self.num_tasks)
        pick = slice(index, index + 1)
        return Navigation2D(
            self.goals[pick],
            rotations=None if self.rotations is None else self.rotations[pick],
            gains=None if self.gains is None else self.gains[pick],
            observe_goal=self.observe_goal,
            horizon=self.horizon,
            max_action=self.max_action,
            goal_radius=self.goal_radius,
            normalized_actions=self.normalized_actions,
        )

    def reset(self, num_trajectories: int) -> torch.Tensor:
        """Start ``num_trajectories`` episodes per task at the origin; return
        ``[T, N, obs_dim]``."""
        check_int("num_trajectories", num_trajectories, minimum=1)
        shape = (self.num_tasks, num_trajectories)
        self.position = torch.zeros(*shape, 2, dtype=self.goals.dtype, device=self.goals.device)
        self.done = torch.zeros(shape, dtype=torch.bool, device=self.goals.device)
        self.time = 0
        return self.observe()

    def observe(self) -> torch.Tensor:
        """The current observation, ``[T, N, obs_dim]``."""
        if not self.observe_goal:
            return self.position
        return torch.cat([self.position, self.goals[:, None, :].expand_as(self.position)], dim=-1)

    def displacement(self, actions: torch.Tensor) -> torch.Tensor:
        """How far ``actions [T, N, 2]`` move the agent: scale (``normalized_actions``), clip,
        then rotate and scale per task."""
        if self.normalized_actions:  # rllab: lb + (a + 1) / 2 * (ub - lb) = max_action * a
            actions = actions * self.max_action
        move = actions.clamp(-self.max_action, self.max_action)
        if self.rotations is not None:
            cos, sin = torch.cos(self.rotations)[:, None], torch.sin(self.rotations)[:, None]
            move = torch.stack(
                [cos * move[..., 0] - sin * move[..., 1], sin * move[..., 0] + cos * move[..., 1]],
                -1,
            )
        if self.gains is not None:
            move = self.gains[:, None, None] * move
        return move

    def step(self, actions: torch.Tensor) -> Step:
        """Move every unfinished trajectory by its clipped action.

        Args:
            actions: ``[T, N, 2]`` finite velocities (clipped here, not by the caller).

        Raises:
            ValueError: ``actions`` has the wrong shape or holds NaN/inf.
            RuntimeError: called before :meth:`reset` or after every episode ended.
        """
        expected = (*self.done.shape, self.act_dim)
        if not isinstance(actions, torch.Tensor) or tuple(actions.shape) != expected:
            raise ValueError(
                f"actions must be a tensor of shape [T, N, 2] = {list(expected)}, "
                f"got {_shape_of(actions)}"
            )
        if actions.device != self.goals.device:
            raise ValueError(
                f"actions are on {actions.device} but the tasks on {self.goals.device}"
            )
        if not torch.isfinite(actions).all():
            raise ValueError("actions must be finite; got NaN or inf")
        if self.done.numel() == 0 or bool(self.done.all()):
            raise RuntimeError("step() needs running episodes: call reset() first")
        active = ~self.done
        self.position = self.position + self.displacement(actions) * active[..., None].to(
            actions.dtype
        )
        offset = self.position - self.goals[:, None, :]
        reward = -offset.norm(dim=-1) * active.to(offset.dtype)
        self.time += 1
        reached = (offset.abs() < self.goal_radius).all(dim=-1)
        self.done = self.done | reached | (self.time >= self.horizon)
        return Step(self.observe(), reward, self.done.clone())


def _shape_of(value: object) -> str:
    return (
        f"shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__
    )
