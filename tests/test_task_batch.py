import pytest
import torch

from metalearn.core import TaskBatch, check_task_batch


def make_batch(tasks=3, k_shot=4, k_query=5, features=2):
    return TaskBatch(
        torch.randn(tasks, k_shot, features),
        torch.randn(tasks, k_shot, 1),
        torch.randn(tasks, k_query, features),
        torch.randn(tasks, k_query, 1),
    )


def test_unpacks_into_four_tensors_and_selects_one_task():
    batch = make_batch()
    support_x, support_y, query_x, query_y = batch
    assert batch.num_tasks == 3
    one = batch.task(1)
    assert one.num_tasks == 1
    assert torch.equal(one.query_x[0], query_x[1])
    assert batch.validate() is batch


@pytest.mark.parametrize(
    "field, bad, message",
    [
        ("support_y", torch.randn(2, 4, 1), "support_y has 2 tasks"),
        ("query_x", torch.randn(3, 5, 7), "support and query must share the feature shape"),
        ("query_y", torch.randn(3, 6, 1), "query_y has 6 examples"),
        ("support_y", torch.randn(3, 3, 1), "support_y has 3 examples"),
        ("support_x", torch.randn(3), "support_x must have shape"),
    ],
)
def test_bad_shapes_raise_naming_the_tensor(field, bad, message):
    batch = make_batch()._replace(**{field: bad})
    with pytest.raises(ValueError, match=message):
        batch.validate()


def test_empty_support_set_is_rejected():
    batch = make_batch(k_shot=0)
    with pytest.raises(ValueError, match="support_x is empty"):
        check_task_batch(*batch)


def test_query_targets_may_be_absent_at_prediction_time():
    batch = make_batch()
    check_task_batch(batch.support_x, batch.support_y, batch.query_x)
    with pytest.raises(ValueError, match="query_x has 2 tasks"):
        check_task_batch(batch.support_x, batch.support_y, batch.query_x[:2])
