"""Argument and tensor checks: a bad input fails at once, with a message naming it.

Counts, rates and seeds (:func:`check_int`, :func:`check_float`, :func:`check_seed`), labels and
targets against a model's outputs (:func:`check_labels`, :func:`check_targets`,
:func:`check_model_batch`), and gradients before an update (:func:`check_finite_gradients`).
The shape checks of a task batch itself are :func:`metalearn.core.check_task_batch`.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable, Mapping

import torch
from torch import nn

from metalearn.core import check_task_batch

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
    number = int(value)
    if minimum is not None and number < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    if maximum is not None and number > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value!r}")
    return number


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
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    low, high = (">", "<") if strict else (">=", "<=")
    if minimum is not None and (number <= minimum if strict else number < minimum):
        raise ValueError(f"{name} must be {low} {minimum}, got {value!r}")
    if maximum is not None and (number >= maximum if strict else number > maximum):
        raise ValueError(f"{name} must be {high} {maximum}, got {value!r}")
    return number


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
    with_grad = [(p, p.grad) for p in parameters if p.grad is not None]
    if not with_grad:
        return
    device = with_grad[0][1].device
    finite = torch.stack([torch.isfinite(g).all().to(device) for _, g in with_grad])
    if bool(finite.all()):
        return
    first = with_grad[int((~finite).nonzero()[0, 0])][0]
    label = (names or {}).get(id(first), f"a parameter of shape {tuple(first.shape)}")
    raise FloatingPointError(
        f"the gradient of {label} is NaN or infinite {where} (the loss itself was finite); "
        "nothing was updated: lower the learning rates, clip gradients, or check the data"
    )


def normalise_index(index: Any, length: int, name: str = "index") -> int:
    """``index`` into ``length`` items by Python's rules (``-1`` is the last): ``0 .. length-1``.

    Raises:
        TypeError: ``index`` is not an int (bools and floats are refused).
        IndexError: ``index`` is outside ``-length .. length - 1``; the message names it.
    """
    if isinstance(index, bool) or not isinstance(index, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {index!r} ({type(index).__name__})")
    number = int(index)
    if not -length <= number < length:
        raise IndexError(f"{name}={index} is out of range for {length} tasks")
    return number % length


def check_labels(
    labels: torch.Tensor,
    name: str,
    num_classes: int | None = None,
    shape: tuple[int, ...] | torch.Size | None = None,
) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``labels`` are class indices.

    Class indices: an integer tensor (not float, not bool) of the given ``shape`` (e.g.
    ``[T, Q]``) with values in ``0 .. num_classes - 1`` (``>= 0`` without ``num_classes``).
    A ``-1`` or ``-100`` (PyTorch's ``ignore_index``) is refused, not silently skipped.
    """
    if not isinstance(labels, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(labels).__name__}")
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise ValueError(
            f"{name} must hold integer class indices, got dtype {labels.dtype} "
            f"(convert with {name}.long() if the values are whole numbers)"
        )
    if shape is not None and tuple(labels.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {list(shape)}, got {list(labels.shape)}")
    if labels.numel() == 0:
        return
    low, high = torch.stack([labels.min(), labels.max()]).tolist()
    top = f"{num_classes - 1}" if num_classes is not None else "the number of classes - 1"
    if low < 0 or (num_classes is not None and high >= num_classes):
        raise ValueError(f"{name} must lie in 0..{top}, got values {low}..{high}")


def check_targets(
    output_shape: tuple[int, ...] | torch.Size,
    targets: torch.Tensor,
    name: str,
    batch_dims: int = 2,
) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``targets`` fit outputs of ``output_shape``.

    ``output_shape`` is the model's output for ONE example (e.g. ``(1,)`` for a regressor,
    ``(C,)`` for a classifier); ``targets`` is ``[*batch, *y_shape]`` with ``batch_dims``
    leading dimensions (``[T, S]`` or ``[S]``). Nothing is broadcast:

    * floating targets need ``y_shape == output_shape``; only the last dimension may differ,
      and then neither may be 1 (packed targets such as policy-gradient ``[actions,
      advantage, valid]``). So ``[T, S]`` targets for ``[T, S, 1]`` outputs are refused.
    * integer targets are class indices ``[*batch]`` for outputs ``(C, ...)`` (PyTorch's
      cross-entropy layout), in ``0 .. C-1`` (``0 .. 1`` for a single logit, ``C = 1``), or
      have the outputs' own shape.
    """
    out, got = tuple(output_shape), tuple(targets.shape[batch_dims:])
    if targets.dtype.is_floating_point or targets.dtype.is_complex:
        same = len(got) == len(out) and got[:-1] == out[:-1]
        if same and (not got or got[-1] == out[-1] or (got[-1] != 1 and out[-1] != 1)):
            return
        if out and out[0] > 1 and got == out[1:]:
            raise ValueError(
                f"{name} has dtype {targets.dtype} and the shape of class indices for the "
                f"model's {out[0]} outputs; class labels must be integers: {name}.long()"
            )
        raise ValueError(
            f"{name} has per-example shape {list(got)} but the model outputs {list(out)} per "
            f"example; they would broadcast into a wrong loss. Reshape {name} to "
            f"{list(targets.shape[:batch_dims]) + list(out)}"
        )
    if got == out:
        return
    if got != out[1:]:
        raise ValueError(
            f"{name} holds integer labels of per-example shape {list(got)}, but the model "
            f"outputs {list(out)} per example: class indices need shape {list(out[1:])}"
        )
    if targets.numel():
        num_classes = max(out[0], 2)  # one output: a binary logit, labels 0 or 1
        check_labels(targets, name, num_classes)


def call_model(model: nn.Module, x: torch.Tensor, name: str) -> torch.Tensor:
    """``model(x)``, turning a dtype failure into a ``ValueError`` that names the input.

    Integer inputs (``int64`` token ids, ``uint8`` pixels) are fine for a model that takes
    them (an embedding); fed to a float network they would fail deep inside torch.
    """
    try:
        return model(x)
    except (RuntimeError, TypeError) as error:
        dtypes = sorted({str(p.dtype) for p in model.parameters() if p.is_floating_point()})
        if not (x.is_floating_point() or x.is_complex()):
            raise ValueError(
                f"{name} has dtype {x.dtype}, which the model cannot take (its parameters are "
                f"{', '.join(dtypes) or 'not floating point'}); convert it, e.g. {name}.float()"
            ) from error
        if dtypes and str(x.dtype) not in dtypes and "type" in str(error):
            raise ValueError(
                f"{name} has dtype {x.dtype} but the model's parameters are {', '.join(dtypes)}; "
                f"convert one of them, e.g. {name}.to({dtypes[0]})"
            ) from error
        raise


def check_model_device(model: nn.Module, **tensors: torch.Tensor | None) -> None:
    """Raise ``ValueError`` naming the first tensor not on the device of ``model``'s parameters."""
    parameter = next(iter(model.parameters()), None)
    if parameter is None:
        return
    for name, tensor in tensors.items():
        if tensor is not None and tensor.device != parameter.device:
            raise ValueError(
                f"{name} is on {tensor.device} but the model's parameters are on "
                f"{parameter.device}; move the batch (batch.to(device)) or the model"
            )


