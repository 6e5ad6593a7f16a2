import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import metalearn as ml
from metalearn.algorithms import EarlyStopped
from metalearn.losses import binary_cross_entropy


def _assays(tasks: int = 3, support: int = 20, query: int = 7, seed: int = 0):
    """Binary tasks in float64: a random linear rule each, 30% actives in the support set."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(tasks, support + query, 4, generator=g, dtype=torch.float64)
    w = torch.randn(tasks, 4, 1, generator=g, dtype=torch.float64)
    y = (x @ w)[..., 0] + 0.8 * torch.randn(tasks, support + query, generator=g, dtype=x.dtype)
    labels = torch.zeros(tasks, support + query, dtype=torch.int64)
    for t in range(tasks):  # the top 30% of each task's scores are the actives
        labels[t, y[t].argsort(descending=True)[: (support + query) * 3 // 10]] = 1
    return x[:, :support], labels[:, :support], x[:, support:]


class Wrapped(torch.nn.Module):
    """An MLP that is not an nn.Sequential: EarlyStopped takes MAML's own steps, not the span's."""

    def __init__(self) -> None:
        super().__init__()
        self.mlp = ml.MLP(4, [16], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)


def _maml(inner_lr: float, wrapped: bool = False) -> ml.MAML:
    torch.manual_seed(0)
    model = Wrapped() if wrapped else ml.MLP(4, [16], 1)
    return ml.MAML(model, binary_cross_entropy, inner_lr=inner_lr).double()


def _reference(model, inner_lr, fit_x, fit_y, held_x, held_y, query_x, max_steps, patience):
    """FS-Mol's rule written out with a deep-copied module and torch.optim.SGD."""
    model = copy.deepcopy(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=inner_lr)

    def held_loss() -> float:
        with torch.no_grad():
            return F.binary_cross_entropy_with_logits(model(held_x)[:, 0], held_y.double()).item()

    best_state, best_loss, best_step, since = copy.deepcopy(model.state_dict()), held_loss(), 0, 0
    for step in range(1, max_steps + 1):
        optimizer.zero_grad()
        F.binary_cross_entropy_with_logits(model(fit_x)[:, 0], fit_y.double()).backward()
        optimizer.step()
        loss = held_loss()
        if loss < best_loss:
            best_state, best_loss, best_step = copy.deepcopy(model.state_dict()), loss, step
            since = 0
        else:
            since += 1
            if since >= patience:
                break
    model.load_state_dict(best_state)
    with torch.no_grad():
        return model(query_x), best_step


@pytest.mark.parametrize("wrapped", [False, True])  # the span's steps; MAML.adapt's
@pytest.mark.parametrize("inner_lr, max_steps, patience", [(0.05, 6, 3), (3.0, 60, 4)])
def test_early_stopping_equals_an_independent_loop(inner_lr, max_steps, patience, wrapped):
    support_x, support_y, query_x = _assays()
    maml = _maml(inner_lr, wrapped)
    assert ml.algorithms.SupportSpan.applies(maml) is not wrapped
    stopped = EarlyStopped(maml, max_steps=max_steps, patience=patience, seed=3)
    got = stopped.predict(support_x, support_y, query_x)
    assert got.shape == (3, 7, 1)
    for t in range(3):
        fit, held = stopped.split(support_y[t])
        expected, step = _reference(
            maml.model,
            inner_lr,
            support_x[t, fit],
            support_y[t, fit],
            support_x[t, held],
            support_y[t, held],
            query_x[t],
            max_steps,
            patience,
        )
        torch.testing.assert_close(got[t], expected, rtol=0, atol=1e-10)
        assert stopped.steps_taken[t] == step
    if inner_lr == 0.05:  # a small step: the held-out loss still falls at the last step
        assert stopped.steps_taken == [max_steps] * 3
    else:  # a large one overfits the 16 molecules: the held-out loss turns, and patience stops
        assert max(stopped.steps_taken) < max_steps - patience, stopped.steps_taken


def test_split_holds_out_a_fifth_per_class_and_keeps_both_classes_to_fit():
    labels = torch.tensor([1] * 5 + [0] * 15)
    stopped = EarlyStopped(_maml(0.1), seed=0)
    fit, held = stopped.split(labels)
    assert len(held) == 4 and len(fit) == 16  # int(0.2 * 20)
    assert sorted(torch.cat([fit, held]).tolist()) == list(range(20))
    assert labels[held].sum() == 1 and labels[fit].sum() == 4  # 5 actives: a fifth held out
    again, held_again = EarlyStopped(_maml(0.1), seed=0).split(labels)
    assert torch.equal(held, held_again)
    few = torch.tensor([1, 1] + [0] * 18)  # two actives: one is held out at most
    fit, held = stopped.split(few)
    assert few[fit].sum() >= 1 and len(held) == 4
    _, other = EarlyStopped(_maml(0.1), seed=1).split(labels)
    assert not np.array_equal(held_again.numpy(), other.numpy())


def test_bad_arguments_are_named():
    maml = _maml(0.1)
    with pytest.raises(ValueError, match="maml must be a metalearn MAML"):
        EarlyStopped(ml.MLP(4, [8], 1))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_steps must be >= 1, got 0"):
        EarlyStopped(maml, max_steps=0)
    with pytest.raises(ValueError, match="patience must be an int, got True"):
        EarlyStopped(maml, patience=True)
    with pytest.raises(ValueError, match="valid_fraction must be < 1, got 1.0"):
        EarlyStopped(maml, valid_fraction=1.0)
    support_x, support_y, query_x = _assays(support=4)
    with pytest.raises(ValueError, match="holds out 0 of a support set of 4"):
        EarlyStopped(maml).predict(support_x, support_y, query_x)
