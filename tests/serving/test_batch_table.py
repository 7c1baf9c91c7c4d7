"""Predicting whole tables without a server: a frame checked against a model's inputs
(``check_table``) and answered as columns (``predict_table``), as the batch job does."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loopml.automl import AutoML
from loopml.core.errors import InvalidInput
from loopml.serving.batch import check_table, predict_table
from loopml.serving.predict import answer, check_rows
from loopml.store.blobs import BlobStore
from tests.serving.test_predict import FAST, Fitted, deployment, records, register, reviews


@pytest.fixture(scope="module")
def blobs(tmp_path_factory: pytest.TempPathFactory) -> BlobStore:
    return BlobStore(f"file://{tmp_path_factory.mktemp('blobs')}")


@pytest.fixture(scope="module")
def classifier(blobs: BlobStore) -> Fitted:
    X, y = reviews()
    model = AutoML(**FAST, max_trials=2).fit(X, y)
    return Fitted(model, register(model, blobs, "classifier"), X)


@pytest.fixture(scope="module")
def regressor(blobs: BlobStore) -> Fitted:
    X, _ = reviews(seed=1)
    y = 3 * X["amount"].to_numpy() + (X["colour"] == "red") + 1
    model = AutoML(**FAST, max_trials=1, learners=["linear"]).fit(X[["amount", "colour"]], y)
    return Fitted(model, register(model, blobs, "regressor", number=2), X)


# --- check_table -------------------------------------------------------------------


def test_the_models_columns_in_its_order_others_ignored_absent_ones_missing(
    classifier: Fitted,
) -> None:
    frame = pd.DataFrame(
        {"zz": [1, 2], "comment": ["fine", None], "amount": [1.5, np.nan], "id": ["a", "b"]},
        index=[10, 11],
    )
    rows = check_table(frame, classifier.version)
    assert list(rows.frame.columns) == ["amount", "colour", "comment"]
    assert rows.ignored == ["id", "zz"]
    assert rows.frame.index.tolist() == [0, 1]  # the model reads positions
    assert rows.frame["amount"].tolist()[0] == 1.5 and pd.isna(rows.frame["amount"][1])
    assert rows.frame["colour"].isna().all()  # absent: missing values
    assert rows.frame["comment"][0] == "fine"


def test_numbers_written_as_text_are_numbers_and_blanks_are_missing(classifier: Fitted) -> None:
    given = ["1.5", " 2 ", "-3e2", "", "  ", None]
    rows = check_table(pd.DataFrame({"amount": given}, dtype=object), classifier.version)
    got = rows.frame["amount"].tolist()
    assert got[:3] == [1.5, 2.0, -300.0]
    assert all(pd.isna(v) for v in got[3:])
    assert pd.api.types.is_float_dtype(rows.frame["amount"])
    as_str = check_table(pd.DataFrame({"amount": ["7", None]}), classifier.version)
    assert as_str.frame["amount"][0] == 7.0 and pd.isna(as_str.frame["amount"][1])


@pytest.mark.parametrize("value", ["lots", "1,5", "n.a."])
def test_a_non_number_is_refused_naming_the_frames_row_and_the_column(
    classifier: Fitted, value: str
) -> None:
    frame = pd.DataFrame(
        {"amount": ["1", "2", value, "oops"], "colour": ["red"] * 4}, index=[40, 41, 42, 43]
    )
    with pytest.raises(InvalidInput) as err:
        check_table(frame, classifier.version)
    # the first bad row, by the frame's own index (a row's place in the version)
    assert err.value.message == f"row 42: 'amount' must be a number, got {value!r}"
    assert err.value.field == "amount"
    assert err.value.extra == {"row": 42, "column": "amount"}


@pytest.mark.parametrize(
    "values",
    [[1.0, True, 2.0], [True, False, True]],
    ids=["mixed-objects", "bool-column"],
)
def test_booleans_in_a_numeric_column_are_refused_as_predict_does(
    classifier: Fitted, values: list[object]
) -> None:
    with pytest.raises(InvalidInput) as err:
        check_table(pd.DataFrame({"amount": values}, dtype=None), classifier.version)
    assert "'amount' must be a number, got True" in err.value.message
    with pytest.raises(InvalidInput):  # /predict says the same of such a row
        check_rows([{"amount": True}], classifier.version)


def test_a_row_label_that_is_not_a_number_is_named_without_a_row_number(
    classifier: Fitted,
) -> None:
    frame = pd.DataFrame({"amount": [1.0, "x"]}, index=["first", "second"], dtype=object)
    with pytest.raises(InvalidInput) as err:
        check_table(frame, classifier.version)
    assert err.value.message.startswith("row second: 'amount'")
    assert err.value.extra == {"row": None, "column": "amount"}


def test_text_and_categorical_columns_take_any_value(classifier: Fitted) -> None:
    frame = pd.DataFrame({"amount": [1, 2], "colour": [3, "red"], "comment": [1.5, "ok"]})
    rows = check_table(frame, classifier.version)
    assert rows.frame["colour"].tolist() == [3, "red"]
    assert rows.ignored == []


# --- predict_table -----------------------------------------------------------------


def test_answers_match_what_the_predict_endpoint_says(classifier: Fitted) -> None:
    frame = classifier.X.head(40)
    table = predict_table(
        classifier.model, check_table(frame, classifier.version), classifier.version, deployment()
    )
    said = answer(
        classifier.model,
        check_rows(records(frame), classifier.version),
        classifier.version,
        deployment(),
    )
    classes = classifier.version.classes
    assert classes is not None
    assert list(table.columns) == [
        "label",
        "confidence",
        "abstained",
        *(f"probability_{c}" for c in classes),
    ]
    assert len(table) == 40
    assert table["label"].tolist() == [p["label"] for p in said]
    assert table["confidence"].tolist() == pytest.approx([p["confidence"] for p in said])
    for c in classes:
        assert table[f"probability_{c}"].tolist() == pytest.approx(
            [p["probabilities"][c] for p in said]
        )
    probabilities = table[[f"probability_{c}" for c in classes]].to_numpy()
    assert probabilities.sum(axis=1) == pytest.approx(np.ones(40))
    assert not table["abstained"].any()


def test_below_the_threshold_rows_abstain_with_the_fallback_label(classifier: Fitted) -> None:
    rows = check_table(classifier.X, classifier.version)
    plain = predict_table(classifier.model, rows, classifier.version, deployment())
    limit = float(plain["confidence"].median())
    careful = predict_table(
        classifier.model, rows, classifier.version, deployment(limit, fallback="ask")
    )
    below = (plain["confidence"] < limit).to_numpy()
    assert 0 < below.sum() < len(below)
    assert careful["abstained"].to_numpy().tolist() == below.tolist()
    assert careful["label"].tolist() == [
        "ask" if b else str(label) for b, label in zip(below, plain["label"], strict=True)
    ]
    assert careful["confidence"].tolist() == pytest.approx(plain["confidence"].tolist())
    # the same as the endpoint's answers with that threshold
    said = answer(
        classifier.model,
        check_rows(records(classifier.X), classifier.version),
        classifier.version,
        deployment(limit, fallback="ask"),
    )
    assert careful["label"].tolist() == [p["label"] for p in said]
    assert careful["abstained"].tolist() == [p["abstained"] for p in said]


def test_a_regression_answers_values_only(regressor: Fitted) -> None:
    frame = regressor.X.head(25)
    table = predict_table(
        regressor.model, check_table(frame, regressor.version), regressor.version, deployment()
    )
    assert list(table.columns) == ["value"]
    assert table["value"].dtype == np.float64
    expected = regressor.model.predict(frame[["amount", "colour"]])
    assert table["value"].tolist() == pytest.approx(np.asarray(expected, dtype=float).tolist())
    # the comment column is not the regressor's: ignored
    assert check_table(frame, regressor.version).ignored == ["comment"]


def test_answers_keep_the_input_order_and_length_with_missing_columns(
    classifier: Fitted,
) -> None:
    frame = classifier.X.iloc[::-1].head(30)[["amount"]]  # other columns absent
    table = predict_table(
        classifier.model, check_table(frame, classifier.version), classifier.version, deployment()
    )
    assert len(table) == 30
    one_by_one = [
        predict_table(
            classifier.model,
            check_table(frame.iloc[[i]], classifier.version),
            classifier.version,
            deployment(),
        )["label"][0]
        for i in (0, 7, 29)
    ]
    assert [table["label"][i] for i in (0, 7, 29)] == one_by_one
