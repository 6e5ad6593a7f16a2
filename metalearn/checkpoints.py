"""Checkpoints of a meta-training run: written atomically, read without running code.

A checkpoint holds what an uninterrupted run would still have in memory: the learner's
and the optimizer's ``state_dict``, the step, the loss history, the random states of
Python, NumPy and PyTorch, and those of the generators reachable from the run's
``source`` (see :func:`find_generators`). :func:`save` writes it to a temporary
file in the same folder and renames it over the old one; :func:`resume` reads it with
``torch.load(..., weights_only=True)`` and refuses a damaged file or another run's.
:func:`metalearn.meta_train` uses both.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import tempfile
import types
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

CHECKPOINT_FORMAT = 2  # bumped when the checkpoint's layout changes
_LEAVES = (str, bytes, int, float, complex, torch.Tensor, np.ndarray)
_RANDOM_TYPES = (torch.Generator, np.random.Generator, random.Random)


def _children(obj: Any) -> list[tuple[str, Any]]:
    """What a sampler can reach in one hop, named stably across processes."""
    if isinstance(obj, (types.ModuleType, type, nn.Module)) or isinstance(obj, _LEAVES):
        return []
    children: list[tuple[str, Any]] = []
    if isinstance(obj, functools.partial):
        children += [("func", obj.func)] + [(f"args[{i}]", a) for i, a in enumerate(obj.args)]
        children += [(f"keywords[{k!r}]", v) for k, v in obj.keywords.items()]
    if isinstance(obj, types.MethodType):
        children.append(("__self__", obj.__self__))
        obj = obj.__func__
    if isinstance(obj, types.FunctionType):
        for name, cell in zip(obj.__code__.co_freevars, obj.__closure__ or ()):
            with contextlib.suppress(ValueError):  # an empty cell
                children.append((name, cell.cell_contents))
        children += [(n, obj.__globals__[n]) for n in obj.__code__.co_names if n in obj.__globals__]
        return children
    if isinstance(obj, (list, tuple)):
        return children + [(f"[{i}]", item) for i, item in enumerate(obj[:100])]
    if isinstance(obj, dict):
        items = [(k, v) for k, v in obj.items() if isinstance(k, (str, int))][:100]
        return children + [(f"[{k!r}]", v) for k, v in items]
    attributes = getattr(obj, "__dict__", None)
    if isinstance(attributes, dict):
        children += [(k, v) for k, v in attributes.items() if isinstance(k, str)]
    return children


def find_generators(source: Any, depth: int = 3) -> dict[str, Any]:
    """Random generators reachable from ``source`` within ``depth`` hops, by path."""
    found: dict[str, Any] = {}
    seen: set[int] = set()

    def visit(obj: Any, path: str, left: int) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, _RANDOM_TYPES):
            if not isinstance(obj, random.SystemRandom):  # the OS's entropy has no state
                found[path] = obj
            return
        if left:
            for name, child in _children(obj):
                visit(
                    child, f"{path}.{name}" if not name.startswith("[") else path + name, left - 1
                )

    visit(source, "source", depth)
    return found


def _generator_state(generator: Any) -> Any:
    if isinstance(generator, torch.Generator):
        return generator.get_state()
    if isinstance(generator, np.random.Generator):
        return generator.bit_generator.state
    return generator.getstate()


def _set_generator_state(generator: Any, state: Any) -> None:
    if isinstance(generator, torch.Generator):
        generator.set_state(state)
    elif isinstance(generator, np.random.Generator):
        generator.bit_generator.state = state
    else:
        generator.setstate(state)


def _rng_state() -> dict[str, Any]:
    kind, keys, position, has_gauss, cached = np.random.get_state(legacy=True)
    assert isinstance(keys, np.ndarray)  # the legacy state tuple: (kind, keys, ...)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def save(
    path: Path,
    learner: nn.Module,
    optimizer: torch.optim.Optimizer,
    step: int,
    steps: int,
    history: list[float],
    source: Any,
    generators: dict[str, Any],
) -> None:
    """Write the checkpoint atomically: a temporary file in the same folder, then os.replace."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "step": step,
        "steps": steps,
        "history": list(history),
        "learner": learner.state_dict(),
        "optimizer": optimizer.state_dict(),
        "rng": _rng_state(),
        "generators": {name: _generator_state(g) for name, g in generators.items()},
    }
    if callable(getattr(source, "state_dict", None)):
        state["sampler"] = source.state_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(state, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def resume(
    path: Path,
    learner: nn.Module,
    optimizer: torch.optim.Optimizer,
    source: Any,
    generators: dict[str, Any],
    steps: int,
) -> tuple[int, list[float]]:
    """Load the checkpoint at ``path`` into the learner, optimizer and random generators."""
    advice = "delete it to start afresh, or pass another checkpoint path"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(
            f"checkpoint {str(path)!r} cannot be read ({type(error).__name__}: {error}); "
            f"it is damaged or not a meta_train checkpoint: {advice}"
        ) from error
    keys = {"format", "step", "history", "learner", "optimizer", "rng", "generators"}
    if not isinstance(state, dict) or not keys <= state.keys():
        raise ValueError(f"checkpoint {str(path)!r} is not a meta_train checkpoint: {advice}")
    if state["format"] != CHECKPOINT_FORMAT:
        raise ValueError(
            f"checkpoint {str(path)!r} has format {state['format']}, this version writes "
            f"{CHECKPOINT_FORMAT}: {advice}"
        )
    step, history = state["step"], list(state["history"])
    if step > steps or len(history) != step:
        raise ValueError(
            f"checkpoint {str(path)!r} is at step {step} but steps={steps}: pass steps >= "
            f"{step} to go on from it, or {advice}"
        )
    _check_same_settings(path, optimizer, state["optimizer"], advice)
    backup = {name: value.detach().clone() for name, value in learner.state_dict().items()}
    try:
        learner.load_state_dict(state["learner"])
        optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError) as error:
        learner.load_state_dict(backup)
        raise ValueError(
            f"checkpoint {str(path)!r} does not fit this learner or optimizer ({error}): {advice}"
        ) from error
    _set_rng_state(state["rng"])
    missing = []
    for name, generator_state in state["generators"].items():
        if name in generators:
            _set_generator_state(generators[name], generator_state)
        else:
            missing.append(name)
    if missing and step < steps:  # a finished run draws nothing more
        warnings.warn(
            f"checkpoint {str(path)!r}: the generators {missing} of the saved run are not "
            "reachable from source now; the resumed run may draw other tasks",
            stacklevel=3,
        )
    if "sampler" in state and callable(getattr(source, "load_state_dict", None)):
        source.load_state_dict(state["sampler"])
    return step, history


def _check_same_settings(
    path: Path, optimizer: torch.optim.Optimizer, saved: dict, advice: str
) -> None:
    """The saved optimizer must have the same groups and settings (lr, ...) as ``optimizer``:
    loading it would silently replace the settings this call asks for."""
    groups = saved.get("param_groups", [])
    if len(groups) != len(optimizer.param_groups):
        raise ValueError(
            f"checkpoint {str(path)!r} has {len(groups)} parameter groups, the optimizer "
            f"{len(optimizer.param_groups)}: {advice}"
        )
    for index, (old, new) in enumerate(zip(groups, optimizer.param_groups)):
        for key in sorted(set(old) & set(new) - {"params"}):
            if not _same_setting(old[key], new[key]):
                raise ValueError(
                    f"checkpoint {str(path)!r} was written with {key}={old[key]!r} (parameter "
                    f"group {index}) but the optimizer now has {key}={new[key]!r}: {advice}"
                )


def _same_setting(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return torch.equal(torch.as_tensor(a).cpu(), torch.as_tensor(b).cpu())
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same_setting(x, y) for x, y in zip(a, b))
    return a == b
