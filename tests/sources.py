"""Task sources made by hand for tests: a fixed batch, or batches from a function."""

from __future__ import annotations

from typing import Callable

import torch

from metalearn.core import TaskBatch


class Calls:
    """A task source whose ``sample(num_tasks)`` returns ``fn()`` (the size is ``fn``'s): for
    tests that script the batches a training loop sees, e.g. one that turns NaN at step 3."""

    def __init__(self, fn: Callable[[], TaskBatch]) -> None:
        self.fn = fn

    def sample(self, num_tasks: int, generator: torch.Generator | None = None) -> TaskBatch:
        return self.fn()
