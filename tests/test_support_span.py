import pytest
import torch
import torch.nn.functional as F

import metalearn as ml
from metalearn.algorithms import SupportSpan
from metalearn.losses import binary_cross_entropy


def _binary_tasks(features: int, support: int = 12, query: int = 9, tasks: int = 3):
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(tasks, support + query, features, generator=g) < 0.2).double()  # bits
    w = torch.randn(tasks, features, generator=g, dtype=torch.float64)
    y = ((x * w[:, None]).sum(-1) > 0).long()
    return x[:, :support], y[:, :support], x[:, support:]


@pytest.mark.parametrize("features", [64, 5])  # wider and narrower than the support set
@pytest.mark.parametrize("steps", [0, 1, 7])
def test_equals_maml_predict_in_float64(features, steps):
    torch.manual_seed(1)
    maml = ml.MAML(ml.MLP(features, [16, 8], 1), binary_cross_entropy, inner_lr=0.7).double()
    support_x, support_y, query_x = _binary_tasks(features)
    expected = maml.predict(support_x, support_y, query_x, steps=steps)
    got = SupportSpan(maml, steps).predict(support_x, support_y, query_x)
    assert got.shape == expected.shape == (3, 9, 1)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)
    if steps:  # the steps did change the predictions
        assert not torch.allclose(got, maml.predict(support_x, support_y, query_x, steps=0))


def test_regression_with_several_outputs_equals_maml_predict():
    torch.manual_seed(2)
    maml = ml.MAML(ml.MLP(30, [10], 2), F.mse_loss, inner_lr=0.05, inner_steps=3).double()
    g = torch.Generator().manual_seed(3)
    support_x, query_x = torch.randn(2, 6, 30, generator=g), torch.randn(2, 4, 30, generator=g)
    support_x, query_x = support_x.double(), query_x.double()
    support_y = torch.randn(2, 6, 2, generator=g, dtype=torch.float64)
    expected = maml.predict(support_x, support_y, query_x, steps=3)
    got = SupportSpan(maml, 3).predict(support_x, support_y, query_x)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)


def test_bad_arguments_are_named():
    maml = ml.MAML(ml.MLP(4, [8], 1), binary_cross_entropy, inner_lr=0.1)
    with pytest.raises(ValueError, match="steps must be >= 0, got -1"):
        SupportSpan(maml, -1)
    with pytest.raises(ValueError, match="maml must be a metalearn MAML"):
        SupportSpan(ml.MLP(4, [8], 1), 3)  # type: ignore[arg-type]
    conv = ml.MAML(torch.nn.Sequential(torch.nn.Conv1d(1, 2, 3)), F.mse_loss, inner_lr=0.1)
    with pytest.raises(ValueError, match="starting with an nn.Linear, got Sequential starting"):
        SupportSpan(conv, 3)
    learned = ml.MAML(ml.MLP(4, [8], 1), F.mse_loss, inner_lr=0.1, learn_inner_lr="per_tensor")
    with pytest.raises(ValueError, match='learn_inner_lr must be "none"'):
        SupportSpan(learned, 3)
