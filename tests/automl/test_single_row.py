"""One row at a time: LightGBM's single-row C predictor answers exactly as
``Booster.predict`` does, from any number of threads, and leaves the model usable (dump,
load, garbage collection); a whole AutoML answers a request's one-row columns as it
answers the same row as a DataFrame; the linear model's softmax holds on huge scores."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax
from sklearn.datasets import load_breast_cancer, load_iris

from loopml.automl import AutoML
from loopml.automl.learners import FitContext
from loopml.automl.learners.base import proba_columns
from loopml.automl.learners.gbm_lightgbm import LightGBMLearner, LightGBMModel, SingleRow
from loopml.automl.learners.sklearn_models import LinearModel
from loopml.core.enums import TaskType

TASKS = ["binary", "multiclass", "regression"]


@dataclass
class Fitted:
    model: LightGBMModel
    X: np.ndarray  # rows to predict: training-like rows, NaNs, unseen categories


def _with_gaps(X: np.ndarray, rng: np.random.Generator, share: float = 0.15) -> np.ndarray:
    X = X.copy()
    X[rng.random(X.shape) < share] = np.nan
    return X


def _fit(task: str) -> Fitted:
    """A model fitted by the learner, as AutoML fits it (a categorical column included)."""
    rng = np.random.default_rng(7)
    if task == "multiclass":
        iris = load_iris()
        numbers, y = iris.data, iris.target
    else:
        numbers = rng.normal(size=(300, 4))
        signal = numbers[:, 0] + 0.5 * numbers[:, 1] * numbers[:, 2]
        y = (signal > 0).astype(int) if task == "binary" else 3 * signal + rng.normal(size=300)
    n = len(y)
    # A categorical column (codes as floats, NaN for missing) that moves the label.
    colour = rng.integers(0, 5, n).astype(float)
    if task == "regression":
        y = y + 2.0 * (colour == 3)
    else:
        flip = (colour == 3) & (rng.random(n) < 0.5)
        y = np.where(flip, (y + 1) % (3 if task == "multiclass" else 2), y)
    X = np.column_stack([_with_gaps(numbers, rng), colour])
    n_classes = {"binary": 2, "multiclass": 3, "regression": 0}[task]
    ctx = FitContext(
        task=TaskType(task),
        n_classes=n_classes,
        seed=0,
        n_jobs=1,
        deadline=time.monotonic() + 60,
        categorical=[X.shape[1] - 1],
    )
    learner = LightGBMLearner()
    params = {**learner.portfolio(ctx.task, n)[0], "rounds": 30, "min_data_in_leaf": 5}
    model = learner.fit(X, y, None, None, params, ctx)
    # Rows to predict: the training rows, more gaps, unseen and missing categories, a row
    # with nothing at all, and values far outside the training range.
    extra = X[:40].copy()
    extra[:10, -1] = 9.0  # a category the model never saw
    extra[10:20, -1] = np.nan
    extra[20:30] = _with_gaps(extra[20:30], rng, share=0.6)
    extra[30] = np.nan
    extra[31, :-1] = 1e6
    extra[32, :-1] = -1e6
    return Fitted(model, np.vstack([X, extra]))


@pytest.fixture(scope="module", params=TASKS)
def fitted(request: pytest.FixtureRequest) -> Fitted:
    return _fit(request.param)


@pytest.fixture(scope="module")
def binary() -> Fitted:
    return _fit("binary")


def _booster_row(model: LightGBMModel, row: np.ndarray) -> np.ndarray:
    """What ``Booster.predict`` gives for one row, as the model reports it."""
    out = np.asarray(model.booster.predict(row, num_threads=1))
    return proba_columns(out, model.n_classes) if model.n_classes else out


def _run(target: Callable[[], Any], timeout: float = 30.0) -> Any:
    """``target()`` in a thread: a deadlock fails the test instead of hanging it."""
    result: list[Any] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            result.append(target())
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(timeout)
    assert not worker.is_alive(), f"still running after {timeout:g}s: a lock is held"
    if errors:
        raise errors[0]
    return result[0]


# --- exact answers -------------------------------------------------------------------


def test_the_single_row_predictor_is_available_and_used(fitted: Fitted) -> None:
    """Otherwise every other test here would only check Booster.predict against itself."""
    single = SingleRow.of(fitted.model.booster)
    assert single.ready
    for i in range(0, len(fitted.X), 7):
        row = fitted.X[i]
        expected = np.asarray(fitted.model.booster.predict(row[None, :], num_threads=1))
        np.testing.assert_array_equal(single.predict(row), expected)
    fitted.model.predict(fitted.X[:1])
    assert fitted.model._single is not None and fitted.model._single.ready


def test_each_row_alone_is_exactly_what_booster_predict_gives(fitted: Fitted) -> None:
    model, X = fitted.model, fitted.X
    assert np.isnan(X).any()
    width = model.n_classes or None
    for i in range(len(X)):
        got = model.predict(X[i : i + 1])
        assert got.shape == ((1, width) if width else (1,))
        np.testing.assert_array_equal(got, _booster_row(model, X[i : i + 1]), err_msg=f"row {i}")


def test_each_row_alone_matches_its_row_of_a_batch(fitted: Fitted) -> None:
    model, X = fitted.model, fitted.X
    batch = model.predict(X)
    singles = np.concatenate([model.predict(X[i : i + 1]) for i in range(len(X))])
    np.testing.assert_allclose(singles, batch, rtol=0, atol=1e-12)
    # the model learned something: rows do not all get the same answer
    assert np.ptp(batch, axis=0).max() > 0.1
    if model.n_classes:
        np.testing.assert_allclose(singles.sum(axis=1), 1.0, rtol=0, atol=1e-12)


def test_rows_of_other_dtypes_and_layouts_answer_as_float64_rows(binary: Fitted) -> None:
    model, X = binary.model, binary.X
    fortran = np.asfortranarray(X[:5])
    float32 = X[:5].astype(np.float32)
    for i in range(5):
        np.testing.assert_array_equal(
            model.predict(fortran[i : i + 1]), _booster_row(model, X[i : i + 1])
        )
        np.testing.assert_array_equal(
            model.predict(float32[i : i + 1]), _booster_row(model, float32[i : i + 1])
        )
    # a row that is a strided view of a wider array
    wide = np.repeat(X[:1], 2, axis=1)[:, ::2]
    np.testing.assert_array_equal(model.predict(wide), _booster_row(model, X[:1]))


def test_a_row_of_the_wrong_width_is_refused(binary: Fitted) -> None:
    model, X = binary.model, binary.X
    columns = X.shape[1]
    for bad in (X[:1, :-1], np.hstack([X[:1], X[:1]]), np.empty((1, 0))):
        with pytest.raises(ValueError, match=f"reads {columns} columns"):
            model.predict(bad)
    with pytest.raises(ValueError):
        SingleRow.of(model.booster).predict(X[0, :2])
    # and the model still answers right afterwards
    np.testing.assert_array_equal(model.predict(X[3:4]), _booster_row(model, X[3:4]))


def test_a_booster_that_stopped_early_answers_one_row_as_a_batch() -> None:
    rng = np.random.default_rng(0)
    X, Xv = rng.normal(size=(300, 5)), rng.normal(size=(100, 5))
    y, yv = (X[:, 0] + X[:, 1] > 0).astype(int), (Xv[:, 0] + Xv[:, 1] > 0).astype(int)
    booster = lgb.train(
        {"objective": "binary", "verbosity": -1, "num_threads": 1},
        lgb.Dataset(X, y),
        200,
        valid_sets=[lgb.Dataset(Xv, yv)],
        callbacks=[lgb.early_stopping(5, verbose=False)],
        keep_training_booster=True,
    )
    assert 0 < booster.best_iteration < booster.current_iteration()
    model = LightGBMModel(booster, 2)
    np.testing.assert_allclose(model.predict(X[:1]), model.predict(X[:2])[:1], atol=1e-12)


# --- the model stays usable ----------------------------------------------------------


@pytest.mark.timeout(90)
def test_dump_and_load_work_after_single_row_predictions(binary: Fitted) -> None:
    model, X = binary.model, binary.X
    for i in range(20):
        model.predict(X[i : i + 1])
    files, meta = _run(model.dump)
    loaded = _run(lambda: LightGBMLearner().load(files, meta))
    assert loaded is not model and meta == {"n_classes": 2}
    for i in range(20):
        np.testing.assert_array_equal(loaded.predict(X[i : i + 1]), model.predict(X[i : i + 1]))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    # dumping again (after the loaded model's single rows too) gives the same files
    again, _ = _run(loaded.dump)
    assert again == files


@pytest.mark.timeout(120)
def test_many_threads_predicting_single_rows_all_get_their_own_answers(
    fitted: Fitted,
) -> None:
    model, X = fitted.model, fitted.X
    threads, per_thread = 8, 500
    rows = np.random.default_rng(3).permutation(np.tile(np.arange(len(X)), 50))
    rows = rows[: threads * per_thread].reshape(threads, per_thread)
    expected = {int(i): _booster_row(model, X[i : i + 1]) for i in np.unique(rows)}
    start = threading.Barrier(threads)
    got: list[list[np.ndarray]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            start.wait()
            for i in rows[t]:
                got[t].append(model.predict(X[i : i + 1]))
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert not any(w.is_alive() for w in workers), "a thread hung"
    assert errors == []
    for t in range(threads):
        assert len(got[t]) == per_thread
        for i, answer in zip(rows[t], got[t], strict=True):
            np.testing.assert_array_equal(answer, expected[int(i)], err_msg=f"thread {t}, row {i}")
    # the answers are not views of a buffer shared with later predictions
    np.testing.assert_array_equal(got[0][0], expected[int(rows[0][0])])


def test_deleting_models_after_single_row_predictions_frees_them(binary: Fitted) -> None:
    files, meta = binary.model.dump()
    row = binary.X[:1]
    want = binary.model.predict(row)
    for _ in range(20):
        model = LightGBMLearner().load(files, meta)
        np.testing.assert_array_equal(model.predict(row), want)
        model_ref, booster_ref = weakref.ref(model), weakref.ref(model.booster)
        del model
        gc.collect()
        assert model_ref() is None
        assert booster_ref() is None  # the booster is not kept alive by its predictor
    # a predictor dropped while its model lives on: the model still answers
    model = LightGBMLearner().load(files, meta)
    model.predict(row)
    model._single = None
    gc.collect()
    np.testing.assert_array_equal(model.predict(row), want)
    np.testing.assert_array_equal(model.predict(binary.X[:2])[:1], want)


# --- a whole AutoML: one-row columns answer as the DataFrame does --------------------


@pytest.fixture(scope="module")
def cancer() -> tuple[AutoML, pd.DataFrame]:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = AutoML(
        learners=["lightgbm"], time_budget=10, max_trials=2, seed=0, n_jobs=1, report=False
    ).fit(X, y)
    return model, X


def _columns(frame: pd.DataFrame) -> dict[str, list[Any]]:
    """A request's columns: Python floats, None for missing."""
    return {c: [None if pd.isna(v) else float(v) for v in frame[c].tolist()] for c in frame.columns}


