"""AutoML for tabular data: learners, search, ensembling and evaluation.

Pure computation: frames in, fitted objects out; no database and no HTTP.
"""

from loopml.automl.estimator import AutoML
from loopml.automl.learners import REGISTRY, Learner, register
from loopml.automl.metrics import METRICS
from loopml.automl.search import Progress

__all__ = ["METRICS", "REGISTRY", "AutoML", "Learner", "Progress", "register"]
