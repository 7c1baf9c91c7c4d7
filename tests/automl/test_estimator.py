"""AutoML on raw frames: fit and predict on messy inputs, and the errors users meet."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_wine

from loopml.automl import AutoML
from loopml.core.errors import Conflict, InvalidInput

from .support import automl, linear_frame, messy_frame


@pytest.fixture(scope="module")
def messy() -> tuple[AutoML, pd.DataFrame, np.ndarray]:
    X, y = messy_frame()
    model = automl(learners=["lightgbm"]).fit(X, y)
    return model, X, y


def test_a_raw_frame_fits_and_predicts_its_labels(
    messy: tuple[AutoML, pd.DataFrame, np.ndarray],
) -> None:
    model, X, y = messy
    pred = model.predict(X)
    assert pred.shape == (len(X),)
    assert set(pred) <= {0, 1}
    assert np.mean(pred == y) > 0.8
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    kinds = {c.name: c.kind for c in model.schema_.columns}
    assert kinds == {
        "amount": "numeric",
        "amount_text": "numeric",
        "colour": "categorical",
        "member": "boolean",
        "signup": "datetime",
        "zip_code": "categorical",
        "comment": "text",
    }
    assert set(model.schema_.dropped) == {"empty", "constant", "customer_id"}
    assert model.n_features_in_ == X.shape[1]


def test_missing_values_and_unseen_categories_at_predict_time(
    messy: tuple[AutoML, pd.DataFrame, np.ndarray],
) -> None:
    model, X, _ = messy
    odd = X.head(4).copy()
    odd["amount"] = np.nan
    odd["amount_text"] = ["", "?", None, "12.5"]
    odd["colour"] = ["purple", None, "RED", "teal"]
    odd["member"] = [None, "yes", True, False]
    odd["signup"] = [None, "not a date", "2031-05-05", pd.NaT]
    odd["zip_code"] = "never-seen"
    odd["comment"] = ["", None, "words never seen before here", "excellent"]
    proba = model.predict_proba(odd)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert set(model.predict(odd)) <= {0, 1}


def test_a_column_missing_at_predict_time_counts_as_all_missing(
    messy: tuple[AutoML, pd.DataFrame, np.ndarray],
) -> None:
    model, X, y = messy
    without = X.drop(columns=["colour", "amount"])
    blanked = X.assign(colour=None, amount=np.nan)
    np.testing.assert_array_equal(model.predict_proba(without), model.predict_proba(blanked))
    # Extra columns are ignored, and so are the dropped ones.
    extra = X.assign(unexpected=1).drop(columns=["empty", "customer_id"])
    np.testing.assert_array_equal(model.predict_proba(extra), model.predict_proba(X))
    report = model.evaluate(without, y)
    assert report["n_rows"] == len(X)


def test_tiny_data_fits() -> None:
    X, y = linear_frame(n=30, noise=0.3)
    model = automl(learners=["lightgbm", "linear"]).fit(X, y)
    assert model.predict(X).shape == (30,)
    assert (model.leaderboard_["status"] == "ok").all()


def test_more_features_than_rows() -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(40, 120)), columns=[f"f{i}" for i in range(120)])
    y = (X["f0"] > 0).astype(int)
    model = automl(learners=["lightgbm", "linear"]).fit(X, y)
    assert model.predict_proba(X).shape == (40, 2)


def test_all_junk_columns_is_invalid_input() -> None:
    X = pd.DataFrame({"empty": [None] * 30, "constant": [1] * 30})
    with pytest.raises(InvalidInput) as info:
        automl().fit(X, [0, 1] * 15)
    assert info.value.field == "X"


def test_a_one_class_target_is_invalid_input_naming_y() -> None:
    X, _ = linear_frame(n=40)
    with pytest.raises(InvalidInput, match="one class") as info:
        automl().fit(X, ["spam"] * 40)
    assert info.value.field == "y"


@pytest.mark.parametrize(
    "y",
    [
        pd.Series([0.0, 1.0, np.nan] * 10),
        pd.Series(["a", None, "b"] * 10),
        [0, 1] * 10,  # wrong length
        np.zeros((30, 2)),  # two columns
        pd.Series([0.5, 1.5, np.inf] * 10),
        pd.Series([0, 1, "unknown"] * 10, dtype=object),
    ],
    ids=["nan", "none", "length", "2d", "inf", "mixed-types"],
)
def test_a_bad_target_is_invalid_input_naming_y(y: Any) -> None:
    X, _ = linear_frame(n=30)
    with pytest.raises(InvalidInput) as info:
        automl().fit(X, y)
    assert info.value.field == "y"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"metric": "accuracy_please"}, "metric"),
        ({"metric": "rmse"}, "metric"),
        ({"metric": "brier", "task": "multiclass"}, "metric"),
        ({"task": "ranking"}, "task"),
        ({"task": "regression"}, "task"),  # string labels
        ({"time_budget": 0}, "time_budget"),
        ({"time_budget": -5}, "time_budget"),
        ({"time_budget": "60"}, "time_budget"),
        ({"n_folds": 1}, "n_folds"),
        ({"n_folds": 2.5}, "n_folds"),
        ({"max_trials": 0}, "max_trials"),
        ({"confidence_threshold": 0}, "confidence_threshold"),
        ({"confidence_threshold": 1}, "confidence_threshold"),
        ({"confidence_threshold": 1.5}, "confidence_threshold"),
        ({"confidence_threshold": "high"}, "confidence_threshold"),
        ({"cost_matrix": {"fp": 1, "fn": 5}, "task": "multiclass"}, "cost_matrix"),
        ({"learners": []}, "learners"),
        ({"learners": ["lightgbm", "deep_magic"]}, "learners"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**40}, "seed"),
    ],
)
def test_bad_parameters_are_invalid_input_naming_the_field(
    params: dict[str, Any], field: str
) -> None:
    X, y = linear_frame(n=30)
    labels = np.where(y == 1, "yes", "no")
    with pytest.raises(InvalidInput) as info:
        automl(**params).fit(X, labels)
    assert info.value.field == field


def test_binary_task_on_three_classes_is_invalid_input() -> None:
    X, y = load_wine(return_X_y=True, as_frame=True)
    with pytest.raises(InvalidInput, match="two classes") as info:
        automl(task="binary").fit(X, y)
    assert info.value.field == "task"


def test_a_cost_matrix_on_a_regression_is_invalid_input() -> None:
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    with pytest.raises(InvalidInput) as info:
        automl(cost_matrix={"fp": 1, "fn": 2}).fit(X, y)
    assert info.value.field == "cost_matrix"


def test_groups_must_match_the_rows() -> None:
    X, y = linear_frame(n=30)
    with pytest.raises(InvalidInput) as info:
        automl().fit(X, y, groups=[1, 2, 3])
    assert info.value.field == "groups"
    with pytest.raises(InvalidInput) as info:
        automl().fit(X, y, groups=["one"] * 30)
    assert info.value.field == "groups"


def test_an_unfitted_model_is_a_conflict(tmp_path: Any) -> None:
    X, y = linear_frame(n=30)
    model = automl()
    for call in (
        lambda: model.predict(X),
        lambda: model.predict_proba(X),
        lambda: model.evaluate(X, y),
        lambda: model.save(tmp_path / "m.zip"),
    ):
        with pytest.raises(Conflict, match="not fitted"):
            call()


def test_predict_proba_on_a_regressor_is_a_conflict() -> None:
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = automl().fit(X, y)
    assert model.predict(X).dtype.kind == "f"
    with pytest.raises(Conflict, match="regressor"):
        model.predict_proba(X)


def test_params_round_trip_like_scikit_learn() -> None:
    model = automl()
    assert model.set_params(seed=7) is model
    assert model.get_params()["seed"] == 7
    with pytest.raises(InvalidInput) as info:
        model.set_params(colour="red")
    assert info.value.field == "colour"


def test_infinite_and_huge_values_count_as_missing() -> None:
    X, y = linear_frame(n=120)
    X.loc[::7, "a"] = np.inf
    X.loc[::11, "a"] = -1e300  # beyond float32, where tree libraries work
    model = automl(learners=["linear", "extra_trees", "xgboost"], max_trials=3).fit(X, y)
    ok = model.leaderboard_.query("status == 'ok'")["learner"]
    assert {"linear", "extra_trees", "xgboost"} <= set(ok)
    probe = X.head(3).copy()
    probe["a"] = [np.inf, -np.inf, 1e39]
    assert np.isfinite(model.predict_proba(probe)).all()


def test_numbers_held_as_objects_are_a_regression_target() -> None:
    X, _ = linear_frame(n=60)
    y = pd.Series([float(v) + 0.25 for v in range(60)], dtype=object)
    assert automl().fit(X, y).task_.value == "regression"


def test_an_input_without_any_of_the_models_columns_is_refused() -> None:
    X, y = linear_frame(n=60)
    model = automl().fit(X, y)
    with pytest.raises(InvalidInput) as info:
        model.predict(X.to_numpy())  # the names are gone: columns 0, 1, ...
    assert info.value.field == "X"
    assert "a, b, c" in str(info.value)
