"""LSTMMetaLearner (Ravi & Larochelle's LSTM optimiser): SGD at init, gradients, learning,
bad input."""

import copy
import math

import pytest
import torch
from torch.nn import functional as F

import metalearn as ml
from metalearn.algorithms.lstm_meta_learner import LSTMMetaLearner, lstm_cell, preprocess
from metalearn.models.lstm_classifier import LSTMClassifier
from metalearn.tasks import TaskPool
from metalearn.tasks.text import TextTasks


def text_learner(tasks, inner_steps=2, seed=0, **kwargs):
    torch.manual_seed(seed)
    model = LSTMClassifier(3, 8, vocab_size=tasks.vocab_size, embedding_dim=4)
    return LSTMMetaLearner(model, F.cross_entropy, inner_steps, n_way=3, **kwargs)


def test_preprocess_matches_andrychowicz_formula():
    x = torch.tensor([1.0, -0.5, 1e-6, -3e-5, 0.0])
    out = preprocess(x, p=10.0)
    big = x.abs() >= math.exp(-10)
    expected_first = torch.where(big, x.abs().clamp_min(1e-30).log() / 10, torch.tensor(-1.0))
    expected_second = torch.where(big, x.sign(), math.exp(10) * x)
    torch.testing.assert_close(out, torch.stack([expected_first, expected_second], -1))
    assert out.shape == (5, 2) and out[0, 0] == 0 and out[1, 1] == -1 and out[4, 1] == 0


@pytest.mark.parametrize("init_lr", [0.01, 0.05])
def test_untrained_meta_learner_takes_a_shrinking_sgd_step(init_lr):
    """θ_1 = σ(b_F) θ_0 - init_lr ∇L: SGD with the official initialisation's shrinkage."""
    tasks = TextTasks("train", seed=0)
    learner = text_learner(tasks, inner_steps=1, init_lr=init_lr)
    sx, sy, _, _ = tasks.sample(3, k_shot=2, k_query=1)
    theta = learner.adapt(sx, sy).detach()
    theta0 = learner.initial_parameters().detach()
    forget = torch.sigmoid(torch.tensor(4.5))
    for t in range(3):  # the gradient by ordinary autograd, task by task
        params = [p.detach().clone().requires_grad_() for p in learner.model.parameters()]
        flat = torch.cat([p.flatten() for p in params])
        loss = F.cross_entropy(learner.functional(flat, sx[t]), sy[t])
        gradient = torch.cat([g.flatten() for g in torch.autograd.grad(loss, params)])
        step = init_lr * gradient
        error = (theta[t] - (forget * theta0 - step)).abs()
        assert (error <= 1e-3 * theta0.abs() + 0.05 * step.abs() + 1e-7).all(), error.max()
    assert torch.allclose(learner.history["input_gate"], torch.tensor(init_lr), rtol=0.05)
    assert torch.allclose(learner.history["forget_gate"], forget, atol=1e-3)


def test_initialisation_follows_the_official_ranges():
    learner = text_learner(TextTasks("train", seed=0), hidden_size=20)
    biases = {"input_gate.bias": (-5, -4), "forget_gate.bias": (4, 5)}
    for name, parameter in learner.named_parameters():
        if name.startswith("model."):
            continue
        low, high = biases.get(name, (-0.01, 0.01))
        assert low <= parameter.min() and parameter.max() <= high, name


