"""FS-Mol's evaluation protocol: stratified splits, ΔAUPRC, skipped draws, and single-task
baselines."""

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score
from sklearn.neighbors import KNeighborsClassifier

from metalearn.algorithms.sklearn_learner import SklearnLearner
from metalearn.evaluate_fsmol import active_scores, delta_auprc, evaluate_fsmol, results_table
from metalearn.tasks.assays import AssaySampler, MoleculeTask, SamplingError, stratified_split


def _labels(n: int, actives: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).permutation(
        np.r_[np.ones(actives, int), np.zeros(n - actives, int)]
    )


def _task(name: str, n: int, actives: int, seed: int = 0, features: int = 6) -> MoleculeTask:
    """Column 0 holds the label (an oracle can read it); the rest is noise."""
    y = torch.from_numpy(_labels(n, actives, seed))
    x = torch.cat(
        [
            y[:, None].float(),
            torch.rand(n, features - 1, generator=torch.Generator().manual_seed(seed)),
        ],
        1,
    )
    return MoleculeTask(name, x, y)


class Oracle:
    def predict(self, support_x, support_y, query_x):
        return query_x[..., 0]


class Constant:
    def predict(self, support_x, support_y, query_x):
        return torch.zeros(query_x.shape[:2])


@pytest.mark.parametrize("support_size", [16, 32, 64, 128])
def test_support_is_stratified_and_disjoint_from_the_query(support_size):
    labels = _labels(300, 90)  # active fraction 0.3
    support, query = stratified_split(labels, support_size, seed=7)
    assert len(support) == support_size and len(query) == 300 - support_size
    assert not set(support) & set(query) and set(support) | set(query) == set(range(300))
    assert (
        abs(labels[support].sum() - 0.3 * support_size) <= 0.5
    )  # the assay's active fraction, rounded
    again = stratified_split(labels, support_size, seed=7)
    np.testing.assert_array_equal(support, again[0])
    assert set(stratified_split(labels, support_size, seed=8)[0]) != set(support)


def test_fixed_query_size_is_stratified_too():
    labels = _labels(100, 40)
    support, query = stratified_split(labels, 16, seed=0, query_size=20)
    assert len(query) == 20 and labels[query].sum() == 8 and not set(support) & set(query)


def test_too_large_or_malformed_support_size_raises_naming_it():
    labels = _labels(40, 20)
    with pytest.raises(ValueError, match="support_size"):  # a SamplingError, which is a ValueError
        stratified_split(labels, 64, seed=0)
    with pytest.raises(SamplingError, match="support_size"):
        stratified_split(labels, 39, seed=0)  # the query set needs at least 2
    for bad in (1, 16.0, True, "16"):
        with pytest.raises(ValueError, match="support_size"):
            stratified_split(labels, bad, seed=0)
    with pytest.raises(ValueError, match="query_size"):
        stratified_split(labels, 16, seed=0, query_size=0)


@pytest.mark.parametrize("actives", [0, 1, 60])
def test_assay_without_enough_actives_or_inactives_cannot_be_split(actives):
    with pytest.raises(SamplingError, match="actives"):
        stratified_split(_labels(60, actives), 16, seed=0)


def test_delta_auprc_of_perfect_constant_and_random_predictors():
    labels = _labels(200, 50)
    assert delta_auprc(labels.astype(float), labels) == pytest.approx(1 - 0.25)
    assert delta_auprc(np.zeros(200), labels) == pytest.approx(0.0, abs=1e-12)
    randoms = [delta_auprc(np.random.default_rng(s).random(200), labels) for s in range(30)]
    assert abs(np.mean(randoms)) < 0.03
    scores = np.random.default_rng(0).random(200) + labels * 0.5
    assert delta_auprc(torch.tensor(scores), torch.tensor(labels)) == pytest.approx(
        average_precision_score(labels, scores) - 0.25
    )
    with pytest.raises(ValueError, match="both classes"):
        delta_auprc(np.zeros(5), np.zeros(5))


