"""Fix how many adaptation steps a learner takes, so that ``evaluate`` can score each setting."""

from __future__ import annotations

from typing import Protocol

import torch


class AdaptsWithSteps(Protocol):
    """A learner whose ``predict`` takes ``steps=`` (``MAML``, ``FineTune``)."""

    def predict(
        self,
        support_x: torch.Tensor,
        support_y: torch.Tensor,
        query_x: torch.Tensor,
        steps: int | None = None,
    ) -> torch.Tensor: ...


class WithSteps:
    """``learner`` whose ``predict`` always adapts for ``steps`` steps (``0`` = no adaptation).

    Example::

        ml.evaluate(WithSteps(maml, steps=0), batches, ml.mse)    # the initialisation's own error
        ml.evaluate(WithSteps(maml, steps=10), batches, ml.mse)   # after ten inner steps
    """

    def __init__(self, learner: AdaptsWithSteps, steps: int) -> None:
        if not callable(getattr(learner, "predict", None)):
            raise ValueError(f"learner must have a predict method, got {type(learner).__name__}")
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
            raise ValueError(f"steps must be an int >= 0, got {steps!r}")
        self.learner, self.steps = learner, steps

    def predict(
        self, support_x: torch.Tensor, support_y: torch.Tensor, query_x: torch.Tensor
    ) -> torch.Tensor:
        """``learner.predict(support_x [T, S, ...], support_y, query_x [T, Q, ...], steps=steps)``
        -> ``[T, Q, ...]``."""
        return self.learner.predict(support_x, support_y, query_x, steps=self.steps)

    def __repr__(self) -> str:
        return f"WithSteps({type(self.learner).__name__}, steps={self.steps})"
