"""Networks the learners adapt."""

from metalearn.models.conv4 import Conv4
from metalearn.models.lstm_classifier import LSTMClassifier
from metalearn.models.mlp import MLP

__all__ = ["Conv4", "LSTMClassifier", "MLP"]
