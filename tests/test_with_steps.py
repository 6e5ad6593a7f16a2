import pytest
import torch
import torch.nn.functional as F

import metalearn as ml
from metalearn.algorithms.maml import MAML
from metalearn.algorithms.with_steps import WithSteps


def _batch(seed: int = 0) -> ml.TaskBatch:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(3, 8, 1, generator=g) * 4 - 2
    y = torch.sin(x) * torch.rand(3, 1, 1, generator=g)
    return ml.TaskBatch(x[:, :5], y[:, :5], x[:, 5:], y[:, 5:])


@pytest.mark.parametrize("steps", [0, 1, 3])
def test_with_steps_matches_predict_with_steps(steps):
    torch.manual_seed(0)
    maml = MAML(ml.MLP(1, [8], 1), F.mse_loss, inner_lr=0.1)
    batch = _batch()
    expected = maml.predict(batch.support_x, batch.support_y, batch.query_x, steps=steps)
    got = WithSteps(maml, steps).predict(batch.support_x, batch.support_y, batch.query_x)
    assert torch.equal(got, expected)


def test_zero_steps_is_the_unadapted_model_and_differs_from_one_step():
    torch.manual_seed(0)
    model = ml.MLP(1, [8], 1)
    maml = MAML(model, F.mse_loss, inner_lr=0.1)
    batch = _batch()
    with torch.no_grad():
        unadapted = model(batch.query_x)
    assert torch.allclose(WithSteps(maml, 0).predict(*batch[:3]), unadapted)
    assert not torch.allclose(WithSteps(maml, 1).predict(*batch[:3]), unadapted)


def test_evaluate_accepts_it():
    torch.manual_seed(0)
    fine_tune = ml.FineTune(ml.MLP(1, [8], 1), F.mse_loss, lr=0.1, steps=1)
    before = ml.evaluate(WithSteps(fine_tune, 0), [_batch()], ml.mse).mean
    after = ml.evaluate(WithSteps(fine_tune, 50), [_batch()], ml.mse).mean
    assert after < before


@pytest.mark.parametrize("steps", [-1, 1.5, True, None])
def test_bad_steps_raise(steps):
    with pytest.raises(ValueError, match="steps"):
        WithSteps(MAML(ml.MLP(1, [4], 1), F.mse_loss, inner_lr=0.1), steps)


def test_learner_without_predict_raises():
    with pytest.raises(ValueError, match="learner"):
        WithSteps(object(), 1)
