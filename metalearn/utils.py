"""Reproducibility and device selection."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from metalearn.checks import check_seed

DEVICE_ENV_VAR = "METALEARN_DEVICE"
DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N", "mps")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (CPU and CUDA); return a fresh ``torch.Generator``.

    The same seed gives the same numbers on the same machine and library versions.

    Raises:
        ValueError: ``seed`` is not an int in ``[0, 2**64)`` (bools and floats are refused).
    """
    seed = check_seed("seed", seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def default_device(name: str | torch.device | None = None) -> torch.device:
    """The device experiments run on.

    Args:
        name: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``,
            ``"cuda:N"`` or ``"mps"`` (or a ``torch.device``). ``None`` reads the
            ``METALEARN_DEVICE`` environment variable, defaulting to ``"auto"``.

    Raises:
        TypeError: ``name`` is not a string (or ``None``), e.g. ``default_device(5)``.
        ValueError: the name is not one of the choices above, or names a device
            this machine does not have.
    """
    source = "name"
    if name is None:
        name, source = os.environ.get(DEVICE_ENV_VAR, "auto"), DEVICE_ENV_VAR
    if isinstance(name, torch.device):
        name = str(name)
    if not isinstance(name, str):
        raise TypeError(
            f"name must be a str, one of {', '.join(DEVICE_CHOICES)} (or None), "
            f"got {name!r} ({type(name).__name__})"
        )
    choice = name.strip().lower()
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    index = choice[5:]
    is_cuda_index = choice.startswith("cuda:") and index.isascii() and index.isdigit()
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
