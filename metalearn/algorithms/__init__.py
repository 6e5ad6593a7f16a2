"""Few-shot learners, all following :class:`FewShotLearner`."""

from metalearn.algorithms.baselines import FineTune, TrainFromScratch
from metalearn.algorithms.early_stopping import EarlyStopped
from metalearn.algorithms.lstm_meta_learner import LSTMMetaLearner
from metalearn.algorithms.maml import MAML
from metalearn.algorithms.meta_lstm import MetaLSTM
from metalearn.algorithms.protonet import ProtoNet
from metalearn.algorithms.sklearn_learner import SklearnLearner
from metalearn.algorithms.support_span import SupportSpan
from metalearn.algorithms.with_steps import WithSteps
from metalearn.core import FewShotLearner, MetaLearner

__all__ = [
    "EarlyStopped",
    "FewShotLearner",
    "FineTune",
    "LSTMMetaLearner",
    "MAML",
    "MetaLSTM",
    "MetaLearner",
    "ProtoNet",
    "SklearnLearner",
    "SupportSpan",
    "TrainFromScratch",
    "WithSteps",
]
