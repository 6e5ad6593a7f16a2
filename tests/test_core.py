"""The core protocols: every task source draws TaskBatch objects the same way, and the package's
helpers that replaced chapter plumbing behave as the chapters need."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad

import metalearn as ml
from metalearn.core import TaskSource
from metalearn.envs import Navigation2D
from metalearn.losses import binary_cross_entropy
from metalearn.models import GaussianMLPPolicy, replace_head
from metalearn.plotting import gate_quantiles, show_gates, show_trajectories, smooth
from metalearn.rl import MAMLRollouts, rollout
from metalearn.tasks import (
    AllClasses,
    AssaySampler,
    EpisodeSampler,
    MoleculeTask,
    Sinusoid,
    TaskPool,
    TextTasks,
    digit_episodes,
)


def molecule_tasks() -> list[MoleculeTask]:
    generator = torch.Generator().manual_seed(0)
    return [
        MoleculeTask(f"a{i}", torch.rand(40, 5, generator=generator), torch.arange(40) % 2)
        for i in range(3)
    ]


def sources() -> dict[str, TaskSource]:
    torch.manual_seed(0)  # the same images and policy every call
    images = torch.rand(60, 1, 4, 4)
    labels = torch.arange(60) % 6
    maml = ml.MAML(GaussianMLPPolicy(2, 2, hidden=(4,)), F.mse_loss, inner_lr=0.1)
    return {
        "sinusoid": Sinusoid(k_shot=3, k_query=4, seed=0),
        "episodes": EpisodeSampler(images, labels, n_way=3, k_shot=2, k_query=3, seed=0),
        "digits": digit_episodes(range(5), n_way=2, k_shot=1, k_query=2, seed=0),
        "all classes": AllClasses(images, labels, k_shot=4, seed=0),
        "text": TextTasks("train", k_shot=2, k_query=2, seed=0),
        "assays": AssaySampler(molecule_tasks(), support_size=8, query_size=8, seed=0),
        "pool": TaskPool(Sinusoid(seed=1).sample(6)),
        "finite sinusoid": Sinusoid(k_shot=2, seed=0).finite(3),
        "navigation": MAMLRollouts(maml, num_trajectories=2, env_options=dict(horizon=5)),
    }


@pytest.mark.parametrize("name", list(sources()))
def test_every_task_source_follows_the_protocol(name):
    source = sources()[name]
    assert isinstance(source, TaskSource)
    batch = source.sample(3)
    assert isinstance(batch, ml.TaskBatch) and batch.validate().num_tasks == 3
    # a generator of its own gives the same tasks twice and leaves the source's stream alone
    first = sources()[name].sample(2, torch.Generator().manual_seed(5))
    again = sources()[name].sample(2, torch.Generator().manual_seed(5))
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    fresh, used = sources()[name], sources()[name]
    used.sample(2, torch.Generator().manual_seed(5))
    assert all(torch.equal(a, b) for a, b in zip(fresh.sample(2), used.sample(2)))
    with pytest.raises(ValueError, match="generator"):
        source.sample(2, 3)  # the old positional sizes fail by name


def test_a_task_pool_returns_distinct_tasks_of_its_pool():
    batch = Sinusoid(k_shot=2, seed=0).sample(5)
    pool = TaskPool(batch, seed=0)
    drawn = pool.sample(5)
    order = [int((batch.support_x[:, 0, 0] == x).nonzero()) for x in drawn.support_x[:, 0, 0]]
    assert sorted(order) == list(range(5))
    with pytest.raises(ValueError, match="num_tasks must be <= 5"):
        pool.sample(6)


def test_a_finite_sinusoid_family_draws_only_its_curves_with_fresh_points():
    finite = Sinusoid(k_shot=4, seed=0).finite(2)
    batch, params = finite.sample_with_params(50)
    assert set(params.amplitude.tolist()) == set(finite.curves.amplitude.tolist())
    again = finite.sample(50)
    assert not torch.equal(batch.support_x, again.support_x)  # fresh x on every draw


def test_float64_sinusoids():
    batch, params = Sinusoid(dtype=torch.float64, seed=0).sample_with_params(2)
    assert all(t.dtype == torch.float64 for t in batch)
    expected = params.amplitude[:, None, None] * torch.sin(
        batch.query_x - params.phase[:, None, None]
    )
    torch.testing.assert_close(batch.query_y, expected, rtol=1e-15, atol=1e-15)


def test_meta_train_needs_a_task_source_and_calls_back_every_step():
    maml = ml.MAML(ml.MLP(1, [8], 1), F.mse_loss, inner_lr=0.01)
    optimizer = torch.optim.SGD(maml.parameters(), lr=0.01)
    family = Sinusoid(seed=0)
    with pytest.raises(ValueError, match="source must be a task source"):
        ml.meta_train(maml, lambda: family.sample(2), 2, optimizer, meta_batch=2)
    seen = []
    history = ml.meta_train(
        maml, family, 3, optimizer, meta_batch=2, progress=False, callback=lambda *a: seen.append(a)
    )
    assert seen == list(enumerate(history))


def test_fine_tune_is_pretrained_not_meta_trained():
    tune = ml.FineTune(nn.Linear(1, 1), F.mse_loss, lr=0.1, steps=1)
    optimizer = torch.optim.SGD(tune.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="meta_loss"):
        ml.meta_train(tune, Sinusoid(seed=0), 1, optimizer, meta_batch=2)  # type: ignore[arg-type]
    assert len(ml.pretrain(tune, Sinusoid(seed=0), 2, optimizer, meta_batch=2, progress=False)) == 2


def test_adapt_only_changes_just_the_named_parameters_as_a_hand_written_step():
    torch.manual_seed(0)
    model = ml.MLP(1, [8], 1).double()
    head = [name for name, _ in model.named_parameters()][-2:]
    anil = ml.MAML(model, F.mse_loss, inner_lr=0.3, adapt_only=head)
    sx, sy, qx, qy = Sinusoid(dtype=torch.float64, seed=0).sample(1)
    adapted = anil.adapt(sx[0], sy[0])
    params = {name: p.detach() for name, p in model.named_parameters()}
    subset = {name: params[name] for name in head}
    loss = lambda s: F.mse_loss(functional_call(model, {**params, **s}, (sx[0],)), sy[0])
    step = grad(loss)(subset)
    for name, value in params.items():
        expected = value - 0.3 * step[name] if name in head else value
        torch.testing.assert_close(adapted[name].detach(), expected)
    # the body is still meta-learned: it gets a meta-gradient
    anil.meta_loss(sx, sy, qx, qy).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    with pytest.raises(ValueError, match="unknown"):
        ml.MAML(model, F.mse_loss, inner_lr=0.3, adapt_only=["nothing.weight"])


def test_replace_head_copies_the_body_and_zeroes_a_new_head():
    model = nn.Sequential()
    model.body = nn.Linear(3, 4)
    model.head = nn.Linear(4, 10)
    new = replace_head(model, 5)
    assert new.head.out_features == 5 and new.head.weight.abs().sum() == 0
    assert torch.equal(new.body.weight, model.body.weight) and new.body is not model.body
    assert model.head.out_features == 10  # the original is untouched
    with pytest.raises(ValueError, match="'classifier'"):
        replace_head(model, 5, name="classifier")


def test_smooth_is_a_moving_average():
    assert smooth([1.0, 2.0, 3.0, 4.0], width=2).tolist() == [1.5, 2.5, 3.5]
    assert smooth([1.0, 2.0], width=5).tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="width"):
        smooth([1.0], width=0)


def test_gate_quantiles_are_per_step_quantiles_over_episodes_and_parameters():
    generator = torch.Generator().manual_seed(0)
    history = {  # [steps, episodes, parameters]
        "input_gate": torch.rand(4, 3, 50, generator=generator),
        "forget_gate": torch.ones(4, 3, 50),  # no shrinkage at all
    }
    history["forget_gate"][0] = 0.5
    quantiles = gate_quantiles(history)
    rate, shrink = quantiles["input gate"], quantiles["shrinkage"]
    assert rate.shape == (3, 4) and shrink.shape == (3, 4) and rate.dtype == torch.float64
    for step in range(4):
        values = history["input_gate"][step].flatten().double()
        assert torch.allclose(
            rate[:, step], values.quantile(torch.tensor([0.1, 0.5, 0.9]).double())
        )
    assert (shrink[:, 0] == 0.5).all() and (shrink[:, 1:] == 1e-8).all()  # 0 kept for a log scale
    with pytest.raises(ValueError, match="forget_gate"):
        gate_quantiles({"input_gate": history["input_gate"]})


def test_show_gates_draws_a_median_and_a_band_per_learner_on_two_panels():
    quantiles = gate_quantiles(
        {"input_gate": torch.full((5, 2, 3), 0.3), "forget_gate": torch.full((5, 2, 3), 0.9)}
    )
    axes = show_gates({"a": quantiles, "b": quantiles}, start={"input gate": 0.01})
    assert [ax.get_yscale() for ax in axes] == ["log", "log"]
    assert [len(ax.collections) for ax in axes] == [2, 2]  # one band per learner
    assert len(axes[0].lines) == 3 and len(axes[1].lines) == 2  # medians, and the start line
    assert axes[0].lines[0].get_ydata().tolist() == pytest.approx([0.3] * 5)
    matplotlib.pyplot.close(axes[0].figure)


def test_paired_differences_are_tighter_than_the_two_intervals():
    generator = torch.Generator().manual_seed(0)
    difficulty = torch.rand(200, generator=generator)
    a = ml.summarize(difficulty + 0.05 + 0.01 * torch.randn(200, generator=generator))
    b = ml.summarize(difficulty)
    difference = ml.paired(a, b)
    assert abs(difference.mean - 0.05) < 0.005 and difference.ci95 < 0.1 * a.ci95
    with pytest.raises(ValueError, match="same tasks"):
        ml.paired(a, ml.summarize(difficulty[:10]))


def test_compare_scores_every_learner_on_the_same_batches():
    batches = [Sinusoid(seed=0).sample(4)]
    maml = ml.MAML(ml.MLP(1, [8], 1), F.mse_loss, inner_lr=0.01)
    scores = ml.compare({"0 steps": ml.WithSteps(maml, 0), "1 step": maml}, batches, ml.mse)
    assert scores["0 steps"].per_task.shape == (4,)
    assert ml.evaluate(maml, batches, ml.mse).mean == scores["1 step"].mean


def test_binary_cross_entropy_matches_torch():
    logits, labels = torch.randn(6, 1), torch.tensor([0, 1, 1, 0, 1, 0])
    expected = F.binary_cross_entropy(torch.sigmoid(logits[:, 0]), labels.float())
    torch.testing.assert_close(binary_cross_entropy(logits, labels), expected)
    with pytest.raises(ValueError, match="logits must be"):
        binary_cross_entropy(logits[:, 0], labels)


def test_show_trajectories_draws_one_panel_per_task():
    env = Navigation2D.sample(3, generator=torch.Generator().manual_seed(0), horizon=5)
    paths = rollout(env, GaussianMLPPolicy(2, 2, hidden=(4,)), 2)
    figure = show_trajectories(env.goals, {"policy": paths}, num_tasks=2)
    assert len(figure.axes) == 2
    # each panel: 2 trajectories, the start and the goal
    assert all(len(ax.lines) == 4 for ax in figure.axes)
