"""The meta-training loop every chapter shares, with checkpoints for long runs."""

from __future__ import annotations

import contextlib
import functools
import math
import os
import random
import tempfile
import time
import types
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from metalearn.algorithms.base import MetaLearner
from metalearn.progress import Progress
from metalearn.tasks.batch import TaskBatch
from metalearn.utils import check_finite_gradients, check_float, check_int

CHECKPOINT_FORMAT = 1  # bumped when the checkpoint's layout changes


def meta_train(
    learner: MetaLearner,
    sample_batch: Callable[[], TaskBatch],
    steps: int,
    optimizer: torch.optim.Optimizer,
    *,
    grad_clip: float | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
    desc: str = "meta-training",
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: float = 300.0,
) -> list[float]:
    """Minimise ``learner.meta_loss`` over ``steps`` freshly sampled task batches.

    Args:
        learner: anything with ``meta_loss(support_x, support_y, query_x, query_y)``.
        sample_batch: called once per step; returns a new :class:`TaskBatch`.
        steps: number of meta-updates (an int >= 1).
        optimizer: the outer (meta) optimiser over the learner's meta-parameters.
        grad_clip: if given (finite, > 0), clip the meta-gradient's total norm to this value.
        device: move each batch there before the step (``None`` keeps it).
        progress: show a live progress bar that ends as a one-line summary
            (steps, smoothed loss, seconds).
        desc: what the progress bar calls the run.
        checkpoint: a file to save the run to, every ``checkpoint_every`` seconds and after
            the last step; if it exists when ``meta_train`` starts, the run resumes from it
            (see below). ``None`` (default) saves nothing.
        checkpoint_every: seconds between checkpoints (``0`` = after every step).

    Checkpoints. A run of minutes or hours survives an interruption (a killed kernel, a
    Colab timeout, Ctrl-C) losing at most ``checkpoint_every`` seconds of training: call
    ``meta_train`` again with the same arguments and it continues where the last checkpoint
    left off, and returns the whole loss history. The checkpoint holds the learner's and the
    optimizer's ``state_dict``, the step, the loss history, the random states of Python,
    NumPy and PyTorch (CPU and CUDA) and those of the generators reachable from
    ``sample_batch`` (its object, closure variables, the globals it names and their
    attributes, e.g. a :class:`~metalearn.tasks.Sinusoid`'s or an ``EpisodeSampler``'s
    generator), plus ``sample_batch.state_dict()`` when it has one; so a resumed run
    continues with the very tasks and numbers an uninterrupted run would have drawn.
    It is written to a temporary file in the same folder, flushed to disk, then renamed
    over the old one (``os.replace``): an interruption while saving leaves the previous
    checkpoint intact, never a half-written one. It is read with ``torch.load(...,
    weights_only=True)``, which runs no code from the file. A finished run's checkpoint
    stays: calling again loads the trained state and returns the history without training
    (pass a larger ``steps`` to train on); delete the file to start afresh.

    Returns:
        The meta-loss of every step, for plotting a training curve.

    Raises:
        FloatingPointError: the meta-loss became NaN or infinite, or a meta-gradient did
            (checked before every update, with or without clipping: the parameters are
            left as they were after the previous step); the message names the step.
        ValueError: a bad argument (named), a meta-loss that is not a scalar depending on
            the parameters, or a checkpoint that is damaged or belongs to another run.
    """
    steps = check_int("steps", steps, minimum=1)
    if not callable(getattr(learner, "meta_loss", None)):
        raise ValueError(f"learner must have a meta_loss method, got {type(learner).__name__}")
    if not callable(sample_batch):
        raise ValueError(f"sample_batch must be callable, got {type(sample_batch).__name__}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ValueError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer)}")
    if grad_clip is not None:
        grad_clip = check_float("grad_clip", grad_clip, minimum=0.0, strict=True)
    checkpoint_every = check_float("checkpoint_every", checkpoint_every, minimum=0.0)
    _check_optimizer(optimizer)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    names = (
        {id(p): repr(name) for name, p in learner.named_parameters()}
        if isinstance(learner, nn.Module)
        else {}
    )
    path = None if checkpoint is None else Path(checkpoint)
    generators: dict[str, Any] = {}
    history: list[float] = []
    start = 0
    if path is not None:
        if not isinstance(learner, nn.Module):
            raise ValueError("checkpoint needs a learner that is an nn.Module (a state_dict)")
        if path.is_dir():
            raise ValueError(f"checkpoint must be a file path, got the folder {str(path)!r}")
        generators = _find_generators(sample_batch)
        if path.exists():
            start, history = _resume(path, learner, optimizer, sample_batch, generators, steps)
    last_save = time.monotonic()
    title = f"{desc} (resumed at step {start})" if start else desc
    with Progress(steps, title, enabled=progress) as bar:
        if start:
            bar.update(start, loss=history[-1])
        for step in range(start, steps):
            batch = _as_batch(sample_batch(), step)
            if device is not None:
                batch = batch.to(device)
            loss = learner.meta_loss(*batch)
            value = _check_loss(loss, step)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            check_finite_gradients(params, f"at step {step}", names)
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
            optimizer.step()
            history.append(value)
            bar.update(loss=value)
            done = step + 1 == steps
            save = path is not None and (done or time.monotonic() - last_save >= checkpoint_every)
            if done or save:  # a NaN parameter would show in the next step's loss, but a
                _check_finite_parameters(params, step, names)  # last or saved one must not
            if save:
                _save(path, learner, optimizer, step + 1, steps, history, sample_batch, generators)
                last_save = time.monotonic()
    return history


