"""Per-task early stopping at test time, as FS-Mol fine-tunes its MAML (Stanley et al., 2021).

FS-Mol does not give its MAML a fixed number of test-time steps. For each test task
(``fs_mol/maml_test.py`` -> ``eval_model_by_finetuning_on_task`` in ``fs_mol/utils/maml_utils.py``)
it holds out a fifth of the support set (``valid_size_or_ratio=0.2``: ``int(0.2 * S)``
molecules), fine-tunes on the rest for up to ``max_num_epochs=50`` epochs (one full-batch step
each, for support sets this small), measures the loss on the held-out molecules before the first
step and after every step, keeps the parameters with the lowest held-out loss, and stops once
``patience=10`` steps in a row brought no improvement. The kept parameters -- fitted on four
fifths of the support set -- predict the queries.

:class:`EarlyStopped` does the same with a :class:`~metalearn.algorithms.maml.MAML` learner's
inner step, plain SGD at its ``inner_lr`` on its ``inner_loss_fn``, as FS-Mol's fine-tuning of a
MAML checkpoint runs the inner loop's own optimiser (``load_model_for_eval`` keeps the
checkpoint's ``model_params``: ``"optimizer": "sgd"`` at the inner rates of
``MAML_MODEL_DEFAULT_HYPER_PARAMS`` in ``fs_mol/maml_train.py``), and its ``loss_fn`` as the
held-out loss (FS-Mol's ``validate_on_data_iterable`` with ``metric_to_use="loss"``). For a
network whose first layer is linear the steps are computed in the span of the fitted inputs
(:class:`~metalearn.algorithms.SupportSpan`): the same steps, faster.
"""

from __future__ import annotations

import math
from typing import Callable, Iterator

import numpy as np
import torch
from torch import Tensor

from metalearn.algorithms.maml import MAML
from metalearn.algorithms.support_span import SupportSpan
from metalearn.checks import check_float, check_int, check_seed


class EarlyStopped:
    """``maml`` adapted to each task with FS-Mol's per-task early stopping.

    Args:
        maml: the meta-trained learner; its ``inner_lr``, ``inner_loss_fn`` and ``loss_fn`` are
            used.
        max_steps: the most inner steps per task (FS-Mol: 50 epochs).
        patience: stop after this many steps without a lower held-out loss (FS-Mol: 10).
        valid_fraction: the fraction of the support set held out, ``int(valid_fraction * S)``
            examples, split per class in proportion (FS-Mol: 0.2).
        seed: seeds the held-out draw (the same support set, the same split).

    ``steps_taken`` lists the step count kept for every task predicted so far, in order (clear
    it to count afresh).
    """

    def __init__(
        self,
        maml: MAML,
        max_steps: int = 50,
        patience: int = 10,
        valid_fraction: float = 0.2,
        seed: int = 0,
    ) -> None:
        if not isinstance(maml, MAML):
            raise ValueError(f"maml must be a metalearn MAML, got {type(maml).__name__}")
        self.maml = maml
        self.max_steps = check_int("max_steps", max_steps, minimum=1)
        self.patience = check_int("patience", patience, minimum=1)
        self.valid_fraction = check_float(
            "valid_fraction", valid_fraction, minimum=0, maximum=1, strict=True
        )
        self.seed = check_seed("seed", seed)
        self.steps_taken: list[int] = []
        # the same steps in the span of the fitted inputs, where the network allows it
        self._span = SupportSpan(maml, self.max_steps) if SupportSpan.applies(maml) else None

    def split(self, support_y: Tensor) -> tuple[Tensor, Tensor]:
        """Indices ``(fit [S - V], held_out [V])`` of one task's support labels ``[S]`` (class
        labels), ``V = int(valid_fraction * S)``; each class keeps at least one example to fit."""
        labels = support_y.reshape(-1).cpu().numpy()
        size = labels.shape[0]
        held = int(self.valid_fraction * size)
        if held < 1 or held >= size:
            raise ValueError(
                f"valid_fraction={self.valid_fraction} holds out {held} of a support set of "
                f"{size}: needs at least 1 held out and 1 left to fit"
            )
        rng = np.random.default_rng(self.seed)
        classes, counts = np.unique(labels, return_counts=True)
        wanted = np.minimum(np.round(held * counts / size).astype(int), counts - 1)
        while wanted.sum() < held:  # rounding left some short: fill from the largest classes
            room = np.flatnonzero(wanted < counts - 1)
            if room.size == 0:
                break
            wanted[room[np.argmax((counts - wanted)[room])]] += 1
        held_out = [
            rng.permutation(np.flatnonzero(labels == c))[:n] for c, n in zip(classes, wanted)
        ]
        chosen = np.concatenate(held_out)
        fit = np.setdiff1d(np.arange(size), chosen)
        device = support_y.device
        return torch.as_tensor(fit, device=device), torch.as_tensor(np.sort(chosen), device=device)

    def predict(self, support_x: Tensor, support_y: Tensor, query_x: Tensor) -> Tensor:
        """``support_x [T, S, ...]``, ``support_y [T, S, ...]``, ``query_x [T, Q, ...]`` ->
        ``[T, Q, ...]``: each task's queries predicted by the parameters with the lowest
        held-out loss."""
        self.maml._check_inputs(support_x, support_y, query_x)
        predictions = []
        with torch.no_grad():
            for task_x, task_y, task_query in zip(support_x, support_y, query_x):
                fit, held = self.split(task_y)
                predictions.append(
                    self._best(task_x[fit], task_y[fit], task_x[held], task_y[held], task_query)
                )
        return torch.stack(predictions)

    def _best(
        self, fit_x: Tensor, fit_y: Tensor, held_x: Tensor, held_y: Tensor, query_x: Tensor
    ) -> Tensor:
        """The queries' outputs at the step with the lowest held-out loss along the inner steps
        on ``fit``, stopping after ``patience`` steps without a lower one."""
        if self._span is not None:
            trajectory = self._span.trajectory(fit_x, fit_y, [held_x, query_x])
        else:
            trajectory = self._trajectory(fit_x, fit_y, [held_x, query_x])
        best, best_loss, best_step, since_best = None, math.inf, 0, 0
        for step, outputs in enumerate(trajectory):
            loss = float(self.maml.loss_fn(outputs(0), held_y))
            if loss < best_loss:
                best, best_loss, best_step, since_best = outputs, loss, step, 0
            else:
                since_best += 1
                if since_best >= self.patience:
                    break
        self.steps_taken.append(best_step)
        assert best is not None, "the held-out loss is NaN from the start"
        return best(1)

    def _trajectory(
        self, fit_x: Tensor, fit_y: Tensor, inputs: list[Tensor]
    ) -> Iterator[Callable[[int], Tensor]]:
        """Before the first step and after each of ``max_steps`` steps of ``maml.adapt``, a
        function ``outputs(i)``: the network's outputs on ``inputs[i]`` at that point."""
        maml = self.maml

        def at(params: dict[str, Tensor]) -> Callable[[int], Tensor]:
            return lambda i: maml.functional(params, inputs[i])

        params = maml.params()
        yield at(params)
        for _ in range(self.max_steps):
            params = maml.adapt(fit_x, fit_y, steps=1, params=params)
            yield at(params)

    def __repr__(self) -> str:
        return (
            f"EarlyStopped(MAML, max_steps={self.max_steps}, patience={self.patience}, "
            f"valid_fraction={self.valid_fraction})"
        )
