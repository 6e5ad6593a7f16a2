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

       i_t = σ(ĩ_t),  ĩ_t = W_I [h_t, θ_{t-1}, ĩ_{t-1}] + b_I,
       f_t = σ(f̃_t),  f̃_t = W_F [h_t, θ_{t-1}, f̃_{t-1}] + b_F

As the authors' code (``twitter/meta-learning-lstm``) runs it:

- Gradients and losses enter as constants (no second derivatives, as in the paper). One
  deviation: the gradient is that of the mean support loss, so ``i_t = α`` is SGD at rate ``α``;
  the official code divides it once more by the support size ``S``
  (``model/lstm/meta-learner-lstm.lua``, ``feval``: ``gradParameters:div(inputs:size(1))`` after a
  criterion that already averages), which would make the same gate a rate ``α / S`` and cap
  the rate at ``1 / S``.
- The gates read the previous gates' pre-activations, zero at the first step (``lstm-helper.lua``:
  ``fS[s] = fN``, before the sigmoid).
- Initialisation (``getMetaLearner``): every weight of both layers uniform in ``[-0.01, 0.01]``,
  ``b_I`` in ``[-5, -4]`` and ``b_F`` in ``[4, 5]``; here ``b_I = logit(init_lr)`` (``init_lr``
  0.01 gives -4.6) and ``b_F = init_forget_bias`` (4.5), fixed values inside those ranges. The
  untrained meta-learner is SGD at rate ``init_lr`` that also shrinks every parameter by a factor
  ``σ(b_F) ≈ 0.989`` a step.
- Batch norm, per episode: the learner's batch-norm layers normalise the support set with its own
  batch statistics at every step and keep running averages of them (momentum 0.9, from mean 0,
  variance 1, reset every episode: ``learner.reset()``, ``opt.BN_momentum = 0.9``); queries are
  normalised with batch statistics in meta-training (:meth:`meta_loss`, the code's ``training``
  mode) and with the support's running averages at test (:meth:`predict`, ``evaluate`` mode),
  so a test prediction depends on the support set and its own query alone.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn
from torch.func import functional_call, grad_and_value, replace_all_batch_norm_modules_, vmap

from metalearn.algorithms.meta_lstm import check_episode
from metalearn.checks import check_float, check_int, check_model_batch, check_model_device
from metalearn.models.batch_norm import EpisodeStatistics, Statistics

RUNNING_MOMENTUM = 0.9  # config/lstm/train-imagenet-1shot.lua: opt.BN_momentum
# predict adapts this many tasks at a time: the LSTM runs on T x n coordinates at once, and larger
# blocks run slower per task (the shipped 5-way 1-shot model, 2 threads: 0.18 s a task in fives or
# tens, 0.23 in 25s; 1 thread: 0.25 and 0.33); the results are the same
PREDICT_TASKS = 10


def preprocess(x: torch.Tensor, p: float = 10.0) -> torch.Tensor:
    """Andrychowicz et al.'s scaling: ``x [...]`` -> ``[..., 2]``.

    ``(log|x| / p, sign x)`` if ``|x| >= e^{-p}``, else ``(-1, e^p x)``: gradients spanning many
    orders of magnitude become inputs of order one.
    """
    big = x.abs() >= math.exp(-p)
    first = torch.where(big, x.abs().clamp_min(1e-30).log() / p, torch.full_like(x, -1.0))
    second = torch.where(big, torch.sign(x), math.exp(p) * x)
    return torch.stack([first, second], dim=-1)


def lstm_cell(
    x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None, cell: nn.LSTMCell
) -> tuple[torch.Tensor, torch.Tensor]:
    """``cell(x, state)`` (``x [N, input]``, ``h, c [N, hidden]``), by the same formula with the
    sigmoid taken over all four gates' pre-activations at once. Torch's CPU cell takes it on
    four strided slices: 3.5x slower forward on the 284,850 rows of ten tasks of the shipped
    learner, 2 threads (``benchmarks/lstm_meta_learner.py`` times the whole learner)."""
    if state is None:
        zeros = x.new_zeros(x.shape[0], cell.hidden_size)
        state = (zeros, zeros)
    h, c = state
    bias = cell.bias_ih + cell.bias_hh if cell.bias else x.new_zeros(4 * cell.hidden_size)
    gates = torch.addmm(bias, x, cell.weight_ih.T).addmm_(h, cell.weight_hh.T)
    i, f, _, o = torch.sigmoid(gates).chunk(4, dim=1)
    g = torch.tanh(gates[:, 2 * cell.hidden_size : 3 * cell.hidden_size])
    c = torch.addcmul(f * c, i, g)
    return o * torch.tanh(c), c


