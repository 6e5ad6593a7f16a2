"""Class 10 (non-data items) of the fault review: user mistakes fail at the entry point.

Empty tasks (``T = 0``, ``Q = 0``), a model without parameters, ``inner_steps`` of 0 or
below in the LSTM meta-learner, float labels, integer inputs into float networks, bools and
fractional numbers given as counts and seeds, and ``default_device(5)`` each raise a
``ValueError``/``TypeError`` at the entry point that names the argument.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import metalearn as ml
from metalearn.algorithms.sklearn_learner import SklearnLearner
from metalearn.core import check_task_batch
from metalearn.envs import Navigation2D
from metalearn.models.policy import GaussianMLPPolicy
from metalearn.rl.controller import MetaLSTMController, train_controller
from metalearn.tasks import EpisodeSampler, Sinusoid, TextTasks


def regression_batch(tasks: int = 2, k_shot: int = 3, k_query: int = 4) -> ml.TaskBatch:
    return ml.TaskBatch(
        torch.randn(tasks, k_shot, 1),
        torch.randn(tasks, k_shot, 1),
        torch.randn(tasks, k_query, 1),
        torch.randn(tasks, k_query, 1),
    )


# -- T = 0 and Q = 0 ---------------------------------------------------------------------------
def test_no_tasks_is_refused_by_name():
    empty = regression_batch(tasks=0)
    with pytest.raises(ValueError, match=r"support_x has no tasks \(T = 0\)"):
        check_task_batch(*empty)
    maml = ml.MAML(ml.MLP(1, [4], 1), F.mse_loss, inner_lr=0.1)
    with pytest.raises(ValueError, match=r"T = 0"):
        maml.meta_loss(*empty)
    with pytest.raises(ValueError, match=r"task_batches\[0\]: support_x has no tasks"):
        ml.evaluate(maml, [empty], ml.mse)


def test_no_queries_is_refused_by_name():
    empty = regression_batch(k_query=0)
    for learner, loss in (
        (maml := ml.MAML(ml.MLP(1, [4], 1), F.mse_loss, inner_lr=0.1), maml.meta_loss),
        (tune := ml.FineTune(nn.Linear(1, 1), F.mse_loss, lr=0.1, steps=1), tune.joint_loss),
    ):
        with pytest.raises(ValueError, match=r"query_x is empty \(Q = 0\)"):
            loss(*empty)
        with pytest.raises(ValueError, match=r"query_x is empty"):
            ml.evaluate(learner, [empty], ml.mse)
    protonet = ml.ProtoNet(nn.Linear(1, 2), num_classes=2)
    labels = torch.tensor([[0, 1, 0]] * 2)
    with pytest.raises(ValueError, match=r"query_x is empty"):
        protonet.predict(empty.support_x, labels, empty.query_x)
    with pytest.raises(ValueError, match="k_query must be >= 1, got 0"):
        EpisodeSampler(torch.zeros(8, 1, 2, 2), torch.arange(8) % 2, 2, 1, k_query=0)


# -- models without parameters ------------------------------------------------------------------
def test_a_model_without_parameters_is_refused_where_it_must_learn():
    with pytest.raises(ValueError, match="model has no parameters"):
        ml.MAML(nn.Identity(), F.mse_loss, inner_lr=0.1)
    with pytest.raises(ValueError, match="model must be an nn.Module with parameters"):
        ml.LSTMMetaLearner(nn.Identity(), F.cross_entropy)
    with pytest.raises(ValueError, match="model must be an nn.Module with parameters"):
        ml.FineTune(nn.Identity(), F.mse_loss, lr=0.1, steps=1)
    scratch = ml.TrainFromScratch(nn.Identity, F.mse_loss, lr=0.1, steps=1)
    with pytest.raises(ValueError, match="model has no parameters to train"):
        scratch.predict(*regression_batch()[:3])


def test_protonet_on_an_identity_encoder_predicts_but_has_nothing_to_meta_train():
    protonet = ml.ProtoNet(nn.Identity(), num_classes=2)
    sx = torch.tensor([[[0.0], [1.0], [10.0], [11.0]]])
    sy = torch.tensor([[0, 0, 1, 1]])
    qx = torch.tensor([[[2.0], [9.0]]])
    assert protonet.predict(sx, sy, qx).argmax(-1).tolist() == [[0, 1]]  # nearest class mean
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    batch = ml.TaskBatch(sx, sy, qx, torch.tensor([[0, 1]]))
    with pytest.raises(ValueError, match="does not depend on any parameter"):
        ml.meta_train(protonet, ml.TaskPool(batch), 2, optimizer, meta_batch=1, progress=False)


# -- the LSTM meta-learner's steps -------------------------------------------------------------
@pytest.mark.parametrize("inner_steps", [0, -1, True, 2.5, "3"])
def test_lstm_meta_learner_refuses_bad_inner_steps(inner_steps):
    with pytest.raises(ValueError, match="inner_steps"):
        ml.LSTMMetaLearner(nn.Linear(2, 2), F.cross_entropy, inner_steps=inner_steps)


def test_lstm_meta_learner_adapt_steps():
    torch.manual_seed(0)
    learner = ml.LSTMMetaLearner(nn.Linear(2, 2), F.cross_entropy, inner_steps=2)
    sx, sy = torch.randn(3, 4, 2), torch.tensor([[0, 1, 0, 1]] * 3)
    for steps in (-1, True, 1.0):
        with pytest.raises(ValueError, match="steps"):
            learner.adapt(sx, sy, steps=steps)
    theta = learner.adapt(sx, sy, steps=0)  # no update: the initialisation itself
    assert torch.equal(theta, learner.initial_parameters().expand(3, -1))
    assert learner.history["input_gate"].shape == (0, 3, learner.num_coordinates)
    assert learner.history["support_loss"].shape == (0, 3)
    assert learner.adapt(sx, sy, steps=2).shape == (3, learner.num_coordinates)


# -- float labels ----------------------------------------------------------------------------
def test_float_labels_are_refused_by_name():
    sx, qx = torch.randn(2, 4, 2), torch.randn(2, 3, 2)
    sy, qy = torch.tensor([[0, 1, 2, 0]] * 2), torch.tensor([[0, 1, 2]] * 2)
    maml = ml.MAML(ml.MLP(2, [4], 3), F.cross_entropy, inner_lr=0.1)
    with pytest.raises(ValueError, match=r"support_y has dtype torch.float32 .* must be integers"):
        maml.meta_loss(sx, sy.float(), qx, qy)
    with pytest.raises(ValueError, match="query_y must hold integer class indices"):
        ml.ProtoNet(nn.Linear(2, 2), 3).meta_loss(sx, sy, qx, qy.float())
    with pytest.raises(ValueError, match="support_y must hold integer"):
        ml.LSTMMetaLearner(nn.Linear(2, 3), F.cross_entropy).predict(sx, sy.float(), qx)
    with pytest.raises(ValueError, match="labels must hold integer"):
        ml.accuracy(torch.randn(2, 3, 3), qy.float())
    with pytest.raises(ValueError, match="support_y must hold integer"):
        SklearnLearner(GaussianNBStandIn(), num_classes=3).predict(sx, sy + 0.5, qx)


class GaussianNBStandIn:
    """Only needs ``predict_proba`` to exist: the labels are refused before any fit."""

    def predict_proba(self, x):  # pragma: no cover - never reached
        raise AssertionError


# -- integer inputs into float networks -----------------------------------------------------------
def test_integer_inputs_into_a_float_network_are_named():
    sx, qx = torch.randint(0, 5, (2, 4, 1)), torch.randint(0, 5, (2, 3, 1))
    sy, qy = torch.randn(2, 4, 1), torch.randn(2, 3, 1)
    maml = ml.MAML(ml.MLP(1, [4], 1), F.mse_loss, inner_lr=0.1)
    for call in (
        lambda: maml.meta_loss(sx, sy, qx, qy),
        lambda: maml.predict(sx, sy, qx),
        lambda: ml.FineTune(nn.Linear(1, 1), F.mse_loss, 0.1, 1).predict(sx, sy, qx),
        lambda: ml.TrainFromScratch(lambda: nn.Linear(1, 1), F.mse_loss, 0.1, 1).predict(
            sx, sy, qx
        ),
        lambda: ml.ProtoNet(nn.Linear(1, 2), 2).predict(sx, torch.tensor([[0, 1, 0, 1]] * 2), qx),
    ):
        with pytest.raises(ValueError, match=r"support_x has dtype torch.int64.*\.float\(\)"):
            call()


def test_float64_inputs_into_a_float32_network_are_named():
    maml = ml.MAML(ml.MLP(1, [4], 1), F.mse_loss, inner_lr=0.1)
    batch = regression_batch()
    with pytest.raises(ValueError, match=r"support_x has dtype torch.float64 but the model"):
        maml.predict(batch.support_x.double(), batch.support_y, batch.query_x.double())


def test_token_ids_into_a_model_with_an_embedding_still_work():
    tasks = TextTasks(seed=0)
    learner = ml.MetaLSTM(3, hidden_size=4, meta_hidden_size=4, vocab_size=tasks.vocab_size)
    assert torch.isfinite(learner.meta_loss(*tasks.sample(2, k_shot=1, k_query=1)))


# -- counts and seeds --------------------------------------------------------------------------
def env() -> Navigation2D:
    return Navigation2D(torch.zeros(1, 2))


@pytest.mark.parametrize("bad", [True, False, 2.0, 2.5, "2"])
@pytest.mark.parametrize(
    "call, name",
    [
        (lambda v: ml.seed_everything(v), "seed"),
        (lambda v: Sinusoid(seed=v), "seed"),
        (lambda v: Sinusoid().sample(v, k_shot=2, k_query=2), "num_tasks"),
        (lambda v: Sinusoid().sample(2, k_shot=v, k_query=2), "k_shot"),
        (lambda v: Sinusoid(k_query=v), "k_query"),
        (lambda v: Sinusoid().sample(2, torch.Generator(), k_query=v), "k_query"),
        (lambda v: TextTasks(n_way=v), "n_way"),
        (lambda v: TextTasks(seed=v), "seed"),
        (lambda v: TextTasks().sample(2, k_shot=v, k_query=1), "k_shot"),
        (lambda v: EpisodeSampler(torch.zeros(8, 1, 2, 2), torch.arange(8) % 2, v, 1, 1), "n_way"),
        (
            lambda v: EpisodeSampler(torch.zeros(8, 1, 2, 2), torch.arange(8) % 2, 2, 1, 1, v),
            "seed",
        ),
        (lambda v: ml.MAML(ml.MLP(1, [2], 1), F.mse_loss, 0.1, inner_steps=v), "inner_steps"),
        (lambda v: ml.FineTune(nn.Linear(1, 1), F.mse_loss, 0.1, steps=v), "steps"),
        (lambda v: ml.ProtoNet(nn.Linear(1, 1), num_classes=v), "num_classes"),
        (lambda v: ml.MetaLSTM(v, vocab_size=5), "n_way"),
        (lambda v: SklearnLearner(GaussianNBStandIn(), cv=v), "cv"),
        (lambda v: SklearnLearner(GaussianNBStandIn(), seed=v), "seed"),
        (lambda v: Navigation2D(torch.zeros(1, 2), horizon=v), "horizon"),
        (lambda v: Navigation2D.sample(v), "num_tasks"),
        (lambda v: env().reset(v), "num_trajectories"),
        (lambda v: GaussianMLPPolicy(v, 2), "obs_dim"),
        (lambda v: MetaLSTMController(hidden=v), "hidden"),
        (
            lambda v: train_controller(
                MetaLSTMController(),
                v,
                torch.optim.SGD([nn.Parameter(torch.ones(1))]),
                meta_batch=1,
            ),
            "steps",
        ),
        (
            lambda v: ml.pretrain(
                ml.FineTune(nn.Linear(1, 1), F.mse_loss, 0.1, 1),
                ml.TaskPool(regression_batch()),
                v,
                torch.optim.SGD([nn.Parameter(torch.ones(1))], lr=0.1),
                meta_batch=1,
                progress=False,
            ),
            "steps",
        ),
    ],
)
def test_bools_and_fractional_numbers_are_not_counts_or_seeds(call, name, bad):
    with pytest.raises(ValueError, match=name):
        call(bad)


def test_maml_steps_at_prediction_time_must_be_an_int():
    maml = ml.MAML(ml.MLP(1, [2], 1), F.mse_loss, 0.1)
    for steps in (True, 1.5, -1):
        with pytest.raises(ValueError, match="steps"):
            maml.predict(*regression_batch()[:3], steps=steps)


def test_seeds_must_fit_in_64_bits_and_numpy_integers_are_fine():
    with pytest.raises(ValueError, match="seed must be <= 18446744073709551615"):
        ml.seed_everything(2**64)
    ml.seed_everything(np.int64(3))
    batch = Sinusoid(np.int64(3), 3, seed=np.int64(3)).sample(np.int32(2))
    assert batch.support_x.shape == (2, 3, 1)


# -- the device name -------------------------------------------------------------------------
@pytest.mark.parametrize("name", [5, 0, True, 1.5, ["cpu"]])
def test_default_device_needs_a_string(name):
    with pytest.raises(TypeError, match=r"name must be a str"):
        ml.default_device(name)


def test_default_device_takes_a_torch_device_and_refuses_odd_digits():
    assert ml.default_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(ValueError, match="is not a device"):
        ml.default_device("cuda:²")
