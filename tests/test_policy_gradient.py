"""Gaussian policy, REINFORCE / DiCE surrogates, rollouts, returns, baseline and MAML-RL batches."""

import math

import pytest
import torch
from torch.func import functional_call

from metalearn.algorithms.maml import MAML
from metalearn.envs import Navigation2D
from metalearn.models.policy import GaussianMLPPolicy
from metalearn.rl.maml_rl import MAMLRollouts, adapt_by_policy_gradient, task_policy
from metalearn.rl.policy_gradient import (
    gaussian_log_prob,
    lvc_loss,
    pack_targets,
    reinforce_loss,
    sample_actions,
)
from metalearn.rl.rollouts import (
    discounted_returns,
    linear_baseline,
    policy_batch,
    rollout,
    rollout_transitions,
)


def one_step_gaussian(mu: float, log_sigma: float, samples: int, seed: int = 0):
    """A 1-D Gaussian policy ``N(mu, sigma^2)`` on reward ``-(a - 1)^2``: the surrogate's pieces."""
    theta = torch.tensor([mu, log_sigma], dtype=torch.float64, requires_grad=True)
    output = theta.expand(samples, 2)
    actions = sample_actions(output.detach(), torch.Generator().manual_seed(seed))
    rewards = -(actions[:, 0] - 1.0).pow(2)
    return theta, output, actions, rewards


def analytic_gradient(mu: float, log_sigma: float) -> torch.Tensor:
    """``d/d(mu, log sigma) E[-(a - 1)^2] = d/d(..) -((mu - 1)^2 + sigma^2)``."""
    return torch.tensor([-2 * (mu - 1.0), -2 * math.exp(2 * log_sigma)], dtype=torch.float64)


@pytest.mark.parametrize("baseline", [0.0, -0.7])
def test_score_function_gradient_matches_the_analytic_gradient(baseline):
    mu, log_sigma = 0.3, math.log(0.5)
    theta, output, actions, rewards = one_step_gaussian(mu, log_sigma, samples=200_000)
    targets = pack_targets(actions, rewards - baseline, torch.ones_like(rewards))
    (estimate,) = torch.autograd.grad(-reinforce_loss(output, targets), theta)
    assert torch.allclose(estimate, analytic_gradient(mu, log_sigma), atol=0.03), estimate


def test_magic_box_keeps_the_gradient_and_adds_the_sampling_curvature():
    """One step: DiCE's Hessian estimates d^2 E[r] / d mu^2 = -2; plain log-prob's misses the
    score term."""
    mu, log_sigma = 0.3, math.log(0.5)
    theta, output, actions, rewards = one_step_gaussian(mu, log_sigma, samples=200_000, seed=1)
    targets = pack_targets(actions, rewards, torch.ones_like(rewards))
    plain = lambda t: -reinforce_loss(t.expand(actions.shape[0], 2), targets)  # noqa: E731
    dice = lambda t: -lvc_loss(t.expand(actions.shape[0], 2), targets)  # noqa: E731
    assert torch.allclose(
        torch.autograd.functional.jacobian(plain, theta),
        torch.autograd.functional.jacobian(dice, theta),
    )
    hessian_dice = torch.autograd.functional.hessian(dice, theta.detach())[0, 0]
    hessian_plain = torch.autograd.functional.hessian(plain, theta.detach())[0, 0]
    assert hessian_dice.item() == pytest.approx(-2.0, abs=0.1)
    expected_plain = -1 / math.exp(2 * log_sigma) * rewards.mean()  # E[d^2 log pi / d mu^2 * r]
    assert hessian_plain.item() == pytest.approx(expected_plain.item(), rel=1e-6)
    assert abs(hessian_plain.item() + 2.0) > 1.0


def test_gaussian_log_prob_matches_torch_distributions():
    output = torch.randn(5, 7, 4, dtype=torch.float64)
    actions = torch.randn(5, 7, 2, dtype=torch.float64)
    mean, log_std = output[..., :2], output[..., 2:]
    expected = torch.distributions.Normal(mean, log_std.exp()).log_prob(actions).sum(-1)
    assert torch.allclose(gaussian_log_prob(output, actions), expected)


def test_policy_outputs_mean_and_broadcast_log_std_and_works_with_functional_call():
    policy = GaussianMLPPolicy(2, 2, init_std=0.5)
    output = policy(torch.randn(3, 4, 2))
    assert output.shape == (3, 4, 4)
    assert torch.allclose(output[..., 2:], torch.full((3, 4, 2), math.log(0.5)))
    params = {k: v.detach().clone() for k, v in policy.named_parameters()}
    params["log_std"] = torch.zeros(2)
    assert torch.allclose(
        functional_call(policy, params, (torch.randn(3, 2),))[..., 2:], torch.zeros(3, 2)
    )


