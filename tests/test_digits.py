import pytest
import torch

from metalearn.data.digits import load_digits, per_class_indices, split_per_class
from metalearn.tasks import digit_episodes


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def test_load_digits_shapes_and_range(digits):
    images, labels = digits
    assert images.shape == (1797, 64) and labels.shape == (1797,)
    assert images.min() == 0 and images.max() == 1
    assert labels.unique().tolist() == list(range(10))


def test_per_class_indices_balanced_and_reproducible(digits):
    _, labels = digits
    first = per_class_indices(labels, 3, torch.Generator().manual_seed(1), classes=[2, 7])
    again = per_class_indices(labels, 3, torch.Generator().manual_seed(1), classes=[2, 7])
    assert torch.equal(first, again)
    assert labels[first].tolist() == [2, 2, 2, 7, 7, 7]
    assert len(set(first.tolist())) == 6


def test_per_class_indices_rejects_too_many(digits):
    _, labels = digits
    with pytest.raises(ValueError, match="per_class"):
        per_class_indices(labels, 1000, torch.Generator())
    with pytest.raises(ValueError, match="labels"):
        per_class_indices(labels.float(), 1, torch.Generator())


def test_split_per_class_disjoint_and_complete(digits):
    _, labels = digits
    held_out, rest = split_per_class(labels, 20, torch.Generator().manual_seed(0))
    assert torch.bincount(labels[held_out]).tolist() == [20] * 10
    assert set(held_out.tolist()).isdisjoint(rest.tolist())
    assert len(held_out) + len(rest) == len(labels)


def test_digit_tasks_episode_structure(digits):
    images, labels = digits
    tasks = digit_episodes([5, 6, 7, 8, 9], n_way=3, k_shot=2, k_query=5, seed=0, data=digits)
    batch, classes = tasks.sample_with_classes(num_tasks=4)
    batch.validate()
    assert batch.support_x.shape == (4, 6, 64) and batch.query_x.shape == (4, 15, 64)
    assert batch.support_y[0].tolist() == [0, 0, 1, 1, 2, 2]
    assert classes.shape == (4, 3) and set(classes.flatten().tolist()) <= {5, 6, 7, 8, 9}
    for t in range(4):
        assert len(set(classes[t].tolist())) == 3
        # every image carries the digit its episode label stands for, and support/query never
        # share an image
        for x_set, y_set in (
            (batch.support_x[t], batch.support_y[t]),
            (batch.query_x[t], batch.query_y[t]),
        ):
            for image, label in zip(x_set, y_set):
                matches = (images == image).all(dim=1).nonzero().flatten()
                assert classes[t, label].item() in labels[matches].tolist()
        shared = (batch.support_x[t][:, None] == batch.query_x[t][None]).all(-1)
        assert not shared.any()


def test_digit_tasks_seeded(digits):
    sizes = dict(n_way=5, k_shot=1, k_query=1, data=digits)
    a = digit_episodes(range(10), seed=3, **sizes).sample(2)
    b = digit_episodes(range(10), seed=3, **sizes).sample(2)
    c = digit_episodes(range(10), seed=4, **sizes).sample(2)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a.support_x, c.support_x)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"classes": [1, 2], "n_way": 3}, "n_way"), ({"classes": [1, 11], "n_way": 2}, "classes")],
)
def test_digit_tasks_rejects_bad_arguments(digits, kwargs, name):
    with pytest.raises(ValueError, match=name):
        digit_episodes(data=digits, k_shot=1, k_query=1, **kwargs)


def test_digit_tasks_rejects_too_many_shots(digits):
    with pytest.raises(ValueError, match="k_shot"):
        digit_episodes(range(3), n_way=2, k_shot=200, k_query=10, data=digits)
    tasks = digit_episodes(range(3), n_way=2, k_shot=1, k_query=1, data=digits)
    with pytest.raises(ValueError, match="num_tasks"):
        tasks.sample(0)
