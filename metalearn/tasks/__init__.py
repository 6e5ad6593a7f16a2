"""Task families: each yields :class:`TaskBatch` objects."""

from metalearn.tasks.batch import TaskBatch, check_task_batch
from metalearn.tasks.episodes import EpisodeSampler
from metalearn.tasks.fsmol_protocol import (
    AssaySampler,
    MoleculeTask,
    SamplingError,
    delta_auprc,
    evaluate_fsmol,
    stratified_split,
)
from metalearn.tasks.sinusoid import Sinusoid, SinusoidParams
from metalearn.tasks.text import TextTasks

__all__ = [
    "AssaySampler",
    "EpisodeSampler",
    "MoleculeTask",
    "SamplingError",
    "delta_auprc",
    "evaluate_fsmol",
    "stratified_split",
    "Sinusoid",
    "SinusoidParams",
    "TaskBatch",
    "TextTasks",
    "check_task_batch",
]
