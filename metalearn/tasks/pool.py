"""A fixed, finite set of tasks: meta-training on few tasks, or on one batch again and again."""

from __future__ import annotations

import torch

from metalearn.checks import check_generator, check_int, check_seed
from metalearn.core import TaskBatch, TaskSource, check_task_batch


class TaskPool:
    """A :class:`~metalearn.core.TaskSource` over a fixed ``pool`` of tasks.

    ``sample(num_tasks)`` returns ``num_tasks`` distinct tasks of the pool, chosen at random
    (all of them, in a random order, when ``num_tasks`` is the pool's size). Chapter 8 meta-trains
    on pools of 1 to 1,000 sinusoids to show how meta-generalisation grows with the number of
    training tasks; tests use a pool of one batch to train on the same tasks every step.

    Example::

        pool = TaskPool.draw(Sinusoid(k_shot=10, seed=0), num_tasks=50)
        batch = pool.sample(25)          # 25 of the 50 pool tasks

    Raises:
        ValueError: ``pool`` is not a valid task batch, or ``num_tasks`` exceeds its size.
    """

    def __init__(self, pool: TaskBatch, seed: int = 0) -> None:
        if not isinstance(pool, TaskBatch):
            raise ValueError(f"pool must be a TaskBatch, got {type(pool).__name__}")
        check_task_batch(*pool)
        self.pool = pool
        self.generator = torch.Generator().manual_seed(check_seed("seed", seed))

    @classmethod
    def draw(cls, source: TaskSource, num_tasks: int, seed: int = 0, generator=None) -> "TaskPool":
        """A pool of ``num_tasks`` tasks drawn once from ``source``."""
        return cls(source.sample(check_int("num_tasks", num_tasks, minimum=1), generator), seed)

    def __len__(self) -> int:
        return self.pool.num_tasks

    def sample(self, num_tasks: int, generator: torch.Generator | None = None) -> TaskBatch:
        """``num_tasks`` distinct tasks of the pool, in random order."""
        check_int("num_tasks", num_tasks, minimum=1, maximum=len(self))
        generator = check_generator(generator) or self.generator
        return self.pool.select(torch.randperm(len(self), generator=generator)[:num_tasks])
