import pytest
import torch
from sources import Calls
from torch import nn

from metalearn import FineTune, TaskBatch, pretrain


def constant_batch(value: float) -> TaskBatch:
    x = torch.ones(2, 3, 1)
    return TaskBatch(x, value * x, x, value * x)


def test_meta_train_records_a_decreasing_loss_and_moves_the_parameters():
    torch.manual_seed(0)
    learner = FineTune(nn.Linear(1, 1), nn.functional.mse_loss, lr=0.1, steps=1)
    history = pretrain(
        learner,
        Calls(lambda: constant_batch(3.0)),
        meta_batch=2,
        steps=100,
        optimizer=torch.optim.SGD(learner.parameters(), lr=0.1),
        progress=False,
    )
    assert len(history) == 100
    assert history[-1] < 1e-3 < history[0]


def test_gradient_clipping_bounds_each_update():
    torch.manual_seed(0)
    learner = FineTune(nn.Linear(1, 1, bias=False), nn.functional.mse_loss, lr=0.1, steps=1)
    before = learner.model.weight.detach().clone()
    pretrain(
        learner,
        Calls(lambda: constant_batch(1000.0)),
        meta_batch=2,
        steps=1,
        optimizer=torch.optim.SGD(learner.parameters(), lr=1.0),
        grad_clip=0.5,
        progress=False,
    )
    assert (learner.model.weight.detach() - before).abs().item() == pytest.approx(0.5)


def test_a_nan_loss_stops_training_with_a_clear_error():
    learner = FineTune(nn.Linear(1, 1), nn.functional.mse_loss, lr=0.1, steps=1)
    with pytest.raises(FloatingPointError, match="the loss is nan at step 0"):
        pretrain(
            learner,
            Calls(lambda: constant_batch(float("nan"))),
            meta_batch=2,
            steps=3,
            optimizer=torch.optim.SGD(learner.parameters(), lr=0.1),
            progress=False,
        )


def test_steps_must_be_positive():
    learner = FineTune(nn.Linear(1, 1), nn.functional.mse_loss, lr=0.1, steps=1)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        pretrain(
            learner,
            Calls(lambda: constant_batch(1.0)),
            meta_batch=2,
            steps=0,
            optimizer=torch.optim.SGD(learner.parameters(), lr=0.1),
        )
