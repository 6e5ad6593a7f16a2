"""Single-task baselines: a scikit-learn classifier trained from scratch on each support set.

No meta-learning at all: for every task a fresh copy of the estimator (``sklearn.base.clone``)
is fitted on the support set alone and predicts the query set. FS-Mol's random-forest and
kNN baselines are of this kind (they also grid-search hyperparameters on each support set
by cross-validation; pass ``param_grid`` to do the same).

Example::

    forest = SklearnLearner(RandomForestClassifier(n_estimators=100), seed=0)
    log_probs = forest.predict(support_x, support_y, query_x)   # [T, Q, C]
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from metalearn.checks import check_int, check_labels, check_seed
from metalearn.core import check_task_batch

PROBABILITY_FLOOR = 1e-6  # keeps log-probabilities finite where a forest says exactly 0


class SklearnLearner:
    """Follows the learner protocol with any scikit-learn classifier that has ``predict_proba``.

    Args:
        estimator: an unfitted classifier; it is cloned afresh for every task.
        param_grid: if given, ``GridSearchCV(estimator, param_grid, cv=cv)`` picks its settings
            on each support set (FS-Mol's single-task protocol); grid values that need more
            neighbours than the fold has (``n_neighbors``) are dropped.
        cv: folds of that grid search.
        seed: ``random_state`` given to estimators that take one, so results repeat.
        num_classes: classes ``0 .. C-1`` (the output's last dimension).

    Shapes: ``support_x [T, S, ...]`` (flattened to features per example), ``support_y [T, S]``
    integer labels in ``0 .. num_classes - 1`` (``-1`` is refused, not read as the last class),
    ``query_x [T, Q, ...]``; all finite.
    """

    def __init__(
        self,
        estimator: Any,
        param_grid: Mapping[str, list] | None = None,
        cv: int = 3,
        seed: int | None = 0,
        num_classes: int = 2,
    ) -> None:
        if not hasattr(estimator, "predict_proba"):
            raise ValueError(f"estimator must have predict_proba, got {type(estimator).__name__}")
        cv = check_int("cv", cv, minimum=2)
        num_classes = check_int("num_classes", num_classes, minimum=2)
        if seed is not None:
            seed = check_seed("seed", seed)
        self.estimator, self.param_grid, self.cv = estimator, param_grid, cv
        self.seed, self.num_classes = seed, num_classes

    def fit(self, support_x: np.ndarray, support_y: np.ndarray) -> Any:
        """A fresh estimator fitted on one task's ``support_x [S, F]``, ``support_y [S]``."""
        # scikit-learn is optional (metalearn[chem]): imported when used
        from sklearn.base import clone
        from sklearn.model_selection import GridSearchCV

        model = clone(self.estimator)
        if self.seed is not None and "random_state" in model.get_params():
            model.set_params(random_state=self.seed)
        if self.param_grid:
            grid = dict(self.param_grid)
            if "n_neighbors" in grid:  # a training fold has about S * (cv - 1) / cv examples
                fold = len(support_y) * (self.cv - 1) // self.cv
                grid["n_neighbors"] = [k for k in grid["n_neighbors"] if k <= fold] or [1]
            return GridSearchCV(model, grid, cv=self.cv).fit(support_x, support_y).best_estimator_
        return model.fit(support_x, support_y)

    def predict(
        self, support_x: torch.Tensor, support_y: torch.Tensor, query_x: torch.Tensor
    ) -> torch.Tensor:
        """Per task, fit on the support set; return query log-probabilities ``[T, Q, C]``
        (float32, on the device of ``support_x``; the fitting itself runs on the CPU)."""
        from threadpoolctl import threadpool_limits  # installed with scikit-learn

        check_task_batch(support_x, support_y, query_x)
        check_labels(support_y, "support_y", self.num_classes, shape=support_x.shape[:2])
        for name, x in (("support_x", support_x), ("query_x", query_x)):
            if not torch.isfinite(x).all():
                raise ValueError(f"{name} holds NaN or infinite values")
        outputs = []
        # tiny fits: thread pools cost more than they give (measured 7x on 2 cores)
        with threadpool_limits(1):
            for sx, sy, qx in zip(
                support_x.cpu().numpy(), support_y.cpu().numpy(), query_x.cpu().numpy()
            ):
                model = self.fit(sx.reshape(len(sx), -1), sy)
                proba = np.zeros((len(qx), self.num_classes), dtype=np.float64)
                proba[:, model.classes_.astype(int)] = model.predict_proba(qx.reshape(len(qx), -1))
                outputs.append(np.log(np.clip(proba, PROBABILITY_FLOOR, 1.0)))
        return torch.from_numpy(np.stack(outputs)).float().to(support_x.device)
