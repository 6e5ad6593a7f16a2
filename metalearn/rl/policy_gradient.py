"""The REINFORCE surrogate losses, written on the output of
:class:`~metalearn.models.policy.GaussianMLPPolicy` (mean and log standard deviation).

The loss of REINFORCE (Williams, 1992) is the *score-function
surrogate* ``-mean_t log pi(a_t | s_t) * A_t``: its gradient is an unbiased
estimate of minus the policy gradient. With ``magic_box=True`` the log-probability
is replaced by the DiCE "magic box" ``exp(log pi - stop_grad(log pi))`` of each
step (ProMP's low-variance curvature estimator, rothfuss2019promp, after
foerster2018dice): the value and first gradient are unchanged, but its second
derivative also carries the score-function term of the *sampling* distribution,
which a MAML inner step must have for its meta-gradient to be right.
"""

from __future__ import annotations

import math

import torch


def split_output(output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``[..., 2 * act_dim]`` policy output -> mean ``[..., act_dim]``, log-std
    ``[..., act_dim]``."""
    if output.shape[-1] % 2:
        raise ValueError(
            f"output must end in 2 * act_dim numbers (mean, log_std), got {tuple(output.shape)}"
        )
    mean, log_std = output.chunk(2, dim=-1)
    return mean, log_std


def gaussian_log_prob(output: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Log-density of ``actions [..., act_dim]`` under the policy output ``[..., 2 * act_dim]``
    -> ``[...]``."""
    mean, log_std = split_output(output)
    if actions.shape != mean.shape:
        raise ValueError(
            f"actions must have shape {tuple(mean.shape)} to match the policy output, "
            f"got {tuple(actions.shape)}"
        )
    z = (actions - mean) * torch.exp(-log_std)
    return (-0.5 * z.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(dim=-1)


def sample_actions(output: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw ``a ~ N(mean, std^2)`` from the policy output ``[..., 2 * act_dim]`` ->
    ``[..., act_dim]``.

    The noise is drawn on the CPU with ``generator`` and moved to the output's
    device, so a seed gives the same actions everywhere.
    """
    mean, log_std = split_output(output)
    noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype).to(mean.device)
    return mean + torch.exp(log_std) * noise


def pack_targets(
    actions: torch.Tensor, advantages: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    """The ``y`` a policy-gradient learner is trained on: ``[..., act_dim + 2]``.

    Args:
        actions: ``[..., act_dim]`` the actions taken.
        advantages: ``[...]`` how much better than expected each action turned out.
        valid: ``[...]`` 1 for real steps, 0 for padding after an episode ended.
    """
    if advantages.shape != actions.shape[:-1] or valid.shape != actions.shape[:-1]:
        raise ValueError(
            f"advantages and valid must have shape {tuple(actions.shape[:-1])} (actions without "
            f"the last dim), got {tuple(advantages.shape)} and {tuple(valid.shape)}"
        )
    return torch.cat([actions, advantages[..., None], valid[..., None].to(actions.dtype)], dim=-1)


def reinforce_loss(
    output: torch.Tensor, targets: torch.Tensor, magic_box: bool = False
) -> torch.Tensor:
    """The score-function surrogate ``-sum(log pi(a|s) * A * valid) / sum(valid)`` (a scalar).

    Args:
        output: ``[..., 2 * act_dim]`` policy outputs on the visited states.
        targets: ``[..., act_dim + 2]`` from :func:`pack_targets` (actions, advantage, valid).
        magic_box: use ``exp(log pi - stop_grad(log pi))`` in place of ``log pi``
            (DiCE / ProMP-LVC): same value up to a constant and same gradient, but
            the Hessian includes the sampling distribution's score term.
    """
    act_dim = output.shape[-1] // 2
    if targets.shape[-1] != act_dim + 2 or targets.shape[:-1] != output.shape[:-1]:
        raise ValueError(
            f"targets must have shape {(*output.shape[:-1], act_dim + 2)} "
            f"(actions, advantage, valid), got {tuple(targets.shape)}"
        )
    actions, advantages, valid = (
        targets[..., :act_dim],
        targets[..., act_dim],
        targets[..., act_dim + 1],
    )
    log_prob = gaussian_log_prob(output, actions)
    if magic_box:
        log_prob = torch.exp(log_prob - log_prob.detach())
    return -(log_prob * advantages * valid).sum() / valid.sum().clamp_min(1.0)


def lvc_loss(output: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """:func:`reinforce_loss` with the DiCE magic box: the inner loss for second-order MAML-RL."""
    return reinforce_loss(output, targets, magic_box=True)
