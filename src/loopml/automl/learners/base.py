"""The learner interface every model family implements.

A learner is stateless: it declares its search space, its portfolio of strong
default configurations and its relative cost, fits a :class:`Model` on one
training fold, and loads a model back from the files it dumped. Models predict
class probabilities (``n x k``) for classification and values for regression.
"""

from __future__ import annotations

import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import optuna

from loopml.core.enums import TaskType

_PARALLEL_CELLS = 500_000
# threadpoolctl's controller and how many modules were loaded when it was made: making one
# scans the loaded libraries (6 ms), so it is made again only after imports (torch's).
_pools: dict[int, Any] = {}
_pools_lock = threading.Lock()
_timing: ContextVar[bool] = ContextVar("loopml_timing", default=False)


@contextmanager
def timed_predictions() -> Iterator[None]:
    """Predictions made in this block are being timed: a model that reuses work across
    calls (a backbone's features of images it has seen) does it afresh, as for new rows."""
    token = _timing.set(True)
    try:
        yield
    finally:
        _timing.reset(token)


def timing() -> bool:
    """Whether the predictions now being made are timed (see :func:`timed_predictions`)."""
    return _timing.get()


@dataclass(frozen=True)
class FitContext:
    """Everything a learner needs besides its parameters."""

    task: TaskType
    n_classes: int
    seed: int
    n_jobs: int
    deadline: float  # time.monotonic() after which fitting must stop
    categorical: list[int] = field(default_factory=list)  # native view only

    def time_left(self) -> float:
        return self.deadline - time.monotonic()

    def threads(self, X: np.ndarray) -> int:
        """Threads for fitting on ``X``: one for small data, where threads only contend
        (OpenMP workers spinning on a busy machine made small fits 50x slower)."""
        return self.n_jobs if X.size >= _PARALLEL_CELLS else 1


@contextmanager
def thread_limit(threads: int) -> Iterator[None]:
    """At most ``threads`` threads in the BLAS and OpenMP pools (numpy, scipy,
    scikit-learn, LightGBM, PyTorch's operators) while the block runs.

    Their default is every core; on small data their workers only wait for each other.
    On 2 cores, a logistic regression of 1,137 rows took 0.03 s with one BLAS thread,
    0.23 s with two, and 1.8 s with two while another process wanted a core: the threads
    a learner is given must hold for the libraries it calls too.
    """
    with _pools_lock:
        loaded = len(sys.modules)
        if loaded not in _pools:
            from threadpoolctl import ThreadpoolController

            _pools.clear()
            _pools[loaded] = ThreadpoolController()
        pools = _pools[loaded]
    with pools.limit(limits=max(1, threads)):
        yield


class Model(Protocol):
    """A fitted model of one fold."""

    def predict(self, X: np.ndarray) -> np.ndarray: ...

    def dump(self) -> tuple[dict[str, bytes], dict[str, Any]]:
        """Files and JSON metadata from which :meth:`Learner.load` rebuilds the model."""
        ...


