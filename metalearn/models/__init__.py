"""Networks the learners adapt, and what is done to them (a new output head)."""

from metalearn.models.conv4 import Conv4
from metalearn.models.heads import replace_head
from metalearn.models.lstm_classifier import LSTMClassifier
from metalearn.models.mlp import MLP
from metalearn.models.policy import GaussianMLPPolicy

__all__ = ["Conv4", "GaussianMLPPolicy", "LSTMClassifier", "MLP", "replace_head"]
