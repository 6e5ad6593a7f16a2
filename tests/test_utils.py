import random

import numpy as np
import pytest
import torch

from metalearn.utils import DEVICE_ENV_VAR, default_device, seed_everything


def draw():
    return random.random(), np.random.rand(), torch.rand(3).tolist()


def test_same_seed_same_numbers_and_different_seed_different_numbers():
    seed_everything(7)
    first = draw()
    generator = seed_everything(7)
    assert draw() == first
    assert (
        torch.rand(1, generator=generator).item()
        == torch.rand(1, generator=torch.Generator().manual_seed(7)).item()
    )
    seed_everything(8)
    assert draw() != first


def test_bad_seed_is_rejected():
    with pytest.raises(ValueError, match="seed"):
        seed_everything(-1)


def test_auto_and_cpu_devices(monkeypatch):
    monkeypatch.delenv(DEVICE_ENV_VAR, raising=False)
    assert default_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert default_device("cpu") == torch.device("cpu")
    monkeypatch.setenv(DEVICE_ENV_VAR, "cpu")
    assert default_device() == torch.device("cpu")


def test_unknown_device_lists_the_valid_ones(monkeypatch):
    with pytest.raises(
        ValueError, match=r"name='tpu' is not a device; expected one of auto, cpu, cuda"
    ):
        default_device("tpu")
    monkeypatch.setenv(DEVICE_ENV_VAR, "gpu")
    with pytest.raises(ValueError, match=r"METALEARN_DEVICE='gpu' is not a device"):
        default_device()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="no CUDA device is available"):
        default_device("cuda")
