"""The four-block convolutional network of the MAML paper's Omniglot experiments."""

from __future__ import annotations

import torch
from torch import nn


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """3x3 convolution (padding 1), batch norm, ReLU, 2x2 max-pool: halves height and width."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        # No running statistics: batch norm always normalises with the statistics of the
        # batch it is given -- per task under MAML ("transductive", as in the MAML paper).
        nn.BatchNorm2d(out_channels, track_running_stats=False),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )


class Conv4(nn.Module):
    """Four conv blocks and a linear head, ``[B, in_channels, 28, 28] -> [B, num_classes]``.

    Spatial size 28 -> 14 -> 7 -> 3 -> 1, so the head sees ``hidden`` features.
    ``Conv4(1, 5)`` is the 5-way Omniglot learner of Finn et al. (2017), with max-pooling
    as in their MiniImagenet network. Batch norm keeps no running statistics, so it uses
    the statistics of the current batch in training and in evaluation alike.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 5, hidden: int = 64) -> None:
        super().__init__()
        for name, value in dict(
            in_channels=in_channels, num_classes=num_classes, hidden=hidden
        ).items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.features = nn.Sequential(
            conv_block(in_channels, hidden),
            conv_block(hidden, hidden),
            conv_block(hidden, hidden),
            conv_block(hidden, hidden),
            nn.Flatten(),
        )
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images [B, in_channels, 28, 28]`` -> logits ``[B, num_classes]``."""
        if images.dim() != 4 or images.shape[-2:] != (28, 28):
            raise ValueError(f"images must have shape [B, C, 28, 28], got {tuple(images.shape)}")
        return self.head(self.features(images))
