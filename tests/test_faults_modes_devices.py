"""Class 8 of the fault review: modes and devices.

``FineTune.predict`` predicts in the caller's mode (``eval()`` turns dropout off); a batch whose
tensors sit on different devices, or on another device than the learner, is refused by name
before anything is computed. Tensors on PyTorch's ``meta`` device stand in for a second device
on machines without a GPU; the CUDA tests run where there is one.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import metalearn as ml
from metalearn.algorithms.baselines import fit
from metalearn.envs import Navigation2D
from metalearn.tasks import Sinusoid, TextTasks


def dropout_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(1, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 1))


def test_fine_tune_predicts_in_eval_mode_after_eval():
    batch = Sinusoid(seed=0).sample(2, k_shot=5, k_query=6)
    learner = ml.FineTune(dropout_net(), F.mse_loss, lr=0.01, steps=3).eval()
    torch.manual_seed(1)
    predictions = learner.predict(*batch[:3])
    torch.manual_seed(1)  # the same fine-tuning (dropout on while tuning), then eval mode
    expected = []
    for sx, sy, qx in zip(*batch[:3]):
        tuned = fit(copy.deepcopy(learner.model), sx, sy, F.mse_loss, 0.01, 3, "sgd").eval()
        expected.append(tuned(qx).detach())
    torch.testing.assert_close(predictions, torch.stack(expected))
    assert not learner.model.training  # the caller's mode is kept


def test_fine_tune_without_steps_in_eval_mode_is_the_deterministic_network():
    batch = Sinusoid(seed=0).sample(2, k_shot=5, k_query=6)
    learner = ml.FineTune(dropout_net(), F.mse_loss, lr=0.01, steps=0).eval()
    with torch.no_grad():
        expected = learner.model(batch.query_x)
    torch.testing.assert_close(learner.predict(*batch[:3]), expected)
    torch.testing.assert_close(learner.predict(*batch[:3]), expected)


def test_fine_tune_in_train_mode_keeps_dropout_on():
    batch = Sinusoid(seed=0).sample(2, k_shot=5, k_query=6)
    learner = ml.FineTune(dropout_net(), F.mse_loss, lr=0.01, steps=0)
    assert learner.model.training
    assert not torch.equal(learner.predict(*batch[:3]), learner.predict(*batch[:3]))


def test_input_checks_leave_the_model_mode_and_random_state_alone():
    for training in (True, False):
        maml = ml.MAML(dropout_net(), F.mse_loss, inner_lr=0.1).train(training)
        batch = Sinusoid(seed=0).sample(2, k_shot=3, k_query=3)
        state = torch.get_rng_state()
        maml._check_inputs(*batch)
        assert torch.equal(torch.get_rng_state(), state)
        assert all(m.training == training for m in maml.modules())


def on_meta(batch, *fields):
    """The batch with the named tensors moved to the ``meta`` device (no data, any shape)."""
    return batch._replace(**{f: getattr(batch, f).to("meta") for f in fields})


@pytest.mark.parametrize("field", ["support_y", "query_x"])
def test_maml_predict_refuses_mixed_devices_by_name(field):
    maml = ml.MAML(ml.MLP(1, [8], 1), F.mse_loss, inner_lr=0.1)
    batch = on_meta(Sinusoid(seed=0).sample(2, k_shot=3, k_query=4), field)
    with pytest.raises(ValueError, match=rf"{field} is on meta but support_x is on cpu"):
        maml.predict(*batch[:3])
    with pytest.raises(ValueError, match=rf"{field} is on meta"):
        maml.meta_loss(*batch)


def test_maml_refuses_a_batch_on_another_device_than_the_model():
    maml = ml.MAML(ml.MLP(1, [8], 1), F.mse_loss, inner_lr=0.1)
    batch = on_meta(Sinusoid(seed=0).sample(2, k_shot=3, k_query=4), *ml.TaskBatch._fields)
    with pytest.raises(ValueError, match=r"support_x is on meta but the model's parameters"):
        maml.predict(*batch[:3])
    with pytest.raises(ValueError, match=r"support_x is on meta but the model's parameters"):
        maml.adapt(batch.support_x[0], batch.support_y[0])


@pytest.mark.parametrize(
    "make, regression",
    [
        (lambda: ml.FineTune(nn.Linear(1, 1), F.mse_loss, lr=0.1, steps=1), True),
        (lambda: ml.TrainFromScratch(lambda: nn.Linear(1, 1), F.mse_loss, 0.1, 1), True),
        (lambda: ml.ProtoNet(nn.Linear(1, 2), num_classes=2), False),
        (lambda: ml.LSTMMetaLearner(nn.Linear(1, 2), F.cross_entropy, inner_steps=1), False),
    ],
)
def test_every_learner_refuses_mixed_devices_by_name(make, regression):
    x = torch.randn(2, 4, 1)
    y = x if regression else torch.tensor([[0, 1, 0, 1]] * 2)
    batch = ml.TaskBatch(x, y, x, y)
    assert make().predict(*batch[:3]).shape[:2] == (2, 4)
    with pytest.raises(ValueError, match="query_x is on meta"):
        make().predict(*on_meta(batch, "query_x")[:3])


def test_meta_lstm_refuses_mixed_devices_by_name():
    tasks = TextTasks(seed=0)
    model = ml.MetaLSTM(3, hidden_size=4, meta_hidden_size=4, vocab_size=tasks.vocab_size)
    batch = tasks.sample(2, k_shot=1, k_query=1)
    with pytest.raises(ValueError, match="query_x is on meta"):
        model.predict(*on_meta(batch, "query_x")[:3])


def test_evaluate_names_the_batch_with_mixed_devices():
    maml = ml.MAML(ml.MLP(1, [8], 1), F.mse_loss, inner_lr=0.1)
    batch = on_meta(Sinusoid(seed=0).sample(2, k_shot=3, k_query=4), "query_y")
    with pytest.raises(ValueError, match=r"task_batches\[0\]: query_y is on meta"):
        ml.evaluate(maml, [batch], ml.mse)


def test_navigation_actions_must_be_on_the_tasks_device():
    env = Navigation2D(torch.zeros(1, 2))
    env.reset(2)
    with pytest.raises(ValueError, match="actions are on meta"):
        env.step(torch.zeros(1, 2, 2, device="meta"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_maml_predict_refuses_a_query_on_another_cuda_device_than_the_support():
    maml = ml.MAML(ml.MLP(1, [8], 1), F.mse_loss, inner_lr=0.1)
    sx, sy, qx, _ = Sinusoid(seed=0).sample(2, k_shot=3, k_query=4)
    with pytest.raises(ValueError, match="query_x is on cuda:0 but support_x is on cpu"):
        maml.predict(sx, sy, qx.cuda())
    with pytest.raises(ValueError, match="support_x is on cuda:0 but the model's parameters"):
        maml.predict(sx.cuda(), sy.cuda(), qx.cuda())
    maml.cuda()
    on_gpu = maml.predict(sx.cuda(), sy.cuda(), qx.cuda())
    torch.testing.assert_close(on_gpu.cpu(), maml.cpu().predict(sx, sy, qx))
