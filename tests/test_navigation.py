"""Navigation2D: dynamics, clipping, reward, termination, batching and input checks."""

import math

import pytest
import torch

from metalearn.envs import Navigation2D


def one_task(goal=(0.3, -0.2), **kwargs) -> Navigation2D:
    return Navigation2D(torch.tensor([goal], dtype=torch.float64), **kwargs)


def test_starts_at_origin_and_moves_by_the_action():
    env = one_task()
    obs = env.reset(num_trajectories=3)
    assert obs.shape == (1, 3, 2) and torch.equal(obs, torch.zeros(1, 3, 2, dtype=torch.float64))
    action = torch.tensor([0.05, -0.03], dtype=torch.float64).expand(1, 3, 2)
    obs, reward, done = env.step(action)
    assert torch.allclose(obs, action)
    obs, _, _ = env.step(action)
    assert torch.allclose(obs, 2 * action)
    assert not done.any()


def test_actions_are_clipped_to_the_box():
    env = one_task()
    env.reset(2)
    obs, _, _ = env.step(torch.tensor([[[0.5, -2.0], [0.07, 3.0]]], dtype=torch.float64))
    assert torch.allclose(obs, torch.tensor([[[0.1, -0.1], [0.07, 0.1]]], dtype=torch.float64))


def test_normalized_actions_are_scaled_as_rllabs_normalize_then_clipped():
    env = one_task(normalized_actions=True)
    env.reset(2)
    obs, _, _ = env.step(torch.tensor([[[0.5, -2.0], [1.0, -0.3]]], dtype=torch.float64))
    # rllab: lb + (a + 1) / 2 * (ub - lb) with (lb, ub) = (-0.1, 0.1), then clipped
    expected = torch.tensor([[[0.05, -0.1], [0.1, -0.03]]], dtype=torch.float64)
    assert torch.allclose(obs, expected)
    assert env.task(0).normalized_actions
    with pytest.raises(ValueError, match="normalized_actions"):
        one_task(normalized_actions=1)


def test_reward_is_minus_the_distance_to_the_goal_after_the_move():
    env = one_task(goal=(0.3, -0.2))
    env.reset(1)
    _, reward, _ = env.step(torch.tensor([[[0.1, 0.1]]], dtype=torch.float64))
    assert reward.item() == pytest.approx(-math.hypot(0.3 - 0.1, -0.2 - 0.1))


def test_episode_ends_within_goal_radius_and_then_nothing_moves_or_pays():
    env = one_task(goal=(0.05, 0.0))
    env.reset(2)
    actions = torch.tensor([[[0.05, 0.005], [0.0, 0.0]]], dtype=torch.float64)
    obs, reward, done = env.step(actions)
    assert done.tolist() == [[True, False]]  # first is within 0.01 in both coordinates
    assert reward[0, 0].item() == pytest.approx(-0.005)
    obs2, reward2, done2 = env.step(torch.full((1, 2, 2), 0.1, dtype=torch.float64))
    assert torch.equal(obs2[0, 0], obs[0, 0]) and reward2[0, 0].item() == 0.0
    assert done2[0, 0] and not torch.equal(obs2[0, 1], obs[0, 1])


def test_episode_ends_at_the_horizon():
    env = one_task(horizon=3)
    env.reset(1)
    dones = [env.step(torch.zeros(1, 1, 2, dtype=torch.float64)).done.item() for _ in range(3)]
    assert dones == [False, False, True]
    with pytest.raises(RuntimeError, match="reset"):
        env.step(torch.zeros(1, 1, 2, dtype=torch.float64))


def test_dynamics_variant_rotates_and_scales_the_action():
    env = one_task(
        rotations=torch.tensor([math.pi / 2], dtype=torch.float64),
        gains=torch.tensor([0.5], dtype=torch.float64),
    )
    env.reset(1)
    obs, _, _ = env.step(torch.tensor([[[0.1, 0.0]]], dtype=torch.float64))
    assert torch.allclose(obs, torch.tensor([[[0.0, 0.05]]], dtype=torch.float64), atol=1e-12)


def test_observe_goal_appends_the_goal():
    env = one_task(goal=(0.3, -0.2), observe_goal=True)
    obs = env.reset(2)
    assert env.obs_dim == 4 and obs.shape == (1, 2, 4)
    assert torch.allclose(obs[0, 1], torch.tensor([0.0, 0.0, 0.3, -0.2], dtype=torch.float64))


def test_sample_draws_goals_in_the_box_and_dynamics_when_asked():
    env = Navigation2D.sample(500, generator=torch.Generator().manual_seed(0))
    assert env.goals.abs().max() <= 0.5 and env.goals.abs().max() > 0.45 and env.rotations is None
    variant = Navigation2D.sample(500, generator=torch.Generator().manual_seed(0), dynamics=True)
    assert variant.observe_goal and variant.rotations.abs().max() <= math.pi
    assert variant.gains.min() >= 0.5 and variant.gains.max() <= 1.5


@pytest.mark.parametrize("dynamics", [False, True])
def test_batched_tasks_equal_stepping_tasks_one_by_one(dynamics):
    generator = torch.Generator().manual_seed(1)
    env = Navigation2D.sample(
        5, generator=generator, dynamics=dynamics, goal_radius=0.05, horizon=30
    )
    singles = [env.task(i) for i in range(5)]
    obs = env.reset(4)
    for i, single in enumerate(singles):
        assert torch.equal(single.reset(4)[0], obs[i])
    for _ in range(30):
        actions = 0.15 * torch.randn(5, 4, 2, generator=generator)
        obs, reward, done = env.step(actions)
        for i, single in enumerate(singles):
            s_obs, s_reward, s_done = single.step(actions[i : i + 1])
            assert torch.equal(s_obs[0], obs[i]) and torch.equal(s_reward[0], reward[i])
            assert torch.equal(s_done[0], done[i])
    assert done.all()


def test_step_is_differentiable_in_the_actions():
    env = one_task(goal=(0.3, 0.3), rotations=torch.tensor([0.4], dtype=torch.float64))
    env.reset(1)
    actions = torch.tensor([[[0.02, 0.03]]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: (env.reset(1), env.step(a).reward)[1], (actions,))


def test_bad_actions_raise_value_error_naming_actions():
    env = one_task()
    env.reset(2)
    with pytest.raises(ValueError, match="actions"):
        env.step(torch.zeros(1, 2, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="actions"):
        env.step(torch.zeros(2, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="actions"):
        env.step(torch.tensor([[[float("nan"), 0.0], [0.0, 0.0]]], dtype=torch.float64))
    with pytest.raises(ValueError, match="actions"):
        env.step([[0.0, 0.0]])


def test_bad_construction_raises_value_error_naming_the_argument():
    with pytest.raises(ValueError, match="goals"):
        Navigation2D(torch.zeros(3))
    with pytest.raises(ValueError, match="rotations"):
        Navigation2D(torch.zeros(3, 2), rotations=torch.zeros(2))
    with pytest.raises(ValueError, match="num_trajectories"):
        one_task().reset(0)
