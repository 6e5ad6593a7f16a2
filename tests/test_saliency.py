import pytest
import torch
from torch.nn import functional as F

from metalearn.algorithms.baselines import fit
from metalearn.data.digits import load_digits
from metalearn.models import MLP
from metalearn.saliency import (
    fit_with_other_explanation,
    input_gradients,
    saliency_correlation,
)


def test_input_gradients_match_finite_differences():
    torch.manual_seed(0)
    model = MLP(5, [7], 3).double()
    x, labels = torch.randn(4, 5, dtype=torch.float64), torch.tensor([0, 2, 1, 2])
    grads = input_gradients(model, x, labels)
    eps = 1e-6
    for n in range(4):
        for d in range(5):
            step = torch.zeros_like(x)
            step[n, d] = eps
            numeric = (model(x + step)[n, labels[n]] - model(x - step)[n, labels[n]]) / (2 * eps)
            assert torch.allclose(grads[n, d], numeric, atol=1e-7), (n, d)
    assert not grads.requires_grad


def test_input_gradients_create_graph_is_differentiable():
    model = MLP(3, [4], 2)
    grads = input_gradients(model, torch.randn(2, 3), torch.tensor([0, 1]), create_graph=True)
    grads.pow(2).sum().backward()
    assert model[0].weight.grad is not None and model[0].weight.grad.abs().sum() > 0


def test_input_gradients_rejects_bad_labels():
    with pytest.raises(ValueError, match="labels"):
        input_gradients(MLP(3, [4], 2), torch.randn(2, 3), torch.tensor([0, 1, 1]))


def test_saliency_correlation_values():
    a = torch.randn(6, 2, 5)
    assert torch.allclose(saliency_correlation(a, a), torch.ones(6))
    assert torch.allclose(saliency_correlation(a, -3 * a + 1), -torch.ones(6))
    orthogonal = torch.tensor([[1.0, -1.0, 0.0, 0.0]]), torch.tensor([[0.0, 0.0, 1.0, -1.0]])
    assert torch.allclose(saliency_correlation(*orthogonal), torch.zeros(1))
    with pytest.raises(ValueError, match="first and second"):
        saliency_correlation(torch.randn(3, 4), torch.randn(3, 5))


def test_fit_with_other_explanation_decorrelates_but_still_classifies():
    images, labels = load_digits()
    x, y = images[:300], labels[:300]
    torch.manual_seed(0)
    reference_model = fit(MLP(64, [16], 10), x, y, F.cross_entropy, 0.02, 60, "adam")
    reference = input_gradients(reference_model, x, y)
    torch.manual_seed(1)
    plain = fit(MLP(64, [16], 10), x, y, F.cross_entropy, 0.02, 60, "adam")
    torch.manual_seed(1)
    other = fit_with_other_explanation(
        MLP(64, [16], 10), x, y, reference, weight=1.0, lr=0.02, steps=60
    )
    plain_corr = saliency_correlation(input_gradients(plain, x, y), reference).mean()
    other_corr = saliency_correlation(input_gradients(other, x, y), reference).mean()
    assert plain_corr > 0.6 and other_corr.abs() < 0.2, (plain_corr, other_corr)
    with torch.no_grad():
        assert (other(x).argmax(-1) == y).float().mean() > 0.9


def test_fit_with_other_explanation_rejects_bad_reference():
    with pytest.raises(ValueError, match="reference"):
        fit_with_other_explanation(
            MLP(3, [4], 2),
            torch.randn(2, 3),
            torch.tensor([0, 1]),
            torch.randn(2, 4),
            weight=1.0,
            lr=0.1,
            steps=1,
        )