def test_one_row_columns_answer_as_the_one_row_frame(cancer: tuple[AutoML, pd.DataFrame]) -> None:
    model, X = cancer
    answers = []
    for i in (0, 1, 19, 100, 250, 568):
        row = X.iloc[[i]]
        from_frame = model.predict_proba(row)
        from_lists = model.predict_proba(_columns(row))
        assert from_lists.shape == (1, 2)
        np.testing.assert_allclose(from_lists, from_frame, rtol=0, atol=1e-12)
        answers.append(from_lists[0, 1])
    assert max(answers) - min(answers) > 0.5  # benign and malignant rows both among them
    # and a one-row answer is that row's answer in a batch
    batch = model.predict_proba(X.iloc[[0, 1, 19, 100, 250, 568]])
    np.testing.assert_allclose(answers, batch[:, 1], rtol=0, atol=1e-12)


def test_several_rows_of_columns_keep_each_value_in_its_row_and_column(
    cancer: tuple[AutoML, pd.DataFrame],
) -> None:
    model, X = cancer
    rows = X.iloc[[3, 40, 200, 7, 500]].copy()
    rows.iloc[1, 0] = np.nan
    rows.iloc[3, 5] = np.nan
    from_frame = model.predict_proba(rows)
    np.testing.assert_allclose(model.predict_proba(_columns(rows)), from_frame, rtol=0, atol=1e-12)
    # the rows' answers differ: a swap of rows or columns would show
    assert np.ptp(from_frame[:, 1]) > 0.1


