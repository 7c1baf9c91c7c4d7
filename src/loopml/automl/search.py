"""The search: baselines, then a portfolio of strong defaults, then Optuna's TPE.

Time is the first-class input: every fit gets a deadline, a learner whose expected
fit time exceeds what is left is not started, and the loop stops at the budget (or
at ``max_trials``, which makes a run repeatable regardless of machine speed).
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from loopml.automl.cfo import CostFrugalSampler
from loopml.automl.cv import TrialResult, Workspace, evaluate
from loopml.automl.learners import Learner, get_learner
from loopml.automl.metrics import Metric
from loopml.automl.predictor import REFIT_FACTOR

BASELINES: tuple[tuple[str, dict[str, Any]], ...] = (("prior", {}), ("linear", {"C": 1.0}))
_KEEP = 20  # candidates whose fold models and OOF predictions stay in memory
_PORTFOLIO_ORDER = 3  # portfolio rounds: each learner's first config, then its second ...
_FIRST_SECONDS = 5.0
_ANYTIME_SECONDS = 1.0  # per fold: the least an anytime learner is started with
_ANYTIME_SHARE = 0.7  # of the time left: what an anytime learner's trial may take
_LIKELY_MEMBERS = 5


@dataclass(frozen=True)
class Progress:
    """What a progress bar shows after each trial."""

    trials_done: int
    best_score: float | None
    best_learner: str | None
    elapsed: float
    time_left: float


def _portfolio(learners: list[Learner], ws: Workspace) -> list[tuple[Learner, dict[str, Any]]]:
    n_rows = len(ws.y)
    configs = {lr.name: lr.portfolio(ws.task, n_rows) for lr in learners}
    ordered = []
    for round_ in range(_PORTFOLIO_ORDER):
        for lr in learners:  # in priority order (DEFAULT_LEARNERS)
            if round_ < len(configs[lr.name]):
                ordered.append((lr, configs[lr.name][round_]))
    return ordered


class Search:
    """Run the trials of one AutoML fit.

    Parameters
    ----------
    learners : list of Learner
        The searched learners.
    ws : Workspace
        Folds and encodings.
    metric : Metric
        What is maximised (via ``Metric.score``).
    time_budget : float
        Seconds for the whole search.
    max_trials : int or None
        Stop after this many searched trials (baselines excluded).
    n_jobs, seed : int
        Threads per fit and the seed of the sampler.
    searcher : {"tpe", "cfo"}
        Optuna's TPE, or the cost-frugal local search of :mod:`loopml.automl.cfo`.
    log_path : path or None
        Where each trial is appended as a JSON line.
    on_progress : callable or None
        Called with a :class:`Progress` after every trial.
    """

    def __init__(
        self,
        learners: list[Learner],
        ws: Workspace,
        metric: Metric,
        time_budget: float,
        max_trials: int | None,
        n_jobs: int,
        seed: int,
        searcher: str = "tpe",
        log_path: str | Path | None = None,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        self.learners = {lr.name: lr for lr in learners}
        self.ws, self.metric = ws, metric
        self.time_budget, self.max_trials = time_budget, max_trials
        self.n_jobs, self.seed, self.searcher = n_jobs, seed, searcher
        self.log_path = Path(log_path) if log_path else None
        self.on_progress = on_progress
        self.trials: list[TrialResult] = []
        self._durations: dict[str, list[float]] = {}
        self._passed_over: set[str] = set()

    # -- bookkeeping -------------------------------------------------------------
    def log(self, trials: list[TrialResult]) -> None:
        """Append ``trials`` to the trial log, one JSON line each (no log: nothing)."""
        if self.log_path is not None and trials:
            with self.log_path.open("a", encoding="utf-8") as fh:
                fh.writelines(json.dumps(t.record(), default=float) + "\n" for t in trials)

    def _record(self, trial: TrialResult) -> None:
        self.trials.append(trial)
        if trial.status == "ok":
            self._durations.setdefault(trial.learner, []).append(trial.fit_seconds)
        kept = [t for t in self.trials if t.models is not None and not t.baseline]
        if len(kept) > _KEEP:
            worst = min(kept, key=lambda t: self._oriented(t.score))
            worst.models, worst.oof = None, None
        self.log([trial])
        if self.on_progress is not None:
            best = self.best()
            self.on_progress(
                Progress(
                    trials_done=len(self.trials),
                    best_score=None if best is None else best.score,
                    best_learner=None if best is None else best.learner,
                    elapsed=time.monotonic() - self._start,
                    time_left=max(0.0, self._deadline - time.monotonic()),
                )
            )

    def _oriented(self, value: float) -> float:
        return value if self.metric.greater_is_better else -value

    def best(self) -> TrialResult | None:
        done = [t for t in self.trials if t.status == "ok" and not np.isnan(t.score)]
        if not done:
            return None
        sign = 1 if self.metric.greater_is_better else -1
        return max(done, key=lambda t: sign * t.score)

    def _refit_reserve(self) -> float:
        """Seconds to keep for refitting the likely ensemble members on all rows."""
        done = [t for t in self.trials if t.status == "ok" and not t.baseline and t.oof is not None]
        sign = 1 if self.metric.greater_is_better else -1
        top = sorted(done, key=lambda t: -sign * t.score)[:_LIKELY_MEMBERS]
        return REFIT_FACTOR * sum(t.fit_seconds / self.ws.n_folds for t in top)

    def _expected_seconds(self, learner: Learner) -> float:
        seen = self._durations.get(learner.name)
        if seen:
            return float(np.median(seen))
        unit = self._durations.get("lightgbm") or self._durations.get("linear") or [0.0]
        scale = 1.0 if "lightgbm" in self._durations else 5.0
        return float(np.median(unit)) * scale * learner.cost

    def _run(
        self,
        learner: Learner,
        params: dict[str, Any],
        baseline: bool = False,
        on_fold: Callable[[int, float], None] | None = None,
        min_seconds: float = 0.0,
    ) -> TrialResult:
        trial = TrialResult(
            id=len(self.trials), learner=learner.name, params=params, baseline=baseline
        )
        try:  # imports (PyTorch: seconds) come out of the search's time, not the folds'
            learner.prepare()
        except Exception as exc:
            trial.status, trial.error = "failed", f"{type(exc).__name__}: {exc}"
            self._record(trial)
            return trial
        deadline = max(self._deadline - self._refit_reserve(), time.monotonic() + min_seconds)
        now = time.monotonic()
        if learner.anytime and len(self.learners) > 1:  # it would take all it is given
            deadline = now + max(_ANYTIME_SHARE * (deadline - now), min_seconds)
        elif not baseline and (untried := self._untried(learner)):
            # A learner slower than the cost model says (CatBoost on ten classes) would
            # spend what the untried learners need: it gets an equal share with them.
            deadline = now + max((deadline - now) / (1 + untried), min_seconds)
        if self.max_trials is not None:
            # A bounded search promises the same models every run: no fit may be cut
            # short by the clock (the budget still ends the loop between trials).
            deadline = math.inf
        try:
            evaluate(trial, learner, self.ws, self.metric, self.n_jobs, deadline, on_fold)
        finally:
            self._record(trial)
        return trial

    def _untried(self, learner: Learner) -> int:
        """How many learners other than ``learner`` have had no trial yet (one passed over
        as too slow for the time left counts as tried: it will not get its turn)."""
        tried = {t.learner for t in self.trials if not t.baseline} | self._passed_over
        return sum(1 for name in self.learners if name != learner.name and name not in tried)

    def _has_other(self, learner: Learner) -> bool:
        return any(not lr.anytime for lr in self.learners.values() if lr is not learner)

    # -- the loop ------------------------------------------------------------------
    def run(self) -> list[TrialResult]:
        self._start = time.monotonic()
        self._deadline = self._start + self.time_budget
        for name, params in BASELINES:
            self._run(get_learner(name), dict(params), baseline=True)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler: optuna.samplers.BaseSampler = optuna.samplers.TPESampler(
                seed=self.seed, multivariate=True, group=True, n_startup_trials=5
            )
        if self.searcher == "cfo":
            sampler = CostFrugalSampler(seed=self.seed, timed=self.max_trials is None)
        study = optuna.create_study(
            direction="maximize",
            sampler=sampler,
            pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1),
        )
        names = sorted(self.learners)
        for lr, params in _portfolio(list(self.learners.values()), self.ws):
            study.enqueue_trial(
                {"learner": lr.name, **{f"{lr.name}.{k}": v for k, v in params.items()}}
            )
        searched = 0
        first = True
        n_portfolio = len(study.get_trials(deepcopy=False))
        while self.max_trials is None or searched < self.max_trials:
            left = self._deadline - self._refit_reserve() - time.monotonic()
            if left <= 0 and not first:
                break
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                trial = study.ask()
                learner = self.learners[trial.suggest_categorical("learner", names)]
                params = learner.space(trial, self.ws.task, len(self.ws.y))
            left_to_fit = left - learner.setup_seconds()
            too_slow = self.max_trials is None and self._expected_seconds(learner) > left_to_fit
            if learner.anytime:  # it fits its training to the time it is given
                too_slow = (
                    self.max_trials is None and left_to_fit < _ANYTIME_SECONDS * self.ws.n_folds
                )
            # The first real model is fitted however little time is left, but not by an
            # anytime learner given under a second a fold while another can go first: a
            # CNN's 5 s of an 8 s budget bought less than an epoch a fold, and weight 0.
            starved = first and too_slow and learner.anytime and self._has_other(learner)
            if (not first and too_slow) or starved:
                self._passed_over.add(learner.name)
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                if not first and all(
                    self._expected_seconds(lr) > left for lr in self.learners.values()
                ):
                    break
                continue
            searched += 1

            def on_fold(step: int, value: float, trial: optuna.Trial = trial) -> None:
                trial.report(value, step)
                # The portfolio's known-good defaults always finish; only searched
                # configurations are pruned.
                if trial.number >= n_portfolio and trial.should_prune():
                    raise optuna.TrialPruned()

            try:
                # However small the budget, the fit ends with one real model.
                result = self._run(
                    learner, params, on_fold=on_fold, min_seconds=_FIRST_SECONDS if first else 0
                )
                first = False
            except optuna.TrialPruned:
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                continue
            if result.status == "ok" and not np.isnan(result.score):
                # result.score, not its OOF: a trial worse than the kept ones has none.
                study.tell(trial, self._oriented(result.score))
            else:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
        return self.trials


def greedy_ensemble(
    candidates: list[TrialResult],
    y: np.ndarray,
    metric: Metric,
    rounds: int = 25,
    prediction_budget: float | None = None,
) -> dict[int, float]:
    """Caruana et al.'s ensemble selection with replacement over OOF predictions.

    With ``prediction_budget`` (seconds per 1,000 rows), the members' summed prediction
    time stays within it; the fastest candidate is the fallback when none fits alone.
    Returns weights (summing to 1) keyed by index into ``candidates``.
    """
    preds = [np.asarray(c.oof, dtype=np.float64) for c in candidates]
    costs = [
        0.0 if np.isnan(c.predict_seconds_per_1000) else c.predict_seconds_per_1000
        for c in candidates
    ]
    limit = np.inf if prediction_budget is None else prediction_budget
    scores = [metric.score(y, p) for p in preds]
    affordable = [i for i in range(len(preds)) if costs[i] <= limit]
    if not affordable:
        affordable = [int(np.argmin(costs))]
    best = max(affordable, key=lambda i: scores[i])
    counts = {best: 1}
    spent = costs[best]
    total = preds[best].copy()
    best_score, best_counts = scores[best], dict(counts)
    for _ in range(rounds - 1):
        n = sum(counts.values())
        options = [i for i in range(len(preds)) if i in counts or spent + costs[i] <= limit]
        trial_scores = {i: metric.score(y, (total + preds[i]) / (n + 1)) for i in options}
        pick = max(trial_scores, key=lambda i: trial_scores[i])
        if pick not in counts:
            spent += costs[pick]
        counts[pick] = counts.get(pick, 0) + 1
        total += preds[pick]
        if trial_scores[pick] > best_score + 1e-12:
            best_score, best_counts = trial_scores[pick], dict(counts)
    n = sum(best_counts.values())
    return {i: c / n for i, c in sorted(best_counts.items())}