def check_model_batch(
    model: nn.Module,
    support_x: torch.Tensor,
    support_y: torch.Tensor,
    query_x: torch.Tensor,
    query_y: torch.Tensor | None = None,
    *,
    cache: dict | None = None,
) -> None:
    """Validate a task batch for a learner that adapts ``model`` (``[N, ...] -> [N, ...]``).

    :func:`check_task_batch`, then: every tensor on the model's device; inputs of a dtype
    the model takes; targets that fit its outputs without broadcasting (:func:`check_targets`).
    The model runs once on the first task's support set (in eval mode, without gradient,
    random state and buffers untouched) to learn its output shape; ``cache`` (a dict kept by
    the learner) remembers that shape per input shape, dtype, device and parameter shapes,
    so later calls cost only the label range check.

    Raises:
        ValueError: naming the offending tensor.
    """
    check_task_batch(support_x, support_y, query_x, query_y)
    check_model_device(
        model, support_x=support_x, support_y=support_y, query_x=query_x, query_y=query_y
    )
    if query_x.dtype != support_x.dtype:
        raise ValueError(f"query_x has dtype {query_x.dtype} but support_x has {support_x.dtype}")
    parameters = tuple((p.shape, p.dtype) for p in model.parameters())
    key = (tuple(support_x.shape[2:]), support_x.dtype, support_x.device, parameters)
    output_shape = None if cache is None else cache.get(key)
    if output_shape is None:
        output_shape = _output_shape(model, support_x[0])
        if cache is not None:
            cache[key] = output_shape
    if not isinstance(output_shape, tuple):
        return  # not an [N, ...] -> [N, ...] model: nothing to compare the targets with
    check_targets(output_shape, support_y, "support_y")
    if query_y is not None:
        check_targets(output_shape, query_y, "query_y")


def _output_shape(model: nn.Module, example: torch.Tensor) -> tuple[int, ...] | bool:
    """Per-example output shape of ``model`` on ``example [N, ...]`` (``False`` if not
    ``[N, ...]``), computed in eval mode without gradient; modes and random state are restored."""
    devices = [example.device.index or 0] if example.device.type == "cuda" else []
    modes = [(module, module.training) for module in model.modules()]
    model.eval()  # batch norm keeps its running statistics, dropout draws nothing
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=devices):
            output = call_model(model, example, "support_x")
    finally:
        for module, training in modes:
            module.training = training
    if not isinstance(output, torch.Tensor) or output.dim() == 0:
        return False
    if output.shape[0] != example.shape[0]:
        return False
    return tuple(output.shape[1:])


def check_generator(generator: object) -> torch.Generator | None:
    """``generator`` when it is a ``torch.Generator`` or ``None``; ``ValueError`` otherwise."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(
            f"generator must be a torch.Generator or None, got {generator!r} "
            f"({type(generator).__name__}); sizes such as k_shot are keyword arguments"
        )
    return generator