@pytest.mark.parametrize(
    ("given", "in_frame"),
    [("12.5", 12.5), (None, np.nan), (12, 12.0), (" 30 ", 30.0), ("", np.nan)],
    ids=["numeric string", "None", "int", "padded string", "blank"],
)
@pytest.mark.parametrize("column", ["mean radius", "worst area"])
def test_a_numeric_column_with_a_string_or_none_answers_as_the_frame_with_that_value(
    cancer: tuple[AutoML, pd.DataFrame], column: str, given: Any, in_frame: float
) -> None:
    model, X = cancer
    for i in (0, 19):
        row = X.iloc[[i]].copy()
        lists = _columns(row)
        lists[column] = [given]
        row[column] = in_frame
        np.testing.assert_allclose(
            model.predict_proba(lists), model.predict_proba(row), rtol=0, atol=1e-12
        )
    # several rows, one of which holds the odd value
    rows = X.iloc[[0, 19, 100]].copy()
    lists = _columns(rows)
    lists[column][1] = given
    rows.loc[rows.index[1], column] = in_frame
    np.testing.assert_allclose(
        model.predict_proba(lists), model.predict_proba(rows), rtol=0, atol=1e-12
    )


def test_a_value_that_changes_the_answer_is_read_from_a_string(
    cancer: tuple[AutoML, pd.DataFrame],
) -> None:
    """The string is parsed, not dropped as missing: it answers unlike None."""
    model, X = cancer
    row = X.iloc[[0]]
    lists = _columns(row)
    answers = {}
    for value in ("5", "50000", None):
        lists["worst area"] = [value]
        lists["worst concave points"] = [value]
        answers[value] = model.predict_proba(lists)[0, 1]
    assert len({round(a, 9) for a in answers.values()}) > 1


