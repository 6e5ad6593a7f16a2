"""The 3-way few-shot text task family: shapes, rules, disjoint splits, seeding, bad input."""

import pytest
import torch

from metalearn.tasks.text import TextTasks


def test_shapes_dtypes_and_balanced_labels():
    tasks = TextTasks("train", seed=0)
    batch = tasks.sample(num_tasks=4, k_shot=2, k_query=3)
    batch.validate()
    assert batch.support_x.shape == (4, 6, tasks.max_len) and batch.support_x.dtype == torch.int64
    assert batch.query_x.shape == (4, 9, tasks.max_len) and batch.query_y.shape == (4, 9)
    for labels, per_class in ((batch.support_y, 2), (batch.query_y, 3)):
        assert torch.equal(
            torch.stack([(labels == c).sum(1) for c in range(3)], 1), torch.full((4, 3), per_class)
        )
    assert batch.support_x.min() >= 0 and batch.support_x.max() < tasks.vocab_size


def test_each_sentence_carries_its_class_keywords_only():
    tasks = TextTasks("train", seed=1, keywords_per_class=2, keyword_hits=2)
    rules = tasks.sample_rules(5)  # [T, 3, 2]
    labels = tasks.balanced_labels(5, 4)
    sentences = tasks.sentences(rules, labels)
    lengths = (sentences != 0).sum(-1)
    assert (lengths >= tasks.min_len).all() and (lengths <= tasks.max_len).all()
    assert (sentences[..., : tasks.min_len] != 0).all()  # padding only at the end
    for t in range(5):
        for sentence, label in zip(sentences[t], labels[t]):
            words = set(sentence.tolist())
            own = set(rules[t, label].tolist())
            others = set(rules[t].flatten().tolist()) - own
            hits = sum(int(w in own) for w in sentence.tolist())
            assert hits == tasks.keyword_hits and not words & others


def test_rules_differ_between_tasks_and_splits_are_disjoint():
    train, test = TextTasks("train", seed=0), TextTasks("test", seed=0)
    assert not set(train.keyword_ids.tolist()) & set(test.keyword_ids.tolist())
    train_rules, test_rules = train.sample_rules(200), test.sample_rules(200)
    assert set(train_rules.flatten().tolist()) <= set(train.keyword_ids.tolist())
    assert set(test_rules.flatten().tolist()) <= set(test.keyword_ids.tolist())
    assert (
        len({tuple(rule.flatten().tolist()) for rule in train_rules}) > 150
    )  # rules vary per task
    assert train.vocab_size == test.vocab_size


def test_same_seed_same_tasks_other_seed_other_tasks():
    a, b, c = (TextTasks("test", seed=s).sample(3, k_shot=2, k_query=2) for s in (7, 7, 8))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a.support_x, c.support_x)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"split": "valid"}, "split"),
        ({"keywords_per_split": 2}, "keywords_per_split"),
        ({"min_len": 20}, "min_len"),
    ],
)
def test_bad_configuration_names_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        TextTasks(**kwargs)


@pytest.mark.parametrize("name", ["num_tasks", "k_shot", "k_query"])
def test_bad_sample_sizes_name_argument(name):
    sizes = {"num_tasks": 2, "k_shot": 1, "k_query": 1, name: 0}
    with pytest.raises(ValueError, match=name):
        TextTasks().sample(**sizes)