def batch_norm_learner(inner_steps=3, seed=0):
    """The learner, and a copy of its network with PyTorch's own running statistics."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 3)
    ).double()
    reference = copy.deepcopy(model)
    learner = LSTMMetaLearner(model, F.cross_entropy, inner_steps, n_way=3, init_lr=0.5)
    return learner.double(), reference


def test_predictions_use_the_supports_running_statistics_like_torch_batch_norm():
    """An independent reference: nn.BatchNorm1d in training mode with momentum 0.9, reset per
    episode, sees the support at θ_0 ... θ_{T-1}; in eval mode it normalises the queries."""
    learner, reference = batch_norm_learner()
    generator = torch.Generator().manual_seed(1)
    sx, qx = torch.randn(2, 6, 4, generator=generator), torch.randn(2, 5, 4, generator=generator)
    sy = torch.randint(0, 3, (2, 6), generator=generator)
    predicted = learner.predict(sx.double(), sy, qx.double())
    reference[1].momentum = 0.9
    for task in range(2):
        reference[1].reset_running_stats()
        reference.train()
        for step in range(learner.inner_steps):
            theta = learner.adapt(sx.double(), sy, steps=step)[task].detach()
            torch.func.functional_call(reference, learner.unflatten(theta), (sx[task].double(),))
        reference.eval()
        theta = learner.adapt(sx.double(), sy)[task].detach()
        expected = torch.func.functional_call(
            reference, learner.unflatten(theta), (qx[task].double(),)
        )
        torch.testing.assert_close(predicted[task], expected, rtol=1e-10, atol=1e-10)


def test_a_test_prediction_depends_on_its_own_query_alone():
    learner, _ = batch_norm_learner()
    sx, qx = torch.randn(2, 6, 4).double(), torch.randn(2, 5, 4).double()
    sy = torch.randint(0, 3, (2, 6))
    together = learner.predict(sx, sy, qx)
    alone = torch.cat([learner.predict(sx, sy, qx[:, j : j + 1]) for j in range(5)], dim=1)
    torch.testing.assert_close(together, alone, rtol=1e-10, atol=1e-10)
    assert not torch.allclose(together[:, :1], learner.predict(sx, sy.roll(1, 1), qx[:, :1]))


def test_predict_in_blocks_of_tasks_equals_each_task_alone():
    """predict adapts PREDICT_TASKS tasks at a time; the outputs and the gates' history are
    those of every task adapted on its own."""
    from metalearn.algorithms.lstm_meta_learner import PREDICT_TASKS

    learner, _ = batch_norm_learner()
    tasks = 2 * PREDICT_TASKS + 3
    generator = torch.Generator().manual_seed(2)
    sx = torch.randn(tasks, 6, 4, generator=generator).double()
    qx = torch.randn(tasks, 5, 4, generator=generator).double()
    sy = torch.randint(0, 3, (tasks, 6), generator=generator)
    together = learner.predict(sx, sy, qx)
    history = learner.history
    size = learner.initial_parameters().numel()
    assert history["input_gate"].shape == (learner.inner_steps, tasks, size)
    assert history["support_loss"].shape == (learner.inner_steps, tasks)
    for t in (0, PREDICT_TASKS, tasks - 1):  # one task of each block
        alone = learner.predict(sx[t : t + 1], sy[t : t + 1], qx[t : t + 1])
        torch.testing.assert_close(together[t : t + 1], alone, rtol=1e-10, atol=1e-10)
        for key, value in learner.history.items():
            torch.testing.assert_close(history[key][:, t], value[:, 0], rtol=1e-10, atol=1e-10)


def test_meta_training_normalises_queries_with_their_batch_statistics():
    learner, reference = batch_norm_learner(inner_steps=2)
    sx, qx = torch.randn(2, 6, 4).double(), torch.randn(2, 5, 4).double()
    sy, qy = torch.randint(0, 3, (2, 6)), torch.randint(0, 3, (2, 5))
    loss = learner.meta_loss(sx, sy, qx, qy)
    theta = learner.adapt(sx, sy).detach()
    reference[1].track_running_stats = False  # batch statistics in training mode
    reference[1].running_mean = reference[1].running_var = None
    expected = torch.stack(
        [
            F.cross_entropy(
                torch.func.functional_call(reference, learner.unflatten(theta[t]), (qx[t],)),
                qy[t],
            )
            for t in range(2)
        ]
    ).mean()
    torch.testing.assert_close(loss, expected, rtol=1e-10, atol=1e-10)
    loss.backward()
    assert all(p.grad is not None for p in learner.parameters())


def test_every_meta_parameter_gets_a_finite_nonzero_gradient():
    tasks = TextTasks("train", seed=1)
    learner = text_learner(tasks, inner_steps=2)
    optimizer = torch.optim.Adam(learner.parameters(), 1e-3)
    ml.meta_train(
        learner,
        TaskPool(tasks.sample(3, k_shot=2, k_query=2)),
        1,
        optimizer,
        meta_batch=3,
        grad_clip=1.0,
        progress=False,
    )
    learner.zero_grad()
    learner.meta_loss(*tasks.sample(3, k_shot=2, k_query=2)).backward()
    for name, parameter in learner.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


def test_inner_gradients_enter_as_constants():
    """No second derivatives: the meta-gradient of theta_0 through one step is
    f_1 * dL/dtheta_1 exactly."""
    tasks = TextTasks("train", seed=2)
    learner = text_learner(
        tasks, inner_steps=1, init_lr=0.5
    ).double()  # a large rate: Hessian terms would show
    sx, sy, qx, qy = tasks.sample(1, k_shot=2, k_query=2)
    learner.meta_loss(sx, sy, qx, qy).backward()
    theta1 = learner.adapt(sx, sy).detach()[0].requires_grad_()
    query_gradient = torch.autograd.grad(
        F.cross_entropy(learner.functional(theta1, qx[0]), qy[0]), theta1
    )[0]
    forget = learner.history["forget_gate"][0, 0]
    # dθ1/dθ0 = f (+ the small terms of θ0 entering the gates); the Hessian term
    # -i * d²L/dθ0² is absent
    measured = torch.cat([p.grad.flatten() for p in learner.model.parameters()])
    gate_terms = measured - forget * query_gradient
    assert gate_terms.abs().max() < 0.01 * query_gradient.abs().max()


@pytest.mark.parametrize("zero_state", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_lstm_cell_equals_torchs_cell_with_gradients(zero_state, bias):
    """float64: outputs and the gradients of every input and weight agree with nn.LSTMCell."""
    torch.manual_seed(0)
    cell = torch.nn.LSTMCell(4, 6, bias=bias).double()
    x = torch.randn(7, 4, dtype=torch.float64, requires_grad=True)
    state = None if zero_state else tuple(torch.randn(7, 6, dtype=torch.float64) for _ in "hc")
    leaves = [x, *cell.parameters(), *(state or ())]
    for tensor in state or ():
        tensor.requires_grad_()
    mixing = [torch.randn(7, 6, dtype=torch.float64) for _ in "hc"]
    results = []
    for fn in (cell, lambda x, state: lstm_cell(x, state, cell)):
        h, c = fn(x, state)
        loss = (h * mixing[0]).sum() + (c * mixing[1]).sum()
        results.append((h, c, torch.autograd.grad(loss, leaves)))
    (h, c, grads), (our_h, our_c, our_grads) = results
    torch.testing.assert_close(our_h, h, rtol=0, atol=1e-12)
    torch.testing.assert_close(our_c, c, rtol=0, atol=1e-12)
    for ours, theirs in zip(our_grads, grads):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-12)


def test_adapt_equals_the_cell_and_gates_written_out():
    """Two learned updates against the equations computed with torch's modules (``nn.LSTMCell``,
    the gates' ``nn.Linear`` on ``[h_t, θ_{t-1}, ĩ_{t-1}]``), float64."""
    tasks = TextTasks("train", seed=3)
    learner = text_learner(tasks, inner_steps=2, init_lr=0.2).double()
    with torch.no_grad():  # gates that read every input: not the near-zero initial weights
        for module in (learner.gradient_lstm, learner.input_gate, learner.forget_gate):
            for parameter in module.parameters():
                parameter.normal_(0, 0.3)
    sx, sy, _, _ = tasks.sample(3, k_shot=2, k_query=1)
    theta = learner.initial_parameters().expand(3, -1)
    state, input_logit, forget_logit = None, torch.zeros_like(theta), torch.zeros_like(theta)
    for _ in range(2):
        gradient_and_loss = [
            torch.func.grad_and_value(learner.task_loss)(theta[t].detach(), sx[t], sy[t])
            for t in range(3)
        ]
        gradient = torch.stack([g for g, _ in gradient_and_loss])
        loss = torch.stack([v for _, v in gradient_and_loss])
        features = torch.cat(
            [preprocess(gradient), preprocess(loss[:, None].expand_as(gradient))], -1
        )
        state = learner.gradient_lstm(features.flatten(0, 1), state)
        h = state[0].view(*theta.shape, -1)
        input_logit = learner.input_gate(
            torch.cat([h, theta[..., None], input_logit[..., None]], -1)
        )[..., 0]
        forget_logit = learner.forget_gate(
            torch.cat([h, theta[..., None], forget_logit[..., None]], -1)
        )[..., 0]
        theta = torch.sigmoid(forget_logit) * theta - torch.sigmoid(input_logit) * gradient
    torch.testing.assert_close(learner.adapt(sx, sy), theta, rtol=0, atol=1e-10)


