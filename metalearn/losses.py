"""Losses that more than one chapter needs, in the ``loss_fn(predictions, targets)`` form."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def binary_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy of one logit per example: ``logits [N, 1]``, ``labels [N]``
    integer 0/1 (a learner's class indices) -> a scalar. The active class is 1.

    Raises:
        ValueError: ``logits`` is not ``[N, 1]`` or ``labels`` not ``[N]``.
    """
    if logits.dim() != 2 or logits.shape[1] != 1 or labels.shape != logits.shape[:1]:
        raise ValueError(
            f"logits must be [N, 1] and labels [N], got {list(logits.shape)} and "
            f"{list(labels.shape)}"
        )
    return F.binary_cross_entropy_with_logits(logits[:, 0], labels.to(logits.dtype))