def test_active_scores_accepts_one_or_two_outputs_per_molecule():
    logits = torch.tensor([[[0.0, 2.0], [1.0, -1.0]]])
    torch.testing.assert_close(active_scores(logits), torch.tensor([[2.0, -2.0]]))
    torch.testing.assert_close(active_scores(logits[..., :1]), torch.tensor([[0.0, 1.0]]))
    with pytest.raises(ValueError, match="predictions"):
        active_scores(torch.zeros(1, 2, 3))


def test_evaluate_scores_oracle_and_constant_and_skips_what_fsmol_skips():
    tasks = [
        _task("big", 300, 100),
        _task("small", 80, 30, seed=1),
        _task("one_active", 200, 1, seed=2),
    ]
    results = evaluate_fsmol(
        {"oracle": Oracle(), "constant": Constant()},
        tasks,
        [16, 64, 128],
        num_draws=3,
        progress=False,
    )
    oracle, constant = results["oracle"], results["constant"]
    # an assay with a single active can never give both folds an active: all its draws are
    # skipped and counted
    assert (
        set(oracle[16].per_assay) == {"big", "small"}
        and oracle[16].skipped == 3
        and oracle[16].draws == 6
    )
    # support 128 does not fit the assay of 80 molecules: skipped as well
    assert set(oracle[128].per_assay) == {"big"} and oracle[128].skipped == 6
    for size in (16, 64, 128):
        for name, value in oracle[size].per_assay.items():
            n, actives = (300, 100) if name == "big" else (80, 30)
            expected_fraction = (actives - round(size * actives / n)) / (n - size)
            assert value == pytest.approx(1 - expected_fraction)
        assert constant[size].mean == pytest.approx(0.0, abs=1e-12)
    assert "oracle" in results_table(results) and "FS-Mol random forest" in results_table(results)


def test_evaluate_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_draws"):
        evaluate_fsmol({"c": Constant()}, [_task("a", 100, 50)], [16], num_draws=0)
    with pytest.raises(ValueError, match="support_size=128"):
        evaluate_fsmol({"c": Constant()}, [_task("a", 100, 50)], [128], num_draws=1, progress=False)


def test_episode_sampler_batches_stratified_episodes_of_fixed_size():
    tasks = [_task(f"t{i}", 40 + 10 * i, 15 + 3 * i, seed=i) for i in range(5)] + [
        _task("tiny", 20, 10)
    ]
    sampler = AssaySampler(tasks, support_size=16, query_size=16, seed=0)
    assert "tiny" not in {t.name for t in sampler.tasks}
    batch = sampler.sample(4).validate()
    assert batch.support_x.shape == (4, 16, 6) and batch.query_y.shape == (4, 16)
    assert batch.support_x.dtype == torch.float32 and batch.support_y.dtype == torch.int64
    assert ((batch.support_y.sum(1) > 0) & (batch.support_y.sum(1) < 16)).all()
    torch.testing.assert_close(
        batch.support_x[..., 0].long(), batch.support_y
    )  # rows stay with their labels
    with pytest.raises(ValueError, match="num_tasks"):
        sampler.sample(0)
    with pytest.raises(ValueError, match="tasks"):
        AssaySampler(tasks, 100, 100)
    again = AssaySampler(tasks, 16, 16, seed=0).sample(4)
    assert all(torch.equal(a, b) for a, b in zip(batch, again))  # seeded


