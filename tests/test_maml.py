"""MAML: meta-gradients against finite differences, vmap against loop, first order, Meta-SGD,
errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

import metalearn as ml
from metalearn import benchmark
from metalearn.models import Conv4
from metalearn.tasks import Sinusoid


def tiny_mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1)).double()


def regression_batch(
    num_tasks: int = 3, k_shot: int = 4, k_query: int = 5
) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(1)
    return tuple(
        torch.randn(num_tasks, n, d, generator=g, dtype=torch.float64)
        for n, d in ((k_shot, 2), (k_shot, 1), (k_query, 2), (k_query, 1))
    )


def flat_grad(loss: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([g.flatten() for g in torch.autograd.grad(loss, params)])


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize(
    "steps,rates", [(1, "none"), (3, "none"), (2, "per_element"), (2, "per_tensor")]
)
def test_second_order_meta_gradient_matches_finite_differences(steps, rates, batched):
    maml = ml.MAML(tiny_mlp(), F.mse_loss, 0.3, steps, learn_inner_lr=rates, batched=batched)
    batch = regression_batch()
    params = list(maml.parameters())
    analytic = flat_grad(maml.meta_loss(*batch), params)
    numeric, eps = [], 1e-6
    with torch.no_grad():
        for p in params:
            for i in range(p.numel()):
                value = p.view(-1)[i].item()
                p.view(-1)[i] = value + eps
                plus = maml.meta_loss(*batch).item()
                p.view(-1)[i] = value - eps
                minus = maml.meta_loss(*batch).item()
                p.view(-1)[i] = value
                numeric.append((plus - minus) / (2 * eps))
    numeric = torch.tensor(numeric, dtype=torch.float64)
    rel_err = (analytic - numeric).norm() / numeric.norm()
    assert rel_err < 1e-6, rel_err


def reference_first_order_loss(
    model: nn.Module, inner_lr: float, steps: int, batch
) -> torch.Tensor:
    """Plain autograd, inner gradients computed without a graph (so treated as constants)."""
    losses = []
    for support_x, support_y, query_x, query_y in zip(*batch):
        params = dict(model.named_parameters())
        for _ in range(steps):
            inner = F.mse_loss(functional_call(model, params, (support_x,)), support_y)
            grads = torch.autograd.grad(inner, list(params.values()))
            params = {name: w - inner_lr * g for (name, w), g in zip(params.items(), grads)}
        losses.append(F.mse_loss(functional_call(model, params, (query_x,)), query_y))
    return torch.stack(losses).mean()


@pytest.mark.parametrize("batched", [True, False])
def test_first_order_equals_gradient_with_detached_inner_gradients(batched):
    model, batch = tiny_mlp(), regression_batch()
    params = list(model.parameters())
    first = ml.MAML(model, F.mse_loss, 0.3, 2, first_order=True, batched=batched)
    second = ml.MAML(model, F.mse_loss, 0.3, 2, batched=batched)
    reference = flat_grad(reference_first_order_loss(model, 0.3, 2, batch), params)
    fomaml = flat_grad(first.meta_loss(*batch), params)
    full = flat_grad(second.meta_loss(*batch), params)
    torch.testing.assert_close(fomaml, reference, rtol=1e-12, atol=1e-12)
    assert (full - fomaml).norm() > 1e-3 * full.norm()  # the Hessian term is really dropped


@pytest.mark.parametrize("rates", ["per_tensor", "per_element"])
def test_meta_sgd_rates_are_parameters_and_receive_gradients(rates):
    model = tiny_mlp()
    maml = ml.MAML(model, F.mse_loss, 0.1, learn_inner_lr=rates)
    assert len(maml.inner_lrs) == len(list(model.parameters()))
    for rate, weight in zip(maml.inner_lrs, model.parameters()):
        assert rate.shape == (weight.shape if rates == "per_element" else ())
        assert torch.all(rate == 0.1)
    assert {id(r) for r in maml.inner_lrs} <= {id(p) for p in maml.parameters()}
    maml.meta_loss(*regression_batch()).backward()
    for rate in maml.inner_lrs:
        assert rate.grad is not None and rate.grad.abs().sum() > 0


def bn_conv_batch(num_tasks=2, k_shot=3, k_query=3):
    g = torch.Generator().manual_seed(2)
    return (
        torch.randn(num_tasks, k_shot, 1, 28, 28, generator=g, dtype=torch.float64),
        torch.randint(0, 5, (num_tasks, k_shot), generator=g),
        torch.randn(num_tasks, k_query, 1, 28, 28, generator=g, dtype=torch.float64),
        torch.randint(0, 5, (num_tasks, k_query), generator=g),
    )


@pytest.mark.parametrize("first_order", [False, True])
@pytest.mark.parametrize("workload", ["mlp", "conv_bn"])
def test_batched_path_equals_looped_path(workload, first_order):
    if workload == "mlp":
        model, loss_fn, batch = tiny_mlp(), F.mse_loss, regression_batch()
    else:
        torch.manual_seed(0)
        model, loss_fn, batch = Conv4(hidden=4).double(), F.cross_entropy, bn_conv_batch()
    results = []
    for batched in (True, False):
        maml = ml.MAML(
            model, loss_fn, 0.2, 2, first_order, learn_inner_lr="per_tensor", batched=batched
        )
        loss = maml.meta_loss(*batch)
        results.append(
            (loss, flat_grad(loss, list(maml.parameters())), maml.predict(*batch[:3], steps=3))
        )
    (loss_v, grad_v, pred_v), (loss_l, grad_l, pred_l) = results
    torch.testing.assert_close(loss_v, loss_l, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad_v, grad_l, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(pred_v, pred_l, rtol=1e-10, atol=1e-12)


def test_default_path_follows_the_measured_rule():
    from metalearn.algorithms.maml import VMAP_MAX_ACTIVATION

    assert ml.MAML(ml.MLP(1, [8], 1), F.mse_loss, 0.01).batches_tasks(torch.zeros(2, 500, 1))
    # one task: nothing to batch, the loop (unless batched=True forces vmap)
    assert not ml.MAML(ml.MLP(1, [8], 1), F.mse_loss, 0.01).batches_tasks(torch.zeros(1, 5, 1))
    assert ml.MAML(ml.MLP(1, [8], 1), F.mse_loss, 0.01, batched=True).batches_tasks(
        torch.zeros(1, 5, 1)
    )
    strided = ml.MAML(Conv4(1, 5, 64, max_pool=False), F.cross_entropy, 0.4)
    pooled = ml.MAML(Conv4(1, 5, 64), F.cross_entropy, 0.4)
    five_images, seventy_five = torch.zeros(2, 5, 1, 28, 28), torch.zeros(2, 75, 1, 28, 28)
    # the MAML paper's 5-way 1-shot task: 5 x 64 x 14 x 14 numbers after the first convolution
    assert 5 * 64 * 14 * 14 <= VMAP_MAX_ACTIVATION and strided.batches_tasks(five_images)
    # 75 query images through the max-pool Conv4: 75 x 64 x 28 x 28, looped
    assert not pooled.batches_tasks(seventy_five)
    assert not pooled.batches_tasks(five_images)  # 5 x 64 x 28 x 28 = 250,880 > 200,000
    assert pooled.batches_tasks(torch.zeros(2, 3, 1, 28, 28))  # 150,528
    forced = ml.MAML(Conv4(1, 5, 64), F.cross_entropy, 0.4, batched=True)
    assert forced.batches_tasks(seventy_five)
    assert not ml.MAML(ml.MLP(1, [8], 1), F.mse_loss, 0.01, batched=False).batches_tasks(
        torch.zeros(2, 5, 1)
    )


def test_adapt_lowers_support_loss_and_leaves_the_model_alone():
    torch.manual_seed(0)
    maml = ml.MAML(ml.MLP(1, [40, 40], 1), F.mse_loss, 0.01, inner_steps=5)
    support_x, support_y, _, _ = Sinusoid(seed=3).sample(1, k_shot=10, k_query=1)
    before = {k: v.clone() for k, v in maml.params().items()}
    adapted = maml.adapt(support_x[0], support_y[0])
    loss_before = F.mse_loss(maml.model(support_x[0]), support_y[0])
    loss_after = F.mse_loss(maml.functional(adapted, support_x[0]), support_y[0])
    assert loss_after < 0.9 * loss_before, (loss_before, loss_after)
    assert adapted["0.weight"].requires_grad  # differentiable w.r.t. the initialisation
    for name, value in maml.params().items():
        assert torch.equal(value, before[name])


def test_adapt_can_continue_from_given_parameters():
    maml = ml.MAML(tiny_mlp(), F.mse_loss, 0.1, inner_steps=1)
    support_x, support_y, _, _ = regression_batch(num_tasks=1)
    twice = maml.adapt(
        support_x[0], support_y[0], steps=1, params=maml.adapt(support_x[0], support_y[0], steps=1)
    )
    two_steps = maml.adapt(support_x[0], support_y[0], steps=2)
    for name, value in two_steps.items():
        torch.testing.assert_close(twice[name], value, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(
        two_steps["0.weight"], maml.adapt(support_x[0], support_y[0], steps=1)["0.weight"]
    )


def test_steps_zero_predicts_with_the_initialisation_and_predict_works_under_no_grad():
    model = tiny_mlp()
    maml = ml.MAML(model, F.mse_loss, 0.3)
    support_x, support_y, query_x, _ = regression_batch()
    with torch.no_grad():
        unadapted = maml.predict(support_x, support_y, query_x, steps=0)
        adapted = maml.predict(support_x, support_y, query_x, steps=2)
    torch.testing.assert_close(unadapted, model(query_x))
    assert adapted.shape == (3, 5, 1) and not adapted.requires_grad
    assert (adapted - unadapted).abs().max() > 1e-3


def test_inner_loss_fn_is_used_for_adaptation_only():
    model, batch = tiny_mlp(), regression_batch()
    doubled = ml.MAML(model, F.mse_loss, 0.1, inner_loss_fn=lambda p, y: 2 * F.mse_loss(p, y))
    plain = ml.MAML(model, F.mse_loss, 0.2)
    torch.testing.assert_close(doubled.meta_loss(*batch), plain.meta_loss(*batch))
    torch.testing.assert_close(doubled.predict(*batch[:3]), plain.predict(*batch[:3]))


def test_same_seed_gives_same_training_curve():
    def run() -> list[float]:
        torch.manual_seed(0)
        maml = ml.MAML(ml.MLP(1, [16], 1), F.mse_loss, 0.01)
        family = Sinusoid(k_shot=5, k_query=5, seed=5)
        opt = torch.optim.Adam(maml.parameters(), 1e-3)
        return ml.meta_train(maml, family, 5, opt, meta_batch=4, progress=False)

    assert run() == run()


@pytest.mark.parametrize(
    "change,argname",
    [
        (lambda b: (b[0], b[1], b[2][:2], b[3][:2]), "query_x"),  # task dims disagree
        (lambda b: (b[0], b[1], b[2][..., :1], b[3]), "query_x"),  # feature shapes differ
        (lambda b: (b[0][:, :0], b[1][:, :0], b[2], b[3]), "support_x"),  # empty support set
        (lambda b: (b[0], b[1][:, :3], b[2], b[3]), "support_y"),
    ],
)
def test_bad_task_batch_raises_value_error_naming_the_argument(change, argname):
    maml = ml.MAML(tiny_mlp(), F.mse_loss, 0.1)
    bad = change(regression_batch())
    with pytest.raises(ValueError, match=argname):
        maml.meta_loss(*bad)
    with pytest.raises(ValueError, match=argname):
        maml.predict(*bad[:3])


@pytest.mark.parametrize(
    "kwargs,argname",
    [
        (dict(inner_lr=0.0), "inner_lr"),
        (dict(inner_lr=-0.1), "inner_lr"),
        (dict(inner_steps=0), "inner_steps"),
        (dict(learn_inner_lr="per_layer"), "learn_inner_lr"),
        (dict(model=nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))), "model"),
    ],
)
def test_bad_hyperparameters_raise_value_error(kwargs, argname):
    arguments = dict(model=tiny_mlp(), loss_fn=F.mse_loss, inner_lr=0.1) | kwargs
    with pytest.raises(ValueError, match=argname):
        ml.MAML(**arguments)


def test_bad_steps_and_single_task_shapes_raise_value_error():
    maml = ml.MAML(tiny_mlp(), F.mse_loss, 0.1)
    support_x, support_y, query_x, _ = regression_batch()
    with pytest.raises(ValueError, match="steps"):
        maml.predict(support_x, support_y, query_x, steps=-1)
    with pytest.raises(ValueError, match="support_y"):
        maml.adapt(support_x[0], support_y[0, :2])


@pytest.mark.parametrize("batched", [True, False])
def test_nan_inner_loss_raises(batched):
    maml = ml.MAML(tiny_mlp(), F.mse_loss, 0.1, batched=batched)
    support_x, support_y, query_x, query_y = regression_batch()
    support_y = support_y.clone()
    support_y[1, 0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="inner"):
        maml.meta_loss(support_x, support_y, query_x, query_y)
    with pytest.raises(FloatingPointError, match="inner"):
        maml.predict(support_x, support_y, query_x)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("workload", ["mlp", "conv_bn"])
def test_runs_on_cuda_and_matches_cpu(workload):
    if workload == "mlp":
        model, loss_fn, batch = tiny_mlp(), F.mse_loss, regression_batch()
    else:
        torch.manual_seed(0)
        model, loss_fn, batch = Conv4(hidden=4).double(), F.cross_entropy, bn_conv_batch()
    maml = ml.MAML(model, loss_fn, 0.2, 2)
    cpu_loss = maml.meta_loss(*batch)
    cpu_grad = flat_grad(cpu_loss, list(maml.parameters()))
    maml.cuda()
    for batched in (True, False):
        maml.batched = batched
        loss = maml.meta_loss(*(t.cuda() for t in batch))
        assert loss.device.type == "cuda"
        torch.testing.assert_close(loss.cpu(), cpu_loss, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(
            flat_grad(loss, list(maml.parameters())).cpu(), cpu_grad, rtol=1e-7, atol=1e-9
        )


@pytest.mark.parametrize("first_order", [False, True])
@pytest.mark.parametrize("name", list(benchmark.WORKLOADS))
def test_every_path_gives_the_plain_loops_float64_meta_gradient(name, first_order):
    """The benchmark's workloads (the MAML paper's, with batch norm; 20-way: 5 inner steps):
    ml.MAML's loop, vmap and default paths against an autograd loop over tasks."""
    workload = benchmark.WORKLOADS[name]
    for path in ("loop", "vmap", "default"):
        assert benchmark.gradient_gap(workload, path, first_order, meta_batch=2) < 1e-10, path