def running_average(running: Statistics | None, batch: Statistics) -> Statistics:
    """Batch norm's running statistics after one more batch (momentum 0.9; ``None``: the reset
    values, mean 0 and variance 1)."""
    if running is None:
        running = [(mean.new_zeros(()), var.new_ones(())) for mean, var in batch]
    m = RUNNING_MOMENTUM
    return [
        (m * mean + (1 - m) * old_mean, m * var + (1 - m) * old_var)
        for (mean, var), (old_mean, old_var) in zip(batch, running)
    ]


class LSTMMetaLearner(nn.Module):
    """A learned optimiser (coordinate-wise two-layer LSTM) plus a learned initialisation.

    Args:
        model: the learner, any ``nn.Module``; its parameters are the initial cell state
            ``c_0 = θ_0``.
        loss_fn: ``loss_fn(outputs [S, ...], targets [S, ...]) -> scalar`` (e.g. cross-entropy).
        inner_steps: updates the meta-learner applies on each task's support set.
        hidden_size: the coordinate-wise LSTM's state size (20 in the paper).
        init_lr: the input gate of the untrained meta-learner (``i ≈ init_lr``, SGD at rate
            ``init_lr`` on the mean support loss).
        init_forget_bias: ``b_F`` at initialisation (``f ≈ σ(b_F)``, 0.989 for the default 4.5).
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
        init_forget_bias: float = 4.5,
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
        self.model = replace_all_batch_norm_modules_(model)  # statistics: per episode, below
        self.loss_fn, self.inner_steps, self.n_way = loss_fn, inner_steps, n_way
        self.names = [name for name, _ in model.named_parameters()]
        self.shapes = [p.shape for _, p in model.named_parameters()]
        self.gradient_lstm = nn.LSTMCell(4, hidden_size)  # layer 1: P(∇), P(L) -> h_t
        self.input_gate = nn.Linear(hidden_size + 2, 1)  # layer 2: [h_t, θ_{t-1}, ĩ_{t-1}] -> ĩ_t
        self.forget_gate = nn.Linear(hidden_size + 2, 1)  # layer 2: [h_t, θ_{t-1}, f̃_{t-1}] -> f̃_t
        with torch.no_grad():
            for module in (self.gradient_lstm, self.input_gate, self.forget_gate):
                for parameter in module.parameters():
                    parameter.uniform_(-0.01, 0.01)
            self.input_gate.bias.fill_(math.log(init_lr / (1 - init_lr)))
            self.forget_gate.bias.fill_(init_forget_bias)
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

    def functional(
        self, flat: torch.Tensor, x: torch.Tensor, statistics: Statistics | None = None
    ) -> torch.Tensor:
        """The learner with parameters ``flat [n]`` on one task's inputs ``x [S, ...]``.

        Batch norm uses the statistics of ``x``, or the given ones (one ``(mean [C], var [C])``
        pair per batch-norm call, as :meth:`adapt_with_statistics` returns them).
        """
        return self._recorded(flat, x, statistics)[0]

    def _recorded(
        self, flat: torch.Tensor, x: torch.Tensor, statistics: Statistics | None = None
    ) -> tuple[torch.Tensor, Statistics]:
        """:meth:`functional`'s outputs and the batch-norm statistics it normalised with."""
        buffers = dict(self.model.named_buffers())
        with EpisodeStatistics(statistics) as mode:
            outputs = functional_call(self.model, (self.unflatten(flat), buffers), (x,))
        return outputs, mode.recorded

    def task_loss(self, flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``loss_fn`` of the learner with parameters ``flat [n]`` on ``x [S, ...]``, ``y [S]``."""
        return self.loss_fn(self.functional(flat, x), y)

    def _support_loss(
        self, flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, Statistics]:
        """The mean support loss and, as auxiliary output, the batch-norm statistics of ``x``."""
        outputs, statistics = self._recorded(flat, x)
        return self.loss_fn(outputs, y), [(m.detach(), v.detach()) for m, v in statistics]

    def adapt(
        self, support_x: torch.Tensor, support_y: torch.Tensor, steps: int | None = None
    ) -> torch.Tensor:
        """Run the learned optimiser on every task's support set; return ``θ_T [T, n]``.

        ``steps`` (an int >= 0, default ``inner_steps``; 0 returns the initialisation).
        Also stores, detached, in ``self.history``: ``input_gate`` and ``forget_gate``
        ``[steps, T, n]`` and ``support_loss [steps, T]`` (the loss *before* each update).
        """
        return self.adapt_with_statistics(support_x, support_y, steps)[0]

    def adapt_with_statistics(
        self, support_x: torch.Tensor, support_y: torch.Tensor, steps: int | None = None
    ) -> tuple[torch.Tensor, Statistics]:
        """:meth:`adapt`, and each task's running batch-norm statistics on its support set.

        Returns ``θ_T [T, n]`` and, per batch-norm call of the learner, ``(mean [T, C],
        var [T, C])``: the running averages (momentum 0.9, from 0 and 1) of the support's
        statistics at ``θ_0 ... θ_{T-1}``, or at ``θ_0`` alone when ``steps`` is 0.
        """
        steps = self.inner_steps if steps is None else check_int("steps", steps, minimum=0)
        num_tasks = support_y.shape[0]
        theta = self.initial_parameters().expand(num_tasks, -1)  # [T, n]
        gradient_and_loss = vmap(grad_and_value(self._support_loss, has_aux=True))
        trace: dict[str, list[torch.Tensor]] = {
            "input_gate": [],
            "forget_gate": [],
            "support_loss": [],
        }
        running: Statistics | None = None
        state = None
        input_logit = forget_logit = torch.zeros_like(theta)  # pre-activations ĩ_0 = f̃_0 = 0
        for _ in range(steps):
            gradient, (loss, statistics) = gradient_and_loss(theta.detach(), support_x, support_y)
            running = running_average(running, statistics)
            features = torch.cat(
                [preprocess(gradient), preprocess(loss[:, None].expand_as(gradient))], dim=-1
            )
            state = lstm_cell(features.flatten(0, 1), state, self.gradient_lstm)  # [T * n, ...]
            h = state[0].view(*theta.shape, -1)  # [T, n, hidden]
            input_logit, forget_logit = self._gate_logits(h, theta, input_logit, forget_logit)
            input_gate, forget_gate = torch.sigmoid(input_logit), torch.sigmoid(forget_logit)
            theta = forget_gate * theta - input_gate * gradient  # c_t = f ⊙ c_{t-1} + i ⊙ (−∇L)
            for key, value in (
                ("input_gate", input_gate),
                ("forget_gate", forget_gate),
                ("support_loss", loss),
            ):
                trace[key].append(value.detach())
        if running is None:  # no step: the support's statistics at θ_0
            with torch.no_grad():
                running = vmap(self._recorded)(theta, support_x)[1]
        shapes = (theta.shape, theta.shape, theta.shape[:1])  # [T, n], [T, n], [T] a step
        self.history = {
            key: torch.stack(values) if values else theta.detach().new_zeros(0, *shape)
            for (key, values), shape in zip(trace.items(), shapes)
        }
        return theta, running

    def _gate_logits(
        self,
        h: torch.Tensor,
        theta: torch.Tensor,
        input_logit: torch.Tensor,
        forget_logit: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``ĩ_t = W_I [h_t, θ_{t-1}, ĩ_{t-1}] + b_I`` and ``f̃_t`` alike, for ``h [T, n, hidden]``
        and ``theta``, ``input_logit``, ``forget_logit [T, n]``: both gates in one product with
        ``h``, without building ``[h, θ, ĩ]`` (two copies of ``[T, n, hidden + 2]`` a step)."""
        weight = torch.cat([self.input_gate.weight, self.forget_gate.weight])  # [2, hidden + 2]
        bias = torch.cat([self.input_gate.bias, self.forget_gate.bias])  # [2]
        hidden = h.shape[-1]
        previous = torch.stack([input_logit, forget_logit], dim=-1)  # [T, n, 2]
        logits = (
            h @ weight[:, :hidden].T
            + theta[..., None] * weight[:, hidden]
            + previous * weight[:, hidden + 1]
            + bias
        )
        return logits[..., 0], logits[..., 1]

    def predict(
        self, support_x: torch.Tensor, support_y: torch.Tensor, query_x: torch.Tensor
    ) -> torch.Tensor:
        """The adapted learners' outputs on the queries, ``[T, Q, ...]`` (detached); batch norm
        with each task's running statistics on its support set. Tasks are adapted
        :data:`PREDICT_TASKS` at a time; ``history`` covers all ``T``."""
        self._check(support_x, support_y, query_x)
        outputs, histories = [], []
        with torch.no_grad():
            for tasks in torch.arange(support_x.shape[0]).split(PREDICT_TASKS):
                theta, statistics = self.adapt_with_statistics(support_x[tasks], support_y[tasks])
                outputs.append(vmap(self.functional)(theta, query_x[tasks], statistics))
                histories.append(self.history)
        self.history = {key: torch.cat([h[key] for h in histories], 1) for key in histories[0]}
        return torch.cat(outputs)

    def meta_loss(
        self,
        support_x: torch.Tensor,
        support_y: torch.Tensor,
        query_x: torch.Tensor,
        query_y: torch.Tensor,
    ) -> torch.Tensor:
        """Mean over tasks of the query loss after the learned updates (a scalar); batch norm
        with the query batch's statistics, as in the official code's meta-training."""
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