def test_sklearn_learner_fits_each_support_set_afresh():
    tasks = [_task("a", 120, 40), _task("b", 120, 60, seed=1)]
    knn = SklearnLearner(KNeighborsClassifier(n_neighbors=3))
    results = evaluate_fsmol({"kNN": knn}, tasks, [16], num_draws=2, progress=False)
    assert results["kNN"][16].mean > 0.5  # column 0 is the label: kNN finds it
    batch = tasks[0].episode(*stratified_split(tasks[0].y, 16, 0))
    log_probs = knn.predict(*batch[:3])
    assert log_probs.shape == (1, 104, 2) and torch.isfinite(log_probs).all()
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(1, 104))
    searched = SklearnLearner(KNeighborsClassifier(), param_grid={"n_neighbors": [1, 3, 64]})
    assert searched.fit(batch.support_x[0].numpy(), batch.support_y[0].numpy()).n_neighbors in (
        1,
        3,
    )
    with pytest.raises(ValueError, match="estimator"):
        SklearnLearner(object())


def test_assays_scored_together_score_as_one_at_a_time():
    """Query sets padded to the longest in a call are never scored: stacking assays of different
    sizes changes no assay's score, for learners that predict each query on its own."""
    from metalearn.algorithms import MAML, ProtoNet, SupportSpan
    from metalearn.losses import binary_cross_entropy
    from metalearn.models import MLP

    torch.manual_seed(0)
    tasks = [_task(f"t{i}", 60 + 37 * i, 20 + 9 * i, seed=i, features=12) for i in range(7)]
    learners = {
        "kNN": SklearnLearner(KNeighborsClassifier(n_neighbors=3)),
        "ProtoNet": ProtoNet(MLP(12, [16], 8), num_classes=2),
        "MAML": SupportSpan(MAML(MLP(12, [16], 1), binary_cross_entropy, inner_lr=0.3), 4),
    }
    alone = evaluate_fsmol(learners, tasks, [16, 32], 2, progress=False, assays_per_call=1)
    together = evaluate_fsmol(learners, tasks, [16, 32], 2, progress=False, assays_per_call=3)
    for name in learners:
        for size in (16, 32):
            first, second = alone[name][size], together[name][size]
            assert list(first.per_assay) == [t.name for t in tasks] == list(second.per_assay)
            for assay, value in first.per_assay.items():
                assert second.per_assay[assay] == pytest.approx(value, abs=1e-6), (name, assay)
            assert (first.draws, first.skipped) == (second.draws, second.skipped)
    with pytest.raises(ValueError, match="assays_per_call"):
        evaluate_fsmol(learners, tasks, [16], 1, progress=False, assays_per_call=0)


def test_padded_episodes_stack_assays_and_mark_the_padding():
    from metalearn.tasks.assays import padded_episodes

    small, large = _task("small", 40, 15), _task("large", 70, 30, seed=1)
    draws = [(t, *stratified_split(t.y, 16, 0)) for t in (small, large)]
    batch, sizes = padded_episodes(draws)
    assert sizes == [24, 54] and batch.query_x.shape == (2, 54, 6)
    for i, (task, support, query) in enumerate(draws):
        alone = task.episode(support, query)
        torch.testing.assert_close(batch.support_x[i], alone.support_x[0])
        torch.testing.assert_close(batch.query_x[i, : sizes[i]], alone.query_x[0])
        assert torch.equal(batch.query_y[i, : sizes[i]], alone.query_y[0])
    assert (batch.query_x[0, 24:] == 0).all() and (batch.query_y[0, 24:] == -1).all()
    with pytest.raises(ValueError, match="equal support sizes"):
        padded_episodes([draws[0], (large, *stratified_split(large.y, 32, 0))])


@pytest.mark.parametrize("seed", range(5))
def test_delta_auprc_equals_scikit_learns_average_precision_with_ties(seed):
    rng = np.random.default_rng(seed)
    labels = _labels(200, 30 + 20 * seed, seed)
    scores = rng.integers(0, 12, 200).astype(float)  # many ties
    expected = average_precision_score(labels, scores) - labels.mean()
    assert delta_auprc(scores, labels) == pytest.approx(expected, abs=1e-12)
    scores = rng.normal(size=200)  # none
    expected = average_precision_score(labels, scores) - labels.mean()
    assert delta_auprc(torch.from_numpy(scores), torch.from_numpy(labels)) == pytest.approx(
        expected, abs=1e-12
    )
