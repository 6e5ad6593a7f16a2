"""Class 7 of the fault review: labels and indices out of range.

Labels outside ``0 .. N-1`` (``-1``, ``-100``, ``N``) are refused by name; task indices follow
Python's conventions (``-1`` is the last) or raise ``IndexError`` naming the index.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import metalearn as ml
from metalearn.algorithms.sklearn_learner import SklearnLearner
from metalearn.envs import Navigation2D
from metalearn.tasks import Sinusoid, TextTasks


def classification_batch(labels: list[list[int]], queries: int = 3, features: int = 2):
    tasks = len(labels)
    return (
        torch.randn(tasks, len(labels[0]), features),
        torch.tensor(labels),
        torch.randn(tasks, queries, features),
        torch.zeros(tasks, queries, dtype=torch.long),
    )


@pytest.mark.parametrize("bad", [-1, 2])
def test_sklearn_learner_refuses_labels_outside_its_classes(bad):
    from sklearn.neighbors import KNeighborsClassifier

    learner = SklearnLearner(KNeighborsClassifier(n_neighbors=1), num_classes=2)
    sx, sy, qx, _ = classification_batch([[0, 1, bad, 1]])
    with pytest.raises(ValueError, match=r"support_y must lie in 0..1"):
        learner.predict(sx, sy, qx)
    with pytest.raises(ValueError, match="support_y must hold integer"):
        learner.predict(sx, sy.float().clamp(0, 1), qx)


def test_sklearn_learner_still_predicts_valid_labels():
    from sklearn.neighbors import KNeighborsClassifier

    learner = SklearnLearner(KNeighborsClassifier(n_neighbors=1), num_classes=3)
    sx = torch.tensor([[[0.0], [1.0], [2.0]]])
    log_probs = learner.predict(sx, torch.tensor([[0, 1, 2]]), torch.tensor([[[2.1], [-0.2]]]))
    assert log_probs.argmax(-1).tolist() == [[2, 0]]


def test_task_index_follows_python_conventions():
    batch = Sinusoid(seed=0).sample(4, k_shot=2, k_query=3)
    assert torch.equal(batch.task(-1).query_y, batch.query_y[3:])
    assert torch.equal(batch.task(-4).support_x, batch.support_x[:1])
    for index in (4, 99, -5):
        with pytest.raises(IndexError, match=rf"index={index} is out of range for 4 tasks"):
            batch.task(index)
    for index in (True, 1.0):
        with pytest.raises(TypeError, match="index must be an int"):
            batch.task(index)


def test_navigation_task_index_follows_python_conventions():
    env = Navigation2D.sample(3, generator=torch.Generator().manual_seed(0), dynamics=True)
    last = env.task(-1)
    assert torch.equal(last.goals, env.goals[2:]) and torch.equal(last.gains, env.gains[2:])
    with pytest.raises(IndexError, match="index=3"):
        env.task(3)
    with pytest.raises(IndexError, match="index=-4"):
        env.task(-4)
    with pytest.raises(TypeError, match="index"):
        env.task(0.0)


def test_protonet_refuses_labels_out_of_range_in_support_and_query():
    protonet = ml.ProtoNet(nn.Linear(2, 3), num_classes=3)
    sx, sy, qx, qy = classification_batch([[0, 1, 2, -1]])
    with pytest.raises(ValueError, match=r"support_y must lie in 0..2, got values -1..2"):
        protonet.predict(sx, sy, qx)
    sy = torch.tensor([[0, 1, 2, 1]])
    for bad in (3, -1, -100):  # -100 is cross_entropy's ignore_index: never silently skipped
        with pytest.raises(ValueError, match="query_y must lie in 0..2"):
            protonet.meta_loss(sx, sy, qx, torch.tensor([[0, bad, 1]]))


@pytest.mark.parametrize("bad", [-1, 5])
def test_maml_refuses_class_labels_outside_its_outputs(bad):
    maml = ml.MAML(ml.MLP(2, [8], 5), F.cross_entropy, inner_lr=0.1)
    sx, sy, qx, qy = classification_batch([[0, 1, 2, 3], [4, 3, 2, 1]])
    with pytest.raises(ValueError, match=r"query_y must lie in 0..4"):
        maml.meta_loss(sx, sy, qx, torch.full_like(qy, bad))
    sy[1, 2] = bad
    with pytest.raises(ValueError, match=r"support_y must lie in 0..4"):
        maml.predict(sx, sy, qx)


def test_a_single_logit_takes_binary_labels_only():
    def bce(logits, labels):  # the drug-discovery chapter's loss: logits [N, 1], labels [N]
        return F.binary_cross_entropy_with_logits(logits.squeeze(-1), labels.float())

    maml = ml.MAML(ml.MLP(2, [8], 1), bce, inner_lr=0.1)
    sx, sy, qx, qy = classification_batch([[0, 1, 1, 0]])
    assert torch.isfinite(maml.meta_loss(sx, sy, qx, qy))
    with pytest.raises(ValueError, match=r"support_y must lie in 0..1, got values 0..2"):
        maml.meta_loss(sx, torch.tensor([[0, 1, 2, 0]]), qx, qy)


def test_fine_tune_refuses_labels_out_of_range():
    tune = ml.FineTune(ml.MLP(2, [8], 3), F.cross_entropy, lr=0.1, steps=2)
    sx, sy, qx, qy = classification_batch([[0, 1, 2, 3]])
    with pytest.raises(ValueError, match="support_y must lie in 0..2"):
        tune.predict(sx, sy, qx)
    scratch = ml.TrainFromScratch(lambda: ml.MLP(2, [8], 3), F.cross_entropy, lr=0.1, steps=2)
    with pytest.raises(ValueError, match="support_y must lie in 0..2"):
        scratch.predict(sx, sy, qx)


def test_accuracy_refuses_labels_out_of_range():
    logits = torch.randn(2, 3, 4)
    with pytest.raises(ValueError, match=r"labels must lie in 0..3, got values -1..0"):
        ml.accuracy(logits, torch.tensor([[0, -1, 0], [0, 0, 0]]))
    with pytest.raises(ValueError, match="labels must lie in 0..3"):
        ml.accuracy(logits, torch.full((2, 3), 4))


def test_lstm_meta_learner_refuses_negative_labels_even_without_n_way():
    learner = ml.LSTMMetaLearner(ml.MLP(2, [4], 3), F.cross_entropy, inner_steps=1)
    sx, sy, qx, qy = classification_batch([[0, 1, 2, -1]])
    with pytest.raises(ValueError, match="support_y must lie in 0"):
        learner.predict(sx, sy, qx)
    with pytest.raises(ValueError, match="query_y must lie in 0..2"):
        learner.meta_loss(sx, sy.clamp(min=0), qx, torch.full_like(qy, 3))


def test_meta_lstm_refuses_a_negative_query_label():
    tasks = TextTasks(seed=0)
    model = ml.MetaLSTM(3, hidden_size=4, meta_hidden_size=4, vocab_size=tasks.vocab_size)
    sx, sy, qx, qy = tasks.sample(2, k_shot=1, k_query=1)
    qy[0, 0] = -1
    with pytest.raises(ValueError, match="query_y must lie in 0..2"):
        model.meta_loss(sx, sy, qx, qy)


def test_text_sentences_refuse_labels_out_of_range():
    tasks = TextTasks(seed=0)
    with pytest.raises(ValueError, match="labels must lie in 0..2"):
        tasks.sentences(tasks.sample_rules(1), torch.tensor([[0, 3]]))


def test_episode_sampler_wants_integer_labels():
    images = torch.zeros(8, 1, 4, 4)
    with pytest.raises(ValueError, match="labels must hold integer"):
        ml.tasks.EpisodeSampler(images, torch.arange(8.0) % 2, n_way=2, k_shot=1, k_query=1)
