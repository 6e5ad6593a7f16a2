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


def shot_scaled_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy as the MAML reference code scales it: ``logits [N*K, N]``, ``labels
    [N*K]`` -> the sum over the examples of the cross-entropy divided by ``K`` (``utils.xent``
    divides by ``update_batch_size``; ``tf.gradients`` sums over the examples), i.e. ``N`` times
    the mean. With it, the paper's inner step size means the paper's step: with a plain mean
    "alpha = 0.4" would be a 5 times smaller step at 5-way and 20 times at 20-way.

    ``K`` is read from the batch: ``len(labels) / N`` with ``N = logits.shape[-1]``.
    """
    if logits.dim() != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(
            f"logits must be [S, N] and labels [S], got {list(logits.shape)} and "
            f"{list(labels.shape)}"
        )
    return F.cross_entropy(logits, labels) * logits.shape[-1]
