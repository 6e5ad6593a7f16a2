"""A new output layer for a pretrained network: the first step of fine-tuning to new classes."""

from __future__ import annotations

import copy

from torch import nn

from metalearn.checks import check_int


def replace_head(
    model: nn.Module, num_outputs: int, name: str = "head", zero: bool = True
) -> nn.Module:
    """A copy of ``model`` whose last linear layer ``name`` maps to ``num_outputs`` outputs.

    Pretraining over all training classes leaves a head with one output per *training* class;
    an N-way task needs N outputs, whose meaning the support set gives. ``zero=True`` starts
    the new head at zero (every class equally likely before fine-tuning), as is usual for
    the fine-tuning baseline; the original ``model`` is left untouched.

    Raises:
        ValueError: ``model`` has no ``nn.Linear`` called ``name``, or ``num_outputs`` < 1.
    """
    check_int("num_outputs", num_outputs, minimum=1)
    old = getattr(model, name, None)
    if not isinstance(old, nn.Linear):
        raise ValueError(f"model has no nn.Linear layer called {name!r} to replace")
    new_model = copy.deepcopy(model)
    head = nn.Linear(old.in_features, num_outputs, bias=old.bias is not None)
    head = head.to(device=old.weight.device, dtype=old.weight.dtype)
    if zero:
        nn.init.zeros_(head.weight)
        if head.bias is not None:
            nn.init.zeros_(head.bias)
    setattr(new_model, name, head)
    return new_model
