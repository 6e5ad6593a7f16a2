"""scikit-learn's bundled 8x8 handwritten digits as tensors, splits and few-shot episodes.

The data set (1,797 images of the digits 0-9, about 180 per class, from the UCI
"Optical Recognition of Handwritten Digits" collection) ships inside
scikit-learn, so it needs no download: the introductory chapters use it where
Omniglot would be too slow for a two-minute CPU budget.

Pixels are scaled from ``0 .. 16`` to ``0 .. 1`` and kept flat (64 features);
reshape with ``IMAGE_SHAPE`` to draw them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from metalearn.tasks.batch import TaskBatch

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


class DigitTasks:
    """Seeded sampler of N-way K-shot classification episodes over a subset of the digit classes.

    Each task draws ``n_way`` of ``classes``, shuffles them and names them
    ``0 .. n_way - 1`` (so the label "0" means a different digit in different
    tasks: only the support set says which), then draws ``k_shot + k_query``
    distinct images of each.  Give meta-training and meta-testing disjoint
    ``classes`` to test learning *new* concepts.

    Args:
        classes: the digit classes tasks may use, e.g. ``range(0, 6)``.
        n_way: classes per task.
        seed: seed of this sampler's private generator.
        data: ``(images [N, 64], labels [N])``; default :func:`load_digits`.

    Example:
        >>> tasks = DigitTasks(range(6), n_way=3, seed=0)
        >>> batch = tasks.sample(num_tasks=2, k_shot=1, k_query=5)
        >>> batch.support_x.shape, batch.query_y.shape
        (torch.Size([2, 3, 64]), torch.Size([2, 15]))
    """

    def __init__(
        self,
        classes: Sequence[int],
        *,
        n_way: int,
        seed: int = 0,
        data: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        images, labels = load_digits() if data is None else data
        _check_labels(labels)
        if images.dim() != 2 or images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"data images must be [N, features] matching labels [N], got {tuple(images.shape)}"
            )
        self.classes = sorted({int(c) for c in classes})
        if not set(self.classes) <= set(labels.unique().tolist()):
            raise ValueError(f"classes {self.classes} include classes absent from the data")
        if not 2 <= n_way <= len(self.classes):
            raise ValueError(
                f"n_way must be in 2 .. {len(self.classes)} (the number of classes), got {n_way}"
            )
        self.n_way = n_way
        self.images = images
        self.members = [(labels == c).nonzero().flatten() for c in self.classes]
        self.generator = torch.Generator().manual_seed(seed)

    def sample(self, num_tasks: int, k_shot: int, k_query: int) -> TaskBatch:
        """``num_tasks`` new episodes with ``k_shot`` support and ``k_query`` query images per
        class.

        Returns:
            ``TaskBatch`` with ``support_x [T, N*k_shot, 64]``, ``support_y [T, N*k_shot]``,
            ``query_x [T, N*k_query, 64]``, ``query_y [T, N*k_query]``; labels in
            ``0 .. n_way - 1``, each set ordered by label (class 0's images first).
        """
        return self.sample_with_classes(num_tasks, k_shot, k_query)[0]

    def sample_with_classes(
        self, num_tasks: int, k_shot: int, k_query: int
    ) -> tuple[TaskBatch, torch.Tensor]:
        """Like :meth:`sample`, also returning each task's digits ``[T, n_way]``: label ``j`` of
        task ``t`` is digit ``[t, j]``."""
        if num_tasks < 1:
            raise ValueError(f"num_tasks must be >= 1, got {num_tasks}")
        if k_shot < 1 or k_query < 1:
            raise ValueError(
                f"k_shot and k_query must be >= 1, got k_shot={k_shot}, k_query={k_query}"
            )
        smallest = min(len(m) for m in self.members)
        if k_shot + k_query > smallest:
            raise ValueError(
                f"k_shot + k_query must be <= {smallest} (smallest class), got {k_shot + k_query}"
            )
        g = self.generator
        support, query, digits = [], [], []
        for _ in range(num_tasks):
            picked = torch.randperm(len(self.classes), generator=g)[: self.n_way].tolist()
            draws = [
                self.members[c][torch.randperm(len(self.members[c]), generator=g)] for c in picked
            ]
            support.append(torch.cat([d[:k_shot] for d in draws]))
            query.append(torch.cat([d[k_shot : k_shot + k_query] for d in draws]))
            digits.append(torch.tensor([self.classes[c] for c in picked]))
        way = torch.arange(self.n_way)
        batch = TaskBatch(
            self.images[torch.stack(support)],
            way.repeat_interleave(k_shot).expand(num_tasks, -1).clone(),
            self.images[torch.stack(query)],
            way.repeat_interleave(k_query).expand(num_tasks, -1).clone(),
        )
        return batch, torch.stack(digits)