def test_bad_policy_inputs_raise_value_error_naming_the_argument():
    output = torch.zeros(6, 4)
    with pytest.raises(ValueError, match="actions"):
        gaussian_log_prob(output, torch.zeros(6, 3))
    with pytest.raises(ValueError, match="targets"):
        reinforce_loss(output, torch.zeros(6, 3))
    with pytest.raises(ValueError, match="advantages"):
        pack_targets(torch.zeros(6, 2), torch.zeros(5), torch.ones(6))
    with pytest.raises(ValueError, match="init_std"):
        GaussianMLPPolicy(2, 2, init_std=0.0)


def test_discounted_returns_match_a_backward_loop():
    rewards = torch.randn(3, 4, 9, dtype=torch.float64)
    expected = torch.zeros_like(rewards)
    running = torch.zeros(3, 4, dtype=torch.float64)
    for t in reversed(range(9)):
        running = rewards[..., t] + 0.9 * running
        expected[..., t] = running
    assert torch.allclose(discounted_returns(rewards, 0.9), expected)


def test_linear_baseline_fits_returns_that_are_linear_in_its_features():
    obs = torch.rand(2, 5, 10, 2, dtype=torch.float64)
    time = torch.arange(10, dtype=torch.float64) / 100
    returns = 2 * obs[..., 0] - obs[..., 1].pow(2) + 3 * time - 1
    returns[1] *= -1  # a different task: a different fit
    valid = torch.ones(2, 5, 10, dtype=torch.float64)
    assert torch.allclose(linear_baseline(obs, returns, valid, reg=1e-10), returns, atol=1e-5)


def deterministic_policy(obs: torch.Tensor) -> torch.Tensor:
    mean = 0.5 * (torch.tensor([0.2, -0.3]) - obs)
    return torch.cat([mean, torch.full_like(mean, -2.0)], dim=-1)


def test_rollout_shapes_padding_and_returns():
    env = Navigation2D(torch.tensor([[0.2, -0.3], [0.4, 0.4]]), horizon=40)
    trajectories = rollout(env, deterministic_policy, 3, deterministic=True)
    observations, actions, rewards, valid = trajectories
    assert (
        observations.shape == (2, 3, 40, 2)
        and actions.shape == (2, 3, 40, 2)
        and rewards.shape == (2, 3, 40)
    )
    first_task_steps = valid[0, 0].sum().item()
    assert (
        0 < first_task_steps < 40 and valid[1, 0].sum().item() == 40
    )  # task 0 reaches its goal, task 1 not
    assert (rewards[valid == 0] == 0).all() and (valid[0, 0, : int(first_task_steps)] == 1).all()
    assert torch.allclose(trajectories.returns(), rewards.sum(-1).mean(-1))


def test_rollout_transitions_counts_transitions_in_whole_trajectories():
    # the policy heads for task 0's goal (its episodes end early) and never reaches task 1's
    env = Navigation2D(torch.tensor([[0.2, -0.3], [0.4, 0.4]]), horizon=20)

    def precise_policy(obs: torch.Tensor) -> torch.Tensor:  # std e^-20: as good as its mean
        mean = deterministic_policy(obs)[..., :2]
        return torch.cat([mean, torch.full_like(mean, -20.0)], dim=-1)

    paths = rollout_transitions(env, precise_policy, 60, torch.Generator().manual_seed(0))
    lengths = paths.valid.sum(dim=-1)  # [T, N]
    present = paths.valid[..., 0]
    for task in range(2):
        kept = lengths[task][present[task] == 1]
        assert kept.sum() >= 60 and kept[:-1].sum() < 60  # whole trajectories, none too many
        assert (lengths[task][present[task] == 0] == 0).all()
        assert (present[task][: len(kept)] == 1).all()  # the kept ones come first
    assert present[0].sum() > 3 and present[1].sum() == 3  # short episodes: more of them
    # returns() averages over the present trajectories only
    expected = [paths.rewards[t, present[t] == 1].sum(-1).mean() for t in range(2)]
    assert torch.allclose(paths.returns(), torch.stack(expected))


def test_rollout_transitions_equals_rollout_when_episodes_last_the_horizon():
    env = Navigation2D(torch.tensor([[0.4, 0.4], [-0.45, 0.3]]), horizon=10)
    policy = GaussianMLPPolicy(2, 2, init_std=0.01)
    with torch.no_grad():
        policy.mean[-1].bias.fill_(-5.0)  # heads away from both goals: no episode ends early
    by_count = rollout_transitions(env, policy, 30, torch.Generator().manual_seed(3))
    by_trajectories = rollout(env, policy, 3, torch.Generator().manual_seed(3))
    for a, b in zip(by_count, by_trajectories):
        assert torch.equal(a, b)


