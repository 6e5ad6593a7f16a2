"""scikit-learn's bundled 8x8 handwritten digits as tensors, and class-balanced splits.

The data set (1,797 images of the digits 0-9, about 180 per class, from the UCI
"Optical Recognition of Handwritten Digits" collection) ships inside
scikit-learn, so it needs no download: the introductory chapters use it where
Omniglot would be too slow for a two-minute CPU budget. Their few-shot episodes come from
:func:`metalearn.tasks.episodes.digit_episodes`.

Pixels are scaled from ``0 .. 16`` to ``0 .. 1`` and kept flat (64 features);
reshape with ``IMAGE_SHAPE`` to draw them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

IMAGE_SHAPE = (8, 8)
NUM_CLASSES = 10


def load_digits(dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 digits: images ``[N, 64]`` in ``[0, 1]`` and labels ``[N]`` (int64, ``0 .. 9``)."""
    from sklearn.datasets import load_digits as sklearn_load_digits

    bunch = sklearn_load_digits()
    images = torch.as_tensor(bunch.data, dtype=dtype) / 16.0
    labels = torch.as_tensor(bunch.target, dtype=torch.int64)
    return images, labels


def _check_labels(labels: torch.Tensor) -> None:
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1 or labels.dtype != torch.int64:
        raise ValueError(
            f"labels must be a 1-D int64 tensor, got {getattr(labels, 'shape', type(labels))}"
        )


def per_class_indices(
    labels: torch.Tensor,
    per_class: int,
    generator: torch.Generator,
    classes: Sequence[int] | None = None,
) -> torch.Tensor:
    """Indices of ``per_class`` randomly drawn examples of each class (class-balanced subset).

    Args:
        labels: ``[N]`` class of every example.
        per_class: examples to draw from each class (at most the smallest class's size).
        generator: source of randomness, so the subset is reproducible.
        classes: which classes to draw from (default: every class present in ``labels``).

    Returns:
        ``[len(classes) * per_class]`` int64 indices into ``labels``, grouped by class.
    """
    _check_labels(labels)
    classes = labels.unique().tolist() if classes is None else list(classes)
    chosen = []
    for c in classes:
        members = (labels == c).nonzero().flatten()
        if per_class < 1 or per_class > len(members):
            raise ValueError(
                f"per_class must be in 1 .. {len(members)} (examples of class {c}), got {per_class}"
            )
        chosen.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    return torch.cat(chosen)


def split_per_class(
    labels: torch.Tensor, per_class: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hold out ``per_class`` random examples of every class: ``(held_out_indices, rest_indices)``.

    The held-out part is class-balanced (a fair test set); the rest is the pool
    training subsets are drawn from. The two are disjoint and together cover ``labels``.
    """
    held_out = per_class_indices(labels, per_class, generator)
    is_rest = torch.ones(len(labels), dtype=torch.bool)
    is_rest[held_out] = False
    return held_out, is_rest.nonzero().flatten()
