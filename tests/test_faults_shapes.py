"""Class 6 of the fault review: shapes are checked, never broadcast into a wrong number.

Every public entry point states its shapes and refuses others with a ``ValueError`` that
names the tensor; the right shapes give the right numbers.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import metalearn as ml
from metalearn.rl.rollouts import linear_baseline
from metalearn.tasks import Sinusoid, TextTasks


def sinusoid_batch(tasks: int = 5, shots: int = 5) -> ml.TaskBatch:
    """T == S == Q, the book's sinusoid sizes, where [T, Q, 1] against [T, Q] broadcasts."""
    return Sinusoid(seed=0).sample(tasks, k_shot=shots, k_query=shots)


def test_mse_refuses_to_broadcast_t_q_1_against_t_q():
    predictions, targets = torch.randn(5, 5, 1), torch.randn(5, 5)
    with pytest.raises(ValueError, match=r"targets must have the shape of predictions"):
        ml.mse(predictions, targets)
    with pytest.raises(ValueError, match="targets"):
        ml.mse(predictions[..., 0], targets[..., None])
    with pytest.raises(ValueError, match="predictions"):
        ml.mse(torch.randn(5), torch.randn(5))
    expected = (predictions[..., 0] - targets).pow(2).mean(dim=1)
    torch.testing.assert_close(ml.mse(predictions, targets[..., None]), expected)


def test_accuracy_checks_logits_and_labels_shapes():
    logits, labels = torch.randn(4, 4, 3), torch.randint(0, 3, (4, 4))
    with pytest.raises(ValueError, match="labels must have shape"):
        ml.accuracy(logits, labels[..., None])
    with pytest.raises(ValueError, match="labels must have shape"):
        ml.accuracy(logits, labels.T[:, :3])
    with pytest.raises(ValueError, match="logits must have shape"):
        ml.accuracy(logits[..., 0], labels)
    expected = (logits.argmax(-1) == labels).float().mean(-1)
    torch.testing.assert_close(ml.accuracy(logits, labels), expected)


def test_accuracy_of_a_single_logit_is_binary():
    logits = torch.tensor([[[2.0], [-1.0], [0.5], [-3.0]]])
    labels = torch.tensor([[1, 0, 0, 0]])
    assert ml.accuracy(logits, labels).tolist() == [0.75]  # argmax of one column is always 0


class Echo:
    """Predicts ``query_x`` itself (shape ``[T, Q, 1]``)."""

    def predict(self, support_x, support_y, query_x):
        return query_x


def test_evaluate_refuses_a_per_example_metric():
    batch = sinusoid_batch()

    def per_example(predictions, targets):  # [T, Q], not [T]
        return (predictions - targets).pow(2)[..., 0]

    with pytest.raises(ValueError, match=r"metric must return one score per task, shape \[T\]"):
        ml.evaluate(Echo(), [batch], per_example)
    summary = ml.evaluate(Echo(), [batch], ml.mse)
    assert summary.per_task.shape == (5,)


def test_evaluate_checks_predictions_batches_and_its_argument():
    batch = sinusoid_batch()

    class Transposed:
        def predict(self, support_x, support_y, query_x):
            return query_x.transpose(0, 1)[:, :4]

    with pytest.raises(ValueError, match="predictions .* must have shape"):
        ml.evaluate(Transposed(), [batch], ml.mse)
    with pytest.raises(ValueError, match="task_batches must be a list"):
        ml.evaluate(Echo(), batch, ml.mse)
    bad = batch._replace(query_y=batch.query_y[:, :3])
    with pytest.raises(ValueError, match=r"task_batches\[1\]: query_y has 3 examples"):
        ml.evaluate(Echo(), [batch, bad], ml.mse)


def test_summarize_wants_one_score_per_task():
    with pytest.raises(ValueError, match="per_task must have shape"):
        ml.summarize(torch.rand(3, 4))
    assert ml.summarize([0.5, 1.0]).mean == 0.75


@pytest.mark.parametrize("batched", [True, False])
def test_maml_refuses_targets_that_would_broadcast(batched):
    torch.manual_seed(0)
    maml = ml.MAML(ml.MLP(1, [8], 1), F.mse_loss, inner_lr=0.1, batched=batched)
    sx, sy, qx, qy = sinusoid_batch()
    with pytest.raises(ValueError, match=r"support_y has per-example shape \[\].*\[5, 5, 1\]"):
        maml.meta_loss(sx, sy[..., 0], qx, qy)
    with pytest.raises(ValueError, match="query_y"):
        maml.meta_loss(sx, sy, qx, qy[..., 0])
    with pytest.raises(ValueError, match="support_y"):
        maml.predict(sx, sy[..., 0], qx)
    with pytest.raises(ValueError, match="support_y"):
        maml.adapt(sx[0], sy[0, :, 0])
    with pytest.raises(ValueError, match="support_y"):
        maml.meta_loss(sx, sy.expand(-1, -1, 3), qx, qy)  # [S, 3] against outputs [S, 1]
    loss = maml.meta_loss(sx, sy, qx, qy)  # the right shapes give the usual loss
    assert loss.shape == () and torch.isfinite(loss)


