"""Task sources: each follows :class:`metalearn.core.TaskSource`, ``sample(num_tasks)``."""

from metalearn.tasks.assays import AssaySampler, MoleculeTask, SamplingError, stratified_split
from metalearn.tasks.episodes import AllClasses, EpisodeSampler, digit_episodes
from metalearn.tasks.pool import TaskPool
from metalearn.tasks.sinusoid import Sinusoid, SinusoidParams
from metalearn.tasks.text import TextTasks

__all__ = [
    "AllClasses",
    "AssaySampler",
    "EpisodeSampler",
    "MoleculeTask",
    "SamplingError",
    "Sinusoid",
    "SinusoidParams",
    "TaskPool",
    "TextTasks",
    "digit_episodes",
    "stratified_split",
]
