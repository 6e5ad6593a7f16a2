"""MetaLSTM (the document's model-based Meta-LSTM) and the explicit-equation LSTM classifier."""

import pytest
import torch
from torch.func import functional_call
from torch.nn import functional as F

import metalearn as ml
from metalearn.algorithms.meta_lstm import MetaLSTM
from metalearn.models.lstm_classifier import LSTMClassifier, lstm_final_hidden
from metalearn.tasks.text import TextTasks


def test_lstm_equations_match_torch_lstm_in_float64():
    torch.manual_seed(0)
    reference = torch.nn.LSTM(3, 5, batch_first=True).double()
    x = torch.randn(4, 7, 3, dtype=torch.float64)
    _, (h_n, _) = reference(x)
    ours = lstm_final_hidden(
        x,
        reference.weight_ih_l0,
        reference.weight_hh_l0,
        reference.bias_ih_l0 + reference.bias_hh_l0,
    )
    torch.testing.assert_close(ours, h_n[0])


def test_padding_mask_leaves_state_unchanged():
    torch.manual_seed(0)
    model = LSTMClassifier(3, 6, vocab_size=10).double()
    short = torch.tensor([[4, 5, 6, 0, 0]])
    assert torch.allclose(model.features(short), model.features(short[:, :3]))


def small_model_and_tasks(seed=0):
    torch.manual_seed(seed)
    tasks = TextTasks("train", seed=seed)
    return MetaLSTM(
        3, hidden_size=8, meta_hidden_size=16, vocab_size=tasks.vocab_size, embedding_dim=6
    ), tasks


def test_generated_weights_have_documented_shapes():
    model, tasks = small_model_and_tasks()
    batch = tasks.sample(num_tasks=5, k_shot=2, k_query=1)
    weights = model.generate(batch.support_x, batch.support_y)
    expected = {
        "weight_ih": (5, 32, 6),
        "weight_hh": (5, 32, 8),
        "bias": (5, 32),
        "head_weight": (5, 3, 8),
        "head_bias": (5, 3),
    }
    assert {name: tuple(w.shape) for name, w in weights.items()} == expected
    assert not torch.allclose(weights["head_weight"][0], weights["head_weight"][1])  # task-specific


def test_batched_generated_classifiers_equal_one_lstm_per_task():
    model, tasks = small_model_and_tasks(1)
    model.double()
    batch = tasks.sample(num_tasks=3, k_shot=2, k_query=4)
    weights = model.generate(batch.support_x, batch.support_y)
    batched = model.classify(weights, batch.query_x)
    for t in range(3):  # the same weights loaded into an ordinary LSTMClassifier, task by task
        params = {
            "embedding.weight": model.base.embedding.weight,
            "weight_ih": weights["weight_ih"][t],
            "weight_hh": weights["weight_hh"][t],
            "bias": weights["bias"][t],
            "head.weight": weights["head_weight"][t],
            "head.bias": weights["head_bias"][t],
        }
        torch.testing.assert_close(
            batched[t], functional_call(model.base, params, (batch.query_x[t],))
        )


def test_every_meta_parameter_gets_a_finite_nonzero_gradient():
    model, tasks = small_model_and_tasks(2)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    batch = tasks.sample(4, k_shot=2, k_query=2)
    ml.meta_train(model, ml.TaskPool(batch), 1, optimizer, meta_batch=4, progress=False)
    model.zero_grad()
    model.meta_loss(*tasks.sample(4, k_shot=2, k_query=2)).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


def test_short_meta_training_beats_chance_on_held_out_tasks():
    ml.seed_everything(0)
    train, test = TextTasks("train", k_shot=5, k_query=5, seed=1), TextTasks("test", seed=2)
    model = MetaLSTM(3, hidden_size=16, meta_hidden_size=32, vocab_size=train.vocab_size)
    optimizer = torch.optim.Adam(model.parameters(), 1e-2)
    ml.meta_train(model, train, 60, optimizer, meta_batch=16, grad_clip=1.0, progress=False)
    result = ml.evaluate(model, [test.sample(60, k_shot=5, k_query=10)])
    assert result.mean > 1 / 3 + 0.15, result


@pytest.mark.parametrize("method", ["meta_loss", "predict"])
def test_bad_input_names_the_argument(method):
    model, tasks = small_model_and_tasks()
    sx, sy, qx, qy = tasks.sample(2, k_shot=2, k_query=2)
    call = getattr(model, method)
    args = (
        (lambda sx, sy, qx: (sx, sy, qx, qy))
        if method == "meta_loss"
        else (lambda sx, sy, qx: (sx, sy, qx))
    )
    with pytest.raises(ValueError, match="support_y"):
        call(*args(sx, sy + 3, qx))
    with pytest.raises(ValueError, match="support_x"):
        call(*args(sx[:, :0], sy[:, :0], qx))
    with pytest.raises(ValueError, match="query_x"):
        call(*args(sx, sy, qx.float()[..., None]))
    with pytest.raises(ValueError, match="support_x"):
        call(*args(sx + tasks.vocab_size, sy, qx))


def test_feature_sequences_of_wrong_size_are_rejected():
    model = MetaLSTM(3, hidden_size=4, meta_hidden_size=8, input_size=5)
    sx, qx = torch.randn(2, 3, 7, 5), torch.randn(2, 4, 7, 5)
    sy = torch.tensor([[0, 1, 2], [2, 1, 0]])
    assert model.predict(sx, sy, qx).shape == (2, 4, 3)
    with pytest.raises(ValueError, match="query_x"):
        model.predict(sx, sy, torch.randn(2, 4, 7, 6))
    with pytest.raises(ValueError, match="support_x"):
        model.predict(torch.randn(2, 3, 7, 4), sy, qx)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_second_order_maml_through_lstm_classifier_on_cuda():
    """cuDNN's LSTM has no double backward; the explicit equations do, on the GPU too."""
    tasks = TextTasks("train", seed=0)
    model = LSTMClassifier(3, 8, vocab_size=tasks.vocab_size).cuda()
    maml = ml.MAML(model, F.cross_entropy, inner_lr=0.5, inner_steps=1)
    loss = maml.meta_loss(*tasks.sample(4, k_shot=2, k_query=2).to("cuda"))
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    meta = MetaLSTM(3, 8, 16, vocab_size=tasks.vocab_size).cuda()
    meta.meta_loss(*tasks.sample(4, k_shot=2, k_query=2).to("cuda")).backward()
    assert all(torch.isfinite(p.grad).all() for p in meta.parameters())
