"""Ravi & Larochelle's LSTM meta-learner: an LSTM whose cell state is the learner's parameters.

"Optimization as a model for few-shot learning" (Ravi & Larochelle, ICLR 2017)
noticed that the LSTM cell update

    c_t = f_t ⊙ c_{t-1} + i_t ⊙ c̃_t

*is* gradient descent when ``c_t = θ_t`` (the learner's parameters),
``c̃_t = -∇_θ L_t``, ``f_t = 1`` and ``i_t = α``. Learning the gates learns a
per-coordinate, per-step learning rate (``i_t``) and shrinkage (``f_t``); learning
``c_0`` learns the initialisation. The meta-learner is coordinate-wise (weights
shared over all the learner's parameters, as in Andrychowicz et al., 2016),
in two layers:

1. an ordinary LSTM (hidden size ~20) reads, per coordinate, the preprocessed
   gradient and loss;
2. a custom cell computes the gates from its output, the current parameter and
   the gate's previous value, and applies the update above:

       i_t = σ(W_I [h_t, θ_{t-1}, i_{t-1}] + b_I),   f_t = σ(W_F [h_t, θ_{t-1}, f_{t-1}] + b_F)

Gradients and losses enter as constants (detached: no second derivatives, as in
the paper). ``b_I = logit(init_lr)`` and a large ``b_F`` make the untrained
meta-learner plain SGD with rate ``init_lr``. Batch-norm layers of the learner
are switched to batch statistics (transductive, as in MAML).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn
from torch.func import functional_call, grad_and_value, replace_all_batch_norm_modules_, vmap

from metalearn.algorithms.meta_lstm import check_episode
from metalearn.checks import check_float, check_int, check_model_batch, check_model_device


def preprocess(x: torch.Tensor, p: float = 10.0) -> torch.Tensor:
    """Andrychowicz et al.'s scaling: ``x [...]`` -> ``[..., 2]``.

    ``(log|x| / p, sign x)`` if ``|x| >= e^{-p}``, else ``(-1, e^p x)``: gradients spanning many
    orders of magnitude become inputs of order one.
    """
    big = x.abs() >= math.exp(-p)
    first = torch.where(big, x.abs().clamp_min(1e-30).log() / p, torch.full_like(x, -1.0))
    second = torch.where(big, torch.sign(x), math.exp(p) * x)
    return torch.stack([first, second], dim=-1)


class LSTMMetaLearner(nn.Module):
    """A learned optimiser (coordinate-wise two-layer LSTM) plus a learned initialisation.

    Args:
        model: the learner, any ``nn.Module``; its parameters are the initial cell state
            ``c_0 = θ_0``.
        loss_fn: ``loss_fn(outputs [S, ...], targets [S, ...]) -> scalar`` (e.g. cross-entropy).
        inner_steps: updates the meta-learner applies on each task's support set.
        hidden_size: the coordinate-wise LSTM's state size (20 in the paper).
        init_lr: the SGD learning rate the untrained meta-learner imitates (``i ≈ init_lr``).
        init_forget_bias: ``b_F`` at initialisation (``f = σ(b_F) ≈ 1``).
        n_way: if given, labels are checked to lie in ``[0, n_way)``.

    Shapes: ``support_x [T, S, ...]``, ``support_y [T, S]``, ``query_x [T, Q, ...]``;
    :meth:`predict` returns the learner's outputs ``[T, Q, ...]``. Labels are integers
    ``>= 0`` that fit the learner's outputs (``0 .. C-1`` for ``C`` outputs); all tensors on the
    learner's device.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        inner_steps: int = 5,
        *,
        hidden_size: int = 20,
        init_lr: float = 0.01,
        init_forget_bias: float = 10.0,
        n_way: int | None = None,
    ) -> None:
        super().__init__()
        inner_steps = check_int("inner_steps", inner_steps, minimum=1)
        hidden_size = check_int("hidden_size", hidden_size, minimum=1)
        init_lr = check_float("init_lr", init_lr, minimum=0.0, maximum=1.0, strict=True)
        init_forget_bias = check_float("init_forget_bias", init_forget_bias)
        if n_way is not None:
            n_way = check_int("n_way", n_way, minimum=2)
        if not isinstance(model, nn.Module) or next(model.parameters(), None) is None:
            raise ValueError("model must be an nn.Module with parameters for the meta-learner")
        if not callable(loss_fn):
            raise ValueError("loss_fn must be callable as loss_fn(outputs, targets)")
        self.model = replace_all_batch_norm_modules_(model)
        self.loss_fn, self.inner_steps, self.n_way = loss_fn, inner_steps, n_way
        self.names = [name for name, _ in model.named_parameters()]
        self.shapes = [p.shape for _, p in model.named_parameters()]
        self.gradient_lstm = nn.LSTMCell(
            4, hidden_size
        )  # layer 1: (grad, loss) preprocessed -> h_t
        self.input_gate = nn.Linear(hidden_size + 2, 1)  # layer 2: [h_t, θ_{t-1}, i_{t-1}] -> i_t
        self.forget_gate = nn.Linear(hidden_size + 2, 1)  # layer 2: [h_t, θ_{t-1}, f_{t-1}] -> f_t
        with torch.no_grad():
            for gate, bias in (
                (self.input_gate, math.log(init_lr / (1 - init_lr))),
                (self.forget_gate, init_forget_bias),
            ):
                gate.weight.uniform_(-0.01, 0.01)
                gate.bias.fill_(bias)
        self.history: dict[str, torch.Tensor] = {}
        # the learner's own input check (e.g. LSTMClassifier.check_sequences), if it has one
        self.check_sequences = getattr(model, "check_sequences", None)

    @property
    def num_coordinates(self) -> int:
        """``n``, the number of learner parameters the meta-learner updates."""
        return sum(math.prod(shape) for shape in self.shapes)

    def unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """One task's parameter vector ``[n]`` -> the learner's parameter dict."""
        pieces = flat.split([math.prod(shape) for shape in self.shapes])
        return {
            name: piece.view(shape) for name, piece, shape in zip(self.names, pieces, self.shapes)
        }

    def initial_parameters(self) -> torch.Tensor:
        """``θ_0 = c_0``, the meta-learned initialisation, flattened: ``[n]``."""
        return torch.cat([p.flatten() for p in self.model.parameters()])

    def functional(self, flat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The learner with parameters ``flat [n]`` on one task's inputs ``x [S, ...]``."""
        buffers = dict(self.model.named_buffers())
        return functional_call(self.model, (self.unflatten(flat), buffers), (x,))

    def task_loss(self, flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(self.functional(flat, x), y)

    def adapt(
        self, support_x: torch.Tensor, support_y: torch.Tensor, steps: int | None = None
    ) -> torch.Tensor:
        """Run the learned optimiser on every task's support set; return ``θ_T [T, n]``.

        ``steps`` (an int >= 0, default ``inner_steps``; 0 returns the initialisation).
        Also stores, detached, in ``self.history``: ``input_gate`` and ``forget_gate``
        ``[steps, T, n]`` and ``support_loss [steps, T]`` (the loss *before* each update).
        """
        steps = self.inner_steps if steps is None else check_int("steps", steps, minimum=0)
        num_tasks = support_x.shape[0]
        theta = self.initial_parameters().expand(num_tasks, -1)  # [T, n]
        if steps == 0:
            empty = theta.detach().new_zeros(0, *theta.shape)
            self.history = {
                "input_gate": empty,
                "forget_gate": empty,
                "support_loss": empty[..., 0],
            }
            return theta
        gradient_and_loss = vmap(grad_and_value(self.task_loss))
        state = None
        input_prev = forget_prev = torch.zeros_like(theta)
        trace: dict[str, list[torch.Tensor]] = {
            "input_gate": [],
            "forget_gate": [],
            "support_loss": [],
        }
        for _ in range(steps):
            gradient, loss = gradient_and_loss(
                theta.detach(), support_x, support_y
            )  # constants: detached
            features = torch.cat(
                [preprocess(gradient), preprocess(loss[:, None].expand_as(gradient))], dim=-1
            )
            state = self.gradient_lstm(features.flatten(0, 1), state)  # coordinates are the batch
            h = state[0].view(*theta.shape, -1)  # [T, n, hidden]
            input_gate = torch.sigmoid(
                self.input_gate(torch.cat([h, theta[..., None], input_prev[..., None]], -1))
            )[..., 0]
            forget_gate = torch.sigmoid(
                self.forget_gate(torch.cat([h, theta[..., None], forget_prev[..., None]], -1))
            )[..., 0]
            theta = (
                forget_gate * theta - input_gate * gradient
            )  # c_t = f_t ⊙ c_{t-1} + i_t ⊙ (−∇L_t)
            input_prev, forget_prev = input_gate, forget_gate
            for key, value in (
                ("input_gate", input_gate),
                ("forget_gate", forget_gate),
                ("support_loss", loss),
            ):
                trace[key].append(value.detach())
        self.history = {key: torch.stack(values) for key, values in trace.items()}
        return theta

    def predict(
        self, support_x: torch.Tensor, support_y: torch.Tensor, query_x: torch.Tensor
    ) -> torch.Tensor:
        """The adapted learners' outputs on the queries, ``[T, Q, ...]`` (detached)."""
        self._check(support_x, support_y, query_x)
        with torch.no_grad():
            return vmap(self.functional)(self.adapt(support_x, support_y), query_x)

    def meta_loss(
        self,
        support_x: torch.Tensor,
        support_y: torch.Tensor,
        query_x: torch.Tensor,
        query_y: torch.Tensor,
    ) -> torch.Tensor:
        """Mean over tasks of the query loss after the learned updates (a scalar)."""
        self._check(support_x, support_y, query_x, query_y)
        theta = self.adapt(support_x, support_y)
        return vmap(self.task_loss)(theta, query_x, query_y).mean()

    def _check(self, support_x, support_y, query_x, query_y=None) -> None:
        """``ValueError`` naming the tensor: labels, shapes, one device, dtypes the learner takes
        and labels that fit its outputs."""
        check_episode(
            self.n_way, support_x, support_y, query_x, query_y, check_sequences=self.check_sequences
        )
        check_model_device(self.model, support_x=support_x, query_x=query_x)
        if self.check_sequences is None:  # the learner does not check its inputs itself
            cache = self.__dict__.setdefault("_output_shapes", {})
            check_model_batch(self.model, support_x, support_y, query_x, query_y, cache=cache)
