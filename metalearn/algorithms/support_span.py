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
        ``[T, Q, ...]``, the queries predicted after ``steps`` inner steps on each support set
        (the ``T`` tasks adapt together, each with its own weights)."""
        self.maml._check_inputs(support_x, support_y, query_x)
        with torch.no_grad():
            *_, outputs = self._trajectories(support_x, support_y, [query_x])
            return outputs(0).detach()

    def trajectory(
        self, support_x: Tensor, support_y: Tensor, inputs: Sequence[Tensor]
    ) -> Iterator[Callable[[int], Tensor]]:
        """One task (``support_x [S, F]``, ``support_y [S, ...]``): before the first inner step
        and after each of the ``steps`` steps, a function ``outputs(i)`` that gives the network's
        outputs on ``inputs[i]`` (``[N_i, F]``) at that point (call it under ``no_grad``)."""
        batched = self._trajectories(support_x[None], support_y[None], [x[None] for x in inputs])
        for outputs in batched:
            yield _first_task(outputs)

    def _trajectories(
        self, support_x: Tensor, support_y: Tensor, inputs: Sequence[Tensor]
    ) -> Iterator[Callable[[int], Tensor]]:
        """:meth:`trajectory` for ``T`` tasks at once: ``support_x [T, S, F]``, ``support_y
        [T, S, ...]``, ``inputs[i] [T, N_i, F]``; ``outputs(i)`` is ``[T, N_i, ...]``."""
        maml, first, tasks = self.maml, self._first, support_x.shape[0]
        params, rates = maml.params(), maml.rates()
        weight, bias = params[f"{first}.weight"], params[f"{first}.bias"].expand(tasks, -1)
        rest = {  # the later layers, one copy per task (a view until the first step)
            name: params[name] if tasks == 1 else params[name].expand(tasks, *params[name].shape)
            for name in rates
            if not name.startswith(f"{first}.")
        }
        buffers = {name: t for name, t in params.items() if name not in rates}
        weight_rate, bias_rate = rates[f"{first}.weight"], rates[f"{first}.bias"]
        support_t = support_x.transpose(1, 2)  # [T, F, S]
        gram, start_z = support_x @ support_t, support_x @ weight.T  # [T, S, S], [T, S, H]
        projected = [(x @ weight.T, x @ support_t) for x in inputs]  # [T, N, H], [T, N, S]
        summed = torch.zeros_like(start_z)  # A_t, the sum of dL/dz over the steps so far

        def one_network(own: dict[str, Tensor], z: Tensor) -> Tensor:
            return self._rest({**own, **buffers}, z)

        network: Callable[[dict[str, Tensor], Tensor], Tensor] = torch.func.vmap(one_network)
        losses: Callable[[Tensor, Tensor], Tensor] = torch.func.vmap(maml.inner_loss_fn)
        # One task: the same without vmap, whose overhead would double the cost of a step
        if tasks == 1:
            network = lambda own, z: one_network(own, z[0])[None]  # noqa: E731
            losses = lambda out, y: maml.inner_loss_fn(out[0], y[0])[None]  # noqa: E731

        def at(summed: Tensor, bias: Tensor, rest: dict[str, Tensor]) -> Callable[[int], Tensor]:
            def outputs(i: int) -> Tensor:
                start, cross = projected[i]
                return network(rest, start - weight_rate * cross @ summed + bias[:, None])

            return outputs

        yield at(summed, bias, rest)
        for _ in range(self.steps):
            with torch.enable_grad():
                z = (start_z - weight_rate * gram @ summed + bias[:, None]).requires_grad_()
                leaves = {name: p.detach().requires_grad_() for name, p in rest.items()}
                loss = losses(network(leaves, z), support_y)  # [T]
                grads = torch.autograd.grad(
                    loss.sum(), [z, *leaves.values()], allow_unused=True, materialize_grads=True
                )
            _check_finite(loss)
            summed = summed + grads[0]
            bias = bias - bias_rate * grads[0].sum(1)
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


def _first_task(outputs: Callable[[int], Tensor]) -> Callable[[int], Tensor]:
    return lambda i: outputs(i)[0]


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
