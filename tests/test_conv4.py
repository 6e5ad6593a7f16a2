"""Conv4: shapes, the MAML paper's architecture, batch statistics in every mode, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from metalearn.models import Conv4


def test_output_shape_and_architecture():
    torch.manual_seed(0)
    model = Conv4(in_channels=1, num_classes=5, hidden=64)
    assert model(torch.randn(7, 1, 28, 28)).shape == (7, 5)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(convs) == 4 and all(c.kernel_size == (3, 3) and c.out_channels == 64 for c in convs)
    assert len(norms) == 4 and not any(n.track_running_stats for n in norms)
    assert model.head.in_features == 64
    assert Conv4(in_channels=3, num_classes=20, hidden=8)(torch.randn(2, 3, 28, 28)).shape == (
        2,
        20,
    )


def test_batch_norm_uses_batch_statistics_in_train_and_eval_mode():
    torch.manual_seed(0)
    model = Conv4(hidden=8)
    images = torch.randn(6, 1, 28, 28)
    train_out = model.train()(images)
    eval_out = model.eval()(images)
    torch.testing.assert_close(train_out, eval_out)
    assert list(model.buffers()) == []  # nothing carried over from one task to the next
    # the prediction of an image depends on the batch it is in (transductive batch norm)
    assert not torch.allclose(model(images[:3])[0], model(images)[0])


@pytest.mark.parametrize("shape", [(2, 28, 28), (2, 1, 32, 32)])
def test_bad_image_shape_raises_value_error(shape):
    with pytest.raises(ValueError, match="images"):
        Conv4()(torch.randn(*shape))


@pytest.mark.parametrize("argname", ["in_channels", "num_classes", "hidden"])
def test_bad_sizes_raise_value_error(argname):
    with pytest.raises(ValueError, match=argname):
        Conv4(**{argname: 0})
