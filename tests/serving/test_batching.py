"""Adaptive batching: the rows of requests for one model that reach the event loop in the
same turn are predicted in one call, and each request gets exactly its own rows' answers;
a lone request never waits, a failing request fails alone, and a cancelled one is skipped."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_iris

from loopml.automl import AutoML
from loopml.core.errors import InvalidInput
from loopml.serving.batching import Batcher, Columns

FAST: dict[str, Any] = {
    "learners": ["lightgbm"],
    "time_budget": 5,
    "max_trials": 2,
    "seed": 0,
    "n_jobs": 1,
    "report": False,
}
SENTINEL = -999.0  # a value whose frame the spied model refuses
GUARD_SECONDS = 30  # a batch that never runs fails the test instead of hanging it


def _frame(X: pd.DataFrame, rows: list[int]) -> Columns:
    """Columns as lists (what a request's checked rows are) of ``rows`` of ``X``."""
    return {name: X[name].iloc[rows].tolist() for name in X.columns}


def _rows(frame: Columns) -> int:
    return len(next(iter(frame.values())))


@pytest.fixture(scope="module")
def iris() -> tuple[AutoML, pd.DataFrame]:
    X, y = load_iris(return_X_y=True, as_frame=True)
    return AutoML(**FAST).fit(X, y), X


@pytest.fixture(scope="module")
def other_iris() -> AutoML:
    """A second iris classifier, trained on other rows: its probabilities differ."""
    X, y = load_iris(return_X_y=True, as_frame=True)
    return AutoML(**{**FAST, "seed": 1}).fit(X.iloc[::3], y.iloc[::3])


@pytest.fixture(scope="module")
def diabetes() -> tuple[AutoML, pd.DataFrame]:
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return AutoML(**FAST).fit(X, y), X


class Spy:
    """Wraps one model method on the instance: counts calls and the rows of each."""

    def __init__(self, real: Callable[[Any], np.ndarray], refuse: bool = False) -> None:
        self.real = real
        self.refuse = refuse
        self.sizes: list[int] = []

    def __call__(self, frame: Columns) -> np.ndarray:
        self.sizes.append(_rows(frame))
        if self.refuse and any(v == SENTINEL for values in frame.values() for v in values):
            raise InvalidInput("the sentinel row is refused", field="X")
        return self.real(frame)


@contextmanager
def spy(model: AutoML, method: str, refuse: bool = False) -> Iterator[Spy]:
    """``model.<method>`` counted (the real method still answers) while the block runs."""
    counting = Spy(getattr(model, method), refuse)
    setattr(model, method, counting)  # an instance attribute shadows the class's method
    try:
        yield counting
    finally:
        delattr(model, method)  # the class's method again


GROUPS = [[0], [50, 51], [100, 101, 102], [10], [60, 149], [1, 2, 3], [99], [120, 30]]


def run(work: Coroutine[Any, Any, Any]) -> Any:
    """``work`` on a fresh event loop; an error raised in one of the loop's callbacks (the
    batch runs in one) fails the test rather than being only logged."""
    errors: list[dict[str, Any]] = []

    async def guarded() -> Any:
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: errors.append(ctx))
        return await asyncio.wait_for(work, GUARD_SECONDS)

    result = asyncio.run(guarded())
    assert errors == []
    return result


async def together(
    batcher: Batcher, asked: list[tuple[AutoML, Columns]], errors: bool = False
) -> list[Any]:
    """The answers of requests for ``asked`` sent at once (one task each, in order)."""
    work = (batcher.predict(model, frame) for model, frame in asked)
    return await asyncio.gather(*work, return_exceptions=errors)


def check(got: np.ndarray, want: np.ndarray, rows: int, classes: int | None) -> None:
    assert got.shape == want.shape == ((rows, classes) if classes else (rows,))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


MODELS = [("iris", "predict_proba", 3), ("diabetes", "predict", None)]


@pytest.mark.parametrize(("fixture", "method", "classes"), MODELS)
def test_requests_in_one_turn_are_one_call_and_each_gets_its_own_rows(
    request: pytest.FixtureRequest, fixture: str, method: str, classes: int | None
) -> None:
    model, X = request.getfixturevalue(fixture)
    frames = [_frame(X, rows) for rows in GROUPS]
    want = [getattr(model, method)(frame) for frame in frames]
    batcher = Batcher()
    with spy(model, method) as calls:
        got = run(together(batcher, [(model, f) for f in frames]))
    assert calls.sizes == [sum(len(rows) for rows in GROUPS)]  # one call, every row
    for answer, expected, rows in zip(got, want, GROUPS, strict=True):
        check(answer, expected, len(rows), classes)


