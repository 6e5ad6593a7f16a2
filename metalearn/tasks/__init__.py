"""Task families: each yields :class:`TaskBatch` objects."""
from metalearn.tasks.batch import TaskBatch, check_task_batch

__all__ = ["TaskBatch", "check_task_batch"]
