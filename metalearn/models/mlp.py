"""A plain multi-layer perceptron, the learner of the toy chapters."""

from __future__ import annotations

from typing import Sequence

from torch import nn


class MLP(nn.Sequential):
    """``Linear -> ReLU`` blocks then a final ``Linear``:
    ``[..., in_features] -> [..., out_features]``.

    ``MLP(1, [40, 40], 1)`` is the MAML paper's sinusoid regressor.
    """

    def __init__(self, in_features: int, hidden: Sequence[int], out_features: int) -> None:
        sizes = [in_features, *hidden]
        layers: list[nn.Module] = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
        layers.append(nn.Linear(sizes[-1], out_features))
        super().__init__(*layers)
