import pytest
import torch

from metalearn.data.digits import load_digits, split_per_class
from metalearn.learning_curve import learning_curve
from metalearn.models import MLP


def _split():
    images, labels = load_digits()
    test, train = split_per_class(labels, 30, torch.Generator().manual_seed(0))
    return images[train], labels[train], images[test], labels[test]


def test_more_examples_per_class_give_higher_accuracy():
    train_x, train_y, test_x, test_y = _split()
    acc = learning_curve(
        lambda: MLP(64, [16], 10),
        train_x,
        train_y,
        test_x,
        test_y,
        [1, 30],
        seeds=2,
        steps=40,
        lr=0.03,
    )
    assert acc.shape == (2, 2)
    assert ((acc >= 0) & (acc <= 1)).all()
    assert acc[1].mean() > acc[0].mean() + 0.1, acc
    assert acc[1].mean() > 0.85, acc


def test_learning_curve_is_reproducible():
    train_x, train_y, test_x, test_y = _split()
    run = lambda: learning_curve(
        lambda: MLP(64, [8], 10), train_x, train_y, test_x, test_y, [2], seeds=2, steps=5, lr=0.01
    )
    assert torch.equal(run(), run())


def test_learning_curve_rejects_bad_arguments():
    train_x, train_y, test_x, test_y = _split()
    make = lambda: MLP(64, [8], 10)
    with pytest.raises(ValueError, match="seeds"):
        learning_curve(make, train_x, train_y, test_x, test_y, [1], seeds=0, steps=1, lr=0.1)
    with pytest.raises(ValueError, match="per_class"):
        learning_curve(make, train_x, train_y, test_x, test_y, [], seeds=1, steps=1, lr=0.1)
    with pytest.raises(ValueError, match="train_x"):
        learning_curve(make, train_x, train_y[:-1], test_x, test_y, [1], seeds=1, steps=1, lr=0.1)
