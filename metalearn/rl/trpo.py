"""TRPO as MAML-RL's meta-update, the way the MAML-RL code does it.

The reference (``cbfinn/maml_rl``, ``sandbox/rocky/tf/algos/maml_npo.py`` and
``conjugate_gradient_optimizer.py``) takes one trust-region step (Schulman et al., 2015) per
meta-iteration on the post-update surrogate

    L(theta) = -mean_tasks mean_t  pi_{theta'_i}(a_t | s_t) / pi_old'_i(a_t | s_t) * A_t,

where ``theta'_i`` is the adapted policy of task ``i`` (one inner step from ``theta``, so the
step differentiates through the adaptation) and ``pi_old'`` the adapted policy that sampled the
query trajectories, subject to ``mean_tasks KL(pi_old'_i || pi_{theta'_i}) <= max_kl``
(``step_size = 0.01``). The direction solves ``H x = g`` by 10 conjugate-gradient iterations,
``H`` the Hessian of the KL (products by double backward, plus ``1e-5 x``); the step is scaled to
the trust region's edge, then halved back (by 0.8, up to 15 times) until the surrogate improves
and the KL constraint holds, else no step is taken.

:class:`TRPO` is a ``torch.optim.Optimizer``, so ``meta_train``'s loop (progress, checkpoints,
resume) runs it unchanged: pass ``loss_of=trpo.surrogate``::

    trpo = TRPO(maml)
    train_loop(maml, trpo.surrogate, MAMLRollouts(maml, 20), steps, trpo, meta_batch=20)
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from metalearn.algorithms.maml import MAML
from metalearn.checks import check_float, check_int
from metalearn.core import TaskBatch
from metalearn.rl.policy_gradient import gaussian_log_prob, split_output


def ratio_surrogate(output: Tensor, targets: Tensor) -> Tensor:
    """``-sum(pi / pi_old * A * valid) / sum(valid)`` for ``output [..., 2 * act_dim]`` and
    ``targets [..., act_dim + 2 + 2 * act_dim]`` (actions, advantage, valid, old output)."""
    actions, advantages, valid, old = _unpack(output, targets)
    ratio = torch.exp(gaussian_log_prob(output, actions) - gaussian_log_prob(old, actions))
    return -(ratio * advantages * valid).sum() / valid.sum().clamp_min(1.0)


def gaussian_kl(output: Tensor, targets: Tensor) -> Tensor:
    """Mean over valid steps of ``KL(old || new)`` between diagonal Gaussians (a scalar); the
    old policy's output is packed in ``targets`` as in :func:`ratio_surrogate`."""
    _, _, valid, old = _unpack(output, targets)
    mean, log_std = split_output(output)
    old_mean, old_log_std = split_output(old)
    kl = (
        log_std
        - old_log_std
        + (torch.exp(2 * old_log_std) + (old_mean - mean) ** 2) / (2 * torch.exp(2 * log_std))
        - 0.5
    ).sum(dim=-1)
    return (kl * valid).sum() / valid.sum().clamp_min(1.0)


