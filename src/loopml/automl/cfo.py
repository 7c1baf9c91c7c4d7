"""A cost-frugal local search (FLAML's CFO) as an Optuna sampler.

Each learner keeps a FLOW2 walk: from its best configuration so far it tries one step
along a random direction, then the opposite step, and moves to whichever improves. A
step that lands on a configuration already tried is not spent on a fit: it counts as a
failed step at once, and while that happens at the start the step grows (integer and
categorical dimensions need a coarse one to move at all). After many proposals without
improvement the step shrinks, and a walk whose step has shrunk away restarts from a
random point. Which learner gets the next trial follows FLAML's estimated cost for
improvement with an ensemble: the longer of the time a learner has gone without
improving and the time its last improvement took; learners are drawn with probability
inverse to it. A learner the search passed over as too slow for the time left is not
drawn again.

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
_GROW = 1.1  # FLAML's first phase: a step too small to leave the point grows
_SHRINK = 0.5
_SMALLEST = 1e-4  # FLAML's floor for continuous dimensions
_REDRAWS = 20  # proposals tried per call before one is spent on a fit regardless


@dataclass
class _Walk:
    """One learner's FLOW2 state over its dimensions (each scaled to [0, 1])."""

    space: dict[str, BaseDistribution]
    at: dict[str, Any]  # the configuration walked from
    value: float  # its score (higher is better); -inf: a restart point not yet scored
    step: float
    floor: float  # below this the walk restarts
    direction: np.ndarray | None = None
    tried_back: bool = False  # the opposite step of ``direction`` is the one out
    stuck: int = 0  # proposals without improvement since the step last changed
    moved: bool = False  # has improved since it started: the step no longer grows
    seen: set[tuple[Any, ...]] = field(default_factory=set)

    @property
    def dims(self) -> int:
        return len(self.space)

    def key(self, config: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(config[k] for k in self.space)


@dataclass
class _Ledger:
    """What the learner choice needs: time spent, and when the best value improved."""

    spent: float = 0.0
    best: float = -math.inf
    found_at: float = 0.0  # ``spent`` when ``best`` was found
    found_before: float = 0.0  # ... and when the best before it was
    first_cost: float = 0.0
    trials: int = 0


@dataclass
class _Proposal:
    learner: str
    params: dict[str, Any] = field(default_factory=dict)
    walked: bool = False


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
        self._skipped: set[str] = set()
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
        if proposal is None and "." in param_name:
            # Optuna does not ask for a categorical of one choice (a single learner).
            proposal = self._proposals[trial.number] = _Proposal(param_name.split(".", 1)[0])
        if proposal is not None and not proposal.params:
            proposal.params = self._propose(proposal.learner)
            proposal.walked = bool(proposal.params)
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
        if learner is None:
            return
        if state is TrialState.PRUNED and not trial.intermediate_values:
            # Passed over as too slow for the time left, which only shrinks.
            self._skipped.add(str(learner))
            return
        seconds = 1.0 if not self.timed or started is None else time.monotonic() - started
        # A pruned or failed step is a step that did not improve.
        value = values[0] if state is TrialState.COMPLETE and values else -math.inf
        self._book(str(learner), seconds, value)
        walked = proposal is not None and proposal.walked
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
                at = {k: trial.params[k] for k in space}
                walk = self._walks[learner] = _new_walk(space, at, value)
                walk.seen.add(walk.key(at))
            return
        config = {k: trial.params.get(k, v) for k, v in walk.at.items()}
        walk.seen.add(walk.key(config))
        if value > walk.value:  # move: the next step takes a new direction
            walk.at, walk.value = config, value
            walk.direction, walk.tried_back, walk.stuck = None, False, 0
            walk.moved = True
            return
        if not walked:
            return
        if not math.isfinite(walk.value):  # a restart point that failed: another
            walk.at = {k: self._anywhere(d) for k, d in walk.space.items()}
            return
        self._failed(walk)

    def _failed(self, walk: _Walk) -> None:
        """One proposal of ``walk`` did not improve: the opposite step next, else a new
        direction; after 2**dims of them (FLAML's count) the step shrinks."""
        if walk.direction is not None and not walk.tried_back:
            walk.tried_back = True
        else:
            walk.direction, walk.tried_back = None, False
        walk.stuck += 1
        if walk.stuck >= 2 ** min(9, walk.dims):
            walk.step *= _SHRINK
            walk.stuck = 0
        if walk.step < walk.floor:  # converged here: start again somewhere else
            walk.at = {k: self._anywhere(d) for k, d in walk.space.items()}
            walk.value = -math.inf
            walk.step = _STEP * math.sqrt(walk.dims)
            walk.direction, walk.tried_back, walk.stuck = None, False, 0

    def _propose(self, learner: str) -> dict[str, Any]:
        walk = self._walks.get(learner)
        if walk is None:
            return {}
        out = dict(walk.at)
        for _ in range(_REDRAWS):
            if not math.isfinite(walk.value):  # a restart: the new point itself first
                if walk.key(walk.at) not in walk.seen:
                    return dict(walk.at)
                walk.at = {k: self._anywhere(d) for k, d in walk.space.items()}
                continue
            out = self._stepped(walk)
            if walk.key(out) not in walk.seen:
                return out
            # Tried already (often: the step rounds back to the same integer): no fit.
            self._failed(walk)
            if not walk.moved:
                walk.step *= _GROW
        return out

    def _stepped(self, walk: _Walk) -> dict[str, Any]:
        """The configuration one step from ``walk.at`` along its direction (drawn anew
        when it has none), or back along it."""
        if walk.direction is None:
            u = self._rng.normal(size=walk.dims)
            walk.direction = u / (np.linalg.norm(u) or 1.0)
        sign = -1.0 if walk.tried_back else 1.0
        out = dict(walk.at)
        for key, du in zip(walk.space, walk.direction, strict=True):
            dist = walk.space[key]
            move = sign * walk.step * float(du)
            if isinstance(dist, CategoricalDistribution):
                # A move across a category's share of [0, 1] changes it, to another one.
                others = [c for c in dist.choices if c != walk.at[key]]
                if others and self._rng.random() < min(1.0, abs(move) * len(dist.choices)):
                    out[key] = others[int(self._rng.integers(len(others)))]
                continue
            x = _to_unit(dist, walk.at[key]) + move
            out[key] = _from_unit(dist, min(1.0, max(0.0, x)))
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
            ledger.found_before, ledger.found_at = ledger.found_at, ledger.spent
            ledger.best = value

    def _choose(self, choices: Sequence[Any]) -> Any:
        open_ = [c for c in choices if str(c) not in self._skipped] or list(choices)
        unseen = [c for c in open_ if str(c) not in self._ledgers]
        if unseen:
            return unseen[int(self._rng.integers(len(unseen)))]
        costs = np.array([_eci(self._ledgers[str(c)]) for c in open_])
        weights = 1.0 / np.maximum(costs, 1e-6)
        return open_[int(self._rng.choice(len(open_), p=weights / weights.sum()))]


def _eci(ledger: _Ledger) -> float:
    """FLAML's estimated cost for improvement of one learner, as with an ensemble (no
    term for the gap to the best learner: a weaker learner can still join)."""
    if not math.isfinite(ledger.best):
        return 2 * ledger.first_cost + ledger.spent
    since = ledger.spent - ledger.found_at
    between = ledger.found_at - ledger.found_before
    return max(since, between, ledger.first_cost)


def _new_walk(space: dict[str, BaseDistribution], at: dict[str, Any], value: float) -> _Walk:
    """A walk from ``at``: FLAML's first step, at least twice the coarsest integer
    granularity (a smaller one rounds back to where it stands)."""
    coarse = max((_granularity(d) for d in space.values()), default=0.0)
    floor = max(_SMALLEST, coarse) * math.sqrt(len(space))
    step = max(_STEP * math.sqrt(len(space)), 2 * coarse)
    return _Walk(space, at, value, step, floor)


def _granularity(dist: BaseDistribution) -> float:
    """The smallest move in [0, 1] that can change a value of ``dist``."""
    if isinstance(dist, CategoricalDistribution):
        return 0.0
    if isinstance(dist, IntDistribution) and dist.high > dist.low:
        if dist.log:
            return math.log1p(1 / dist.low) / (math.log(dist.high) - math.log(dist.low))
        return 1 / (dist.high - dist.low)
    return 0.0


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
        step = dist.step or 1
        x = dist.low + round((x - dist.low) / step) * step
        return int(min(dist.high, max(dist.low, x)))
    return float(min(high, max(low, x)))
