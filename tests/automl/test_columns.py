"""Column planning: what kind each raw column is, which are dropped and why, and parsing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loopml.automl.columns import Schema, check_frame, parse, plan_columns
from loopml.core.errors import InvalidInput

N = 40


def _kinds(frame: pd.DataFrame) -> dict[str, str]:
    return {c.name: c.kind for c in plan_columns(frame).columns}


def test_each_kind_is_detected() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "price": rng.normal(size=N),
            "count": rng.integers(0, 50, N),
            "active": rng.random(N) < 0.5,
            "nullable_bool": pd.array([True, False, None, True] * (N // 4), dtype="boolean"),
            "created": pd.date_range("2024-01-01", periods=N, freq="D"),
            "created_text": [f"2024-03-{d:02d}" for d in rng.integers(1, 29, N)],
            "waiting": pd.to_timedelta(rng.integers(0, 100, N), "h"),
            "city": rng.choice(["Oslo", "Lima", "Pune"], N),
            "review": [
                f"the parcel number {i} arrived {'late' if i % 2 else 'early'} and intact"
                for i in range(N)
            ],
        }
    )
    assert _kinds(frame) == {
        "price": "numeric",
        "count": "numeric",
        "active": "boolean",
        "nullable_bool": "boolean",
        "created": "datetime",
        "created_text": "datetime",
        "waiting": "numeric",
        "city": "categorical",
        "review": "text",
    }


def test_dropped_columns_carry_their_reason() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=N),
            "all_missing": [np.nan] * N,
            "all_none": [None] * N,
            "constant_number": [3.0] * N,
            "constant_text": ["a"] * N,
            "constant_bool": [True] * N,
            "constant_date": [pd.Timestamp("2024-01-01")] * N,
            "order_id": [f"ORD-{i:06d}" for i in range(N)],
        }
    )
    schema = plan_columns(frame)
    assert [c.name for c in schema.columns] == ["x"]
    assert schema.dropped["all_missing"] == "all values are missing"
    assert schema.dropped["all_none"] == "all values are missing"
    for name in ("constant_number", "constant_text", "constant_bool", "constant_date"):
        assert schema.dropped[name] == "constant", name
    assert schema.dropped["order_id"].startswith("identifier-like")


def test_a_constant_column_with_missing_values_is_still_constant() -> None:
    frame = pd.DataFrame({"x": np.arange(N), "c": ["on", None] * (N // 2)})
    assert plan_columns(frame).dropped == {"c": "constant"}


def test_high_cardinality_categories_are_kept_not_taken_for_identifiers() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=300), "zip": rng.integers(0, 150, 300).astype(str)})
    frame["zip"] = "z" + frame["zip"]
    assert _kinds(frame)["zip"] == "categorical"


def test_numbers_stored_as_strings_are_numeric_and_parsed() -> None:
    values = [f"{v:.2f}" for v in np.linspace(-5, 5, N - 1)] + ["n/a"]
    frame = pd.DataFrame({"reading": values, "padded": [" 1e3 ", "2"] * (N // 2)})
    schema = plan_columns(frame)
    assert _kinds(frame) == {"reading": "numeric", "padded": "numeric"}
    raw = parse(frame, schema)
    reading = raw.numeric[:, raw.numeric_names.index("reading")]
    assert reading[0] == pytest.approx(-5.0)
    assert reading[-2] == pytest.approx(5.0)
    assert np.isnan(reading[-1])  # the one unparsable value is missing, not an error
    padded = raw.numeric[:, raw.numeric_names.index("padded")]
    assert padded[:2].tolist() == [1000.0, 2.0]


def test_mostly_text_with_some_numbers_stays_categorical() -> None:
    mixed = [1, "a", 2.5, None, "b", 7] * 10
    frame = pd.DataFrame({"mixed": mixed, "x": np.arange(60)})
    schema = plan_columns(frame)
    assert _kinds(frame)["mixed"] == "categorical"
    raw = parse(frame, schema)
    column = raw.categorical[raw.categorical_names.index("mixed")]
    assert column[:4].tolist() == ["1", "a", "2.5", None]


def test_datetimes_become_parts_with_time_of_day_only_when_it_varies() -> None:
    frame = pd.DataFrame(
        {
            "day": pd.date_range("2024-02-27", periods=N, freq="D"),
            "moment": pd.date_range("2024-02-27 08:30", periods=N, freq="7h"),
        }
    )
    schema = plan_columns(frame)
    plans = {c.name: c for c in schema.columns}
    assert plans["day"].has_time is False
    assert plans["moment"].has_time is True
    raw = parse(frame, schema)
    names = raw.numeric_names
    assert "day.time" not in names
    assert {"day.year", "day.month", "day.day", "day.weekday", "moment.time"} <= set(names)
    assert raw.numeric[0, names.index("day.year")] == 2024
    assert raw.numeric[3, names.index("day.month")] == 3  # 2024-03-01: a leap year
    assert raw.numeric[0, names.index("moment.time")] == pytest.approx(8.5)


def test_boolean_columns_accept_strings_and_missing_values_at_predict_time() -> None:
    frame = pd.DataFrame({"flag": [True, False] * (N // 2), "x": np.arange(N)})
    schema = plan_columns(frame)
    later = pd.DataFrame({"flag": ["true", "False", "1", "0", None, "maybe"], "x": range(6)})
    raw = parse(later, schema)
    flag = raw.numeric[:, raw.numeric_names.index("flag")]
    assert flag[:4].tolist() == [1.0, 0.0, 1.0, 0.0]
    assert np.isnan(flag[4:]).all()


def test_a_column_missing_at_predict_time_parses_as_all_missing() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=N),
            "city": rng.choice(["a", "b"], N),
            "when": pd.date_range("2024-01-01", periods=N),
        }
    )
    schema = plan_columns(frame)
    raw = parse(frame[["x"]].head(5), schema)
    assert raw.n_rows == 5
    assert np.isnan(raw.numeric[:, 1:]).all()  # every date part
    assert raw.categorical[0].tolist() == [None] * 5


def test_no_usable_column_is_invalid_input() -> None:
    frame = pd.DataFrame({"a": [1] * N, "b": [None] * N})
    with pytest.raises(InvalidInput) as info:
        plan_columns(frame)
    assert info.value.field == "X"


def test_duplicate_or_missing_rows_are_invalid_input() -> None:
    duplicated = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(InvalidInput, match="duplicate") as info:
        check_frame(duplicated)
    assert info.value.field == "X"
    with pytest.raises(InvalidInput) as info:
        check_frame(pd.DataFrame({"a": []}))
    assert info.value.field == "X"


def test_non_string_column_names_and_index_are_normalised() -> None:
    frame = pd.DataFrame(np.arange(6).reshape(3, 2), index=[10, 20, 30])
    checked = check_frame(frame)
    assert list(checked.columns) == ["0", "1"]
    assert list(checked.index) == [0, 1, 2]


def test_schema_names_are_every_kept_column_in_input_order() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "zeta": rng.normal(size=N),
            "city": rng.choice(["Oslo", "Lima", "Pune"], N),
            "constant": [1.0] * N,
            "alpha": rng.integers(0, 50, N),
            "active": rng.random(N) < 0.5,
            "beta": rng.normal(size=N),
        }
    )
    schema = plan_columns(frame)
    assert schema.names() == ["zeta", "city", "alpha", "active", "beta"]  # not "constant"
    assert schema.names(None) == schema.names()
    assert schema.names("numeric") == ["zeta", "alpha", "beta"]
    assert schema.names("categorical") == ["city"]
    assert schema.names("boolean") == ["active"]
    assert schema.names("text") == [] and schema.names("image") == []
    # asked again (answers are kept): the same; the schema still saves and compares alike
    assert schema.names() == ["zeta", "city", "alpha", "active", "beta"]
    state = schema.to_state()
    assert "_names" not in state
    restored = Schema.from_state(state)
    assert restored == schema
    assert restored.names() == schema.names()
    assert restored.names("numeric") == ["zeta", "alpha", "beta"]


def test_numeric_lists_parse_into_their_own_rows_and_columns() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [10.0, 20.0, 30.0], "c": [0.5, 1.5, 2.5]})
    schema = plan_columns(frame)
    plain = parse({"a": [1.0, 2, None], "b": [10.0, 20.0, 30.0], "c": [0.5, 1.5, 2.5]}, schema)
    assert plain.numeric.shape == (3, 3)
    np.testing.assert_array_equal(
        plain.numeric, [[1.0, 10.0, 0.5], [2.0, 20.0, 1.5], [np.nan, 30.0, 2.5]]
    )
    assert plain.numeric.flags.c_contiguous
    # a value that is not a plain number: each column parsed on its own, same layout
    odd = parse({"a": [1.0, "2", None], "b": [10.0, " 20 ", "x"], "c": [0.5, 1.5, 2.5]}, schema)
    np.testing.assert_array_equal(
        odd.numeric, [[1.0, 10.0, 0.5], [2.0, 20.0, 1.5], [np.nan, np.nan, 2.5]]
    )
    # and lists answer as the same rows in a DataFrame
    odd_frame = pd.DataFrame(
        {"a": [1.0, "2", None], "b": [10.0, " 20 ", "x"], "c": [0.5, 1.5, 2.5]}
    )
    as_frame = parse(odd_frame, schema)
    np.testing.assert_array_equal(odd.numeric, as_frame.numeric)
    # infinities and values beyond float32 are missing
    wide = parse({"a": [float("inf"), 1.0], "b": [1e300, 2.0], "c": [-1e39, 2.0]}, schema)
    np.testing.assert_array_equal(wide.numeric, [[np.nan, np.nan, np.nan], [1.0, 2.0, 2.0]])


@pytest.mark.parametrize("as_frame", [False, True], ids=["lists", "frame"])
def test_an_integer_too_large_for_a_float_parses_as_missing(as_frame: bool) -> None:
    schema = plan_columns(pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [1.0, 2.0, 4.0]}))
    columns = {"a": [10**400, 1.0], "b": [1.0, 2.0]}
    raw = parse(pd.DataFrame(columns) if as_frame else columns, schema)
    np.testing.assert_array_equal(raw.numeric, [[np.nan, 1.0], [1.0, 2.0]])