def test_the_loop_gives_an_unused_weight_a_zero_gradient_as_vmap_does():
    class WithSpare(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used, self.spare = nn.Linear(1, 1), nn.Linear(1, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.used(x)

    batch = Sinusoid(seed=0).sample(2, k_shot=5, k_query=5)
    adapted = {}
    for batched in (False, True):
        torch.manual_seed(0)
        maml = ml.MAML(WithSpare(), F.mse_loss, 0.1, batched=batched)
        adapted[batched] = maml.adapt(batch.support_x[0], batch.support_y[0])
        maml.meta_loss(*batch).backward()  # the loop must not fail on the unused weight
        spare = maml.model.spare.weight.grad
        assert spare is None or torch.equal(spare, torch.zeros(1, 1))
    for name in adapted[True]:
        torch.testing.assert_close(adapted[False][name], adapted[True][name])


def test_meta_loss_scores_with_another_loss_fn_after_the_same_inner_steps():
    batch = Sinusoid(seed=0).sample(3, k_shot=5, k_query=5)
    torch.manual_seed(0)
    model = ml.MLP(1, [8], 1)
    maml = ml.MAML(model, F.mse_loss, 0.1, inner_steps=2, learn_inner_lr="per_tensor")
    other = ml.MAML(
        model, F.l1_loss, 0.1, inner_steps=2, learn_inner_lr="per_tensor", inner_loss_fn=F.mse_loss
    )
    other.load_state_dict(maml.state_dict())
    torch.testing.assert_close(maml.meta_loss(*batch, loss_fn=F.l1_loss), other.meta_loss(*batch))


def test_the_rule_looks_at_the_query_set_too_and_builds_benchmarks_without_reseeding():
    pooled = ml.MAML(Conv4(1, 5, 64), F.cross_entropy, 0.4)
    three, seventy_five = torch.zeros(2, 3, 1, 28, 28), torch.zeros(2, 75, 1, 28, 28)
    assert pooled.batches_tasks(three) and not pooled.batches_tasks(three, seventy_five)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    benchmark.WORKLOADS["sinusoid"].build()
    assert torch.equal(torch.rand(3), expected)  # the global random state is left alone
