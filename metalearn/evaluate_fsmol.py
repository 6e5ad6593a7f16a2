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

An episode is one assay. Assays differ in size, so :func:`evaluate_fsmol` stacks several of
similar size in one task batch, their query sets padded (never scored).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch

from metalearn.checks import check_int
from metalearn.core import FewShotLearner
from metalearn.evaluate import Summary, summarize
from metalearn.progress import Progress
from metalearn.tasks.assays import (
    MoleculeTask,
    SamplingError,
    padded_episodes,
    stratified_split,
)

SUPPORT_SIZES = (16, 32, 64, 128)

# Mean ΔAUPRC over FS-Mol's 157 test assays, from FS-Mol's baseline summaries (trained on
# 4,938 assays).
PUBLISHED_DELTA_AUPRC: dict[str, dict[int, float]] = {
    "ProtoNet (GNN+ECFP)": {16: 0.211, 32: 0.247, 64: 0.276, 128: 0.306},
    "GNN-MAML": {16: 0.165, 32: 0.172, 64: 0.178, 128: 0.197},
    "random forest": {16: 0.098, 32: 0.130, 64: 0.168, 128: 0.218},
    "kNN": {16: 0.056, 32: 0.080, 64: 0.107, 128: 0.144},
}


def delta_auprc(scores: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor) -> float:
    """AUPRC minus the fraction of actives; ``scores [Q]``, ``labels [Q]`` in {0, 1}.

    AUPRC is scikit-learn's ``average_precision_score`` (the area under the step-wise
    precision-recall curve, tied scores forming one threshold), computed here without its input
    checks, which cost more than the sum itself on FS-Mol's thousands of small query sets
    (equal to scikit-learn's to 1e-12, tested).
    """
    labels = np.asarray(torch.as_tensor(labels).cpu()).reshape(-1)
    scores = np.asarray(torch.as_tensor(scores, dtype=torch.float64).cpu()).reshape(-1)
    if labels.shape != scores.shape:
        raise ValueError(f"scores has {scores.shape[0]} entries but labels has {labels.shape[0]}")
    if not 0 < labels.sum() < labels.shape[0]:
        raise ValueError("labels must contain both classes: ΔAUPRC is undefined otherwise")
    order = np.argsort(scores, kind="mergesort")[::-1]  # highest score first
    ranked = scores[order]
    thresholds = np.r_[np.flatnonzero(np.diff(ranked)), ranked.size - 1]  # last of each tie
    true_positives = np.cumsum(labels[order], dtype=np.float64)[thresholds]
    precision = true_positives / (thresholds + 1)
    recall_gained = np.diff(true_positives, prepend=0.0) / true_positives[-1]
    return float(np.sum(recall_gained * precision) - labels.mean())


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
    assays_per_call: int = 16,
) -> dict[str, dict[int, ProtocolResult]]:
    """Score every learner on the very same draws; ``results[name][support_size]``.

    Each learner predicts up to ``assays_per_call`` assays (one draw each) in one call, their
    support sets stacked (same size) and their query sets padded with zeros to the longest;
    assays of similar size share a call. The padding is never scored, so the predictions are
    those of one assay per call, up to rounding, for learners that predict each query on its own
    (every learner here); a transductive learner (e.g. batch norm over the query batch) needs
    ``assays_per_call=1``.
    """
    if not learners:
        raise ValueError("learners is empty: nothing to evaluate")
    if not isinstance(num_draws, int) or num_draws < 1:
        raise ValueError(f"num_draws must be an int >= 1, got {num_draws!r}")
    assays_per_call = check_int("assays_per_call", assays_per_call, minimum=1)
    results: dict[str, dict[int, ProtocolResult]] = {name: {} for name in learners}
    for support_size in support_sizes:
        scores: dict[str, dict[str, list[float]]] = {name: defaultdict(list) for name in learners}
        draws = skipped = 0
        with Progress(
            len(tasks), f"support {support_size}", unit="assays", enabled=progress
        ) as bar:
            for chunk in _chunks(tasks, assays_per_call):
                for draw in range(num_draws):
                    episodes = []
                    for task in chunk:
                        try:
                            split = stratified_split(task.y, support_size, seed + draw)
                        except SamplingError:
                            skipped += 1
                            continue
                        episodes.append((task, *split))
                    if not episodes:
                        continue
                    draws += len(episodes)
                    batch, sizes = padded_episodes(episodes)
                    batch = batch.to(device) if device is not None else batch
                    for name, learner in learners.items():
                        with torch.no_grad():
                            predictions = learner.predict(
                                batch.support_x, batch.support_y, batch.query_x
                            )
                        active = active_scores(predictions)
                        for i, ((task, *_), size) in enumerate(zip(episodes, sizes)):
                            score = delta_auprc(active[i, :size], batch.query_y[i, :size])
                            scores[name][task.name].append(score)
                bar.update(len(chunk))
        if draws == 0:
            raise ValueError(f"support_size={support_size}: no assay could provide a single draw")
        for name in learners:  # each assay's mean over its draws, in the order of ``tasks``
            per_assay = {
                task.name: float(np.mean(scores[name][task.name]))
                for task in tasks
                if task.name in scores[name]
            }
            results[name][support_size] = ProtocolResult(support_size, per_assay, draws, skipped)
    return results


def _chunks(tasks: Sequence[MoleculeTask], size: int) -> list[list[MoleculeTask]]:
    """``tasks`` in order of size, in groups of at most ``size`` whose largest assay is at most
    a quarter larger than its smallest (little padding)."""
    chunks: list[list[MoleculeTask]] = []
    for task in sorted(tasks, key=len):
        if chunks and len(chunks[-1]) < size and len(task) <= 1.25 * len(chunks[-1][0]):
            chunks[-1].append(task)
        else:
            chunks.append([task])
    return chunks


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
    for name, numbers in published.items():
        lines.append(
            f"{'FS-Mol ' + name:<28}"
            + "".join(f"{numbers[s]:>16.3f}" if s in numbers else f"{'':>16}" for s in sizes)
        )
    return "\n".join(lines)
