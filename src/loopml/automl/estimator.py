"""``AutoML``: the estimator users call (scikit-learn conventions)."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loopml.automl import calibration, fitted_state, persist
from loopml.automl.columns import check_columns, check_frame, parse, plan_columns
from loopml.automl.cv import TrialResult, Workspace, make_folds
from loopml.automl.decision import choose_threshold, decide, parse_cost_matrix
from loopml.automl.learners import REGISTRY, Model, get_learner, thread_limit
from loopml.automl.metrics import get_metric
from loopml.automl.params import check_params, prediction_budget
from loopml.automl.prediction_time import sample_rows, within_budget
from loopml.automl.predictor import Member, Predictor
from loopml.automl.report import baseline_verdict, build_report, leaderboard
from loopml.automl.search import Progress, Search, greedy_ensemble
from loopml.automl.target import check_target, encode_classes, resolve_task
from loopml.automl.truncation import truncated_candidates
from loopml.core.enums import TaskType
from loopml.core.errors import Conflict, InvalidInput

# The search gets this share of the budget; ensembling and the report the rest.
_SEARCH_SHARE = 0.9


class AutoML:
    """Search learners and configurations within a time budget; return an ensemble.

    Parameters
    ----------
    task : {"auto", "binary", "multiclass", "regression"}
        ``"auto"`` infers it from the target.
    metric : str
        ``"auto"`` (AUC for binary, log loss for multiclass, RMSE for regression) or a
        name from :data:`loopml.automl.metrics.METRICS`.
    time_budget : float
        Seconds for the whole fit. The baselines and one real model are always fitted.
    seed : int
        Seed of folds, learners and the sampler.
    n_jobs : int
        Threads per fit; ``-1`` uses every core. Results are repeatable for a given
        ``seed`` and ``n_jobs`` when ``max_trials`` ends the search before
        ``time_budget`` does: no fit is then cut short by the clock.
    learners : sequence of str, optional
        Learners to search (default: every registered learner that is available).
    n_folds : int
        Cross-validation folds.
    max_trials : int, optional
        Stop after this many searched configurations.
    cost_matrix : dict, optional
        Binary tasks: ``{"fp": cost, "fn": cost}`` (optionally ``"tp"``, ``"tn"``); the
        decision threshold then minimises the expected cost.
    confidence_threshold : float, optional
        Classification: ``predict`` abstains below this top-class probability.
    fallback_label : object
        What an abstained prediction returns.
    log_path : path, optional
        Each trial is written here as a JSON line (the file is replaced at each fit).
    on_progress : callable, optional
        Called with a :class:`loopml.automl.search.Progress` after every trial.
    report : bool
        Compute ``report_`` (importances, slices, robustness) after the search.
    prediction_budget : float, "auto" or None
        Seconds per 1,000 rows the kept ensemble may take to predict, parsing and
        encoding included (timed on 1,000 training rows after the refit); members that
        would exceed it are left out. "auto": 0.04 s for tables, 1 s for images (a CNN
        spends a fraction of a millisecond per image).
        None: no limit; not applied when ``max_trials`` is set, since timings would make
        runs differ. With a ``backbone``, "auto" allows 30 s (30 ms an image).
    backbone : str or path, optional
        Image columns: a local file of pretrained ResNet weights (timm's
        ``model.safetensors`` or a torchvision/timm ``.pth`` state dict) whose features,
        with a linear head, join the search as the ``backbone`` learner. Nothing is
        downloaded; the weights are stored in the fitted model.
    searcher : {"tpe", "cfo"}
        What proposes configurations after the portfolio: Optuna's TPE, or a cost-frugal
        local search per learner as FLAML's CFO does (:mod:`loopml.automl.cfo`).
    """

    def __init__(
        self,
        task: str = "auto",
        metric: str = "auto",
        time_budget: float = 60.0,
        seed: int = 0,
        n_jobs: int = -1,
        learners: Sequence[str] | None = None,
        n_folds: int = 5,
        max_trials: int | None = None,
        cost_matrix: dict[str, float] | None = None,
        confidence_threshold: float | None = None,
        fallback_label: Any = "unknown",
        log_path: str | Path | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        report: bool = True,
        prediction_budget: float | str | None = "auto",
        backbone: str | Path | None = None,
        searcher: str = "tpe",
    ) -> None:
        self.task = task
        self.metric = metric
        self.time_budget = time_budget
        self.seed = seed
        self.n_jobs = n_jobs
        self.learners = learners
        self.n_folds = n_folds
        self.max_trials = max_trials
        self.cost_matrix = cost_matrix
        self.confidence_threshold = confidence_threshold
        self.fallback_label = fallback_label
        self.log_path = log_path
        self.on_progress = on_progress
        self.report = report
        self.prediction_budget = prediction_budget
        self.backbone = backbone
        self.searcher = searcher

    # -- validation ------------------------------------------------------------------
    def _threads(self) -> int:
        return os.cpu_count() or 1 if self.n_jobs in (-1, None) else max(1, int(self.n_jobs))

    def _check_fitted(self) -> Predictor:
        predictor = getattr(self, "predictor_", None)
        if predictor is None:
            raise Conflict("this AutoML is not fitted yet: call fit first")
        return predictor

    # -- fit -----------------------------------------------------------------------------
    def fit(self, X: Any, y: Any, groups: Any = None) -> AutoML:
        """Search, ensemble and evaluate on ``X`` (raw DataFrame) and ``y``.

        ``groups`` keeps rows of the same group in the same fold (e.g. one patient).
        """
        started = time.monotonic()
        frame = check_frame(X)
        target = check_target(y, len(frame))
        task = resolve_task(self.task, target)
        metric = get_metric(self.metric, task)
        schema = plan_columns(frame)
        names = check_params(self.get_params(), task, images=bool(schema.names("image")))
        costs = parse_cost_matrix(self.cost_matrix)
        group_values = None if groups is None else np.asarray(groups)
        if group_values is not None and len(group_values) != len(frame):
            raise InvalidInput("groups must have one value per row", field="groups")
        if task is TaskType.regression:
            classes, y_fit, n_classes = None, target.to_numpy(dtype=float), 0
        else:
            classes, y_fit = encode_classes(target)
            n_classes = len(classes)
        raw = parse(frame, schema)
        folds = make_folds(y_fit, task, self.n_folds, self.seed, group_values)
        ws = Workspace(raw, y_fit, folds, task, n_classes, self.seed)
        if self.log_path is not None:
            Path(self.log_path).write_text("")
        backbone = None if self.backbone is None else str(self.backbone)
        search = Search(
            [get_learner(n, backbone) for n in names],
            ws,
            metric,
            time_budget=max(0.0, self.time_budget * _SEARCH_SHARE - (time.monotonic() - started)),
            max_trials=self.max_trials,
            n_jobs=self._threads(),
            seed=self.seed,
            searcher=self.searcher,
            log_path=self.log_path,
            on_progress=self.on_progress,
        )
        trials = search.run()
        timings = {"search": time.monotonic() - started}
        # The prior is a yardstick, never a member: it only shrinks probabilities.
        candidates = [
            t for t in trials if t.status == "ok" and t.oof is not None and t.learner != "prior"
        ]
        if not candidates:
            errors = sorted({t.error for t in trials if t.error})
            raise InvalidInput(
                "no learner could fit this data: " + ("; ".join(errors) or "no trial finished"),
                field="X",
            )
        # Timings vary from run to run: a run bounded by max_trials, which promises the
        # same model every time, does not let them choose members.
        budget = prediction_budget(self.get_params(), images=bool(schema.names("image")))
        if budget is not None:
            cuts = truncated_candidates(
                candidates, ws, metric, budget, first_id=max(t.id for t in trials) + 1,
                deadline=started + self.time_budget,
            )  # fmt: skip
            candidates, trials = candidates + cuts, trials + cuts
            search.log(cuts)
        weights = greedy_ensemble(candidates, y_fit, metric, prediction_budget=budget)
        prior = (
            np.bincount(y_fit.astype(np.int64), minlength=n_classes) / len(y_fit)
            if n_classes
            else None
        )
        timings["ensemble"] = time.monotonic() - started - sum(timings.values())
        # The refit's work is fixed (rounds, trees) and the search kept time for it; a
        # deadline would only truncate the model that is kept. An anytime learner has none
        # fixed: it fits its schedule by the end of the search's share (or into the time
        # the search kept for it), but never by the clock in a run bounded by max_trials.
        end = started + self.time_budget * _SEARCH_SHARE
        refit_by = math.inf if self.max_trials is not None else end
        refitted: dict[int, Model] = {}
        encoder = Predictor.full_encoder(raw, self.seed)  # one for every refit below

        def assemble(weights: dict[int, float]) -> tuple[Predictor, Predictor]:
            """The bag of the members' fold models, and its refit on all rows."""
            members = [
                Member(
                    candidates[i].learner, candidates[i].params, w, candidates[i].models or [],
                    candidates[i].fit_seconds / ws.n_folds,
                )
                for i, w in weights.items()
            ]  # fmt: skip
            bag = Predictor(task, schema, ws.encoders, members, n_classes, prior)
            done = [refitted.get(i) for i in weights]
            refit = bag.refit(raw, y_fit, self.seed, self._threads(), refit_by, done, encoder)
            refitted.update(zip(weights, (m.models[0] for m in refit.members), strict=True))
            return bag, refit

        bag, self.predictor_ = assemble(weights)
        timings["refit"] = time.monotonic() - started - sum(timings.values())
        # Every member predicts each row, so the ensemble's time is their sum.
        speed = [candidates[i].predict_seconds_per_1000 for i in weights]
        speed = [s for s in speed if not np.isnan(s)]
        seconds = float(sum(speed)) if speed else float("nan")
        if budget is not None:  # timed as it will serve, and made to fit
            rows = sample_rows(images=bool(schema.names("image")))
            sample = frame.sample(rows, replace=True, random_state=self.seed)
            weights, bag, self.predictor_, seconds = within_budget(
                assemble, sample, candidates, weights, y_fit, metric, budget,
                choose_refitted_after=started + self.time_budget,
            )  # fmt: skip
            timings["prediction_time"] = time.monotonic() - started - sum(timings.values())
        oof: np.ndarray = np.sum(
            [w * np.asarray(candidates[i].oof) for i, w in weights.items()], axis=0
        )
        if calibration.needed(metric, n_classes):
            # Chosen for ranks or labels: its probabilities are made to hold.
            bag.calibration = self.predictor_.calibration = calibration.fit(y_fit, oof)
        served = self.predictor_.calibrated(oof)  # what the kept model would have said
        self._predictor_files = self.predictor_.to_files()[0]
        self.task_, self.metric_, self.classes_ = task, metric.name, classes
        self.schema_ = schema
        self.n_features_in_ = frame.shape[1]
        self.feature_names_in_ = np.array(frame.columns, dtype=object)
        self.threshold_ = choose_threshold(task, metric, y_fit, served, costs)
        self.trials_ = [t.record() for t in trials]
        ensemble = TrialResult(
            id=-1,
            learner="ensemble",
            params={
                "members": [{"trial": candidates[i].id, "weight": w} for i, w in weights.items()]
            },
            fold_scores=[metric.value(y_fit[va], oof[va]) for _, va in folds],
            score=metric.value(y_fit, oof),
            predict_seconds_per_1000=seconds,
        )
        self.beats_baselines_, self.baseline_margin_ = baseline_verdict(ensemble, trials, metric)
        self.leaderboard_ = leaderboard(
            ensemble, trials, metric, {candidates[i].id: w for i, w in weights.items()}, budget
        )
        self.oof_predictions_ = served
        self.model_size_ = sum(len(blob) for blob in self._predictor_files.values())
        self.report_ = None
        self.fit_seconds_ = time.monotonic() - started
        if self.report:
            with thread_limit(1):  # its predictions are of small batches (2,000 rows at most)
                self.report_ = build_report(self, bag, frame, raw, y_fit, served, ws)
            timings["report"] = time.monotonic() - started - sum(timings.values())
        self.timings_ = {k: round(v, 3) for k, v in timings.items()}
        self.fit_seconds_ = time.monotonic() - started
        self.content_hash_ = persist.content_hash(self._files())
        return self

    # -- predict -------------------------------------------------------------------------
    def _native(self, X: Any) -> np.ndarray:
        predictor = self._check_fitted()
        frame: pd.DataFrame | dict[str, list[Any]]
        if isinstance(X, Mapping) and X and all(isinstance(v, list) for v in X.values()):
            frame = check_columns(X)  # lists of values: parsed without a DataFrame
        else:
            frame = check_frame(X)
        if set(frame.keys()).isdisjoint(predictor.schema.names()):
            # Absent columns count as missing values, but none at all is a mistake (a
            # numpy array without names, renamed columns), not a row to guess about.
            raise InvalidInput(
                "none of the model's columns are in the input; it expects "
                + ", ".join(predictor.schema.names()),
                field="X",
            )
        return predictor.predict(parse(frame, predictor.schema))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``."""
        if self._check_fitted().task is TaskType.regression:
            raise Conflict("predict_proba needs a classification model; this one is a regressor")
        return self._native(X)

    def predict(self, X: Any) -> np.ndarray:
        """Labels (abstaining below ``confidence_threshold``) or regression values."""
        pred = self._native(X)
        if self.task_ is TaskType.regression:
            return pred
        assert self.classes_ is not None
        return decide(
            pred,
            self.classes_,
            self.threshold_,
            self.confidence_threshold,
            self.fallback_label,
        )

    def evaluate(self, X: Any, y: Any) -> dict[str, Any]:
        """A report on held-out data (e.g. the frozen test split)."""
        from loopml.automl.report import holdout_report

        return holdout_report(self, X, y)

    # -- persistence -----------------------------------------------------------------------
    def _files(self) -> dict[str, bytes]:
        self._check_fitted()
        files = dict(self._predictor_files)
        files["automl.json"] = json.dumps(
            fitted_state.state(self), sort_keys=True, default=persist.json_default
        ).encode()
        return files

    def save(self, path: str | Path) -> str:
        """Write the fitted model to ``path``; return its content hash."""
        self.content_hash_ = persist.write(path, self._files())
        return self.content_hash_

    @classmethod
    def load(cls, path: str | Path, expected_hash: str | None = None) -> AutoML:
        """Load a saved model, refusing it if any byte differs from what was saved."""
        files, digest = persist.read(path, expected_hash)
        state = json.loads(files.pop("automl.json"))
        model = cls(**state["params"])
        fitted_state.restore(model, Predictor.from_files(files), files, state)
        model.content_hash_ = digest
        return model

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        names = (
            "task",
            "metric",
            "time_budget",
            "seed",
            "n_jobs",
            "learners",
            "n_folds",
            "max_trials",
            "cost_matrix",
            "confidence_threshold",
            "fallback_label",
            "log_path",
            "on_progress",
            "report",
            "prediction_budget",
            "backbone",
            "searcher",
        )
        return {n: getattr(self, n) for n in names}

    def set_params(self, **params: Any) -> AutoML:
        valid = self.get_params()
        for key, value in params.items():
            if key not in valid:
                raise InvalidInput(f"unknown parameter {key!r}", field=key)
            setattr(self, key, value)
        return self


__all__ = ["REGISTRY", "AutoML"]
