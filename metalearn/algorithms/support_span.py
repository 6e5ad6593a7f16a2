"""MAML's test-time steps in the span of the support inputs, for a network whose first layer is
linear.

A gradient step on the support set changes a first layer ``z = x W^T + b`` by
``W <- W - alpha D^T X_S``, with ``D = dL/dz`` (``[S, H]``) and ``X_S`` the support inputs
(``[S, F]``): the weights move only along the support inputs. After ``t`` steps, with
``A_t = D_0 + ... + D_{t-1}``,

    W_t = W_0 - alpha A_t^T X_S,   so   z_t(x) = x W_0^T - alpha (x X_S^T) A_t + b_t,

and a step needs the Gram matrix ``X_S X_S^T`` (``[S, S]``), never the ``[H, F]`` weight
gradient: it costs ``S^2 H`` instead of ``S F H``. For FS-Mol's fingerprints (``F = 2048``
bits, ``S = 16`` to ``128`` molecules) that is 16 to 128 times fewer operations in the first
layer. The steps are MAML's own (plain SGD at its rates on its ``inner_loss_fn``), so the
predictions are those of ``maml.predict(..., steps=steps)`` up to rounding (tested in float64).
"""

from __future__ import annotations

from typing import Callable, Iterator, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call

from metalearn.algorithms.maml import MAML, _check_finite
from metalearn.checks import check_int


class SupportSpan:
    """``maml`` adapting with ``steps`` inner steps computed in the span of the support inputs.

    ``maml.model`` must be an ``nn.Sequential`` whose first module is an ``nn.Linear`` (e.g.
    :class:`~metalearn.models.MLP`), with fixed inner rates (``learn_inner_lr="none"``).
    """

    def __init__(self, maml: MAML, steps: int) -> None:
        if not isinstance(maml, MAML):
            raise ValueError(f"maml must be a metalearn MAML, got {type(maml).__name__}")
        reason = _unsupported(maml)
        if reason is not None:
            raise ValueError(reason)
        self.maml, self.steps = maml, check_int("steps", steps, minimum=0)
        self._first = next(iter(maml.model.named_children()))[0]

    def predict(self, support_x: Tensor, support_y: Tensor, query_x: Tensor) -> Tensor:
        """``support_x [T, S, F]``, ``support_y [T, S, ...]``, ``query_x [T, Q, F]`` ->
        ``[T, Q, ...]``, the queries predicted after ``steps`` inner steps on each support set."""
        self.maml._check_inputs(support_x, support_y, query_x)
        predictions = []
        with torch.no_grad():
            for task_x, task_y, task_query in zip(support_x, support_y, query_x):
                *_, outputs = self.trajectory(task_x, task_y, [task_query])
                predictions.append(outputs(0))
        return torch.stack(predictions).detach()

    def trajectory(
        self, support_x: Tensor, support_y: Tensor, inputs: Sequence[Tensor]
    ) -> Iterator[Callable[[int], Tensor]]:
        """One task (``support_x [S, F]``, ``support_y [S, ...]``): before the first inner step
        and after each of the ``steps`` steps, a function ``outputs(i)`` that gives the network's
        outputs on ``inputs[i]`` (``[N_i, F]``) at that point (call it under ``no_grad``)."""
        maml, first = self.maml, self._first
        params, rates = maml.params(), maml.rates()
        weight, bias = params[f"{first}.weight"], params[f"{first}.bias"]
        rest = {name: params[name] for name in rates if not name.startswith(f"{first}.")}
        buffers = {name: t for name, t in params.items() if name not in rates}
        weight_rate, bias_rate = rates[f"{first}.weight"], rates[f"{first}.bias"]
        gram, start_z = support_x @ support_x.T, support_x @ weight.T  # [S, S], [S, H]
        projected = [(x @ weight.T, x @ support_x.T) for x in inputs]  # [N, H], [N, S]
        summed = torch.zeros_like(start_z)  # A_t, the sum of dL/dz over the steps so far

        def at(summed: Tensor, bias: Tensor, rest: dict[str, Tensor]) -> Callable[[int], Tensor]:
            def outputs(i: int) -> Tensor:
                start, cross = projected[i]
                return self._rest({**rest, **buffers}, start - weight_rate * cross @ summed + bias)

            return outputs

        yield at(summed, bias, rest)
        for _ in range(self.steps):
            with torch.enable_grad():
                z = (start_z - weight_rate * gram @ summed + bias).requires_grad_()
                leaves = {name: p.detach().requires_grad_() for name, p in rest.items()}
                loss = maml.inner_loss_fn(self._rest({**leaves, **buffers}, z), support_y)
                grads = torch.autograd.grad(
                    loss, [z, *leaves.values()], allow_unused=True, materialize_grads=True
                )
            _check_finite(loss)
            summed = summed + grads[0]
            bias = bias - bias_rate * grads[0].sum(0)
            rest = {name: p - rates[name] * g for (name, p), g in zip(rest.items(), grads[1:])}
            yield at(summed, bias, rest)

    @staticmethod
    def applies(maml: MAML) -> bool:
        """Whether ``maml``'s model and rates allow the span form (see the class)."""
        return _unsupported(maml) is None

    def _rest(self, params: dict[str, Tensor], z: Tensor) -> Tensor:
        """The network after its first layer, on first-layer outputs ``z [N, H]``."""
        for name, module in list(self.maml.model.named_children())[1:]:
            prefix = f"{name}."
            own = {k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)}
            z = functional_call(module, own, (z,))
        return z

    def __repr__(self) -> str:
        return f"SupportSpan(MAML, steps={self.steps})"


def _unsupported(maml: MAML) -> str | None:
    """Why ``maml`` cannot adapt in the span form, or ``None`` when it can."""
    model = maml.model
    first = next(model.children(), None)
    if not isinstance(model, nn.Sequential) or not isinstance(first, nn.Linear):
        return (
            "maml.model must be an nn.Sequential starting with an nn.Linear, got "
            f"{type(model).__name__} starting with {type(first).__name__}"
        )
    if maml.learn_inner_lr != "none":
        return (
            f'maml.learn_inner_lr must be "none" (one fixed rate per tensor), got '
            f"{maml.learn_inner_lr!r}"
        )
    return None
