"""Model-agnostic meta-learning (MAML), first-order MAML and Meta-SGD, for any ``nn.Module``.

MAML (Finn et al., 2017) learns an initialisation ``theta`` such that a few steps of
gradient descent on a task's support set give parameters ``theta'`` that do well on
its query set. The inner loop (内循环) calls the network as a pure function of a parameter
dictionary (``functional_call``) and takes its gradient with ``torch.autograd.grad``
(``create_graph=True``), so that ordinary autograd then differentiates the whole inner loop:
the second-order meta-gradient, Hessian-vector products included.

Tasks are looped over in Python, or batched: every task gets its own copy of the parameters
(``[T, ...]``, an expanded view of ``theta``), the forward pass runs all tasks at once through
``torch.func.vmap``, and one ``autograd.grad`` of the summed task losses gives each copy its
own task's gradient (no task's loss depends on another task's copy). Only the forward pass
is vmapped; the backward passes are plain autograd on batched tensors, which is exact for the
network's own batch norm too (``benchmarks/maml_throughput.py`` checks every path against a
plain loop in float64).

Example::

    maml = MAML(MLP(1, [40, 40], 1), F.mse_loss, inner_lr=0.01)
    opt = torch.optim.Adam(maml.parameters(), lr=1e-3)
    loss = maml.meta_loss(*task_batch); opt.zero_grad(); loss.backward(); opt.step()

References: Finn et al. (2017) MAML; Li et al. (2017) Meta-SGD; Nichol et al. (2018)
on first-order approximations.
"""

from __future__ import annotations

import math
from typing import Callable, Literal, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from metalearn.checks import check_model_batch

LossFn = Callable[[Tensor, Tensor], Tensor]
RATE_CHOICES = ("none", "per_tensor", "per_element")
# Vmapped convolutions with per-task weights run as one grouped convolution: a gain while the
# tasks are small (per-operation overhead dominates), a loss once each task's convolutions are
# large (the grouped kernels are slower than the plain ones). Measured on 2 CPU threads with
# benchmarks/maml_throughput.py: the MAML paper's 5-way 1-shot Omniglot (largest activation of a
# task 62,720 numbers) runs 1.5-1.7x faster batched, 20-way 1-shot (250,880) between even and
# 1.3x depending on the run (so it stays looped), the max-pool Conv4 with 15 queries per class
# (3,763,200) three times slower.
VMAP_MAX_ACTIVATION = 200_000


