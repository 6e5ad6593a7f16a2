"""Prototypical networks: prototypes, distances, gradients, learning, errors."""

import pytest
import torch
from sources import Calls
from torch import nn

import metalearn as ml
from metalearn.algorithms.protonet import ProtoNet


def _clusters(
    tasks: int, shots: int, queries: int, classes: int = 3, noise_dims: int = 6, generator=None
):
    """Tasks whose classes differ on 2 signal dimensions; ``noise_dims`` of large noise hide
    them."""
    centres = torch.randn(tasks, classes, 2, generator=generator) * 2.0

    def draw(per_class: int):
        y = torch.arange(classes).repeat_interleave(per_class).expand(tasks, -1)
        signal = centres.gather(1, y[..., None].expand(-1, -1, 2)) + 0.3 * torch.randn(
            tasks, y.shape[1], 2, generator=generator
        )
        noise = 4.0 * torch.randn(tasks, y.shape[1], noise_dims, generator=generator)
        return torch.cat([signal, noise], dim=-1), y

    return (*draw(shots), *draw(queries))


def test_prototypes_are_class_means_and_logits_are_negative_squared_distances():
    torch.manual_seed(0)
    encoder = nn.Linear(5, 4).double()
    protonet = ProtoNet(encoder, num_classes=3)
    sx, sy = (
        torch.randn(2, 7, 5, dtype=torch.float64),
        torch.tensor([[0, 1, 2, 0, 1, 2, 2], [2, 2, 1, 0, 0, 1, 0]]),
    )
    qx = torch.randn(2, 4, 5, dtype=torch.float64)
    logits = protonet(sx, sy, qx)
    assert logits.shape == (2, 4, 3)
    for t in range(2):
        for c in range(3):
            prototype = encoder(sx[t][sy[t] == c]).mean(dim=0)
            expected = -((encoder(qx[t]) - prototype) ** 2).sum(dim=-1)
            torch.testing.assert_close(logits[t, :, c], expected)


def test_batched_tasks_equal_tasks_one_at_a_time():
    torch.manual_seed(1)
    protonet = ProtoNet(ml.MLP(8, [16], 4), num_classes=3)
    sx, sy, qx, qy = _clusters(5, 2, 3)
    together = protonet.predict(sx, sy, qx)
    alone = torch.cat(
        [protonet.predict(sx[t : t + 1], sy[t : t + 1], qx[t : t + 1]) for t in range(5)]
    )
    torch.testing.assert_close(together, alone)


def test_meta_loss_gradient_matches_finite_differences():
    torch.manual_seed(2)
    protonet = ProtoNet(ml.MLP(8, [6], 3), num_classes=3).double()
    sx, sy, qx, qy = (t.double() if t.is_floating_point() else t for t in _clusters(2, 2, 2))
    params = tuple(protonet.parameters())

    def loss(*weights):
        values = dict(zip([n for n, _ in protonet.named_parameters()], weights))
        logits = torch.func.functional_call(protonet, values, (sx, sy, qx))
        return nn.functional.cross_entropy(logits.flatten(0, 1), qy.flatten())

    assert torch.autograd.gradcheck(
        loss, tuple(p.detach().clone().requires_grad_() for p in params)
    )
    # and meta_loss is that very loss
    torch.testing.assert_close(protonet.meta_loss(sx, sy, qx, qy), loss(*params))


def test_meta_training_learns_to_ignore_the_noise_dimensions():
    generator = ml.seed_everything(3)
    protonet = ProtoNet(ml.MLP(8, [32], 8), num_classes=3)
    test_batch = ml.TaskBatch(*_clusters(200, 1, 5, generator=generator))
    before = ml.evaluate(protonet, [test_batch]).mean
    optimizer = torch.optim.Adam(protonet.parameters(), lr=3e-3)
    ml.meta_train(
        protonet,
        Calls(lambda: ml.TaskBatch(*_clusters(16, 1, 5, generator=generator))),
        100,
        optimizer,
        meta_batch=16,
        progress=False,
    )
    after = ml.evaluate(protonet, [test_batch]).mean
    # 3-way 1-shot: chance is 1/3; the noise (std 4 on 6 dims) swamps the signal before training
    assert before < 0.6, before
    assert after > before + 0.2, (before, after)


def test_bad_input_raises_naming_the_argument():
    with pytest.raises(ValueError, match="num_classes"):
        ProtoNet(nn.Linear(2, 2), num_classes=1)
    with pytest.raises(ValueError, match="encoder"):
        ProtoNet(lambda x: x, num_classes=2)
    protonet = ProtoNet(nn.Linear(2, 2), num_classes=2)
    sx, qx = torch.randn(1, 4, 2), torch.randn(1, 3, 2)
    with pytest.raises(ValueError, match="support_y"):  # class 1 missing from the support set
        protonet.predict(sx, torch.zeros(1, 4, dtype=torch.long), qx)
    with pytest.raises(ValueError, match="support_y"):
        protonet.predict(sx, torch.tensor([[0, 1, 2, 0]]), qx)
    with pytest.raises(ValueError, match="support_y"):
        protonet.predict(sx, torch.tensor([[0.0, 1.0, 0.0, 1.0]]), qx)
