"""FS-Mol's assays as a task source: stratified support and query sets of molecules.

A :class:`MoleculeTask` is one featurised assay; :func:`stratified_split` draws a support set
that keeps the assay's active fraction and a disjoint query set (FS-Mol's sampling), and
:class:`AssaySampler` turns assays into :class:`~metalearn.core.TaskBatch` objects for
meta-training. The evaluation protocol built on them is :mod:`metalearn.evaluate_fsmol`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np
import torch

from metalearn.checks import check_generator, check_int, check_seed
from metalearn.core import TaskBatch
from metalearn.data.download import derived_dir
from metalearn.data.fsmol import Assay

if TYPE_CHECKING:
    from metalearn.data.featurize import Featurizer


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


def padded_episodes(
    draws: Sequence[tuple[MoleculeTask, np.ndarray, np.ndarray]],
) -> tuple[TaskBatch, list[int]]:
    """Several assays' episodes as one task batch: ``draws`` holds ``(task, support_idx,
    query_idx)`` with equal support sizes ``S``; the query sets are padded to the longest, ``Q``,
    with zero inputs and label ``-1``. Returns the batch (``support_x [T, S, F]`` float32,
    ``query_x [T, Q, F]``, ...) and each task's number of real queries."""
    if len({len(support) for _, support, _ in draws}) != 1:
        raise ValueError("draws must have equal support sizes")
    sizes = [len(query) for _, _, query in draws]
    features = draws[0][0].x.shape[1]
    query_x = torch.zeros(len(draws), max(sizes), features)
    query_y = torch.full((len(draws), max(sizes)), -1, dtype=torch.int64)
    for i, (task, _, query) in enumerate(draws):
        index = torch.as_tensor(query)
        query_x[i, : len(query)], query_y[i, : len(query)] = task.x[index], task.y[index]
    supports = [torch.as_tensor(support) for _, support, _ in draws]
    support_x = torch.stack([task.x[s].float() for (task, _, _), s in zip(draws, supports)])
    support_y = torch.stack([task.y[s] for (task, _, _), s in zip(draws, supports)])
    return TaskBatch(support_x, support_y, query_x, query_y), sizes


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
    """A :class:`~metalearn.core.TaskSource` over assays: each task is an assay, with a
    stratified support set of ``support_size`` molecules and a query set of ``query_size``.

    ``sample(num_tasks)`` returns a :class:`TaskBatch` with ``support_x [T, S, F]``,
    ``support_y [T, S]``, ``query_x [T, Q, F]``, ``query_y [T, Q]``. Only assays that admit a
    stratified split of these sizes are drawn from (:func:`fold_sizes`, decided up front from the
    class counts, so every split succeeds and a call never loops); ``tasks`` lists them,
    ``skipped`` maps the others' names to the reason.

    Raises:
        ValueError: ``support_size`` or ``query_size`` is not an int >= 2, or no assay admits
            a split -- the message then names the assays
            (up to five), their sizes and class counts, and the sizes asked for.
    """

    def __init__(
        self,
        tasks: Sequence[MoleculeTask],
        support_size: int,
        query_size: int,
        seed: int = 0,
    ) -> None:
        _check_size("support_size", support_size)
        _check_size("query_size", query_size)
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
        self.support_size, self.query_size = support_size, query_size
        self.rng = np.random.default_rng(check_seed("seed", seed))

    def sample(self, num_tasks: int, generator: torch.Generator | None = None) -> TaskBatch:
        """``num_tasks`` assays, each split afresh: ``support_x [T, support_size, F]`` etc.
        A ``generator`` seeds this call's draws instead of the sampler's own NumPy generator."""
        check_int("num_tasks", num_tasks, minimum=1)
        rng = self.rng
        if check_generator(generator) is not None:
            rng = np.random.default_rng(int(torch.randint(2**62, (1,), generator=generator)))
        episodes: list[TaskBatch] = []
        while len(episodes) < num_tasks:  # ends: the pool holds a feasible assay
            task, feasible = self._pool[rng.integers(len(self._pool))]
            seed = int(rng.integers(2**31))
            if feasible:  # decided up front: this split always succeeds
                split = stratified_split(task.y, self.support_size, seed, self.query_size)
                episodes.append(task.episode(*split))
        return TaskBatch(*(torch.cat(parts) for parts in zip(*episodes)))


def featurize_assays(
    assays: Iterable[Assay], data_key: str, featurizer: Featurizer | None = None, cache: bool = True
) -> tuple[list[MoleculeTask], int]:
    """Featurise ``assays`` (default: Morgan radius 2, 2048 bits; cached in
    ``derived_dir("fsmol")`` when ``cache``).

    Molecules RDKit cannot parse are dropped. Returns the tasks (same order) and how many
    molecules were dropped.
    """
    from metalearn.data.featurize import (
        Featurizer,
        featurize,
    )  # RDKit (metalearn[chem]) only when featurising

    featurizer = featurizer or Featurizer()
    assays = list(assays)
    smiles = [text for assay in assays for text in assay.smiles]
    features = featurize(smiles, featurizer, derived_dir("fsmol") if cache else None, data_key)
    matrix, start, tasks = features.matrix(), 0, []
    for assay in assays:
        rows = slice(start, start + len(assay))
        keep = features.valid[rows]
        x = torch.from_numpy(np.ascontiguousarray(matrix[rows][keep]))
        tasks.append(
            MoleculeTask(assay.name, x, torch.from_numpy(assay.active[keep].astype(np.int64)))
        )
        start += len(assay)
    return tasks, features.num_invalid
