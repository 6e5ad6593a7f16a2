"""A Gaussian MLP policy whose output carries everything the policy-gradient losses need.

``forward`` returns the mean *and* the log standard deviation, concatenated, so that
``torch.func.functional_call(policy, params, obs)`` gives the log-probabilities under any
parameters, which is what MAML's inner loop needs (:mod:`metalearn.rl.policy_gradient`).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from metalearn.checks import check_float, check_int
from metalearn.models.mlp import MLP


class GaussianMLPPolicy(nn.Module):
    """``pi(a | s) = N(mu(s), diag(exp(log_std))^2)`` with ``mu`` an MLP (two hidden layers of 100).

    ``forward(obs [..., obs_dim]) -> [..., 2 * act_dim]``: the mean, then the
    log standard deviation broadcast to the mean's shape. The log-std is a
    learnable parameter independent of the state, as in the MAML paper. The mean network starts
    as the MAML-RL code's (``create_MLP``: Xavier-uniform weights, zero biases), not with
    PyTorch's default initialisation.

    Args:
        obs_dim: observation size.
        act_dim: action size.
        hidden: hidden layer widths.
        init_std: initial standard deviation of every action coordinate.
    """

    def __init__(
        self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (100, 100), init_std: float = 1.0
    ) -> None:
        super().__init__()
        check_int("obs_dim", obs_dim, minimum=1)
        check_int("act_dim", act_dim, minimum=1)
        for i, width in enumerate(hidden):
            check_int(f"hidden[{i}]", width, minimum=1)
        init_std = check_float("init_std", init_std, minimum=0.0, strict=True)
        self.act_dim = act_dim
        self.mean = MLP(obs_dim, list(hidden), act_dim)
        self.log_std = nn.Parameter(torch.full((act_dim,), math.log(init_std)))
        for layer in self.mean:  # as MAMLGaussianMLPPolicy.create_MLP in cbfinn/maml_rl
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        mean = self.mean(obs)
        return torch.cat([mean, self.log_std.expand_as(mean)], dim=-1)
