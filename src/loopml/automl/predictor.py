"""The fitted ensemble: encoders and each member's models.

During a fit the predictor is the bag of fold models (what the out-of-fold
predictions came from, and what ``predict_fold`` reproduces for the report). The
model that is kept is its :meth:`Predictor.refit` on all rows: one model per member,
so prediction costs ``k`` times less than the bag.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from loopml.automl import arrays
from loopml.automl.calibration import Calibration
from loopml.automl.columns import RawFrame, Schema
from loopml.automl.encoding import FoldEncoder
from loopml.automl.learners import FitContext, Model, get_learner, thread_limit
from loopml.core.enums import TaskType

PRIOR_FLOOR = 1e-3
# A refit sees 1/(k-1) more rows than a fold model, and no early stop: the search keeps
# this many times a fold model's seconds for it, and an anytime learner's refit gets them.
REFIT_FACTOR = 1.5
_ONE_THREAD_ROWS = 64


@dataclass
class Member:
    learner: str
    params: dict[str, Any]
    weight: float
    models: list[Model]  # one per fold
    seconds: float = 0.0  # one fold model's fit, during the search (not saved)


class Predictor:
    """Predictions in the learners' native space: probabilities or values."""

    def __init__(
        self,
        task: TaskType,
        schema: Schema,
        encoders: list[FoldEncoder],
        members: list[Member],
        n_classes: int,
        class_prior: np.ndarray | None = None,
        calibration: Calibration | None = None,
    ) -> None:
        self.task, self.schema, self.encoders = task, schema, encoders
        self.members, self.n_classes = members, n_classes
        self.class_prior = class_prior
        self.calibration = calibration  # applied to the ensemble's probabilities
        self._families = [get_learner(m.learner).family for m in members]

    @property
    def n_folds(self) -> int:
        return len(self.encoders)

    def predict_fold(self, raw: RawFrame, fold: int) -> np.ndarray:
        """The ensemble's prediction using only the models of one fold."""
        views: dict[str, np.ndarray] = {}
        total: np.ndarray | None = None
        for m, family in zip(self.members, self._families, strict=True):
            if family not in views:
                views[family] = self.encoders[fold].transform(raw, family)[0]
            pred = m.weight * m.models[fold].predict(views[family])
            total = pred if total is None else total + pred
        assert total is not None
        return total

    def predict(self, raw: RawFrame) -> np.ndarray:
        if raw.n_rows < _ONE_THREAD_ROWS:
            return self._predict(raw)
        # One thread per library, as every timing of the fit was made: the BLAS pools of a
        # kNN's distances and a linear member only contend on a busy machine (1,000 digits
        # took 0.019 s on one thread; 0.025-0.13 s on two). For a few rows the limit costs
        # more (about 30 us) than it could save.
        with thread_limit(1):
            return self._predict(raw)

    def _predict(self, raw: RawFrame) -> np.ndarray:
        if self.n_folds == 1:  # a refitted model: what serving runs
            out = self.predict_fold(raw, 0)
        else:
            out = np.asarray(sum(self.predict_fold(raw, f) for f in range(self.n_folds)))
            out = out / self.n_folds
        return self.finish(out)

    def calibrated(self, out: np.ndarray) -> np.ndarray:
        """The members' weighted sum (:meth:`predict_fold`'s, or out-of-fold predictions)
        through the calibration map, where there is one. Out-of-fold figures (the report)
        are compared on these, without the prior floor, as the ensemble was chosen."""
        return out if self.calibration is None else self.calibration.apply(out)

    def finish(self, out: np.ndarray) -> np.ndarray:
        """The members' weighted sum as the ensemble serves it: calibrated, then with a
        little of the class prior."""
        if self.class_prior is None:
            return out
        out = self.calibrated(out)
        # A little of the class prior: no class ever gets probability 0. One row far from
        # the training data (all features missing, say) could otherwise cost a whole log
        # loss; at 0.1% it moves no other prediction visibly.
        out = (1.0 - PRIOR_FLOOR) * out + PRIOR_FLOOR * self.class_prior
        # Members in float32 (XGBoost) sum to 1 within 1e-7 only; users' metrics
        # (scikit-learn's log loss) warn of probabilities that do not sum to 1.
        return out / out.sum(axis=1, keepdims=True)

    @staticmethod
    def full_encoder(raw: RawFrame, seed: int) -> FoldEncoder:
        """The encoder a refit on all of ``raw`` uses."""
        return FoldEncoder(seed).fit(raw)

    def refit(
        self,
        raw: RawFrame,
        y: np.ndarray,
        seed: int,
        n_jobs: int,
        deadline: float,
        done: Sequence[Model | None] | None = None,
        encoder: FoldEncoder | None = None,
    ) -> Predictor:
        """One model per member fitted on all rows (one model to run per member, not k).

        Boosting learners take the number of rounds their fold models early-stopped at,
        forests the trees their fold models grew: their work is fixed by what the search's
        deadlines let the folds do, and runs to the end. An anytime learner (a CNN: its
        epochs on 1.6x the rows of a fold's) fits its schedule by ``deadline``, or in
        ``REFIT_FACTOR`` times its fold's seconds where that ends later. ``done`` holds, per
        member, a model an earlier refit with the same ``raw`` and ``seed`` made, or None;
        ``encoder``, the one an earlier refit fitted on ``raw`` (see :meth:`full_encoder`).
        """
        encoder = encoder or self.full_encoder(raw, seed)
        views: dict[str, tuple[np.ndarray, list[int]]] = {}
        members = []
        for m, fitted in zip(self.members, done or [None] * len(self.members), strict=True):
            if fitted is not None:
                members.append(Member(m.learner, m.params, m.weight, [fitted]))
                continue
            learner = get_learner(m.learner)
            if learner.family not in views:
                views[learner.family] = encoder.transform(raw, learner.family)
            X, cats = views[learner.family]
            until = math.inf
            if learner.anytime and math.isfinite(deadline):
                until = max(deadline, time.monotonic() + REFIT_FACTOR * m.seconds)
            ctx = FitContext(self.task, self.n_classes, seed, n_jobs, until, cats)
            with thread_limit(ctx.threads(X)):
                params = learner.full_params(m.params, m.models)
                model = learner.fit(X, y, None, None, params, ctx)
            members.append(Member(m.learner, m.params, m.weight, [model]))
        return Predictor(
            self.task, self.schema, [encoder], members, self.n_classes, self.class_prior
        )

    # -- persistence (no pickles: JSON, arrays and each learner's own format) ------
    def to_files(self) -> tuple[dict[str, bytes], dict[str, Any]]:
        files: dict[str, bytes] = {}
        encoders = []
        for f, enc in enumerate(self.encoders):
            meta, arrs = enc.to_state()
            files[f"encoders/{f}.npz"] = arrays.to_bytes(arrs)
            encoders.append(meta)
        members = []
        for i, m in enumerate(self.members):
            fold_meta = []
            for f, model in enumerate(m.models):
                model_files, meta = model.dump()
                for name, blob in model_files.items():
                    files[f"members/{i}/{f}/{name}"] = blob
                fold_meta.append({"files": sorted(model_files), "meta": meta})
            members.append(
                {"learner": m.learner, "params": m.params, "weight": m.weight, "folds": fold_meta}
            )
        state = {
            "task": self.task.value,
            "n_classes": self.n_classes,
            "class_prior": None if self.class_prior is None else self.class_prior.tolist(),
            "calibration": None if self.calibration is None else self.calibration.to_state(),
            "schema": self.schema.to_state(),
            "encoders": encoders,
            "members": members,
        }
        files["predictor.json"] = json.dumps(state, sort_keys=True, default=float).encode()
        return files, state

    @classmethod
    def from_files(cls, files: dict[str, bytes]) -> Predictor:
        state = json.loads(files["predictor.json"])
        encoders = [
            FoldEncoder.from_state(meta, arrays.from_bytes(files[f"encoders/{f}.npz"]))
            for f, meta in enumerate(state["encoders"])
        ]
        members = []
        for i, m in enumerate(state["members"]):
            learner = get_learner(m["learner"])
            models = []
            for f, fold in enumerate(m["folds"]):
                own = {name: files[f"members/{i}/{f}/{name}"] for name in fold["files"]}
                models.append(learner.load(own, fold["meta"]))
            members.append(Member(m["learner"], m["params"], float(m["weight"]), models))
        return cls(
            TaskType(state["task"]),
            Schema.from_state(state["schema"]),
            encoders,
            members,
            int(state["n_classes"]),
            None if state["class_prior"] is None else np.array(state["class_prior"]),
            Calibration.from_state(state.get("calibration")),
        )
