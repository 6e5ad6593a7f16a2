"""Few-shot learners, all following :class:`FewShotLearner`."""
from metalearn.algorithms.base import FewShotLearner, MetaLearner

__all__ = ["FewShotLearner", "MetaLearner"]
