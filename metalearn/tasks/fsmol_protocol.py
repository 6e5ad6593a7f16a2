"""FS-Mol's evaluation protocol (Stanley et al., 2021), for any few-shot learner.

For each test assay and each support size ``S`` in 16, 32, 64, 128: draw a
**stratified** support set of ``S`` molecules (the assay's active fraction is kept),
use *all* the remaining molecules as the query set, and score the query predictions
by

    ΔAUPRC = AUPRC - (fraction of actives in the query),

so a constant (or random) predictor scores about 0 and a perfect one ``1 - fraction``.
Each assay is drawn ``num_draws`` times with seeds ``seed, seed + 1, ...``; a draw the
assay cannot provide -- fewer than 2 molecules of a class, or a support or query set
without both classes -- is skipped and counted, as FS-Mol's ``eval_model`` does. An
assay's score is the mean over its draws; the reported number is the mean over assays.

Assays differ in size, so an episode is one assay: a :class:`TaskBatch` with ``T = 1``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch

from metalearn.algorithms.base import FewShotLearner
from metalearn.evaluate import Summary, summarize
from metalearn.progress import Progress
from metalearn.tasks.batch import TaskBatch

SUPPORT_SIZES = (16, 32, 64, 128)

# Mean ΔAUPRC over FS-Mol's 157 test assays, from FS-Mol's baseline summaries (trained on
# 4,938 assays).
PUBLISHED_DELTA_AUPRC: dict[str, dict[int, float]] = {
    "ProtoNet (GNN+ECFP)": {16: 0.211, 32: 0.247, 64: 0.276, 128: 0.306},
    "GNN-MAML": {16: 0.165, 32: 0.172, 64: 0.178, 128: 0.197},
    "random forest": {16: 0.098, 32: 0.130, 64: 0.168, 128: 0.218},
    "kNN": {16: 0.056, 32: 0.080, 64: 0.107, 128: 0.144},
}


@dataclass(frozen=True)
class MoleculeTask:
    """One featurised assay: ``x [n, F]`` (uint8 fingerprints or float32 features), ``y [n]``
    int64 in {0, 1}."""

    name: str
    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return self.y.shape[0]

    @property
    def active_fraction(self) -> float:
        return float(self.y.double().mean())

    def episode(self, support_idx: np.ndarray, query_idx: np.ndarray) -> TaskBatch:
        """The task batch (``T = 1``): ``support_x [1, S, F]`` float32, ``support_y [1, S]``
        int64, and the query."""
        support, query = torch.as_tensor(support_idx), torch.as_tensor(query_idx)
        return TaskBatch(
            self.x[support].float()[None],
            self.y[support][None],
            self.x[query].float()[None],
            self.y[query][None],
        )


class SamplingError(ValueError):
    """The assay cannot provide the requested stratified split; FS-Mol skips such a draw."""


def stratified_split(
    labels: np.ndarray | torch.Tensor, support_size: int, seed: int, query_size: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a stratified support set of ``support_size`` and a disjoint query set.

    Args:
        labels: ``[n]`` binary labels of the assay.
        support_size: molecules in the support set (FS-Mol: 16, 32, 64 or 128).
        seed: the draw's seed (same seed, same split).
        query_size: molecules in the query set; ``None`` takes all the others (FS-Mol's test
            protocol).

    Raises:
        ValueError: ``support_size`` or ``query_size`` is not a positive int.
        SamplingError (a ValueError): the assay is too small for ``support_size``
            (+ ``query_size``), has fewer than 2 molecules of a class, or the draw leaves a fold
            without both classes.
    """
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    _check_size("support_size", support_size)
    if query_size is not None:
        _check_size("query_size", query_size, "or None")
    if labels.size and (labels.min() < 0 or labels.max() > 1):
        raise ValueError(f"labels must be 0 or 1, got values in {labels.min()}..{labels.max()}")
    counts = np.bincount(labels, minlength=2)
    support_actives, query_actives, wanted_query = fold_sizes(
        int(counts[0]), int(counts[1]), support_size, query_size
    )
    rng = np.random.default_rng(seed)
    actives, inactives = (
        rng.permutation(np.flatnonzero(labels == 1)),
        rng.permutation(np.flatnonzero(labels == 0)),
    )
    support_inactives = support_size - support_actives
    support_idx = np.concatenate([actives[:support_actives], inactives[:support_inactives]])
    query_idx = np.concatenate(
        [
            actives[support_actives : support_actives + query_actives],
            inactives[support_inactives : support_inactives + wanted_query - query_actives],
        ]
    )
    support_idx, query_idx = rng.permutation(support_idx), rng.permutation(query_idx)
    return support_idx, query_idx


