"""metalearn: the small PyTorch package behind the book *Learning to Learn*."""

import warnings

from metalearn import config
from metalearn.algorithms import (
    MAML,
    FewShotLearner,
    FineTune,
    LSTMMetaLearner,
    MetaLearner,
    MetaLSTM,
    ProtoNet,
    TrainFromScratch,
    WithSteps,
)
from metalearn.evaluate import Summary, accuracy, evaluate, mse, summarize
from metalearn.models import MLP
from metalearn.tasks import TaskBatch
from metalearn.train import meta_train
from metalearn.utils import default_device, seed_everything

# `python -m metalearn.train` runs train.py as __main__ after this package has imported it (for
# meta_train above); runpy's warning about that is harmless noise.
warnings.filterwarnings("ignore", "'metalearn.train' found in sys.modules", RuntimeWarning)

__version__ = "0.1.0"

__all__ = [
    "FewShotLearner",
    "FineTune",
    "LSTMMetaLearner",
    "MAML",
    "MLP",
    "MetaLSTM",
    "MetaLearner",
    "ProtoNet",
    "Summary",
    "TaskBatch",
    "TrainFromScratch",
    "WithSteps",
    "accuracy",
    "config",
    "default_device",
    "evaluate",
    "meta_train",
    "mse",
    "seed_everything",
    "summarize",
]
