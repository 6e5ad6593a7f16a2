import pytest
import torch
from sources import Calls
from torch import nn

from metalearn import MLP, FineTune, TaskBatch, TrainFromScratch, mse, pretrain


def linear_tasks(num_tasks, generator, k_shot=10, k_query=20):
    """y = a*x + b with a task-specific slope a ~ U[1, 3] and a shared offset b = 2."""
    slopes = 1 + 2 * torch.rand(num_tasks, 1, 1, generator=generator)
    x = torch.rand(num_tasks, k_shot + k_query, 1, generator=generator) * 4 - 2
    y = slopes * x + 2.0
    return TaskBatch(x[:, :k_shot], y[:, :k_shot], x[:, k_shot:], y[:, k_shot:])


def test_pretraining_then_fine_tuning_beats_pretraining_alone():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    learner = FineTune(nn.Linear(1, 1), nn.functional.mse_loss, lr=0.1, steps=20)
    history = pretrain(
        learner,
        Calls(lambda: linear_tasks(8, generator)),
        meta_batch=8,
        steps=200,
        optimizer=torch.optim.Adam(learner.parameters(), lr=0.05),
        progress=False,
    )
    assert history[-1] < 0.25 * history[0]
    test = linear_tasks(16, generator)
    pretrained_only = mse(learner.predict(*test[:3], steps=0), test.query_y).mean()
    fine_tuned = mse(learner.predict(*test[:3]), test.query_y).mean()
    assert fine_tuned < 0.2 * pretrained_only, (pretrained_only, fine_tuned)


def test_fine_tuning_leaves_the_pretrained_network_untouched():
    model = nn.Linear(1, 1)
    before = [p.detach().clone() for p in model.parameters()]
    FineTune(model, nn.functional.mse_loss, lr=0.1, steps=5).predict(
        *linear_tasks(2, torch.Generator())[:3]
    )
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_training_from_scratch_fits_the_support_set_and_starts_fresh_each_task():
    torch.manual_seed(0)
    made = []

    def make_model():
        made.append(MLP(1, [16], 1))
        return made[-1]

    test = linear_tasks(3, torch.Generator().manual_seed(1))
    learner = TrainFromScratch(make_model, nn.functional.mse_loss, lr=0.05, steps=300)
    predictions = learner.predict(*test[:3])
    assert len(made) == 3
    assert predictions.shape == test.query_y.shape
    untrained = mse(torch.zeros_like(test.query_y), test.query_y).mean()
    assert mse(predictions, test.query_y).mean() < 0.1 * untrained


@pytest.mark.parametrize(
    "kwargs, message",
    [(dict(lr=0.0), "lr"), (dict(steps=-1), "steps"), (dict(optimizer="rmsprop"), "optimizer")],
)
def test_bad_settings_are_named(kwargs, message):
    settings = dict(lr=0.1, steps=1) | kwargs
    with pytest.raises(ValueError, match=message):
        FineTune(nn.Linear(1, 1), nn.functional.mse_loss, **settings)
    with pytest.raises(ValueError, match=message):
        TrainFromScratch(lambda: nn.Linear(1, 1), nn.functional.mse_loss, **settings)