def _check_size(name: str, value: object, alternative: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 2:
        raise ValueError(
            f"{name} must be an int >= 2{' ' + alternative if alternative else ''}, got {value!r}"
        )


def fold_sizes(
    inactives: int, actives: int, support_size: int, query_size: int | None = None
) -> tuple[int, int, int]:
    """How many actives the support and query sets of a stratified split get, and the query size:
    ``(support_actives, query_actives, query_size)``.

    Whether an assay can be split depends only on its class counts, never on the draw's seed:
    so feasibility is decided here, up front, for every seed at once.

    Raises:
        SamplingError (a ValueError): no split exists -- the assay is too small, has fewer than 2
            molecules of a class, a fold would lack a class, or a class has too few molecules for
            both folds; the message gives the sizes.
    """
    n = inactives + actives
    wanted_query = n - support_size if query_size is None else query_size
    if support_size + max(wanted_query, 2) > n:
        raise SamplingError(
            f"support_size={support_size} (+ query_size={wanted_query}) is too large for an "
            f"assay of {n} molecules: the query set needs at least 2"
        )
    if min(actives, inactives) < 2:
        raise SamplingError(
            f"the assay has {actives} actives and {inactives} inactives; "
            "a stratified split needs 2 of each"
        )
    # Each fold gets the assay's active fraction, rounded (what sklearn's StratifiedShuffleSplit,
    # used by FS-Mol, does up to tie-breaking; numpy here because it is ~100x faster for
    # meta-training batches).
    support_actives = round(support_size * actives / n)
    query_actives = (
        actives - support_actives if query_size is None else round(query_size * actives / n)
    )
    for fold, size, fold_actives in (
        ("support", support_size, support_actives),
        ("query", wanted_query, query_actives),
    ):
        if not 0 < fold_actives < size:
            raise SamplingError(
                f"the {fold} set of {size} would hold {fold_actives} actives; it needs both classes"
            )
    if (
        support_actives + query_actives > actives
        or support_size - support_actives + wanted_query - query_actives > inactives
    ):
        raise SamplingError(
            f"the assay has too few molecules of a class for query_size={wanted_query}: "
            f"{actives} actives and {inactives} inactives, the folds need "
            f"{support_actives + query_actives} and "
            f"{support_size + wanted_query - support_actives - query_actives}"
        )
    return support_actives, query_actives, wanted_query


class AssaySampler:
    """Meta-training batches from assays: ``T`` assays, each with a stratified support of ``S``
    and query of ``Q``.

    Calling it returns a :class:`TaskBatch` with ``support_x [T, S, F]``, ``support_y [T, S]``,
    ``query_x [T, Q, F]``, ``query_y [T, Q]``. Only assays that admit a stratified split of these
    sizes are drawn from (:func:`fold_sizes`, decided up front from the class counts, so every
    split succeeds and a call never loops); ``tasks`` lists them, ``skipped`` maps the others'
    names to the reason.

    Raises:
        ValueError: ``support_size`` or ``query_size`` is not an int >= 2, ``tasks_per_batch``
            not an int >= 1, or no assay admits a split -- the message then names the assays
            (up to five), their sizes and class counts, and the sizes asked for.
    """

    def __init__(
        self,
        tasks: Sequence[MoleculeTask],
        support_size: int,
        query_size: int,
        tasks_per_batch: int,
        seed: int = 0,
    ) -> None:
        _check_size("support_size", support_size)
        _check_size("query_size", query_size)
        if (
            isinstance(tasks_per_batch, bool)
            or not isinstance(tasks_per_batch, int)
            or tasks_per_batch < 1
        ):
            raise ValueError(f"tasks_per_batch must be an int >= 1, got {tasks_per_batch!r}")
        self.tasks: list[MoleculeTask] = []
        self.skipped: dict[str, str] = {}
        # The draws run over the assays of the right size, as they always did (so seeded
        # batches stay the same); an assay among them that admits no split is passed over.
        self._pool: list[tuple[MoleculeTask, bool]] = []
        counts: dict[str, tuple[int, int, int]] = {}
        for task in tasks:
            y = task.y.detach().cpu().numpy().astype(np.int64).reshape(-1)
            if y.size and (y.min() < 0 or y.max() > 1):
                raise ValueError(f"tasks: assay {task.name!r} has labels outside 0/1")
            inactives, actives = (int(c) for c in np.bincount(y, minlength=2))
            counts[task.name] = (len(y), actives, inactives)
            try:
                fold_sizes(inactives, actives, support_size, query_size)
            except SamplingError as error:
                self.skipped[task.name] = str(error)
                if len(y) >= support_size + query_size and min(actives, inactives) >= 2:
                    self._pool.append((task, False))
                continue
            self.tasks.append(task)
            self._pool.append((task, True))
        if not self.tasks:
            shown = "; ".join(
                f"{name!r} ({n} molecules, {a} actives, {i} inactives): {self.skipped[name]}"
                for name, (n, a, i) in list(counts.items())[:5]
            )
            raise ValueError(
                f"tasks: no assay admits a stratified split with support_size={support_size} and "
                f"query_size={query_size} ({support_size + query_size} molecules, both classes "
                f"in each fold), so no batch could ever be drawn. "
                + (f"The {len(counts)} assay(s): {shown}" if counts else "tasks is empty")
                + ("; ..." if len(counts) > 5 else "")
            )
        self.support_size, self.query_size, self.tasks_per_batch = (
            support_size,
            query_size,
            tasks_per_batch,
        )
        self.rng = np.random.default_rng(seed)

    def __call__(self) -> TaskBatch:
        episodes = []
        while len(episodes) < self.tasks_per_batch:  # ends: the pool holds a feasible assay
            task, feasible = self._pool[self.rng.integers(len(self._pool))]
            seed = int(self.rng.integers(2**31))
            if feasible:  # decided up front: this split always succeeds
                split = stratified_split(task.y, self.support_size, seed, self.query_size)
                episodes.append(task.episode(*split))
        return TaskBatch(*(torch.cat(parts) for parts in zip(*episodes)))


def delta_auprc(scores: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor) -> float:
    """AUPRC (sklearn's ``average_precision_score``) minus the fraction of actives; ``[Q]`` each."""
    from sklearn.metrics import (
        average_precision_score,
    )  # scikit-learn is optional (metalearn[chem])

    labels = np.asarray(torch.as_tensor(labels).cpu()).reshape(-1)
    scores = np.asarray(torch.as_tensor(scores, dtype=torch.float64).cpu()).reshape(-1)
    if labels.shape != scores.shape:
        raise ValueError(f"scores has {scores.shape[0]} entries but labels has {labels.shape[0]}")
    if not 0 < labels.sum() < labels.shape[0]:
        raise ValueError("labels must contain both classes: ΔAUPRC is undefined otherwise")
    return float(average_precision_score(labels, scores) - labels.mean())


def active_scores(predictions: torch.Tensor) -> torch.Tensor:
    """A score per query molecule, higher = more likely active: ``[T, Q]``.

    Accepts ``[T, Q]`` or ``[T, Q, 1]`` (one logit or probability) and ``[T, Q, 2]`` (two class
    logits or log-probabilities; the score is their difference, the log-odds of "active").
    """
    if predictions.dim() == 2:
        return predictions
    if predictions.dim() == 3 and predictions.shape[-1] == 1:
        return predictions[..., 0]
    if predictions.dim() == 3 and predictions.shape[-1] == 2:
        return predictions[..., 1] - predictions[..., 0]
    raise ValueError(
        "predictions must have shape [T, Q], [T, Q, 1] or [T, Q, 2], "
        f"got {tuple(predictions.shape)}"
    )


@dataclass(frozen=True)
class ProtocolResult:
    """One learner at one support size: each assay's mean ΔAUPRC over its draws."""

    support_size: int
    per_assay: dict[str, float]
    draws: int
    skipped: int

    @property
    def summary(self) -> Summary:
        return summarize(torch.tensor(list(self.per_assay.values()), dtype=torch.float64))

    @property
    def mean(self) -> float:
        return self.summary.mean


def evaluate_fsmol(
    learners: Mapping[str, FewShotLearner],
    tasks: Sequence[MoleculeTask],
    support_sizes: Sequence[int] = SUPPORT_SIZES,
    num_draws: int = 10,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> dict[str, dict[int, ProtocolResult]]:
    """Score every learner on the very same draws; ``results[name][support_size]``."""
    if not learners:
        raise ValueError("learners is empty: nothing to evaluate")
    if not isinstance(num_draws, int) or num_draws < 1:
        raise ValueError(f"num_draws must be an int >= 1, got {num_draws!r}")
    results: dict[str, dict[int, ProtocolResult]] = {name: {} for name in learners}
    for support_size in support_sizes:
        scores: dict[str, dict[str, list[float]]] = {name: defaultdict(list) for name in learners}
        draws = skipped = 0
        with Progress(
            len(tasks), f"support {support_size}", unit="assays", enabled=progress
        ) as bar:
            for task in tasks:
                bar.update()
                for draw in range(num_draws):
                    try:
                        split = stratified_split(task.y, support_size, seed + draw)
                    except SamplingError:
                        skipped += 1
                        continue
                    batch = task.episode(*split)
                    batch = batch.to(device) if device is not None else batch
                    draws += 1
                    for name, learner in learners.items():
                        with torch.no_grad():
                            predictions = learner.predict(
                                batch.support_x, batch.support_y, batch.query_x
                            )
                        scores[name][task.name].append(
                            delta_auprc(active_scores(predictions)[0], batch.query_y[0])
                        )
        if draws == 0:
            raise ValueError(f"support_size={support_size}: no assay could provide a single draw")
        for name in learners:
            per_assay = {assay: float(np.mean(values)) for assay, values in scores[name].items()}
            results[name][support_size] = ProtocolResult(support_size, per_assay, draws, skipped)
    return results


def select_on_validation(
    candidates: Mapping[str, FewShotLearner],
    tasks: Sequence[MoleculeTask],
    support_sizes: Sequence[int] = SUPPORT_SIZES,
    num_draws: int = 2,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> tuple[str, dict[str, float]]:
    """The candidate with the best mean ΔAUPRC over ``support_sizes`` on (validation) ``tasks``,
    and every score."""
    results = evaluate_fsmol(
        candidates, tasks, support_sizes, num_draws, seed, device, progress=False
    )
    scores = {
        name: float(np.mean([r.mean for r in by_size.values()]))
        for name, by_size in results.items()
    }
    return max(scores, key=scores.__getitem__), scores


def results_table(
    results: Mapping[str, Mapping[int, ProtocolResult]],
    published: Mapping[str, Mapping[int, float]] = PUBLISHED_DELTA_AUPRC,
) -> str:
    """A plain-text table: mean ΔAUPRC ± 95% CI per learner and support size, then the published
    rows."""
    sizes = sorted({size for by_size in results.values() for size in by_size})
    lines = [f"{'model':<28}" + "".join(f"{'S=' + str(s):>16}" for s in sizes)]
    for name, by_size in results.items():
        lines.append(
            f"{name:<28}"
            + "".join(
                f"{str(by_size[s].summary):>16}" if s in by_size else f"{'':>16}" for s in sizes
            )
        )
    for name, by_size in published.items():
        lines.append(
            f"{'FS-Mol ' + name:<28}"
            + "".join(f"{by_size[s]:>16.3f}" if s in by_size else f"{'':>16}" for s in sizes)
        )
    return "\n".join(lines)
