import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch

from metalearn.core import TaskBatch
from metalearn.plotting import draw_meta_loop, show_episodes


def _image_batch(tasks=3, support=4, query=6):
    return TaskBatch(
        torch.rand(tasks, support, 16),
        torch.arange(support).repeat(tasks, 1) % 2,
        torch.rand(tasks, query, 16),
        torch.arange(query).repeat(tasks, 1) % 2,
    )


def test_show_episodes_draws_support_and_query_images():
    batch = _image_batch()
    fig = show_episodes(
        batch, (4, 4), class_names=torch.tensor([[7, 3]] * 3), num_tasks=2, max_query=3
    )
    images = [ax for ax in fig.axes if ax.images]
    assert len(images) == 2 * (4 + 3)
    assert fig.axes[1].get_title() == "1=3"
    plt.close(fig)


def test_show_episodes_rejects_empty_request():
    with pytest.raises(ValueError, match="max_query"):
        show_episodes(_image_batch(), (4, 4), max_query=0)


def test_draw_meta_loop_has_one_box_per_task():
    fig = draw_meta_loop(num_tasks=4)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert sum("inner loop on task" in t for t in texts) == 4
    assert any("outer loop" in t for t in texts)
    plt.close(fig)