def _unpack(output: Tensor, targets: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    act_dim = output.shape[-1] // 2
    if targets.shape[-1] != 3 * act_dim + 2 or targets.shape[:-1] != output.shape[:-1]:
        raise ValueError(
            f"targets must have shape {(*output.shape[:-1], 3 * act_dim + 2)} (actions, "
            f"advantage, valid, old output), got {tuple(targets.shape)}"
        )
    return (
        targets[..., :act_dim],
        targets[..., act_dim],
        targets[..., act_dim + 1],
        targets[..., act_dim + 2 :],
    )


def conjugate_gradient(matvec: Callable[[Tensor], Tensor], b: Tensor, iters: int) -> Tensor:
    """Approximately solve ``A x = b`` for a symmetric positive definite ``A`` given by
    ``matvec``: ``iters`` conjugate-gradient iterations from ``x = 0`` (rllab's ``cg``)."""
    x, r = torch.zeros_like(b), b.clone()
    p, rr = r.clone(), r @ r
    for _ in range(iters):
        ap = matvec(p)
        alpha = rr / (p @ ap)
        x, r = x + alpha * p, r - alpha * ap
        rr_new = r @ r
        if rr_new < 1e-10:
            break
        p, rr = r + (rr_new / rr) * p, rr_new
    return x


class TRPO(torch.optim.Optimizer):
    """The trust-region meta-update of MAML-RL for the meta-parameters of ``maml``.

    Args:
        maml: the MAML learner around a Gaussian policy; its inner loop defines ``theta'``.
        max_kl: the trust region, mean KL between old and new post-update policies (0.01).
        cg_iters: conjugate-gradient iterations (10).
        damping: added to the KL Hessian, ``(H + damping I) x`` (1e-5).
        backtrack_ratio: step shrink factor of the line search (0.8).
        max_backtracks: line-search trials before giving up the step (15).

    ``surrogate(batch)`` (the loss to hand ``train_loop``) records the batch and the old
    post-update policy; ``step()`` then uses the gradient ``backward`` left in ``.grad``.
    After each step, ``last`` holds the surrogate before and after, the KL and the number
    of backtracks (``-1``: no step taken).
    """

    def __init__(
        self,
        maml: MAML,
        max_kl: float = 0.01,
        cg_iters: int = 10,
        damping: float = 1e-5,
        backtrack_ratio: float = 0.8,
        max_backtracks: int = 15,
    ) -> None:
        self.max_kl = check_float("max_kl", max_kl, minimum=0.0, strict=True)
        self.cg_iters = check_int("cg_iters", cg_iters, minimum=1)
        self.damping = check_float("damping", damping, minimum=0.0)
        self.backtrack_ratio = check_float(
            "backtrack_ratio", backtrack_ratio, minimum=0.0, maximum=1.0, strict=True
        )
        self.max_backtracks = check_int("max_backtracks", max_backtracks, minimum=1)
        super().__init__(maml.parameters(), {})
        self.maml = maml
        self.last: dict[str, float] = {}
        self._batch: tuple[Tensor, Tensor, Tensor, Tensor] | None = None
        self._before = 0.0  # the surrogate at the current parameters, set by surrogate()

    def surrogate(self, batch: TaskBatch) -> Tensor:
        """The post-update surrogate on ``batch``, whose gradient at the current parameters is
        the meta-gradient of MAML-RL; remembers ``batch`` for :meth:`step`."""
        with torch.no_grad():  # the policies that sampled the query trajectories
            old = self.maml.predict(batch.support_x, batch.support_y, batch.query_x)
        targets = torch.cat([batch.query_y, old], dim=-1)
        self._batch = (batch.support_x, batch.support_y, batch.query_x, targets)
        loss = self._post_update(ratio_surrogate)
        self._before = loss.item()  # the line search's reference: no second evaluation
        return loss

    def _post_update(self, loss_fn: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
        """``loss_fn`` of the adapted policies on the remembered batch, mean over tasks."""
        assert self._batch is not None
        return self.maml.meta_loss(*self._batch, loss_fn=loss_fn)

    def step(self, closure: None = None) -> None:  # type: ignore[override]
        if self._batch is None:
            raise RuntimeError("TRPO.step() needs surrogate(batch) and backward() first")
        params = [p for group in self.param_groups for p in group["params"]]
        gradient = torch.cat([_flat(p.grad, p) for p in params])
        kl_gradient = torch.autograd.grad(self._post_update(gaussian_kl), params, create_graph=True)
        flat_kl_gradient = torch.cat([g.reshape(-1) for g in kl_gradient])

        def hessian_times(v: Tensor) -> Tensor:
            hv = torch.autograd.grad(flat_kl_gradient @ v, params, retain_graph=True)
            return torch.cat([h.reshape(-1) for h in hv]) + self.damping * v

        direction = conjugate_gradient(hessian_times, gradient, self.cg_iters)
        curvature = direction @ hessian_times(direction)
        full_step = torch.sqrt(2 * self.max_kl / (curvature + 1e-8)) * direction
        start = torch.cat([p.detach().reshape(-1) for p in params])
        with torch.no_grad():
            before = self._before
            self.last = {"surrogate": before, "after": before, "kl": 0.0, "backtracks": -1}
            for k in range(self.max_backtracks):
                _assign(params, start - self.backtrack_ratio**k * full_step)
                after = self._post_update(ratio_surrogate).item()
                kl = self._post_update(gaussian_kl).item()
                if after < before and kl <= self.max_kl:
                    self.last = {"surrogate": before, "after": after, "kl": kl, "backtracks": k}
                    break
            else:
                _assign(params, start)
        self._batch = None


def _flat(grad: Tensor | None, param: Tensor) -> Tensor:
    return torch.zeros_like(param).reshape(-1) if grad is None else grad.reshape(-1)


def _assign(params: list[Tensor], flat: Tensor) -> None:
    offset = 0
    for p in params:
        p.copy_(flat[offset : offset + p.numel()].view_as(p))
        offset += p.numel()
