"""Batch norm with the statistics of an episode's support set, written out as means and
variances (the LSTM meta-learner's batch norm, Ravi & Larochelle's code).
"""

from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

Statistics = list[tuple[torch.Tensor, torch.Tensor]]  # per batch-norm call: mean, variance


def batch_statistics(input: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and (biased) variance of ``input [N, C, ...]``: two ``[C]`` tensors."""
    dims = [0, *range(2, input.dim())]
    return input.mean(dim=dims), input.var(dim=dims, unbiased=False)


def normalise(
    input: torch.Tensor,
    mean: torch.Tensor,
    var: torch.Tensor,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    eps: float,
) -> torch.Tensor:
    """``(input - mean) / sqrt(var + eps) * weight + bias`` per channel: ``[N, C, ...]``, with
    ``mean``, ``var``, ``weight``, ``bias`` of shape ``[C]``."""
    channel_shape = [1, -1] + [1] * (input.dim() - 2)
    output = (input - mean.reshape(channel_shape)) * torch.rsqrt(var.reshape(channel_shape) + eps)
    if weight is not None:
        output = output * weight.reshape(channel_shape)
    if bias is not None:
        output = output + bias.reshape(channel_shape)
    return output


_BATCH_NORM = inspect.signature(F.batch_norm)


class EpisodeStatistics(TorchFunctionMode):
    """Batch norm with statistics of the episode's own support set (Ravi & Larochelle's code).

    Inside ``with EpisodeStatistics() as mode:`` every ``F.batch_norm`` call normalises with its
    batch's statistics and appends them to ``mode.recorded`` as ``(mean [C], variance [C])``,
    the variance unbiased as running statistics keep it. Inside
    ``with EpisodeStatistics(statistics):`` the ``i``-th call normalises with the ``i``-th pair of
    ``statistics`` instead, so that no example's output depends on the others in its batch.
    Ignores the modules' own running statistics and ``training`` flag. Works under ``vmap``.
    """

    def __init__(self, statistics: Statistics | None = None) -> None:
        super().__init__()
        self.statistics = statistics
        self.recorded: Statistics = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is not F.batch_norm:
            return func(*args, **kwargs)
        call = _BATCH_NORM.bind(*args, **kwargs)
        call.apply_defaults()
        input, eps = call.arguments["input"], call.arguments["eps"]
        if self.statistics is None:
            mean, var = batch_statistics(input)
            count = input.numel() // input.shape[1]  # examples x positions per channel
            self.recorded.append((mean, var * count / max(count - 1, 1)))
        else:
            if len(self.recorded) >= len(self.statistics):
                raise ValueError(
                    f"statistics has {len(self.statistics)} (mean, var) pairs, but the network "
                    "calls batch norm more often"
                )
            mean, var = self.statistics[len(self.recorded)]
            self.recorded.append((mean, var))
        return normalise(input, mean, var, call.arguments["weight"], call.arguments["bias"], eps)