def _check_optimizer(optimizer: torch.optim.Optimizer) -> None:
    """Every float setting of every parameter group (lr, betas, eps, ...) must be finite."""
    for index, group in enumerate(optimizer.param_groups):
        for key, value in group.items():
            values = value if isinstance(value, (tuple, list)) and key != "params" else [value]
            for item in values:
                if isinstance(item, float) and not math.isfinite(item):
                    raise ValueError(
                        f"optimizer setting {key}={value!r} (parameter group {index}) "
                        "must be finite"
                    )


def _as_batch(batch: Any, step: int) -> TaskBatch:
    if isinstance(batch, TaskBatch):
        return batch
    if isinstance(batch, (tuple, list)) and len(batch) == 4:
        return TaskBatch(*batch)
    raise ValueError(
        f"sample_batch must return a TaskBatch, got {type(batch).__name__} at step {step}"
    )


def _check_loss(loss: Any, step: int) -> float:
    """The loss as a float; it must be a finite scalar tensor that depends on the parameters."""
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise ValueError(
            f"learner.meta_loss must return a scalar tensor, got "
            f"{list(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__} "
            f"at step {step}"
        )
    value = loss.item()
    if not math.isfinite(value):
        raise FloatingPointError(f"meta-loss is {value} at step {step}; lower the learning rates")
    if not loss.requires_grad:
        raise ValueError(
            f"the meta-loss at step {step} does not depend on any parameter (requires_grad is "
            "False): the learner has nothing to train (a model without parameters?), or "
            "meta_loss ran under torch.no_grad()"
        )
    return value


def _check_finite_parameters(params: list[torch.Tensor], step: int, names: dict) -> None:
    finite = torch.stack([torch.isfinite(p.detach()).all().to(params[0].device) for p in params])
    if not bool(finite.all()):
        first = params[int((~finite).nonzero()[0, 0])]
        label = names.get(id(first), f"a parameter of shape {tuple(first.shape)}")
        raise FloatingPointError(
            f"{label} became NaN or infinite in the update of step {step} (its gradient was "
            "finite): lower the learning rate"
        )


# -- checkpoints ---------------------------------------------------------------------------
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


def _find_generators(sample_batch: Callable, depth: int = 3) -> dict[str, Any]:
    """Random generators reachable from ``sample_batch`` within ``depth`` hops, by path."""
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

    visit(sample_batch, "sample_batch", depth)
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
    kind, keys, position, has_gauss, cached = np.random.get_state()
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


def _save(
    path: Path,
    learner: nn.Module,
    optimizer: torch.optim.Optimizer,
    step: int,
    steps: int,
    history: list[float],
    sample_batch: Callable,
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
    if callable(getattr(sample_batch, "state_dict", None)):
        state["sampler"] = sample_batch.state_dict()
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


def _resume(
    path: Path,
    learner: nn.Module,
    optimizer: torch.optim.Optimizer,
    sample_batch: Callable,
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
            "reachable from sample_batch now; the resumed run may draw other tasks",
            stacklevel=3,
        )
    if "sampler" in state and callable(getattr(sample_batch, "load_state_dict", None)):
        sample_batch.load_state_dict(state["sampler"])
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
