"""Sinusoid regression, the toy task family of the MAML paper (Finn et al., 2017, section 5.1)."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from metalearn.checks import check_float, check_generator, check_int, check_seed
from metalearn.core import TaskBatch


class SinusoidParams(NamedTuple):
    """The hidden parameters of sampled tasks: ``amplitude [T]`` and ``phase [T]``."""

    amplitude: torch.Tensor
    phase: torch.Tensor


class Sinusoid:
    """Tasks ``y = A sin(x - phi)`` with ``A ~ U[0.1, 5]``, ``phi ~ U[0, pi]``, ``x ~ U[-5, 5]``.

    A :class:`~metalearn.core.TaskSource`. Each task is one curve; its ``k_shot`` support and
    ``k_query`` query points are independent draws of ``x``. The family owns a seeded
    ``torch.Generator``, so the same seed gives the same tasks.

    Args:
        k_shot: support points per task (the MAML paper's K).
        k_query: query points per task.
        seed: seed of the family's own generator.
        amplitude_range, phase_range, x_range: the uniform ranges above, ``(low, high)``.
        dtype: of ``x`` and ``y`` (``torch.float64`` for gradient checks).
        curves: a fixed, finite set of tasks to draw from (fresh ``x`` on every draw) instead
            of new curves; :meth:`finite` makes one.

    Example::

        family = Sinusoid(k_shot=10, k_query=10, seed=0)
        batch = family.sample(25)                   # x, y: [25, 10, 1]
        batch, params = family.sample_with_params(4, k_query=100)
        y_true = Sinusoid.true_function(x, params.amplitude, params.phase)
    """

    def __init__(
        self,
        k_shot: int = 10,
        k_query: int = 10,
        seed: int = 0,
        amplitude_range: tuple[float, float] = (0.1, 5.0),
        phase_range: tuple[float, float] = (0.0, math.pi),
        x_range: tuple[float, float] = (-5.0, 5.0),
        dtype: torch.dtype = torch.float32,
        curves: SinusoidParams | None = None,
    ) -> None:
        ranges = dict(amplitude_range=amplitude_range, phase_range=phase_range, x_range=x_range)
        for name, pair in ranges.items():
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise ValueError(f"{name} must be a pair (low, high), got {pair!r}")
            low, high = (check_float(f"{name}[{i}]", value) for i, value in enumerate(pair))
            if not low < high:
                raise ValueError(f"{name} must be (low, high) with low < high, got {(low, high)}")
            ranges[name] = (low, high)
        self.k_shot = check_int("k_shot", k_shot, minimum=1)
        self.k_query = check_int("k_query", k_query, minimum=1)
        seed = check_seed("seed", seed)
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise ValueError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
        amplitude_range, phase_range, x_range = ranges.values()
        self.amplitude_range, self.phase_range, self.x_range = amplitude_range, phase_range, x_range
        self.dtype = dtype
        if curves is not None and (
            not isinstance(curves, SinusoidParams)
            or curves.amplitude.dim() != 1
            or curves.amplitude.shape != curves.phase.shape
            or len(curves.amplitude) == 0
        ):
            raise ValueError(f"curves must be SinusoidParams of two [P] tensors, got {curves!r}")
        self.curves = curves
        self.generator = torch.Generator().manual_seed(seed)

    def sample(
        self,
        num_tasks: int,
        generator: torch.Generator | None = None,
        *,
        k_shot: int | None = None,
        k_query: int | None = None,
    ) -> TaskBatch:
        """``num_tasks`` new tasks: ``support_x``, ``support_y`` ``[T, k_shot, 1]``, query
        ``[T, k_query, 1]``; ``k_shot``/``k_query`` override the family's sizes for this call."""
        return self.sample_with_params(num_tasks, generator, k_shot=k_shot, k_query=k_query)[0]

    def sample_with_params(
        self,
        num_tasks: int,
        generator: torch.Generator | None = None,
        *,
        k_shot: int | None = None,
        k_query: int | None = None,
    ) -> tuple[TaskBatch, SinusoidParams]:
        """Like :meth:`sample`, also returning the tasks' ``SinusoidParams`` (CPU tensors)."""
        check_int("num_tasks", num_tasks, minimum=1)
        k_shot = self.k_shot if k_shot is None else check_int("k_shot", k_shot, minimum=1)
        k_query = self.k_query if k_query is None else check_int("k_query", k_query, minimum=1)
        generator = check_generator(generator) or self.generator

        def uniform(shape: tuple[int, ...], low: float, high: float) -> torch.Tensor:
            return low + (high - low) * torch.rand(shape, generator=generator, dtype=self.dtype)

        if self.curves is None:
            params = SinusoidParams(
                amplitude=uniform((num_tasks,), *self.amplitude_range),
                phase=uniform((num_tasks,), *self.phase_range),
            )
        else:
            pick = torch.randint(len(self.curves.amplitude), (num_tasks,), generator=generator)
            params = SinusoidParams(self.curves.amplitude[pick], self.curves.phase[pick])
        support_x = uniform((num_tasks, k_shot, 1), *self.x_range)
        query_x = uniform((num_tasks, k_query, 1), *self.x_range)
        batch = TaskBatch(
            support_x,
            self.true_function(support_x, *params),
            query_x,
            self.true_function(query_x, *params),
        )
        return batch, params

    def finite(self, num_tasks: int, seed: int | None = None) -> "Sinusoid":
        """A family of the same sizes whose tasks are ``num_tasks`` curves drawn now from this
        one; each draw picks among them (with replacement) and samples fresh ``x``.
        ``seed`` seeds its generator (default: drawn from this family's)."""
        _, curves = self.sample_with_params(num_tasks, k_shot=1, k_query=1)
        if seed is None:
            seed = int(torch.randint(2**62, (1,), generator=self.generator))
        return Sinusoid(
            self.k_shot,
            self.k_query,
            seed,
            self.amplitude_range,
            self.phase_range,
            self.x_range,
            self.dtype,
            curves,
        )

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
