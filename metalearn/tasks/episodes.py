"""N-way K-shot episodes over any labelled image set (Omniglot, miniImageNet, ...)."""

from __future__ import annotations

import torch

from metalearn.tasks.batch import TaskBatch


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
        queries: query images per class (Q).
        seed: seeds the sampler's own generator, so a sampler replays the same episodes.

    Raises:
        ValueError: naming ``ways`` when there are fewer classes than ``ways``, or
            ``shots``/``queries`` when a class has fewer than ``shots + queries`` images.

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
        if images.dim() != 4:
            raise ValueError(f"images must have shape [M, C, H, W], got {tuple(images.shape)}")
        if labels.shape != images.shape[:1]:
            raise ValueError(
                f"labels must have shape [{images.shape[0]}] (one per image), "
                f"got {tuple(labels.shape)}"
            )
        for name, value, least in (("ways", ways, 1), ("shots", shots, 1), ("queries", queries, 0)):
            if not isinstance(value, int) or value < least:
                raise ValueError(f"{name} must be an int >= {least}, got {value!r}")
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
        if not isinstance(num_tasks, int) or num_tasks < 1:
            raise ValueError(f"num_tasks must be an int >= 1, got {num_tasks!r}")
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
        ``generator`` if given, else the sampler's."""
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
        if not isinstance(num_tasks, int) or num_tasks < 1:
            raise ValueError(f"num_tasks must be an int >= 1, got {num_tasks!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        generator = torch.Generator().manual_seed(seed)
        sizes = [min(batch_size, num_tasks - start) for start in range(0, num_tasks, batch_size)]
        return [self.sample(size, generator) for size in sizes]

    def global_batch(self, size: int, generator: torch.Generator | None = None) -> TaskBatch:
        """``size`` random images labelled by their class among all ``num_classes`` (not per
        episode), as one task (``T = 1``) split in halves: the data for pretraining a classifier
        over every class, e.g.
        ``meta_train(FineTune(...), lambda: sampler.global_batch(256), ...)``."""
        if not isinstance(size, int) or size < 2:
            raise ValueError(f"size must be an int >= 2, got {size!r}")
        picks = torch.randint(len(self._class_of), (size,), generator=generator or self._generator)
        x, y = self.images[picks], self._class_of[picks]
        x = (x.float() / 255.0 if x.dtype == torch.uint8 else x.float()).unsqueeze(0)
        half = size // 2
        return TaskBatch(x[:, :half], y[None, :half], x[:, half:], y[None, half:])

    def __call__(self, num_tasks: int) -> TaskBatch:
        return self.sample(num_tasks)
