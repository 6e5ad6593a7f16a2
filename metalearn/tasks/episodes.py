"""N-way K-shot episodes over any labelled set of examples (Omniglot, digits, ...)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from metalearn.checks import check_generator, check_int, check_seed
from metalearn.core import TaskBatch


class EpisodeSampler:
    """Draws few-shot classification episodes from ``examples`` labelled by ``labels``.

    A :class:`~metalearn.core.TaskSource`. Each episode picks ``n_way`` classes at random,
    relabels them ``0 .. n_way-1`` in random order, and draws ``k_shot + k_query`` distinct
    examples of each: the first ``k_shot`` form the support set, the rest the query set, so
    no example is in both. Each set is ordered by label (class 0's examples first).

    Args:
        examples: ``[M, ...]`` (images ``[M, C, H, W]``, flat features ``[M, F]``); ``uint8``
            images are scaled to ``[0, 1]``, everything is returned as float32.
        labels: ``[M]`` integer class of each example (any ids; only equality matters).
        n_way: classes per episode (N).
        k_shot: support examples per class (K).
        k_query: query examples per class.
        seed: seeds the sampler's own generator, so a sampler replays the same episodes.
        rotate: rotate every class of an episode by its own random multiple of 90 degrees
            (all its images alike), as the MAML reference code augments Omniglot
            (``data_generator.py``); needs square images ``[M, C, H, H]``.

    Raises:
        ValueError: naming ``n_way`` when there are fewer classes than ``n_way``, or
            ``k_shot``/``k_query`` when a class has fewer than ``k_shot + k_query`` examples;
            naming any count or seed that is not an int in range (bools and floats refused),
            ``examples`` that are not ``[M, ...]`` numbers, or ``labels`` that are not
            integers.

    Example::

        sampler = EpisodeSampler(images, labels, n_way=5, k_shot=1, k_query=15, seed=0)
        batch = sampler.sample(32)  # support_x [32, 5, 1, 28, 28], query_x [32, 75, 1, 28, 28]
    """

    def __init__(
        self,
        examples: torch.Tensor,
        labels: torch.Tensor,
        n_way: int,
        k_shot: int,
        k_query: int,
        seed: int = 0,
        rotate: bool = False,
    ) -> None:
        if not isinstance(examples, torch.Tensor) or examples.dim() < 2:
            shape = tuple(examples.shape) if isinstance(examples, torch.Tensor) else type(examples)
            raise ValueError(f"examples must be a tensor of shape [M, ...], got {shape}")
        if examples.dtype == torch.bool or examples.dtype.is_complex:
            raise ValueError(f"examples must hold real numbers, got dtype {examples.dtype}")
        if not isinstance(labels, torch.Tensor) or labels.shape != examples.shape[:1]:
            shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels)
            raise ValueError(
                f"labels must be a tensor of shape [{examples.shape[0]}] (one per example), "
                f"got {shape}"
            )
        if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
            raise ValueError(f"labels must hold integer class ids, got dtype {labels.dtype}")
        if labels.device != examples.device:
            raise ValueError(f"labels are on {labels.device} but examples on {examples.device}")
        for name, value in (("n_way", n_way), ("k_shot", k_shot), ("k_query", k_query)):
            check_int(name, value, minimum=1)
        seed = check_seed("seed", seed)
        classes, order = torch.unique(labels, return_inverse=True)
        if n_way > len(classes):
            raise ValueError(f"n_way={n_way} but the examples have only {len(classes)} classes")
        counts = torch.bincount(order, minlength=len(classes))
        if k_shot + k_query > counts.min():
            raise ValueError(
                f"k_shot + k_query = {k_shot} + {k_query} = {k_shot + k_query} but the smallest "
                f"class has only {counts.min().item()} examples; lower k_shot or k_query"
            )
        if rotate and (examples.dim() != 4 or examples.shape[-1] != examples.shape[-2]):
            raise ValueError(
                f"rotate=True needs square images [M, C, H, H], got {tuple(examples.shape)}"
            )
        self.examples, self.n_way, self.k_shot, self.k_query = examples, n_way, k_shot, k_query
        self.rotate = rotate
        self.classes = classes  # [C] the label id of each class index
        # Examples of class c are members[starts[c] : starts[c] + counts[c]].
        self._members = torch.argsort(order, stable=True)
        self._starts = torch.cumsum(counts, 0) - counts
        self._counts = counts
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def num_classes(self) -> int:
        return len(self._counts)

    def sample_indices(
        self, num_tasks: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Example indices of ``num_tasks`` episodes, ``[T, n_way, k_shot + k_query]``
        (class-major), and the class index (``0 .. num_classes - 1``) behind each episode
        label, ``[T, n_way]``."""
        check_int("num_tasks", num_tasks, minimum=1)
        generator = check_generator(generator) or self.generator
        per_class = self.k_shot + self.k_query
        chosen = torch.stack(
            [
                torch.randperm(self.num_classes, generator=generator)[: self.n_way]
                for _ in range(num_tasks)
            ]
        )
        # A random rank for every example of every chosen class; the per_class lowest ranks win.
        counts = self._counts[chosen]  # [T, N]
        width = int(counts.max())
        ranks = torch.rand(num_tasks, self.n_way, width, generator=generator)
        ranks[torch.arange(width).expand_as(ranks) >= counts.unsqueeze(-1)] = (
            2.0  # positions past a class's end
        )
        picks = ranks.argsort(dim=-1)[..., :per_class]
        return self._members[self._starts[chosen].unsqueeze(-1) + picks], chosen

    def sample(self, num_tasks: int, generator: torch.Generator | None = None) -> TaskBatch:
        """``num_tasks`` episodes: ``support_x [T, N*K, ...]``, ``support_y [T, N*K]``
        (labels 0..N-1), ``query_x [T, N*k_query, ...]``, ``query_y [T, N*k_query]``. Uses
        ``generator`` if given, else the sampler's."""
        return self.sample_with_classes(num_tasks, generator)[0]

    def sample_with_classes(
        self, num_tasks: int, generator: torch.Generator | None = None
    ) -> tuple[TaskBatch, torch.Tensor]:
        """Like :meth:`sample`, also returning the original label behind each episode label,
        ``[T, n_way]``: label ``j`` of task ``t`` is class ``labels[t, j]`` of the data."""
        generator = check_generator(generator) or self.generator
        indices, chosen = self.sample_indices(num_tasks, generator)
        x = self.examples[indices]  # [T, N, K+Q, ...]
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        if self.rotate:  # one random quarter turn per class of each episode
            turns = torch.randint(4, (num_tasks, self.n_way), generator=generator)
            for k in range(1, 4):
                x[turns == k] = torch.rot90(x[turns == k], k, dims=(-2, -1))
        per_class = self.k_shot + self.k_query
        y = torch.arange(self.n_way).view(1, self.n_way, 1).expand(num_tasks, -1, per_class)
        support, query = slice(0, self.k_shot), slice(self.k_shot, None)
        batch = TaskBatch(
            x[:, :, support].flatten(1, 2),
            y[:, :, support].flatten(1, 2),
            x[:, :, query].flatten(1, 2),
            y[:, :, query].flatten(1, 2),
        )
        return batch, self.classes[chosen]

    def fixed_batches(self, num_tasks: int, batch_size: int, seed: int) -> list[TaskBatch]:
        """The same ``num_tasks`` episodes for a given ``seed`` (independent of the sampler's own
        state), in batches of at most ``batch_size``: score every learner on these."""
        check_int("num_tasks", num_tasks, minimum=1)
        check_int("batch_size", batch_size, minimum=1)
        seed = check_seed("seed", seed)
        generator = torch.Generator().manual_seed(seed)
        sizes = [min(batch_size, num_tasks - start) for start in range(0, num_tasks, batch_size)]
        return [self.sample(size, generator) for size in sizes]


def digit_episodes(
    classes: Sequence[int],
    *,
    n_way: int,
    k_shot: int,
    k_query: int,
    seed: int = 0,
    data: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> EpisodeSampler:
    """Episodes over scikit-learn's 8x8 digits restricted to ``classes`` (flat ``[64]`` images).

    Give meta-training and meta-testing disjoint ``classes`` to test learning *new* concepts;
    ``data`` is ``(images [M, 64], labels [M])``, by default
    :func:`metalearn.data.digits.load_digits`.
    """
    from metalearn.data.digits import load_digits

    images, labels = load_digits() if data is None else data
    wanted = sorted({int(c) for c in classes})
    if not set(wanted) <= set(labels.unique().tolist()):
        raise ValueError(f"classes {wanted} include classes absent from the data")
    keep = torch.isin(labels, torch.tensor(wanted, dtype=labels.dtype))
    return EpisodeSampler(images[keep], labels[keep], n_way, k_shot, k_query, seed)


class AllClasses:
    """Batches for pretraining one classifier over every class of a labelled set.

    Each "task" of ``sample(num_tasks)`` is ``2 * k_shot`` random examples labelled by their
    class index among all ``num_classes`` (not per episode), split in halves: the data of
    :func:`metalearn.train.pretrain` for the pretrain + fine-tune baseline.
    """

    def __init__(self, examples: torch.Tensor, labels: torch.Tensor, k_shot: int, seed: int = 0):
        self.episodes = EpisodeSampler(examples, labels, 1, 1, 1, seed)
        self.k_shot = check_int("k_shot", k_shot, minimum=1)
        self.num_classes = self.episodes.num_classes
        self.generator = self.episodes.generator
        self._class_of = torch.unique(labels, return_inverse=True)[1]  # [M] in 0 .. C-1

    def sample(self, num_tasks: int, generator: torch.Generator | None = None) -> TaskBatch:
        """``support_x [T, k_shot, ...]`` with class indices ``support_y [T, k_shot]``, the
        query likewise."""
        check_int("num_tasks", num_tasks, minimum=1)
        generator = check_generator(generator) or self.generator
        examples = self.episodes.examples
        picks = torch.randint(len(examples), (num_tasks, 2 * self.k_shot), generator=generator)
        x, y = examples[picks], self._class_of[picks]
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        half = self.k_shot
        return TaskBatch(x[:, :half], y[:, :half], x[:, half:], y[:, half:])