def test_classifier_targets_must_be_class_indices_of_the_right_shape():
    maml = ml.MAML(ml.MLP(2, [8], 3), F.cross_entropy, inner_lr=0.1)
    sx, qx = torch.randn(2, 6, 2), torch.randn(2, 4, 2)
    sy, qy = torch.randint(0, 3, (2, 6)), torch.randint(0, 3, (2, 4))
    with pytest.raises(ValueError, match="support_y holds integer labels of per-example shape"):
        maml.meta_loss(sx, sy[..., None], qx, qy)
    assert torch.isfinite(maml.meta_loss(sx, sy, qx, qy))


def test_fine_tune_and_training_from_scratch_check_targets_too():
    sx, sy, qx, qy = sinusoid_batch()
    tune = ml.FineTune(nn.Linear(1, 1), F.mse_loss, lr=0.1, steps=1)
    with pytest.raises(ValueError, match="query_y"):
        tune.joint_loss(sx, sy, qx, qy[..., 0])
    with pytest.raises(ValueError, match="support_y"):
        tune.predict(sx, sy[..., 0], qx)
    scratch = ml.TrainFromScratch(lambda: nn.Linear(1, 1), F.mse_loss, lr=0.1, steps=1)
    with pytest.raises(ValueError, match="support_y"):
        scratch.predict(sx, sy[..., 0], qx)
    assert scratch.predict(sx, sy, qx).shape == qy.shape


def test_protonet_validates_query_y():
    protonet = ml.ProtoNet(nn.Linear(2, 3), num_classes=2)
    sx, sy = torch.randn(3, 4, 2), torch.tensor([[0, 1, 0, 1]] * 3)
    qx, qy = torch.randn(3, 5, 2), torch.randint(0, 2, (3, 5))
    with pytest.raises(ValueError, match="query_y"):
        protonet.meta_loss(sx, sy, qx, qy.T[:3])  # transposed (and cut to 3 tasks)
    with pytest.raises(ValueError, match=r"query_y must have shape \[3, 5\]"):
        protonet.meta_loss(sx, sy, qx, qy[..., None])
    assert torch.isfinite(protonet.meta_loss(sx, sy, qx, qy))


def test_protonet_encoder_must_return_embeddings_per_example():
    protonet = ml.ProtoNet(nn.Flatten(0), num_classes=2)  # flattens everything into one vector
    sx, sy = torch.randn(1, 2, 3), torch.tensor([[0, 1]])
    with pytest.raises(ValueError, match="support_x"):
        protonet.predict(sx, sy, torch.randn(1, 2, 3))


def test_sinusoid_true_function_refuses_mismatched_task_parameters():
    x = torch.zeros(3, 4, 1)
    with pytest.raises(ValueError, match="amplitude"):
        Sinusoid.true_function(x, torch.ones(2), torch.zeros(2))
    with pytest.raises(ValueError, match="phase"):
        Sinusoid.true_function(x, torch.ones(3), torch.zeros(1))
    y = Sinusoid.true_function(x + 1.0, torch.tensor([1.0, 2.0, 3.0]), 0.0)
    torch.testing.assert_close(y[:, 0, 0], torch.sin(torch.tensor(1.0)) * torch.tensor([1, 2, 3.0]))


def test_text_sentences_check_rules_and_labels():
    tasks = TextTasks(seed=0)
    rules = tasks.sample_rules(2)
    with pytest.raises(ValueError, match="labels"):
        tasks.sentences(rules, torch.zeros(3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="rules"):
        tasks.sentences(rules[:, :2], torch.zeros(2, 4, dtype=torch.long))
    assert tasks.sentences(rules, torch.zeros(2, 4, dtype=torch.long)).shape == (2, 4, 10)


def test_linear_baseline_checks_its_shapes():
    observations = torch.zeros(2, 3, 4, 2)
    with pytest.raises(ValueError, match="returns"):
        linear_baseline(observations, torch.zeros(2, 3, 5), torch.ones(2, 3, 4))
    with pytest.raises(ValueError, match="observations"):
        linear_baseline(observations[0], torch.zeros(3, 4), torch.ones(3, 4))
