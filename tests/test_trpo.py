"""TRPO as MAML-RL's meta-update: its pieces against independent references, and one step that
keeps to its trust region."""

import pytest
import torch

from metalearn.algorithms.maml import MAML
from metalearn.models.policy import GaussianMLPPolicy
from metalearn.rl.maml_rl import MAMLRollouts
from metalearn.rl.policy_gradient import lvc_loss, pack_targets, reinforce_loss
from metalearn.rl.trpo import TRPO, conjugate_gradient, gaussian_kl, ratio_surrogate


def packed(output: torch.Tensor, old: torch.Tensor, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    shape = output.shape[:-1]
    actions = torch.randn(*shape, 2, generator=g, dtype=output.dtype)
    advantages = torch.randn(*shape, generator=g, dtype=output.dtype)
    valid = (torch.rand(*shape, generator=g) > 0.2).to(output.dtype)
    return torch.cat([pack_targets(actions, advantages, valid), old], dim=-1)


def test_conjugate_gradient_solves_a_positive_definite_system():
    g = torch.Generator().manual_seed(0)
    m = torch.randn(6, 6, generator=g, dtype=torch.float64)
    a, b = m @ m.T + 0.5 * torch.eye(6, dtype=torch.float64), torch.randn(6, dtype=torch.float64)
    x = conjugate_gradient(lambda v: a @ v, b, iters=30)
    torch.testing.assert_close(x, torch.linalg.solve(a, b), rtol=1e-8, atol=1e-8)


def test_gaussian_kl_matches_torch_distributions_and_is_zero_at_the_old_policy():
    g = torch.Generator().manual_seed(1)
    new, old = (torch.randn(3, 5, 4, generator=g, dtype=torch.float64) for _ in range(2))
    targets = packed(new, old)
    valid = targets[..., 3]
    normal = torch.distributions.Normal
    reference = torch.distributions.kl_divergence(
        normal(old[..., :2], old[..., 2:].exp()), normal(new[..., :2], new[..., 2:].exp())
    ).sum(-1)
    expected = (reference * valid).sum() / valid.sum()
    torch.testing.assert_close(gaussian_kl(new, targets), expected)
    assert gaussian_kl(old, targets).abs() < 1e-12


def test_the_ratio_surrogate_has_the_reinforce_gradient_at_the_old_policy():
    g = torch.Generator().manual_seed(2)
    old = torch.randn(40, 4, generator=g, dtype=torch.float64)
    targets = packed(old, old)
    output = old.clone().requires_grad_()
    ratio_grad = torch.autograd.grad(ratio_surrogate(output, targets), output)[0]
    output = old.clone().requires_grad_()
    reinforce_grad = torch.autograd.grad(reinforce_loss(output, targets[..., :4]), output)[0]
    torch.testing.assert_close(ratio_grad, reinforce_grad)


def test_a_step_keeps_to_the_trust_region_and_lowers_the_surrogate():
    torch.manual_seed(0)
    policy = GaussianMLPPolicy(2, 2, hidden=(16, 16))
    maml = MAML(policy, reinforce_loss, inner_lr=0.5, inner_loss_fn=lvc_loss, batched=False)
    source = MAMLRollouts(maml, 4, seed=0, env_options={"normalized_actions": True})
    batch = source.sample(3)
    trpo = TRPO(maml, max_kl=0.01)
    before = [p.detach().clone() for p in policy.parameters()]
    old = maml.predict(batch.support_x, batch.support_y, batch.query_x)
    trpo.surrogate(batch).backward()
    trpo.step()
    assert trpo.last["backtracks"] >= 0, trpo.last  # a step was taken
    assert trpo.last["after"] < trpo.last["surrogate"], trpo.last
    assert any(not torch.equal(a, b.detach()) for a, b in zip(before, policy.parameters()))
    new = maml.predict(batch.support_x, batch.support_y, batch.query_x)
    targets = torch.cat([batch.query_y, old], -1)
    kl = torch.stack([gaussian_kl(n, t) for n, t in zip(new, targets)]).mean()
    assert 0 < kl <= 0.01 + 1e-6, kl  # the new post-update policies stay in the trust region
    assert abs(kl.item() - trpo.last["kl"]) < 1e-6


def test_bad_settings_and_a_step_without_a_batch_are_refused():
    maml = MAML(GaussianMLPPolicy(2, 2, hidden=(4,)), reinforce_loss, inner_lr=0.5)
    with pytest.raises(ValueError, match="max_kl"):
        TRPO(maml, max_kl=0.0)
    with pytest.raises(ValueError, match="backtrack_ratio"):
        TRPO(maml, backtrack_ratio=1.5)
    with pytest.raises(RuntimeError, match="surrogate"):
        TRPO(maml).step()
    with pytest.raises(ValueError, match="targets"):
        ratio_surrogate(torch.zeros(3, 4), torch.zeros(3, 4))
