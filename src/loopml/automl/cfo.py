"""A cost-frugal local search (FLAML's CFO) as an Optuna sampler.

Each learner keeps a FLOW2 walk: from its best configuration so far it tries one step
along a random direction, then the opposite step, and moves to whichever improves; after
directions fail in turn the step shrinks, and a walk whose step has shrunk away restarts
from a random point. Which learner gets the next trial follows FLAML's estimated cost for
improvement: the time a learner has gone without improving, or the time its last rate
of improvement would need to catch the best learner, whichever is longer; learners are
drawn with probability inverse to it.

The walks start from the best of each learner's finished trials (the search's portfolio
of strong defaults), not from FLAML's cheapest corner: the portfolio is what loopml runs
first whatever the sampler.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial, TrialState

LEARNER = "learner"
_STEP = 0.1  # FLAML's initial step, times the square root of the dimensions
_SHRINK = 0.5
_SMALLEST = 0.01


@dataclass
class _Walk:
    """One learner's FLOW2 state over its numeric dimensions (scaled to [0, 1])."""

    space: dict[str, BaseDistribution]
    at: dict[str, Any]  # the configuration walked from
    value: float  # its score (higher is better)
    step: float
    direction: np.ndarray | None = None
    tried_back: bool = False  # the opposite step of ``direction`` is the one out
    failed: int = 0  # directions that failed both ways since the step last changed


@dataclass
class _Ledger:
    """What the learner choice needs: time spent, and when the best value improved."""

    spent: float = 0.0
    best: float = -math.inf
    found_at: float = 0.0  # ``spent`` when ``best`` was found
    found_before: float = 0.0  # ... and when the best before it was
    gain: float = 0.0  # how much the last improvement improved
    first_cost: float = 0.0
    trials: int = 0


@dataclass
class _Proposal:
    learner: str
    params: dict[str, Any] = field(default_factory=dict)


