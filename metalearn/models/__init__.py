"""Networks the learners adapt."""
from metalearn.models.mlp import MLP

__all__ = ["MLP"]
