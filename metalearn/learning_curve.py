"""How ordinary supervised training degrades as labelled examples become scarce.

Chapter 1's first limit of deep learning, measured: train a fresh network on
``k`` examples per class for several ``k`` and seeds, and score each on the
same held-out test set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from metalearn.algorithms.baselines import fit
from metalearn.data.digits import per_class_indices


def learning_curve(
    make_model: Callable[[], nn.Module],
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    per_class: Sequence[int],
    *,
    seeds: int,
    steps: int,
    lr: float,
) -> torch.Tensor:
    """Test accuracy of networks trained on ``k`` examples per class, for each ``k`` and seed.

    For every ``k`` in ``per_class`` and seed ``s`` in ``0 .. seeds - 1``: seed torch
    with ``s``, draw ``k`` examples of each class from ``train_x [N, ...]``,
    ``train_y [N]`` (class labels), build ``make_model()`` and train it full-batch
    with Adam (cross-entropy, ``steps`` steps at rate ``lr``), then score it on
    ``test_x [M, ...]``, ``test_y [M]``.

    Returns:
        ``[len(per_class), seeds]`` test accuracies in ``[0, 1]``.
    """
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    if len(per_class) == 0:
        raise ValueError("per_class is empty: give at least one number of examples per class")
    if train_x.shape[0] != train_y.shape[0] or test_x.shape[0] != test_y.shape[0]:
        raise ValueError(
            f"train_x/train_y or test_x/test_y disagree on the number of examples: "
            f"{train_x.shape[0]}/{train_y.shape[0]}, {test_x.shape[0]}/{test_y.shape[0]}"
        )
    accuracies = torch.zeros(len(per_class), seeds)
    for row, k in enumerate(per_class):
        for seed in range(seeds):
            generator = torch.Generator().manual_seed(seed)
            chosen = per_class_indices(train_y.cpu(), k, generator).to(train_x.device)
            torch.manual_seed(seed)
            model = make_model().to(train_x.device)
            fit(model, train_x[chosen], train_y[chosen], F.cross_entropy, lr, steps, "adam")
            model.eval()
            with torch.no_grad():
                accuracies[row, seed] = (
                    (model(test_x).argmax(dim=-1) == test_y).float().mean().item()
                )
    return accuracies