class CostFrugalSampler(optuna.samplers.BaseSampler):
    """FLAML's CFO for loopml's search space: ``learner``, then ``"{learner}.{param}"``.

    Parameters
    ----------
    seed : int or None
        Seeds the directions, restarts and learner draws.
    timed : bool
        Measure the learners' costs in seconds, as FLAML does. False counts trials
        instead, which makes the proposals repeat exactly for a seed (a search bounded
        by ``max_trials`` promises that).
    """

    def __init__(self, seed: int | None = None, timed: bool = True) -> None:
        self.timed = timed
        self._rng = np.random.default_rng(seed)
        self._random = optuna.samplers.RandomSampler(seed=seed)
        self._walks: dict[str, _Walk] = {}
        self._ledgers: dict[str, _Ledger] = {}
        self._proposals: dict[int, _Proposal] = {}
        self._started: dict[int, float] = {}

    # -- Optuna's sampler interface --------------------------------------------------------
    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return {}

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._started[trial.number] = time.monotonic()

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        if param_name == LEARNER:
            assert isinstance(param_distribution, CategoricalDistribution)
            learner = self._choose(param_distribution.choices)
            self._proposals[trial.number] = _Proposal(str(learner))
            return learner
        proposal = self._proposals.get(trial.number)
        if proposal is not None and not proposal.params:
            proposal.params = self._propose(proposal.learner)
        if proposal is not None and param_name in proposal.params:
            value = proposal.params[param_name]
            if param_distribution._contains(param_distribution.to_internal_repr(value)):
                return value
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        started = self._started.pop(trial.number, None)
        proposal = self._proposals.pop(trial.number, None)
        learner = trial.params.get(LEARNER)
        if learner is None or (state is TrialState.PRUNED and not trial.intermediate_values):
            return  # passed over before it ran: it cost nothing and says nothing
        seconds = 1.0 if not self.timed or started is None else time.monotonic() - started
        # A pruned or failed step is a step that did not improve.
        value = values[0] if state is TrialState.COMPLETE and values else -math.inf
        self._book(str(learner), seconds, value)
        walked = proposal is not None and bool(proposal.params)
        self._step(str(learner), trial, value, walked)

    # -- the walks ---------------------------------------------------------------------------
    def _step(self, learner: str, trial: FrozenTrial, value: float, walked: bool) -> None:
        """Move ``learner``'s walk after ``trial``: a step it proposed (``walked``), or
        another trial (the portfolio's), which it moves to only if that one is better."""
        prefix = learner + "."
        walk = self._walks.get(learner)
        if walk is None:
            space = {k: d for k, d in trial.distributions.items() if k.startswith(prefix)}
            if space and math.isfinite(value):
                dims = sum(1 for d in space.values() if not _categorical(d))
                at = {k: trial.params[k] for k in space}
                self._walks[learner] = _Walk(space, at, value, _STEP * math.sqrt(max(dims, 1)))
            return
        if value > walk.value:  # move: the next step takes a new direction
            walk.at = {k: trial.params.get(k, v) for k, v in walk.at.items()}
            walk.value, walk.direction, walk.tried_back = value, None, False
            return
        if not walked:
            return
        if walk.direction is not None and not walk.tried_back:
            walk.tried_back = True
            return
        walk.direction, walk.tried_back = None, False
        walk.failed += 1
        if walk.failed >= max(2, len(walk.space)):
            walk.step *= _SHRINK
            walk.failed = 0
        if walk.step < _SMALLEST:  # converged here: start again somewhere else
            walk.at = {k: self._anywhere(d) for k, d in walk.space.items()}
            walk.value = -math.inf
            walk.step = _STEP * math.sqrt(max(len(walk.space), 1))

    def _propose(self, learner: str) -> dict[str, Any]:
        walk = self._walks.get(learner)
        if walk is None:
            return {}
        if not math.isfinite(walk.value):  # a restart: the new point itself first
            return dict(walk.at)
        numeric = [k for k, d in walk.space.items() if not _categorical(d)]
        if walk.direction is None:
            u = self._rng.normal(size=len(numeric))
            walk.direction = u / (np.linalg.norm(u) or 1.0)
        sign = -1.0 if walk.tried_back else 1.0
        out = dict(walk.at)
        for key, du in zip(numeric, walk.direction, strict=True):
            dist = walk.space[key]
            x = _to_unit(dist, walk.at[key]) + sign * walk.step * float(du)
            out[key] = _from_unit(dist, min(1.0, max(0.0, x)))
        for key, dist in walk.space.items():
            if _categorical(dist) and self._rng.random() < min(0.5, walk.step):
                assert isinstance(dist, CategoricalDistribution)
                out[key] = dist.choices[int(self._rng.integers(len(dist.choices)))]
        return out

    def _anywhere(self, dist: BaseDistribution) -> Any:
        if isinstance(dist, CategoricalDistribution):
            return dist.choices[int(self._rng.integers(len(dist.choices)))]
        return _from_unit(dist, float(self._rng.random()))

    # -- the learner choice ------------------------------------------------------------------
    def _book(self, learner: str, seconds: float, value: float) -> None:
        ledger = self._ledgers.setdefault(learner, _Ledger())
        ledger.spent += seconds
        ledger.trials += 1
        if ledger.trials == 1:
            ledger.first_cost = max(seconds, 1e-3)
        if value > ledger.best:
            ledger.gain = value - ledger.best if math.isfinite(ledger.best) else 0.0
            ledger.found_before, ledger.found_at = ledger.found_at, ledger.spent
            ledger.best = value

    def _choose(self, choices: Sequence[Any]) -> Any:
        unseen = [c for c in choices if str(c) not in self._ledgers]
        if unseen:
            return unseen[int(self._rng.integers(len(unseen)))]
        best = max(self._ledgers[str(c)].best for c in choices)
        costs = np.array([self._eci(self._ledgers[str(c)], best) for c in choices])
        weights = 1.0 / np.maximum(costs, 1e-6)
        return choices[int(self._rng.choice(len(choices), p=weights / weights.sum()))]

    @staticmethod
    def _eci(ledger: _Ledger, best: float) -> float:
        """FLAML's estimated cost for improvement of one learner."""
        if not math.isfinite(ledger.best):
            return 2 * ledger.first_cost + ledger.spent
        since = ledger.spent - ledger.found_at
        between = ledger.found_at - ledger.found_before
        eci = max(since, between, ledger.first_cost)
        if ledger.best < best:
            rate = ledger.gain / between if ledger.gain > 0 and between > 0 else 0.0
            eci = max(eci, (best - ledger.best) / rate) if rate > 0 else max(eci, 2 * ledger.spent)
        return eci


def _categorical(dist: BaseDistribution) -> bool:
    return isinstance(dist, CategoricalDistribution)


def _to_unit(dist: BaseDistribution, value: Any) -> float:
    assert isinstance(dist, FloatDistribution | IntDistribution)
    low, high, x = float(dist.low), float(dist.high), float(value)
    if dist.log:
        low, high, x = math.log(low), math.log(high), math.log(max(x, float(dist.low)))
    return 0.0 if high == low else (x - low) / (high - low)


def _from_unit(dist: BaseDistribution, u: float) -> Any:
    assert isinstance(dist, FloatDistribution | IntDistribution)
    low, high = float(dist.low), float(dist.high)
    if dist.log:
        x = math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    else:
        x = low + u * (high - low)
    if isinstance(dist, IntDistribution):
        return int(min(dist.high, max(dist.low, round(x))))
    return float(min(high, max(low, x)))