class MAML(nn.Module):
    """MAML around ``model``; the meta-parameters are ``model``'s parameters (and learned rates).

    Args:
        model: any network; it is called as ``model(x)`` on one task's examples ``[S, ...]``.
        loss_fn: ``loss_fn(predictions, targets) -> scalar``, scored on the query set.
        inner_lr: step size of the inner SGD steps (the initial value when learned), > 0.
        inner_steps: inner steps during meta-training, and by default in :meth:`adapt`
            and :meth:`predict` (which take ``steps=`` to adapt longer at test time).
        first_order: drop the second-order terms (FOMAML): inner gradients are treated
            as constants, so no Hessian-vector products are computed.
        learn_inner_lr: ``"per_tensor"`` meta-learns one rate per parameter tensor,
            ``"per_element"`` one per parameter entry (Meta-SGD, Li et al. 2017).
        inner_loss_fn: loss of the inner steps on the support set (defaults to ``loss_fn``);
            e.g. a policy-gradient surrogate where ``support_y`` packs actions and advantages.
        adapt_only: names of the parameters the inner loop changes (e.g. the last layer's,
            ``["head.weight", "head.bias"]``: ANIL, Raghu et al. 2020); the others are used as
            they are in adaptation and still meta-learned. ``None`` (default) adapts all.
        batched: ``True`` batches tasks with ``vmap``, ``False`` loops over them, ``None``
            chooses by a measured rule (:meth:`batches_tasks`): vmap for networks without
            convolutions, and for convolutional ones while the largest activation of one task
            is at most :data:`VMAP_MAX_ACTIVATION` numbers. Both paths give the same numbers.

    Batch norm: layers must keep no running statistics (``track_running_stats=False``),
    so each task is normalised with its own batch statistics, in adaptation and in
    evaluation -- transductive, as in the MAML paper.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        inner_lr: float,
        inner_steps: int = 1,
        first_order: bool = False,
        *,
        learn_inner_lr: Literal["none", "per_tensor", "per_element"] = "none",
        inner_loss_fn: LossFn | None = None,
        adapt_only: Sequence[str] | None = None,
        batched: bool | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
        if not callable(loss_fn):
            raise ValueError("loss_fn must be callable as loss_fn(predictions, targets)")
        if inner_loss_fn is not None and not callable(inner_loss_fn):
            raise ValueError("inner_loss_fn must be callable or None")
        if next(model.parameters(), None) is None:
            raise ValueError("model has no parameters: there is nothing for MAML to adapt")
        if (
            isinstance(inner_lr, bool)
            or not isinstance(inner_lr, (int, float))
            or not math.isfinite(inner_lr)
            or not inner_lr > 0
        ):
            raise ValueError(f"inner_lr must be a finite number > 0, got {inner_lr!r}")
        if isinstance(inner_steps, bool) or not isinstance(inner_steps, int) or inner_steps < 1:
            raise ValueError(f"inner_steps must be an int >= 1, got {inner_steps!r}")
        if learn_inner_lr not in RATE_CHOICES:
            raise ValueError(
                f"learn_inner_lr must be one of {RATE_CHOICES}, got {learn_inner_lr!r}"
            )
        if batched not in (None, True, False):
            raise ValueError(f"batched must be True, False or None, got {batched!r}")
        for name, module in model.named_modules():
            if isinstance(module, nn.modules.batchnorm._NormBase) and module.track_running_stats:
                raise ValueError(
                    f"model has batch norm {name!r} with running statistics; MAML normalises "
                    "each task with its own batch statistics: build it with "
                    "track_running_stats=False (or call "
                    "torch.func.replace_all_batch_norm_modules_(model))"
                )
        self.model = model
        self.loss_fn = loss_fn
        self.inner_loss_fn = inner_loss_fn if inner_loss_fn is not None else loss_fn
        self.inner_lr = float(inner_lr)
        self.inner_steps = inner_steps
        self.first_order = first_order
        self.learn_inner_lr = learn_inner_lr
        self.batched = batched
        self._batched_now = False  # True while _over_tasks runs all tasks at once
        all_names = [name for name, _ in model.named_parameters()]
        if adapt_only is not None:
            unknown = sorted(set(adapt_only) - set(all_names))
            if isinstance(adapt_only, str) or unknown or not adapt_only:
                raise ValueError(
                    f"adapt_only must be a non-empty list of parameter names of model, got "
                    f"{adapt_only!r}"
                    + (f" (unknown: {unknown})" if unknown else "")
                    + f"; the model has {all_names}"
                )
        self._names = [n for n in all_names if adapt_only is None or n in set(adapt_only)]
        rates = [  # same dtype and device as the weights they scale
            torch.full_like(p.detach(), inner_lr)
            if learn_inner_lr == "per_element"
            else p.new_full((), inner_lr)
            for name, p in model.named_parameters()
            if name in self._names
        ]
        self.inner_lrs = nn.ParameterList(
            [nn.Parameter(r) for r in rates] if learn_inner_lr != "none" else []
        )

    # -- the model as a function of its parameters ---------------------------------------
    def params(self) -> dict[str, Tensor]:
        """The meta-learned initial parameters ``theta`` (plus the model's buffers), by name."""
        return {**dict(self.model.named_parameters()), **dict(self.model.named_buffers())}

    def functional(self, params: dict[str, Tensor], x: Tensor) -> Tensor:
        """``model(x)`` with ``params`` in place of the model's own: ``[N, ...] -> [N, ...]``."""
        return functional_call(self.model, params, (x,))

    def rates(self) -> dict[str, Tensor | float]:
        """The inner step size of each parameter tensor (a tensor when meta-learned)."""
        if self.learn_inner_lr == "none":
            return {name: self.inner_lr for name in self._names}
        return dict(zip(self._names, self.inner_lrs))

    def batches_tasks(self, support_x: Tensor, query_x: Tensor | None = None) -> bool:
        """Whether tasks with inputs ``support_x [T, S, ...]`` (and ``query_x [T, Q, ...]``) are
        batched with ``vmap`` (else looped).

        ``batched`` decides when set. Otherwise: a single task is looped (there is nothing to
        batch, and ``torch.func``'s transforms cost about twice a plain autograd step on FS-Mol's
        MLP, ``benchmarks/maml_single_task.py``); more tasks use vmap, unless the model has
        convolutions and one task's largest activation (the largest output of a convolution on
        the task's support or query examples, measured once per shape) exceeds
        :data:`VMAP_MAX_ACTIVATION`.
        """
        if self.batched is not None:
            return self.batched
        if support_x.shape[0] == 1:
            return False
        convolutions = [m for m in self.model.modules() if isinstance(m, nn.modules.conv._ConvNd)]
        if not convolutions:
            return True
        sizes = self.__dict__.setdefault("_activation_sizes", {})
        for x in (support_x, query_x):
            if x is None:
                continue
            shape = tuple(x.shape[1:])
            if shape not in sizes:
                sizes[shape] = _largest_output(self.model, convolutions, x[0])
            if sizes[shape] > VMAP_MAX_ACTIVATION:
                return False
        return True

    # -- the inner loop --------------------------------------------------------------------
    def _forward(self, params: dict[str, Tensor], x: Tensor) -> Tensor:
        """The network on one task (``x [N, ...]``) or, while batched, on every task at once
        (``x [T, N, ...]``, ``params`` with per-task copies ``[T, ...]`` where adapted)."""
        if not self._batched_now:
            return self.functional(params, x)
        dims = {name: 0 if name in self._names else None for name in params}
        return vmap(self.functional, in_dims=(dims, 0), randomness="different")(params, x)

    def _score(self, loss_fn: LossFn, predictions: Tensor, targets: Tensor) -> Tensor:
        """``loss_fn`` of one task (a scalar) or, while batched, of each task (``[T]``)."""
        return (
            vmap(loss_fn)(predictions, targets)
            if self._batched_now
            else loss_fn(predictions, targets)
        )

    def _adapt(self, params: dict[str, Tensor], support_x: Tensor, support_y: Tensor, steps: int):
        """``steps`` SGD steps from ``params``; returns (adapted params, inner losses: ``[steps]``
        for one task, ``[steps, T]`` while batched)."""
        weights = {name: params[name] for name in self._names}
        fixed = {name: t for name, t in params.items() if name not in weights}
        if self._batched_now:  # each task's own copy: an expanded view, no memory copied
            tasks = support_x.shape[0]
            weights = {name: w.expand(tasks, *w.shape) for name, w in weights.items()}

        def inner_loss(weights: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
            predictions = self._forward({**weights, **fixed}, support_x)
            losses = self._score(self.inner_loss_fn, predictions, support_y)
            # summed over tasks: each task's copy only sees its own task's loss
            return losses.sum(), losses.detach()

        rates, losses = self.rates(), []
        create_graph = torch.is_grad_enabled() and not self.first_order
        for _ in range(steps):
            grads, loss = _autograd_grad(inner_loss, weights, create_graph)
            if self.first_order:  # FOMAML: the inner gradient is a constant to the meta-gradient
                grads = {name: g.detach() for name, g in grads.items()}
            weights = {name: w - rates[name] * grads[name] for name, w in weights.items()}
            losses.append(loss)
        inner_losses = torch.stack(losses) if losses else support_x.new_zeros(0)
        return {**weights, **fixed}, inner_losses

    def _task_predict(self, params, support_x, support_y, query_x, steps: int):
        adapted, inner_losses = self._adapt(params, support_x, support_y, steps)
        return self._forward(adapted, query_x), inner_losses

    def _over_tasks(self, task_fn: Callable, *tasks: Tensor) -> Tensor:
        """``task_fn(params, *tasks)`` on all tasks at once (dim 0 of ``tasks``), or on each task
        in a loop with the results stacked; returns the first result, ``[T, ...]``, after
        checking that every inner loss is finite."""
        params = self.params()
        if self.batches_tasks(tasks[0], tasks[2]):  # support_x, query_x
            self._batched_now = True
            try:
                result, inner_losses = task_fn(params, *tasks)
            finally:
                self._batched_now = False
        else:
            outputs = [task_fn(params, *task) for task in zip(*tasks)]
            result = torch.stack([o[0] for o in outputs])
            inner_losses = torch.stack([o[1] for o in outputs])
        _check_finite(inner_losses)
        return result

    # -- public interface ------------------------------------------------------------------
    def adapt(
        self,
        support_x: Tensor,
        support_y: Tensor,
        steps: int | None = None,
        params: dict[str, Tensor] | None = None,
    ) -> dict[str, Tensor]:
        """Adapt to ONE task (``support_x [S, ...]``, ``support_y [S, ...]``, no task dimension).

        ``params`` starts the steps from other parameters than the meta-learned ones (for
        example from once-adapted ones, when reinforcement learning needs fresh data
        between steps). Returns the adapted parameters ``theta'`` by name (usable with
        :meth:`functional`), differentiable with respect to the meta-parameters when
        grad is enabled.
        """
        self._check_inputs(support_x[None], support_y[None], support_x[None], support_y[None])
        start = self.params() if params is None else {**self.params(), **params}
        adapted, inner_losses = self._adapt(start, support_x, support_y, self._steps(steps))
        _check_finite(inner_losses)
        return adapted

    def meta_loss(
        self,
        support_x: Tensor,
        support_y: Tensor,
        query_x: Tensor,
        query_y: Tensor,
        *,
        loss_fn: LossFn | None = None,
    ) -> Tensor:
        """Mean over tasks of the query loss after ``inner_steps`` adaptation steps (a scalar).

        Shapes: ``support_x [T, S, ...]``, ``support_y [T, S, ...]``, ``query_x [T, Q, ...]``,
        ``query_y [T, Q, ...]``. ``loss.backward()`` gives the meta-gradient. ``loss_fn``
        scores the adapted predictions instead of the learner's own ``loss_fn`` (e.g. TRPO's
        surrogate and KL of the adapted policies); the inner steps are unchanged.
        """
        self._check_inputs(support_x, support_y, query_x, query_y)
        score = self.loss_fn if loss_fn is None else loss_fn

        def task_loss(params, support_x, support_y, query_x, query_y):
            adapted, inner_losses = self._adapt(params, support_x, support_y, self.inner_steps)
            return self._score(score, self._forward(adapted, query_x), query_y), inner_losses

        return self._over_tasks(task_loss, support_x, support_y, query_x, query_y).mean()

    def predict(
        self, support_x: Tensor, support_y: Tensor, query_x: Tensor, steps: int | None = None
    ) -> Tensor:
        """Adapt on each task's support set (``steps``, default ``inner_steps``); ``[T, Q, ...]``
        predictions."""
        self._check_inputs(support_x, support_y, query_x)
        steps = self._steps(steps)

        def task_predict(params, support_x, support_y, query_x):
            return self._task_predict(params, support_x, support_y, query_x, steps)

        with torch.no_grad():  # the inner gradients are still computed (_autograd_grad)
            return self._over_tasks(task_predict, support_x, support_y, query_x).detach()

    def _check_inputs(self, support_x, support_y, query_x, query_y=None) -> None:
        """The entry points' checks, ``ValueError`` naming the tensor: task-batch shapes, one
        device (the model's), input dtypes, targets that fit the outputs without broadcasting
        (e.g. ``[T, S]`` targets for ``[T, S, 1]`` outputs) and labels in range."""
        cache = self.__dict__.setdefault("_output_shapes", {})
        check_model_batch(self.model, support_x, support_y, query_x, query_y, cache=cache)

    def _steps(self, steps: int | None) -> int:
        if steps is None:
            return self.inner_steps
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"steps must be an int >= 0 (or None for inner_steps), got {steps!r}")
        return steps


def _autograd_grad(
    loss_fn: Callable[[dict[str, Tensor]], tuple[Tensor, Tensor]],
    weights: dict[str, Tensor],
    create_graph: bool,
) -> tuple[dict[str, Tensor], Tensor]:
    """The gradient of ``loss_fn(weights) -> (loss, value)`` with respect to ``weights``, and
    ``value``, also under ``torch.no_grad()``; ``create_graph`` keeps the graph for second-order
    meta-gradients."""
    tracked = torch.is_grad_enabled()  # else even views of the parameters report requires_grad
    with torch.enable_grad():
        leaves = {
            n: w if tracked and w.requires_grad else w.detach().requires_grad_()
            for n, w in weights.items()
        }
        loss, value = loss_fn(leaves)
        grads = torch.autograd.grad(  # an unused weight gets a zero gradient, as with torch.func
            loss,
            list(leaves.values()),
            create_graph=create_graph,
            allow_unused=True,
            materialize_grads=True,
        )
    return dict(zip(leaves, grads)), value


def _largest_output(model: nn.Module, modules: Sequence[nn.Module], examples: Tensor) -> int:
    """The largest number of outputs of ``modules`` when ``model`` runs on one task's
    ``examples [S, ...]``."""
    sizes: list[int] = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: sizes.append(out.numel())) for m in modules
    ]
    try:
        with torch.no_grad():
            model(examples)
    finally:
        for hook in hooks:
            hook.remove()
    return max(sizes)


def _check_finite(inner_losses: Tensor) -> None:
    """Refuse to go on when an inner loss is NaN or infinite (training on it would be silent
    garbage)."""
    if not torch.isfinite(inner_losses).all():
        raise FloatingPointError(
            "an inner (support-set) loss is NaN or infinite; check the inputs or lower inner_lr"
        )
