"""metalearn: the small PyTorch package behind the book *Learning to Learn*.

Start with :mod:`metalearn.core` (the task batch, the learner and task-source protocols, and
the naming table), then :mod:`metalearn.train` (the one training loop) and
:mod:`metalearn.evaluate` (scores with confidence intervals).

Layout: ``core`` and ``checks`` (what everything shares); ``tasks/`` (task sources);
``algorithms/`` (learners); ``models/`` (networks); ``data/`` (loaders of real data sets);
``rl/`` and ``envs/`` (reinforcement learning); ``train``, ``evaluate``, ``evaluate_fsmol``
(training and scoring); ``config`` and ``recipes`` (the book's experiments by name).
"""

import warnings

from metalearn import config
from metalearn.algorithms import (
    MAML,
    FineTune,
    LSTMMetaLearner,
    MetaLSTM,
    ProtoNet,
    TrainFromScratch,
    WithSteps,
)
from metalearn.core import FewShotLearner, MetaLearner, TaskBatch, TaskSource, check_task_batch
from metalearn.evaluate import Summary, accuracy, compare, evaluate, mse, paired, summarize
from metalearn.models import MLP
from metalearn.tasks import TaskPool
from metalearn.train import meta_train, pretrain, train_loop
from metalearn.utils import default_device, seed_everything

# `python -m metalearn.train` runs train.py as __main__ after this package has imported it (for
# meta_train above); runpy's warning about that is harmless noise.
warnings.filterwarnings("ignore", "'metalearn.train' found in sys.modules", RuntimeWarning)

__version__ = "0.2.0"

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
    "TaskPool",
    "TaskSource",
    "TrainFromScratch",
    "WithSteps",
    "accuracy",
    "check_task_batch",
    "compare",
    "config",
    "default_device",
    "evaluate",
    "meta_train",
    "mse",
    "paired",
    "pretrain",
    "seed_everything",
    "summarize",
    "train_loop",
]
