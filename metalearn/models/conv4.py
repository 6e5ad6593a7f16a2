"""The four-block convolutional network of the MAML paper (Finn et al., 2017), both variants."""

from __future__ import annotations

import torch
from torch import nn


def conv_block(in_channels: int, out_channels: int, max_pool: bool = True) -> nn.Sequential:
    """3x3 convolution, batch norm, ReLU; halves height and width, by a 2x2 max-pool after a
    stride-1 convolution (``max_pool=True``) or by the convolution's own stride 2."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, 3, stride=1 if max_pool else 2, padding=1),
        # No running statistics: batch norm always normalises with the statistics of the
        # batch it is given -- per task under MAML ("transductive", as in the MAML paper).
        nn.BatchNorm2d(out_channels, track_running_stats=False),
        nn.ReLU(),
    ]
    if max_pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class Conv4(nn.Module):
    """Four conv blocks and a linear head, ``[B, in_channels, 28, 28] -> [B, num_classes]``.

    ``max_pool=False`` is the network of the MAML paper's Omniglot experiments (the reference
    code's default, ``utils.conv_block`` and ``maml.forward_conv``): stride-2 convolutions,
    28 -> 14 -> 7 -> 4 -> 2, then the mean over the 2x2 positions, so the head sees ``hidden``
    features. ``max_pool=True`` is its MiniImagenet variant (stride-1 convolutions and 2x2
    max-pooling, 28 -> 14 -> 7 -> 3 -> 1), about four times the computation on 28x28 images.
    Batch norm keeps no running statistics, so it uses the statistics of the current batch in
    training and in evaluation alike.

    Deviations from the reference, kept for PyTorch's defaults: batch norm also learns a scale
    (TensorFlow's ``batch_norm`` default learns only the shift), PyTorch's initialisation
    (the reference: Xavier for the convolutions, a standard normal for the head), and
    symmetric padding of 1 where TensorFlow's ``SAME`` pads 0 before and 1 after on even inputs.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int | None = 5,
        hidden: int = 64,
        max_pool: bool = True,
    ) -> None:
        super().__init__()
        sizes = dict(in_channels=in_channels, hidden=hidden)
        if num_classes is not None:  # None: no head, an encoder [B, 1, 28, 28] -> [B, hidden]
            sizes["num_classes"] = num_classes
        for name, value in sizes.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.max_pool = max_pool
        self.features = nn.Sequential(
            conv_block(in_channels, hidden, max_pool),
            conv_block(hidden, hidden, max_pool),
            conv_block(hidden, hidden, max_pool),
            conv_block(hidden, hidden, max_pool),
        )
        self.head: nn.Module = (
            nn.Identity() if num_classes is None else nn.Linear(hidden, num_classes)
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images [B, in_channels, 28, 28]`` -> logits ``[B, num_classes]`` (features
        ``[B, hidden]`` without a head)."""
        if images.dim() != 4 or images.shape[-2:] != (28, 28):
            raise ValueError(f"images must have shape [B, C, 28, 28], got {tuple(images.shape)}")
        return self.head(self.features(images).mean(dim=(-2, -1)))
