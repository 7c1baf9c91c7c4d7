"""Image learners (PyTorch) that plug into :mod:`loopml.automl` as learners.

Importing this package registers them; :mod:`loopml.automl` also finds them through the
``loopml.learners`` entry point, so that a saved model that used one loads anywhere
loopml is installed. Without PyTorch (``pip install 'loopml[vision]'``) they report
themselves unavailable and AutoML searches the other learners, on classic image
features.
"""

from __future__ import annotations

from loopml.automl.learners import register
from loopml.vision.backbone import BackboneLearner
from loopml.vision.cnn import CNNLearner

register(CNNLearner())
register(BackboneLearner())

__all__ = ["BackboneLearner", "CNNLearner"]
