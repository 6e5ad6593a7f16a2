"""N-way K-shot episodes over any labelled image set (Omniglot, miniImageNet, ...)."""

from __future__ import annotations

import torch

from metalearn.tasks.batch import TaskBatch
from metalearn.utils import check_int, check_seed


class EpisodeSampler:
    """Draws few-shot classification episodes from ``images`` labelled by ``labels``.

    Each episode picks ``ways`` classes at random, relabels them ``0 .. ways-1`` in
    random order, and draws ``shots + queries`` distinct images of each: the first
    ``shots`` form the support set, the rest the query set, so no image is in both.

    Args:
        images: ``[M, C, H, W]``; ``uint8`` images are scaled to ``[0, 1]``.
        labels: ``[M]`` integer class of each image (any ids; only equality matters).
        ways: classes per episode (N).
        shots: support images per class (K).
        queries: query images per class (Q); ``0`` makes a sampler for :meth:`global_batch`
            only (an episode needs queries).
        seed: seeds the sampler's own generator, so a sampler replays the same episodes.

    Raises:
        ValueError: naming ``ways`` when there are fewer classes than ``ways``, or
            ``shots``/``queries`` when a class has fewer than ``shots + queries`` images;
            naming any count or seed that is not an int in range (bools and floats refused),
            ``images`` that are not ``[M, C, H, W]`` numbers, or ``labels`` that are not
            integers.

    Example::

        sampler = EpisodeSampler(images, labels, ways=5, shots=1, queries=15, seed=0)
        batch = sampler.sample(32)  # support_x [32, 5, 1, 28, 28], query_x [32, 75, 1, 28, 28]
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        ways: int,
        shots: int,
        queries: int,
        seed: int = 0,
    ) -> None:
        if not isinstance(images, torch.Tensor) or images.dim() != 4:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images)
            raise ValueError(f"images must be a tensor of shape [M, C, H, W], got {shape}")
        if images.dtype == torch.bool or images.dtype.is_complex:
            raise ValueError(f"images must hold real numbers, got dtype {images.dtype}")
        if not isinstance(labels, torch.Tensor) or labels.shape != images.shape[:1]:
            shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels)
            raise ValueError(
                f"labels must be a tensor of shape [{images.shape[0]}] (one per image), got {shape}"
            )
        if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
            raise ValueError(f"labels must hold integer class ids, got dtype {labels.dtype}")
        if labels.device != images.device:
            raise ValueError(f"labels are on {labels.device} but images on {images.device}")
        for name, value, least in (("ways", ways, 1), ("shots", shots, 1), ("queries", queries, 0)):
            check_int(name, value, minimum=least)
        seed = check_seed("seed", seed)
        classes, order = torch.unique(labels, return_inverse=True)
        if ways > len(classes):
            raise ValueError(f"ways={ways} but the image set has only {len(classes)} classes")
        counts = torch.bincount(order, minlength=len(classes))
        if shots + queries > counts.min():
            raise ValueError(
                f"shots + queries = {shots} + {queries} = {shots + queries} but the smallest "
                f"class has only {counts.min().item()} images; lower shots or queries"
            )
        self.images, self.ways, self.shots, self.queries = images, ways, shots, queries
        # Images of class c are members[starts[c] : starts[c] + counts[c]].
        self._class_of = order  # [M] class index 0..C-1 of each image
        self._members = torch.argsort(order, stable=True)
        self._starts = torch.cumsum(counts, 0) - counts
        self._counts = counts
        self._generator = torch.Generator().manual_seed(seed)

    @property
    def num_classes(self) -> int:
        return len(self._counts)

    def sample_indices(
        self, num_tasks: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Image indices of ``num_tasks`` episodes: ``[T, ways, shots + queries]`` (class-major)."""
        check_int("num_tasks", num_tasks, minimum=1)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise ValueError(f"generator must be a torch.Generator, got {type(generator)}")
        generator = generator or self._generator
        per_class = self.shots + self.queries
        chosen = torch.stack(
            [
                torch.randperm(self.num_classes, generator=generator)[: self.ways]
                for _ in range(num_tasks)
            ]
        )
        # A random rank for every image of every chosen class; the per_class lowest ranks win.
        counts = self._counts[chosen]  # [T, N]
        width = int(counts.max())
        ranks = torch.rand(num_tasks, self.ways, width, generator=generator)
        ranks[torch.arange(width).expand_as(ranks) >= counts.unsqueeze(-1)] = (
            2.0  # positions past a class's end
        )
        picks = ranks.argsort(dim=-1)[..., :per_class]
        return self._members[self._starts[chosen].unsqueeze(-1) + picks]

    def sample(self, num_tasks: int, generator: torch.Generator | None = None) -> TaskBatch:
        """``num_tasks`` episodes: ``support_x [T, N*K, C, H, W]``, ``support_y [T, N*K]``
        (labels 0..N-1), ``query_x [T, N*Q, C, H, W]``, ``query_y [T, N*Q]``. Uses
        ``generator`` if given, else the sampler's.

        Raises:
            ValueError: the sampler was made with ``queries=0`` (episodes need queries).
        """
        if self.queries == 0:
            raise ValueError(
                "queries=0: this sampler has no query images, so it cannot make episodes; "
                "build it with queries >= 1 (queries=0 serves global_batch only)"
            )
        indices = self.sample_indices(num_tasks, generator)
        x = self.images[indices]  # [T, N, K+Q, C, H, W]
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        y = (
            torch.arange(self.ways)
            .view(1, self.ways, 1)
            .expand(num_tasks, -1, self.shots + self.queries)
        )
        support, query = slice(0, self.shots), slice(self.shots, None)
        return TaskBatch(
            x[:, :, support].flatten(1, 2),
            y[:, :, support].flatten(1, 2),
            x[:, :, query].flatten(1, 2),
            y[:, :, query].flatten(1, 2),
        )

    def fixed_batches(self, num_tasks: int, batch_size: int, seed: int) -> list[TaskBatch]:
        """The same ``num_tasks`` episodes for a given ``seed`` (independent of the sampler's own
        state), in batches of at most ``batch_size``: score every learner on these."""
        check_int("num_tasks", num_tasks, minimum=1)
        check_int("batch_size", batch_size, minimum=1)
        seed = check_seed("seed", seed)
        generator = torch.Generator().manual_seed(seed)
        sizes = [min(batch_size, num_tasks - start) for start in range(0, num_tasks, batch_size)]
        return [self.sample(size, generator) for size in sizes]

    def global_batch(self, size: int, generator: torch.Generator | None = None) -> TaskBatch:
        """``size`` random images labelled by their class among all ``num_classes`` (not per
        episode), as one task (``T = 1``) split in halves: the data for pretraining a classifier
        over every class, e.g.
        ``meta_train(FineTune(...), lambda: sampler.global_batch(256), ...)``."""
        check_int("size", size, minimum=2)
        picks = torch.randint(len(self._class_of), (size,), generator=generator or self._generator)
        x, y = self.images[picks], self._class_of[picks]
        x = (x.float() / 255.0 if x.dtype == torch.uint8 else x.float()).unsqueeze(0)
        half = size // 2
        return TaskBatch(x[:, :half], y[None, :half], x[:, half:], y[None, half:])

    def __call__(self, num_tasks: int) -> TaskBatch:
        return self.sample(num_tasks)