class Learner(ABC):
    """A model family behind the registry.

    Class attributes
    ----------------
    name : str
        Registry name, used in leaderboards and saved models.
    family : str
        The encoding it consumes: ``"native"``, ``"dense"``, ``"image"`` (normalised
        pixels) or ``"pixels"`` (in [0, 1]).
    cost : float
        Relative cost of one fit compared with LightGBM's defaults (1.0); the search
        uses it to avoid starting what the remaining budget cannot finish.
    early_stopping : bool
        True when ``fit`` uses validation rows to stop early. Cross-validation then
        passes rows held out of the training fold, never the scored fold.
    images_only : bool
        True for learners of the ``image`` view: searched only where the data has an
        image column.
    anytime : bool
        True when ``fit`` shapes its training to the deadline it is given (a learning
        rate schedule that completes by then): the search never skips it as too slow.
    early_stop_rows : int or None
        Fewest training rows for which cross-validation holds rows out for early
        stopping; None: the default for boosting (below 5,000 rows it does better with
        every row).
    """

    name: str = ""
    family: str = "native"
    cost: float = 1.0
    early_stopping: bool = False
    images_only: bool = False
    early_stop_rows: int | None = None
    anytime: bool = False

    def available(self) -> str | None:
        """None when usable here, otherwise why not (e.g. a missing package)."""
        return None

    def with_backbone(self, weights: str) -> Learner:
        """This learner for a fit whose pretrained backbone is the file ``weights``;
        learners that use none are returned as they are."""
        return self

    def setup_seconds(self) -> float:
        """Seconds :meth:`prepare` would still take (imports not yet made); the search
        counts them before it starts this learner."""
        return 0.0

    def prepare(self) -> None:
        """Import what ``fit`` needs; the search calls it before a trial's clock starts."""
        return None

    def supports(self, task: TaskType) -> bool:
        return True

    @abstractmethod
    def portfolio(self, task: TaskType, n_rows: int) -> list[dict[str, Any]]:
        """Strong default configurations, best first."""

    @abstractmethod
    def space(self, trial: optuna.Trial, task: TaskType, n_rows: int) -> dict[str, Any]:
        """Sample one configuration; parameter names must be prefixed ``f"{name}."``."""

    @abstractmethod
    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        X_val: np.ndarray | None,
        y_val: np.ndarray | None,
        params: dict[str, Any],
        ctx: FitContext,
    ) -> Model:
        """Fit on training rows; validation rows (held out of the training rows, None in
        the final refit and for learners that do not stop early) may be used for early
        stopping only."""

    def full_params(self, params: dict[str, Any], fold_models: list[Any]) -> dict[str, Any]:
        """Parameters for the final refit on all rows, where no validation rows exist.

        Boosting learners fix the number of rounds their fold models early-stopped at.
        """
        return params

    def boosted_rounds(self, model: Any) -> int | None:
        """Rounds a boosted ``model`` predicts with; None for learners that do not boost."""
        return None

    def truncated(self, model: Any, rounds: int) -> Model:
        """``model`` predicting with its first ``rounds`` rounds only (boosting never
        changes earlier trees, so they are the model that many rounds would have fitted)."""
        raise NotImplementedError(f"{self.name} models cannot be truncated")

    @abstractmethod
    def load(self, files: dict[str, bytes], meta: dict[str, Any]) -> Model:
        """Rebuild a model from what its ``dump`` returned, running no code from the files."""

    def suggest(self, trial: optuna.Trial, key: str, *args: Any, **kwargs: Any) -> Any:
        """Shorthand for a prefixed Optuna suggestion; kind from the first argument."""
        full = f"{self.name}.{key}"
        low = args[0]
        if isinstance(low, list):
            return trial.suggest_categorical(full, low)
        if isinstance(low, int) and isinstance(args[1], int):
            return trial.suggest_int(full, low, args[1], **kwargs)
        return trial.suggest_float(full, float(low), float(args[1]), **kwargs)


def proba_columns(p: np.ndarray, n_classes: int, classes: Any = None) -> np.ndarray:
    """Probabilities as ``n x k`` (binary learners often return only P(class 1)).

    ``classes`` are the codes of ``p``'s columns: a training fold can miss a rare class,
    and the model then has fewer columns; the classes it never saw get probability 0.
    """
    p = np.asarray(p, dtype=np.float64)
    if p.ndim == 1:
        if n_classes != 2:
            return p[:, None]
        out = np.empty((len(p), 2))
        out[:, 1] = p
        np.subtract(1.0, p, out=out[:, 0])
        return out
    if classes is not None and p.shape[1] < n_classes:
        out = np.zeros((len(p), n_classes))
        out[:, np.asarray(classes, dtype=np.int64)] = p
        return out
    return p


ROUNDS_KEY = "_rounds"  # set by full_params: boost exactly this many rounds


def take_rounds(params: dict[str, Any], default: int) -> tuple[dict[str, Any], int]:
    """The library's own parameters, and how many rounds to boost when there is nothing
    to early-stop on: a refit's fixed count, else the configuration's ``rounds``."""
    own = dict(params)
    rounds = own.pop("rounds", default)
    fixed = own.pop(ROUNDS_KEY, None)
    return own, int(fixed or rounds)


def refit_rounds(rounds: list[int]) -> int:
    """Rounds for a refit on all rows: the folds' mean, a little more for the extra data."""
    return max(1, round(float(np.mean(rounds)) * 1.1))


def min_leaf(n_rows: int, default: int = 20) -> int:
    """A minimum leaf size that still lets trees split on tiny data."""
    return int(max(1, min(default, n_rows // 10)))