def test_rollout_transitions_rejects_a_bad_count():
    env = Navigation2D(torch.tensor([[0.4, 0.4]]), horizon=10)
    with pytest.raises(ValueError, match="transitions"):
        rollout_transitions(env, deterministic_policy, 0)


def test_policy_starts_as_the_maml_rl_code():
    policy = GaussianMLPPolicy(2, 2, hidden=(100, 100), init_std=1.0)
    layers = [m for m in policy.mean if isinstance(m, torch.nn.Linear)]
    for layer in layers:  # Xavier-uniform weights, zero biases (MAMLGaussianMLPPolicy)
        fan_out, fan_in = layer.weight.shape
        bound = math.sqrt(6 / (fan_in + fan_out))
        assert (layer.bias == 0).all() and layer.weight.abs().max() <= bound
        assert layer.weight.abs().max() > 0.9 * bound  # not a narrower initialisation
    assert torch.equal(policy.log_std, torch.zeros(2))


def test_policy_batch_normalises_advantages_per_task_and_zeroes_padding():
    env = Navigation2D.sample(3, generator=torch.Generator().manual_seed(0), horizon=30)
    trajectories = rollout(
        env, GaussianMLPPolicy(2, 2, init_std=0.1), 4, torch.Generator().manual_seed(1)
    )
    x, y = policy_batch(trajectories)
    assert x.shape == (3, 120, 2) and y.shape == (3, 120, 4)
    advantages, valid = y[..., 2], y[..., 3]
    for task in range(3):
        real = advantages[task][valid[task] == 1]
        assert real.mean().abs() < 1e-5 and (real.std(unbiased=False) - 1).abs() < 1e-4
    assert (advantages[valid == 0] == 0).all()


def test_task_policy_equals_each_task_run_alone():
    policy = GaussianMLPPolicy(2, 2)
    params = [{k: v + 0.1 * i for k, v in policy.named_parameters()} for i in range(3)]
    obs = torch.randn(3, 5, 2)
    batched = task_policy(policy, params)(obs)
    for i in range(3):
        assert torch.allclose(batched[i], functional_call(policy, params[i], (obs[i],)), atol=1e-6)


def small_maml(first_order: bool = False) -> tuple[MAML, MAMLRollouts]:
    torch.manual_seed(0)
    maml = MAML(
        GaussianMLPPolicy(2, 2, hidden=(16, 16)),
        reinforce_loss,
        0.1,
        first_order=first_order,
        inner_loss_fn=lvc_loss,
    )
    return maml, MAMLRollouts(maml, 4, seed=0, env_options=dict(horizon=15))


def test_maml_rl_batch_and_meta_gradient():
    maml, sampler = small_maml()
    batch = sampler.sample(3).validate()
    assert batch.support_x.shape == (3, 60, 2) and batch.query_y.shape == (3, 60, 4)
    assert len(sampler.history) == 1
    loss = maml.meta_loss(*batch)
    second = torch.autograd.grad(loss, list(maml.parameters()))
    first_maml, _ = small_maml(first_order=True)
    first = torch.autograd.grad(first_maml.meta_loss(*batch), list(first_maml.parameters()))
    assert all(torch.isfinite(g).all() for g in second)
    assert any(
        not torch.allclose(a, b) for a, b in zip(first, second)
    )  # the second-order terms are there


def test_policy_gradient_steps_improve_the_return_on_a_fixed_goal():
    torch.manual_seed(0)
    policy = GaussianMLPPolicy(2, 2, hidden=(32, 32), init_std=0.3)
    env = Navigation2D(torch.tensor([[0.4, -0.4]]), horizon=20)
    returns, params = adapt_by_policy_gradient(
        policy, env, (0.2,) * 4, 40, torch.Generator().manual_seed(0)
    )
    assert returns.shape == (5, 1) and len(params) == 5 and len(params[0]) == 1
    assert returns[-1, 0] > returns[0, 0] + 1.0, returns.flatten()


def test_a_policy_gradient_step_starts_from_the_given_parameters():
    policy = GaussianMLPPolicy(2, 2, hidden=(8,))
    params = {k: v.detach() + 1.0 for k, v in policy.named_parameters()}
    x, y = torch.randn(10, 2), pack_targets(torch.randn(10, 2), torch.zeros(10), torch.ones(10))
    maml = MAML(policy, reinforce_loss, inner_lr=0.1)
    stepped = maml.adapt(x, y, steps=1, params=params)  # zero advantages: no move
    assert all(torch.allclose(stepped[k], params[k]) for k in params)


def test_maml_rollouts_draw_their_tasks_from_their_own_seed():
    first = small_maml()[1].sample(2)
    again = small_maml()[1].sample(2)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
