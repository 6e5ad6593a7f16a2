import math

import numpy as np
import pytest
import torch

from metalearn.core import TaskBatch
from metalearn.evaluate import Summary, accuracy, evaluate, mse, summarize


def test_summary_matches_the_textbook_formula():
    values = torch.tensor([0.2, 0.4, 0.9, 0.5])
    summary = summarize(values)
    assert summary.mean == pytest.approx(np.mean(values.numpy()))
    assert summary.ci95 == pytest.approx(1.96 * np.std(values.numpy(), ddof=1) / math.sqrt(4))
    assert str(summary) == f"{summary.mean:.3f} ± {summary.ci95:.3f}"


def test_empty_scores_are_an_error():
    with pytest.raises(ValueError, match="per_task is empty"):
        summarize(torch.tensor([]))


def test_accuracy_and_mse_are_per_task():
    logits = torch.tensor([[[2.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [1.0, 0.0]]])
    labels = torch.tensor([[0, 1], [1, 1]])
    assert accuracy(logits, labels).tolist() == [1.0, 0.0]
    assert mse(
        torch.zeros(2, 3, 1), torch.tensor([[[1.0], [1.0], [1.0]], [[2.0], [0.0], [0.0]]])
    ).tolist() == pytest.approx([1.0, 4 / 3])


class NearestSupportLabel:
    """A tiny learner: predicts the label of the nearest support point (1-D inputs)."""

    def predict(self, support_x, support_y, query_x):
        distances = (query_x - support_x.transpose(1, 2)).abs()  # [T, Q, S]
        nearest = distances.argmin(dim=-1)
        labels = torch.gather(support_y, 1, nearest)
        return torch.nn.functional.one_hot(labels, 2).float()


def test_evaluate_scores_every_task_of_every_batch():
    x = torch.tensor([[[-1.0], [1.0]]]).repeat(3, 1, 1)
    y = torch.tensor([[0, 1]]).repeat(3, 1)
    qx = torch.tensor([[[-2.0], [2.0], [0.5]]]).repeat(3, 1, 1)
    good = torch.tensor([[0, 1, 1]]).repeat(3, 1)
    bad = torch.tensor([[1, 1, 1]]).repeat(3, 1)
    summary = evaluate(NearestSupportLabel(), [TaskBatch(x, y, qx, good), TaskBatch(x, y, qx, bad)])
    assert isinstance(summary, Summary)
    assert summary.per_task.tolist() == pytest.approx([1, 1, 1, 2 / 3, 2 / 3, 2 / 3])


def test_evaluate_needs_batches():
    with pytest.raises(ValueError, match="task_batches is empty"):
        evaluate(NearestSupportLabel(), [])
