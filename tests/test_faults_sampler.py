"""Class 4 of issue 16: a sampler that cannot succeed says so instead of looping forever.

FS-Mol's stratified sampler decides up front, from each assay's class counts, whether a split
of the asked sizes exists (it never depends on the seed). An assay that passes the size filter
but admits no split is passed over and reported; if no assay admits one, the constructor
raises a ``ValueError`` naming the assays and the sizes.
"""

import signal
from contextlib import contextmanager

import numpy as np
import pytest
import torch

from metalearn.tasks.assays import (
    AssaySampler,
    MoleculeTask,
    SamplingError,
    fold_sizes,
    stratified_split,
)


@contextmanager
def deadline(seconds: int = 10):
    """Fail (instead of hanging the test run) if the block takes longer than ``seconds``."""

    def expired(*_):
        raise TimeoutError(f"still running after {seconds} s: the sampler loops")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def task(name: str, n: int, actives: int) -> MoleculeTask:
    y = torch.zeros(n, dtype=torch.int64)
    y[:actives] = 1
    y = y[torch.randperm(n, generator=torch.Generator().manual_seed(n + actives))]
    return MoleculeTask(name, torch.cat([y[:, None].float(), torch.rand(n, 3)], 1), y)


# Each passes the old filter (S + Q molecules, 2 of each class) but admits no stratified split:
INFEASIBLE = [
    ("CHEMBL_rounding", 32, 11),  # both folds round to 6 actives: 12 needed, 11 there
    ("CHEMBL_few_actives", 100, 2),  # the support of 16 would hold round(0.32) = 0 actives
    ("CHEMBL_few_inactives", 100, 98),  # ... and here 16 actives, no inactive
]


@pytest.mark.parametrize("name, n, actives", INFEASIBLE)
def test_an_assay_without_any_valid_draw_is_refused_up_front_naming_it(name, n, actives):
    with deadline():
        with pytest.raises(ValueError) as raised:
            AssaySampler([task(name, n, actives)], 16, 16)
    message = str(raised.value)
    assert name in message and "support_size=16" in message and "query_size=16" in message
    assert f"{n} molecules, {actives} actives, {n - actives} inactives" in message


def test_all_infeasible_assays_are_named_with_their_sizes():
    tasks = [task(*spec) for spec in INFEASIBLE] + [task("CHEMBL_tiny", 20, 10)]
    with deadline(), pytest.raises(ValueError, match="no assay admits") as raised:
        AssaySampler(tasks, 16, 16)
    for name, n, actives in INFEASIBLE:
        assert name in str(raised.value)
    assert "CHEMBL_tiny" in str(raised.value) and "too large" in str(raised.value)


def test_infeasible_assays_are_passed_over_and_reported_batches_always_come():
    good = task("CHEMBL_good", 60, 24)
    tasks = [task(*spec) for spec in INFEASIBLE] + [good]
    with deadline():
        sampler = AssaySampler(tasks, 16, 16, seed=3)
        assert [t.name for t in sampler.tasks] == ["CHEMBL_good"]
        assert set(sampler.skipped) == {name for name, _, _ in INFEASIBLE}
        assert "11 actives and 21 inactives" in sampler.skipped["CHEMBL_rounding"]
        for _ in range(50):
            batch = sampler.sample(8).validate()
            assert batch.support_y.shape == (8, 16) and batch.query_y.shape == (8, 16)
            assert (batch.support_y.sum(1) == round(16 * 24 / 60)).all()
            assert ((batch.query_y.sum(1) > 0) & (batch.query_y.sum(1) < 16)).all()


@pytest.mark.parametrize("support_size, query_size", [(4, 4), (6, 3), (5, None), (8, 10)])
def test_feasibility_up_front_agrees_with_every_draw(support_size, query_size):
    """fold_sizes raises exactly when stratified_split fails, whatever the seed."""
    for n in range(4, 26):
        for actives in range(n + 1):
            labels = np.r_[np.ones(actives, int), np.zeros(n - actives, int)]
            try:
                s_act, q_act, q_size = fold_sizes(n - actives, actives, support_size, query_size)
            except SamplingError:
                for seed in range(3):
                    with pytest.raises(SamplingError):
                        stratified_split(labels, support_size, seed, query_size)
                continue
            for seed in range(3):
                support, query = stratified_split(labels, support_size, seed, query_size)
                assert len(support) == support_size and len(query) == q_size
                assert labels[support].sum() == s_act and labels[query].sum() == q_act
                assert not set(support) & set(query)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"support_size": 1}, "support_size"),
        ({"support_size": 16.0}, "support_size"),
        ({"query_size": True}, "query_size"),
        ({"query_size": 0}, "query_size"),
    ],
)
def test_bad_sizes_are_refused_naming_the_argument(kwargs, name):
    arguments = {"support_size": 16, "query_size": 16, **kwargs}
    with pytest.raises(ValueError, match=f"{name} must be an int") as raised:
        AssaySampler([task("a", 60, 30)], **arguments)
    assert repr(kwargs[name]) in str(raised.value)


def test_labels_outside_zero_one_are_refused_naming_the_assay():
    bad = MoleculeTask("CHEMBL_bad", torch.zeros(40, 2), torch.arange(40) % 3)
    with pytest.raises(ValueError, match="CHEMBL_bad.*0/1"):
        AssaySampler([bad], 8, 8, 1)
