"""Reproducibility and device selection."""

from __future__ import annotations

import math
import numbers
import os
import random
from typing import Iterable, Mapping

import numpy as np
import torch

DEVICE_ENV_VAR = "METALEARN_DEVICE"
DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N", "mps")
SEED_LIMIT = 2**64  # torch.manual_seed takes seeds below this


def check_int(name: str, value: object, minimum: int | None = 0, maximum: int | None = None) -> int:
    """``value`` as an ``int`` when it is an integer in ``[minimum, maximum]``.

    Counts, sizes, steps and seeds go through here: ``True``, ``2.0``, ``2.5`` and ``"2"`` are
    refused (a bool is an ``int`` to Python, but never a count). NumPy integers are accepted.

    Raises:
        ValueError: naming ``name``, what it got and what it expected.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value!r}")
    return int(value)


def check_seed(name: str, value: object) -> int:
    """``value`` as an ``int`` seed in ``[0, 2**64)``; ``ValueError`` naming ``name`` otherwise."""
    return check_int(name, value, 0, SEED_LIMIT - 1)


def check_float(
    name: str,
    value: object,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    strict: bool = False,
) -> float:
    """``value`` as a finite ``float`` in ``[minimum, maximum]`` (open interval when ``strict``).

    Learning rates, amplitudes, goals, radii, discounts: NaN and infinities are refused
    as well as values out of range, and so are bools and strings.

    Raises:
        ValueError: naming ``name``, what it got and what it expected.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    low, high = (">", "<") if strict else (">=", "<=")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        raise ValueError(f"{name} must be {low} {minimum}, got {value!r}")
    if maximum is not None and (value >= maximum if strict else value > maximum):
        raise ValueError(f"{name} must be {high} {maximum}, got {value!r}")
    return float(value)


def check_finite_gradients(
    parameters: Iterable[torch.Tensor], where: str, names: Mapping[int, str] | None = None
) -> None:
    """Raise ``FloatingPointError`` if a gradient holds NaN or inf; call before ``optimizer.step``.

    Args:
        parameters: tensors whose ``.grad`` is checked (those without a gradient are skipped).
        where: where this happens, for the message (e.g. ``"at step 12"``).
        names: ``id(parameter) -> name``, to name the first offending parameter.

    One device synchronisation for all parameters together.
    """
    with_grad = [p for p in parameters if p.grad is not None]
    if not with_grad:
        return
    finite = torch.stack([torch.isfinite(p.grad).all().to(with_grad[0].device) for p in with_grad])
    if bool(finite.all()):
        return
    first = with_grad[int((~finite).nonzero()[0, 0])]
    label = (names or {}).get(id(first), f"a parameter of shape {tuple(first.shape)}")
    raise FloatingPointError(
        f"the gradient of {label} is NaN or infinite {where} (the loss itself was finite); "
        "nothing was updated: lower the learning rates, clip gradients, or check the data"
    )


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
