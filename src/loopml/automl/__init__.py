"""AutoML for tabular data: learners, search, ensembling and evaluation.

Pure computation: frames in, fitted objects out; no database and no HTTP. The
estimator and the learners load on first use, so that ``loopml.automl.metrics``
(what the API validates requests with) imports in milliseconds.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopml.automl.estimator import AutoML
    from loopml.automl.learners import REGISTRY, Learner, register
    from loopml.automl.metrics import METRICS
    from loopml.automl.search import Progress

_EXPORTS = {
    "AutoML": "loopml.automl.estimator",
    "REGISTRY": "loopml.automl.learners",
    "Learner": "loopml.automl.learners",
    "register": "loopml.automl.learners",
    "METRICS": "loopml.automl.metrics",
    "Progress": "loopml.automl.search",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'loopml.automl' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = ["METRICS", "REGISTRY", "AutoML", "Learner", "Progress", "register"]
