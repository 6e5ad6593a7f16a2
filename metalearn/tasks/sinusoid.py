"""Sinusoid regression, the toy task family of the MAML paper (Finn et al., 2017, section 5.1)."""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch

from metalearn.tasks.batch import TaskBatch
from metalearn.utils import check_float, check_int, check_seed


class SinusoidParams(NamedTuple):
    """The hidden parameters of sampled tasks: ``amplitude [T]`` and ``phase [T]``."""

    amplitude: torch.Tensor
    phase: torch.Tensor


class Sinusoid:
    """Tasks ``y = A sin(x - phi)`` with ``A ~ U[0.1, 5]``, ``phi ~ U[0, pi]``, ``x ~ U[-5, 5]``.

    Each task is one curve; its support and query points are independent draws of ``x``.
    The family owns a seeded ``torch.Generator``, so the same seed gives the same tasks.

    Example::

        family = Sinusoid(seed=0)
        batch = family.sample(num_tasks=25, k_support=10, k_query=10)   # x, y: [25, 10, 1]
        batch, params = family.sample_with_params(4, 5, 100)
        y_true = Sinusoid.true_function(x, params.amplitude, params.phase)
    """

    def __init__(
        self,
        seed: int = 0,
        amplitude_range: tuple[float, float] = (0.1, 5.0),
        phase_range: tuple[float, float] = (0.0, math.pi),
        x_range: tuple[float, float] = (-5.0, 5.0),
    ) -> None:
        ranges = dict(amplitude_range=amplitude_range, phase_range=phase_range, x_range=x_range)
        for name, pair in ranges.items():
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise ValueError(f"{name} must be a pair (low, high), got {pair!r}")
            low, high = (check_float(f"{name}[{i}]", value) for i, value in enumerate(pair))
            if not low < high:
                raise ValueError(f"{name} must be (low, high) with low < high, got {(low, high)}")
            ranges[name] = (low, high)
        seed = check_seed("seed", seed)
        amplitude_range, phase_range, x_range = ranges.values()
        self.amplitude_range, self.phase_range, self.x_range = amplitude_range, phase_range, x_range
        self.generator = torch.Generator().manual_seed(seed)

    def _uniform(self, shape: tuple[int, ...], low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(shape, generator=self.generator)

    def sample_with_params(
        self, num_tasks: int, k_support: int, k_query: int
    ) -> tuple[TaskBatch, SinusoidParams]:
        """``num_tasks`` new tasks and their ``SinusoidParams``; x and y are ``[T, K, 1]``
        (float32, CPU)."""
        for name, value in dict(num_tasks=num_tasks, k_support=k_support, k_query=k_query).items():
            check_int(name, value, minimum=1)
        params = SinusoidParams(
            amplitude=self._uniform((num_tasks,), *self.amplitude_range),
            phase=self._uniform((num_tasks,), *self.phase_range),
        )
        support_x = self._uniform((num_tasks, k_support, 1), *self.x_range)
        query_x = self._uniform((num_tasks, k_query, 1), *self.x_range)
        batch = TaskBatch(
            support_x,
            self.true_function(support_x, *params),
            query_x,
            self.true_function(query_x, *params),
        )
        return batch, params

    def sample(self, num_tasks: int, k_support: int, k_query: int) -> TaskBatch:
        """``num_tasks`` new tasks: ``support_x``, ``support_y`` ``[T, k_support, 1]``, query
        ``[T, k_query, 1]``."""
        return self.sample_with_params(num_tasks, k_support, k_query)[0]

    def sampler(self, num_tasks: int, k_support: int, k_query: int) -> Callable[[], TaskBatch]:
        """A zero-argument function drawing a new batch on each call (for ``meta_train``)."""
        for name, value in dict(num_tasks=num_tasks, k_support=k_support, k_query=k_query).items():
            check_int(name, value, minimum=1)
        return lambda: self.sample(num_tasks, k_support, k_query)

    @staticmethod
    def true_function(
        x: torch.Tensor, amplitude: torch.Tensor, phase: torch.Tensor
    ) -> torch.Tensor:
        """``A sin(x - phi)`` for ``x [T, N, 1]`` and ``amplitude``, ``phase`` of shape ``[T]``
        (or scalars, for ``x`` of any shape).

        Raises:
            ValueError: naming ``amplitude`` or ``phase`` when they are neither scalars nor
                ``[T]`` with ``x``'s ``T`` (nothing is broadcast across tasks).
        """
        amplitude = torch.as_tensor(amplitude, dtype=x.dtype, device=x.device)
        phase = torch.as_tensor(phase, dtype=x.dtype, device=x.device)
        for name, value in (("amplitude", amplitude), ("phase", phase)):
            if value.dim() == 0:
                continue
            if value.dim() != 1 or x.dim() != 3 or len(value) != x.shape[0]:
                raise ValueError(
                    f"{name} must be a scalar or have shape [T] for x [T, N, 1]; got {name} "
                    f"{list(value.shape)} for x {list(x.shape)}"
                )
        if amplitude.dim() != phase.dim():
            amplitude, phase = torch.broadcast_tensors(amplitude, phase)
        if amplitude.dim() == 1:  # one value per task: broadcast over examples and features
            amplitude, phase = amplitude[:, None, None], phase[:, None, None]
        return amplitude * torch.sin(x - phase)