@pytest.mark.parametrize(("fixture", "method", "classes"), MODELS)
def test_requests_one_after_another_each_make_their_own_call(
    request: pytest.FixtureRequest, fixture: str, method: str, classes: int | None
) -> None:
    model, X = request.getfixturevalue(fixture)
    frames = [_frame(X, rows) for rows in GROUPS[:4]]
    want = [getattr(model, method)(frame) for frame in frames]
    batcher = Batcher()

    async def one_by_one() -> list[np.ndarray]:
        return [await batcher.predict(model, frame) for frame in frames]

    with spy(model, method) as calls:
        got = run(one_by_one())
    assert calls.sizes == [len(rows) for rows in GROUPS[:4]]  # no request waited for company
    for answer, expected, rows in zip(got, want, GROUPS, strict=False):
        check(answer, expected, len(rows), classes)


def test_two_models_in_one_turn_get_their_own_calls_and_answers(
    iris: tuple[AutoML, pd.DataFrame], other_iris: AutoML
) -> None:
    model, X = iris
    frames = [_frame(X, rows) for rows in GROUPS[:4]]
    want = {id(m): [m.predict_proba(f) for f in frames] for m in (model, other_iris)}
    # The two models answer the same rows differently: a mix-up would show.
    assert not np.allclose(np.vstack(want[id(model)]), np.vstack(want[id(other_iris)]))
    asked = [(m, f) for f in frames for m in (model, other_iris)]  # interleaved
    batcher = Batcher()
    with spy(model, "predict_proba") as first, spy(other_iris, "predict_proba") as second:
        got = run(together(batcher, asked))
    total = sum(len(rows) for rows in GROUPS[:4])
    assert first.sizes == [total] and second.sizes == [total]
    for (m, frame), answer in zip(asked, got, strict=True):
        check(answer, want[id(m)][frames.index(frame)], _rows(frame), 3)


def test_a_full_batch_is_closed_and_the_next_request_starts_another(
    iris: tuple[AutoML, pd.DataFrame],
) -> None:
    model, X = iris
    singles = [_frame(X, [i]) for i in (0, 50, 100, 1, 51, 101, 2, 52)]
    want = [model.predict_proba(frame) for frame in singles]
    batcher = Batcher(max_rows=4)
    with spy(model, "predict_proba") as calls:
        got = run(together(batcher, [(model, f) for f in singles]))
    assert calls.sizes == [4, 4]
    for answer, expected in zip(got, want, strict=True):
        check(answer, expected, 1, 3)


def test_a_request_of_max_rows_rows_is_a_batch_of_its_own(
    iris: tuple[AutoML, pd.DataFrame],
) -> None:
    model, X = iris
    frames = [_frame(X, [i, i + 50, i + 100, i + 1]) for i in (0, 10, 20)]
    want = [model.predict_proba(frame) for frame in frames]
    batcher = Batcher(max_rows=4)
    with spy(model, "predict_proba") as calls:
        got = run(together(batcher, [(model, f) for f in frames]))
    assert calls.sizes == [4, 4, 4]  # rows are counted, not requests
    for answer, expected in zip(got, want, strict=True):
        check(answer, expected, 4, 3)


def test_requests_of_more_rows_than_a_batch_holds_are_split_and_answered(
    iris: tuple[AutoML, pd.DataFrame],
) -> None:
    model, X = iris
    frames = [_frame(X, rows) for rows in GROUPS]
    want = [model.predict_proba(frame) for frame in frames]
    batcher = Batcher(max_rows=4)
    with spy(model, "predict_proba") as calls:
        got = run(together(batcher, [(model, f) for f in frames]))
    assert len(calls.sizes) > 1
    assert sum(calls.sizes) == sum(len(rows) for rows in GROUPS)  # no row predicted twice
    assert max(calls.sizes) <= 4  # no request holds more than a batch
    for answer, expected, rows in zip(got, want, GROUPS, strict=True):
        check(answer, expected, len(rows), 3)


