"""The sinusoid task family: shapes, ranges, the true function, seeding, errors."""

from __future__ import annotations

import math

import pytest
import torch

from metalearn.core import TaskBatch
from metalearn.tasks import Sinusoid


def test_shapes_and_ranges():
    batch, params = Sinusoid(seed=0).sample_with_params(num_tasks=200, k_shot=10, k_query=7)
    assert isinstance(batch, TaskBatch)
    assert batch.support_x.shape == batch.support_y.shape == (200, 10, 1)
    assert batch.query_x.shape == batch.query_y.shape == (200, 7, 1)
    batch.validate()
    xs = torch.cat([batch.support_x, batch.query_x], dim=1)
    assert xs.min() >= -5 and xs.max() <= 5 and xs.min() < -4.5 and xs.max() > 4.5
    assert params.amplitude.min() >= 0.1 and params.amplitude.max() <= 5.0
    assert params.phase.min() >= 0 and params.phase.max() <= math.pi
    assert (
        params.amplitude.std() > 1.0 and params.phase.std() > 0.5
    )  # really spread over the ranges


def test_targets_follow_the_true_function():
    batch, (amplitude, phase) = Sinusoid(seed=1).sample_with_params(5, k_shot=4, k_query=6)
    expected = amplitude[:, None, None] * torch.sin(batch.query_x - phase[:, None, None])
    torch.testing.assert_close(batch.query_y, expected)
    torch.testing.assert_close(
        batch.support_y, Sinusoid.true_function(batch.support_x, amplitude, phase)
    )
    x = torch.linspace(-5, 5, 11).reshape(1, -1, 1)
    torch.testing.assert_close(Sinusoid.true_function(x, 2.0, 0.5), 2.0 * torch.sin(x - 0.5))


def test_same_seed_same_tasks_and_different_seed_different_tasks():
    first, second, other = Sinusoid(seed=7), Sinusoid(seed=7), Sinusoid(seed=8)
    for _ in range(2):
        a, b, c = (
            first.sample(3, k_shot=5, k_query=5),
            second.sample(3, k_shot=5, k_query=5),
            other.sample(3, k_shot=5, k_query=5),
        )
        for x, y in zip(a, b):
            assert torch.equal(x, y)
        assert not torch.equal(a.support_y, c.support_y)
    family = Sinusoid(k_shot=5, k_query=5, seed=7)
    assert torch.equal(
        family.sample(3).support_x, Sinusoid(seed=7).sample(3, k_shot=5, k_query=5).support_x
    )
    generator = torch.Generator().manual_seed(1)  # another stream, leaving the family's own
    drawn = family.sample(3, torch.Generator().manual_seed(1))
    assert all(torch.equal(a, b) for a, b in zip(drawn, family.sample(3, generator)))


def test_global_rng_does_not_change_the_tasks():
    torch.manual_seed(0)
    a = Sinusoid(seed=2).sample(2, k_shot=3, k_query=3)
    torch.manual_seed(123)
    torch.rand(10)
    b = Sinusoid(seed=2).sample(2, k_shot=3, k_query=3)
    assert torch.equal(a.query_y, b.query_y)


@pytest.mark.parametrize("argname", ["num_tasks", "k_shot", "k_query"])
def test_bad_sizes_raise_value_error(argname):
    sizes = dict(num_tasks=2, k_shot=3, k_query=3) | {argname: 0}
    with pytest.raises(ValueError, match=argname):
        Sinusoid(seed=0).sample(**sizes)


def test_bad_ranges_and_seed_raise_value_error():
    with pytest.raises(ValueError, match="amplitude_range"):
        Sinusoid(amplitude_range=(5.0, 0.1))
    with pytest.raises(ValueError, match="seed"):
        Sinusoid(seed=-1)