# --- the linear model's softmax ------------------------------------------------------


def test_linear_probabilities_are_scipys_softmax_and_sum_to_one() -> None:
    rng = np.random.default_rng(0)
    coef, intercept = rng.normal(size=(3, 4)), rng.normal(size=3)
    model = LinearModel(coef, intercept, n_classes=3)
    X = rng.normal(size=(50, 4)) * 3
    p = model.predict(X)
    assert p.shape == (50, 3)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(p, softmax(X @ coef.T + intercept, axis=1), rtol=0, atol=1e-12)
    # one row at a time, the same
    for i in range(5):
        np.testing.assert_allclose(model.predict(X[i : i + 1]), p[i : i + 1], rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "scores",
    [[1000.0, 0.0, -1000.0], [1000.0, 1000.0, 999.0], [-1000.0, -1001.0, -5000.0], [0, 0, 0]],
    ids=str,
)
def test_huge_linear_scores_give_probabilities_not_overflow(scores: list[float]) -> None:
    # intercepts alone make the scores: X is a zero row
    model = LinearModel(np.zeros((3, 2)), np.array(scores, dtype=float), n_classes=3)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow is fine
        p = model.predict(np.zeros((1, 2)))
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(p, softmax(np.array([scores], dtype=float), axis=1), atol=1e-12)


def test_a_class_missing_from_training_gets_probability_zero_not_nan() -> None:
    """A fold without a class keeps a -1e9 intercept for it (see LinearLearner.fit)."""
    model = LinearModel(np.zeros((3, 2)), np.array([0.0, -1e9, 0.5]), n_classes=3)
    p = model.predict(np.array([[1.0, 2.0], [-3.0, 0.0]]))
    assert np.isfinite(p).all() and (p[:, 1] == 0).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=0, atol=1e-12)


def test_linear_regression_is_the_raw_score() -> None:
    model = LinearModel(np.array([[2.0, -1.0]]), np.array([0.5]), n_classes=0)
    np.testing.assert_array_equal(model.predict(np.array([[1.0, 1.0], [0.0, 3.0]])), [1.5, -2.5])