def test_no_call_holds_more_than_max_rows_rows(iris: tuple[AutoML, pd.DataFrame]) -> None:
    model, X = iris
    frames = [_frame(X, rows) for rows in ([0, 50, 100], [1, 51, 101], [2])]
    want = [model.predict_proba(frame) for frame in frames]
    batcher = Batcher(max_rows=4)
    with spy(model, "predict_proba") as calls:
        got = run(together(batcher, [(model, f) for f in frames]))
    assert calls.sizes == [3, 4]  # the second request would overfill the first batch
    for answer, expected, frame in zip(got, want, frames, strict=True):
        check(answer, expected, _rows(frame), 3)


def test_a_request_that_fails_the_batch_fails_alone(iris: tuple[AutoML, pd.DataFrame]) -> None:
    model, X = iris
    frames = [_frame(X, rows) for rows in GROUPS[:5]]
    frames[2]["sepal length (cm)"][1] = SENTINEL
    want = [model.predict_proba(frame) for frame in frames]  # the real model takes it
    batcher = Batcher()
    with spy(model, "predict_proba", refuse=True) as calls:
        got = run(together(batcher, [(model, f) for f in frames], errors=True))
    assert isinstance(got[2], InvalidInput) and "sentinel" in str(got[2])
    for i, (answer, expected, rows) in enumerate(zip(got, want, GROUPS, strict=False)):
        if i != 2:
            assert isinstance(answer, np.ndarray), answer
            check(answer, expected, len(rows), 3)
    # The merged call failed; then each request's rows were predicted alone.
    assert calls.sizes == [sum(len(r) for r in GROUPS[:5])] + [len(r) for r in GROUPS[:5]]


@pytest.mark.parametrize("cancelled", [0, 2, 4])
def test_a_cancelled_request_does_not_stop_the_others(
    iris: tuple[AutoML, pd.DataFrame], cancelled: int
) -> None:
    model, X = iris
    frames = [_frame(X, rows) for rows in GROUPS[:5]]
    want = [model.predict_proba(frame) for frame in frames]
    batcher = Batcher()

    async def cancel_one() -> list[Any]:
        tasks = [asyncio.create_task(batcher.predict(model, frame)) for frame in frames]
        await asyncio.sleep(0)  # every request has joined the batch
        assert calls.sizes == [] and not any(t.done() for t in tasks)  # it has not run
        tasks[cancelled].cancel()
        return await asyncio.gather(*tasks, return_exceptions=True)

    with spy(model, "predict_proba") as calls:
        got = run(cancel_one())
    assert isinstance(got[cancelled], asyncio.CancelledError)
    for i, (answer, expected, rows) in enumerate(zip(got, want, GROUPS, strict=False)):
        if i != cancelled:
            check(answer, expected, len(rows), 3)
    assert len(calls.sizes) == 1


@pytest.mark.parametrize("lacking", [0, 1])
def test_frames_with_different_columns_are_each_predicted_alone(
    iris: tuple[AutoML, pd.DataFrame], lacking: int
) -> None:
    model, X = iris
    frames = [_frame(X, rows) for rows in GROUPS[:4]]
    del frames[lacking]["petal width (cm)"]  # absent: a missing value for these rows
    want = [model.predict_proba(frame) for frame in frames]
    # The missing column changes the answers: a frame given the wrong columns would show.
    for rows in GROUPS[:4]:
        whole = _frame(X, rows)
        less = {k: v for k, v in whole.items() if k != "petal width (cm)"}
        assert not np.allclose(model.predict_proba(less), model.predict_proba(whole))
    batcher = Batcher()
    with spy(model, "predict_proba") as calls:
        got = run(together(batcher, [(model, f) for f in frames]))
    assert calls.sizes == [len(rows) for rows in GROUPS[:4]]
    for answer, expected, rows in zip(got, want, GROUPS, strict=False):
        check(answer, expected, len(rows), 3)


def test_frames_with_the_same_columns_in_another_order_are_merged_by_name(
    iris: tuple[AutoML, pd.DataFrame],
) -> None:
    model, X = iris
    frames = [_frame(X, rows) for rows in GROUPS[:4]]
    frames[1] = dict(reversed(list(frames[1].items())))
    frames[3] = dict(reversed(list(frames[3].items())))
    want = [model.predict_proba(frame) for frame in frames]
    batcher = Batcher()
    with spy(model, "predict_proba") as calls:
        got = run(together(batcher, [(model, f) for f in frames]))
    assert calls.sizes == [sum(len(rows) for rows in GROUPS[:4])]
    for answer, expected, rows in zip(got, want, GROUPS, strict=False):
        check(answer, expected, len(rows), 3)
