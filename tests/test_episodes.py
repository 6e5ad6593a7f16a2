"""metalearn.tasks.episodes: N-way K-shot episodes over a labelled image set."""

import pytest
import torch

from metalearn.tasks.episodes import AllClasses, EpisodeSampler


def image_set(num_classes=12, per_class=8):
    """Every image holds its own index in pixel (0, 0, 0), so an episode can be traced back."""
    count = num_classes * per_class
    images = torch.zeros(count, 1, 28, 28)
    images[:, 0, 0, 0] = torch.arange(count, dtype=torch.float)
    labels = torch.arange(num_classes).repeat_interleave(per_class) * 7 + 3  # arbitrary class ids
    return images, labels


def source_ids(x):
    return x[..., 0, 0, 0].long()


@pytest.mark.parametrize("n_way,k_shot,k_query", [(5, 1, 3), (3, 5, 3), (12, 2, 6)])
def test_episode_shapes_labels_and_disjoint_support_and_query(n_way, k_shot, k_query):
    images, labels = image_set()
    batch = EpisodeSampler(images, labels, n_way, k_shot, k_query, seed=0).sample(16).validate()
    assert batch.support_x.shape == (16, n_way * k_shot, 1, 28, 28)
    assert batch.query_x.shape == (16, n_way * k_query, 1, 28, 28)
    assert batch.support_y.dtype == torch.long
    for t in range(16):
        support, query = source_ids(batch.support_x[t]), source_ids(batch.query_x[t])
        assert not set(support.tolist()) & set(query.tolist()), (
            "an image is in both support and query"
        )
        assert (
            len(set(support.tolist())) == n_way * k_shot
            and len(set(query.tolist())) == n_way * k_query
        )
        assert sorted(batch.support_y[t].unique().tolist()) == list(range(n_way))
        assert torch.bincount(batch.query_y[t], minlength=n_way).tolist() == [k_query] * n_way
        # the episode labels are a consistent relabelling of the true classes
        for ids, episode_labels in ((support, batch.support_y[t]), (query, batch.query_y[t])):
            for label in range(n_way):
                assert len(labels[ids[episode_labels == label]].unique()) == 1
        true_of = {
            label: labels[support[batch.support_y[t] == label][0]].item() for label in range(n_way)
        }
        assert len(set(true_of.values())) == n_way
        assert all(labels[i].item() == true_of[y.item()] for i, y in zip(query, batch.query_y[t]))


def test_seeded_and_classes_vary():
    images, labels = image_set()
    a = EpisodeSampler(images, labels, 5, 1, 2, seed=4).sample(8)
    b = EpisodeSampler(images, labels, 5, 1, 2, seed=4).sample(8)
    c = EpisodeSampler(images, labels, 5, 1, 2, seed=5).sample(8)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a.support_x, c.support_x)
    seen = torch.cat([source_ids(a.support_x).flatten(), source_ids(c.support_x).flatten()])
    assert len(labels[seen].unique()) == 12, "over 16 episodes every class should appear"


def test_fixed_batches_ignore_the_sampler_state():
    images, labels = image_set()
    sampler = EpisodeSampler(images, labels, 4, 2, 2, seed=0)
    first = sampler.fixed_batches(10, 4, seed=1)
    sampler.sample(3)
    again = sampler.fixed_batches(10, 4, seed=1)
    assert [b.num_tasks for b in first] == [4, 4, 2]
    assert all(torch.equal(x, y) for b1, b2 in zip(first, again) for x, y in zip(b1, b2))


def test_uint8_images_are_scaled_and_unequal_classes_are_handled():
    images = torch.randint(0, 256, (30, 1, 28, 28), dtype=torch.uint8)
    labels = torch.tensor([0] * 5 + [1] * 10 + [2] * 15)
    batch = EpisodeSampler(images, labels, 3, 2, 3, seed=0).sample(20)
    assert batch.support_x.dtype == torch.float32 and batch.support_x.max() <= 1.0
    flat = images.flatten(1).float() / 255
    for t in range(20):
        rows = [
            int(torch.nonzero((flat == x.flatten()).all(1))[0])
            for x in torch.cat([batch.support_x[t], batch.query_x[t]])
        ]
        assert len(set(rows)) == 15


def test_all_classes_labels_examples_by_their_class_among_all_classes():
    images, labels = image_set()
    source = AllClasses(images, labels, k_shot=32, seed=0)
    batch = source.sample(2)
    assert batch.support_x.shape == (2, 32, 1, 28, 28) and batch.query_y.shape == (2, 32)
    assert source.num_classes == 12
    for t in range(2):
        ids = source_ids(torch.cat([batch.support_x[t], batch.query_x[t]]))
        expected = (labels[ids] - 3) // 7  # classes sorted by id -> 0..11
        assert torch.equal(torch.cat([batch.support_y[t], batch.query_y[t]]), expected)


def test_sample_with_classes_names_the_class_behind_each_episode_label():
    images, labels = image_set()
    batch, classes = EpisodeSampler(images, labels, 4, 2, 3, seed=1).sample_with_classes(5)
    assert classes.shape == (5, 4)
    for t in range(5):
        ids = source_ids(batch.support_x[t])
        assert torch.equal(labels[ids], classes[t][batch.support_y[t]])


def test_bad_arguments_name_themselves():
    images, labels = image_set(num_classes=4, per_class=5)
    with pytest.raises(ValueError, match="n_way"):
        EpisodeSampler(images, labels, n_way=5, k_shot=1, k_query=1)
    with pytest.raises(ValueError, match="k_shot \\+ k_query"):
        EpisodeSampler(images, labels, n_way=2, k_shot=3, k_query=3)
    with pytest.raises(ValueError, match="k_shot"):
        EpisodeSampler(images, labels, n_way=2, k_shot=0, k_query=3)
    with pytest.raises(ValueError, match="labels"):
        EpisodeSampler(images, labels[:-1], n_way=2, k_shot=1, k_query=1)
    with pytest.raises(ValueError, match="num_tasks"):
        EpisodeSampler(images, labels, n_way=2, k_shot=1, k_query=1).sample(0)