def test_meta_training_learns_gates_and_beats_chance_on_held_out_tasks():
    ml.seed_everything(0)
    train, test = TextTasks("train", k_shot=5, k_query=5, seed=1), TextTasks("test", seed=2)
    learner = text_learner(train, inner_steps=3)
    optimizer = torch.optim.Adam(learner.parameters(), 1e-2)
    ml.meta_train(learner, train, 30, optimizer, meta_batch=8, grad_clip=1.0, progress=False)
    result = ml.evaluate(learner, [test.sample(40, k_shot=5, k_query=10)])
    assert result.mean > 1 / 3 + 0.15, result
    assert (
        learner.history["input_gate"].mean() > 0.05
    )  # learned rates moved far from the initial 0.01


def test_bad_input_names_the_argument():
    tasks = TextTasks("train", seed=0)
    learner = text_learner(tasks)
    sx, sy, qx, qy = tasks.sample(2, k_shot=2, k_query=2)
    with pytest.raises(ValueError, match="support_y"):
        learner.meta_loss(sx, sy - 1, qx, qy)
    with pytest.raises(ValueError, match="query_y"):
        learner.meta_loss(sx, sy, qx, qy + 3)
    with pytest.raises(ValueError, match="support_x"):
        learner.predict(sx[:, :0], sy[:, :0], qx)
    with pytest.raises(ValueError, match="query_x"):
        learner.predict(sx, sy, qx.float()[..., None])
    with pytest.raises(ValueError, match="inner_steps"):
        LSTMMetaLearner(torch.nn.Linear(2, 3), F.cross_entropy, 0)


def test_too_few_statistics_for_the_network_is_an_error_naming_them():
    learner, _ = batch_norm_learner()
    x = torch.randn(4, 4).double()
    with pytest.raises(ValueError, match="statistics has 0"):
        learner.functional(learner.initial_parameters(), x, [])
