"""The learner protocol every few-shot method in the book follows."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class FewShotLearner(Protocol):
    """Anything that adapts on a support set and predicts for a query set.

    Meta-learners also offer ``meta_loss(support_x, support_y, query_x, query_y)``,
    a scalar to minimise during meta-training; baselines need only ``predict``.
    """

    def predict(
        self, support_x: torch.Tensor, support_y: torch.Tensor, query_x: torch.Tensor
    ) -> torch.Tensor:
        """``[T, S, ...]``, ``[T, S, ...]``, ``[T, Q, ...]`` -> predictions ``[T, Q, ...]``."""
        ...


@runtime_checkable
class MetaLearner(FewShotLearner, Protocol):
    """A few-shot learner with a differentiable meta-training objective."""

    def meta_loss(
        self,
        support_x: torch.Tensor,
        support_y: torch.Tensor,
        query_x: torch.Tensor,
        query_y: torch.Tensor,
    ) -> torch.Tensor:
        """Mean over tasks of the query loss after adapting on the support set (a scalar)."""
        ...
