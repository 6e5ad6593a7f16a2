"""Reproducibility and device selection."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

DEVICE_ENV_VAR = "METALEARN_DEVICE"
DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N", "mps")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (CPU and CUDA); return a fresh ``torch.Generator``.

    The same seed gives the same numbers on the same machine and library versions.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def default_device(name: str | None = None) -> torch.device:
    """The device experiments run on.

    Args:
        name: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``,
            ``"cuda:N"`` or ``"mps"``. ``None`` reads the ``METALEARN_DEVICE``
            environment variable, defaulting to ``"auto"``.

    Raises:
        ValueError: the name is not one of the choices above, or names a device
            this machine does not have.
    """
    source = "name"
    if name is None:
        name, source = os.environ.get(DEVICE_ENV_VAR, "auto"), DEVICE_ENV_VAR
    choice = name.strip().lower()
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    is_cuda_index = choice.startswith("cuda:") and choice[5:].isdigit()
    if choice not in DEVICE_CHOICES and not is_cuda_index:
        raise ValueError(
            f"{source}={name!r} is not a device; expected one of {', '.join(DEVICE_CHOICES)}"
        )
    if choice.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"{source}={name!r} asks for CUDA, but no CUDA device is available; "
                "use 'auto' or 'cpu'"
            )
        if is_cuda_index and int(choice[5:]) >= torch.cuda.device_count():
            raise ValueError(
                f"{source}={name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    if choice == "mps" and not torch.backends.mps.is_available():
        raise ValueError(
            f"{source}={name!r} asks for MPS, but it is not available; use 'auto' or 'cpu'"
        )
    return torch.device(choice)
