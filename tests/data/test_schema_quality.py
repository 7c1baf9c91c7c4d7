"""Schema inference and the quality report: column kinds, suggested target and task,
checked overrides, and each quality check firing on data built to trigger it (with the
severity a person would expect) while staying silent on clean data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from loopml.core.enums import ColumnKind, Severity, TaskType
from loopml.core.errors import InvalidInput
from loopml.core.schemas import QualityFinding
from loopml.data.quality import quality_report
from loopml.data.schema import infer_schema
from loopml.data.tabular import read_table

N = 40
SENTENCES = [
    "the parcel arrived two days late and damaged",
    "great service, would order again next month",
    "the colour was not what the picture showed",
    "refund took far too long to reach my account",
]


def mixed_frame() -> pa.Table:
    rng = np.random.default_rng(0)
    return pa.table(
        {
            "customer_id": [f"C{1000 + i}" for i in range(N)],
            "row": list(range(N)),
            "age": rng.integers(18, 80, N).tolist(),
            "income": rng.normal(50_000, 1_000, N).round(2).tolist(),
            "member": [bool(i % 3) for i in range(N)],
            "signup": [f"2024-01-{1 + i % 28:02d}" for i in range(N)],
            "comment": [f"{SENTENCES[i % 4]} ({i})" for i in range(N)],
            "colour": [["red", "green", "blue"][i % 3] for i in range(N)],
            "amount_text": [f"{i * 1.5}" for i in range(N)],
            "plan": [["basic", "pro"][i % 2] for i in range(N)],
        }
    )


def clean_frame(n: int = 200, seed: int = 1) -> dict[str, Any]:
    """Columns with nothing wrong: no check should speak."""
    rng = np.random.default_rng(seed)
    return {
        "height": rng.normal(170, 10, n).round(1),
        "visits": rng.integers(0, 50, n),
        "region": rng.choice(["north", "south", "east", "west"], n),
        "when": [f"2024-{1 + i % 12:02d}-{1 + i % 28:02d} 10:00" for i in range(n)],
        "outcome": rng.choice(["a", "b"], n),
    }


def report(columns: dict[str, Any], **overrides: Any) -> list[QualityFinding]:
    table = pa.table(columns)
    return quality_report(table, infer_schema(table, **overrides))


def found(findings: list[QualityFinding], check: str) -> list[QualityFinding]:
    return [f for f in findings if f.check == check]


# --- kinds ----------------------------------------------------------------------------


def test_kinds_are_inferred_for_every_kind_of_column() -> None:
    schema = infer_schema(mixed_frame())
    kinds = {c.name: c.kind for c in schema.columns}
    assert kinds == {
        "customer_id": ColumnKind.identifier,
        "row": ColumnKind.identifier,  # unique, increasing integers
        "age": ColumnKind.integer,
        "income": ColumnKind.numeric,
        "member": ColumnKind.boolean,
        "signup": ColumnKind.datetime,
        "comment": ColumnKind.text,
        "colour": ColumnKind.categorical,
        "amount_text": ColumnKind.numeric,  # numbers stored as text
        "plan": ColumnKind.categorical,
    }
    colour = schema.column("colour")
    assert colour is not None
    assert (colour.unique, colour.missing, colour.dtype, colour.inferred) == (3, 0, "string", None)


def test_integer_named_like_an_id_is_an_identifier_even_unordered() -> None:
    order = np.random.default_rng(0).permutation(30)
    table = pa.table({"order_id": order, "count": order})
    kinds = {c.name: c.kind for c in infer_schema(table).columns}
    assert kinds == {"order_id": ColumnKind.identifier, "count": ColumnKind.integer}


def test_few_rows_are_never_called_identifiers() -> None:
    table = pa.table({"code": ["a1", "b2", "c3"], "n": [1, 2, 3]})
    kinds = {c.name: c.kind for c in infer_schema(table).columns}
    assert kinds == {"code": ColumnKind.categorical, "n": ColumnKind.integer}


def test_missing_values_are_counted_including_nan() -> None:
    table = pa.table({"x": pa.array([1.0, float("nan"), None, 4.0]), "y": ["a", None, "b", "a"]})
    schema = infer_schema(table)
    assert schema.column("x").missing == 2  # type: ignore[union-attr]
    assert schema.column("y").missing == 1  # type: ignore[union-attr]


# --- target and task -----------------------------------------------------------------


def test_target_suggested_by_name_wherever_it_is() -> None:
    table = pa.table({"label": ["x", "y", "z"] * 10, "a": range(30), "b": [0.5] * 29 + [1.0]})
    schema = infer_schema(table)
    assert schema.suggested_target == "label"
    assert schema.target == "label"
    assert schema.task is TaskType.multiclass


def test_target_suggested_as_the_last_column() -> None:
    table = pa.table({"a": [1.5, 2.5, 3.5] * 5, "b": ["u", "v", "w"] * 5, "price_eur": range(15)})
    schema = infer_schema(table)
    assert schema.suggested_target == "price_eur"
    assert schema.task is TaskType.regression  # integers with more than 10 values


def test_no_target_when_the_last_column_cannot_be_one() -> None:
    table = mixed_frame().select(["age", "income", "comment"])
    schema = infer_schema(table)
    assert schema.suggested_target is None
    assert schema.target is None
    assert schema.task is None


@pytest.mark.parametrize(
    ("values", "task"),
    [
        (["yes", "no"] * 10, TaskType.binary),
        ([True, False] * 10, TaskType.binary),
        ([0, 1] * 10, TaskType.binary),
        (["a", "b", "c", "d"] * 5, TaskType.multiclass),
        ([1, 2, 3] * 6 + [1, 2], TaskType.multiclass),  # few integer values: classes
        ([float(i) / 3 for i in range(20)], TaskType.regression),
        ([(i * 7) % 20 * 2 for i in range(20)], TaskType.regression),
    ],
)
def test_task_follows_the_target(values: list[Any], task: TaskType) -> None:
    table = pa.table({"feature": [float(i % 7) for i in range(20)], "target": values})
    schema = infer_schema(table)
    assert schema.target == "target"
    assert schema.task is task
    assert schema.suggested_task is task


# --- overrides -----------------------------------------------------------------------


def test_overrides_are_applied_and_inference_is_remembered() -> None:
    schema = infer_schema(
        mixed_frame(),
        kinds={"age": "categorical", "amount_text": "numeric", "comment": "categorical"},
        target="colour",
        task="multiclass",
    )
    age = schema.column("age")
    assert age is not None
    assert (age.kind, age.inferred) == (ColumnKind.categorical, ColumnKind.integer)
    comment = schema.column("comment")
    assert comment is not None
    assert (comment.kind, comment.inferred) == (ColumnKind.categorical, ColumnKind.text)
    # Overriding a kind with what inference said anyway records no "inferred".
    assert schema.column("amount_text").inferred is None  # type: ignore[union-attr]
    assert (schema.target, schema.task) == ("colour", TaskType.multiclass)
    assert (schema.suggested_target, schema.suggested_task) == ("plan", TaskType.binary)


def test_binary_task_on_a_two_valued_integer_target() -> None:
    table = pa.table({"x": [1.0, 2.0, 3.0, 4.0], "y": [0, 1, 1, 0]})
    schema = infer_schema(table, target="y", task="binary")
    assert schema.task is TaskType.binary


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"kinds": {"nope": "numeric"}}, "kinds", ["'nope'", "age"]),
        ({"kinds": {"age": "number"}}, "kinds", ["'age'", "'number'", "categorical"]),
        ({"kinds": {"colour": "numeric"}}, "kinds", ["'colour'", "'red'"]),
        ({"kinds": {"colour": "image"}}, "kinds", ["'colour'", "image"]),
        ({"target": "nope"}, "target", ["'nope'", "colour"]),
        ({"target": "comment"}, "target", ["'comment'", "text"]),
        ({"target": "colour", "task": "regression"}, "task", ["'colour'", "categorical"]),
        ({"target": "colour", "task": "binary"}, "task", ["2 classes", "'colour' has 3"]),
        ({"target": "colour", "task": "ranking"}, "task", ["'ranking'", "regression"]),
    ],
)
def test_bad_overrides_name_the_field(
    overrides: dict[str, Any], field: str, words: list[str]
) -> None:
    with pytest.raises(InvalidInput) as err:
        infer_schema(mixed_frame(), **overrides)
    assert err.value.field == field
    for word in words:
        assert word in err.value.message


def test_single_class_target_is_refused() -> None:
    table = pa.table({"x": [1.0, 2.0, 3.0], "y": ["a", "a", "a"]})
    with pytest.raises(InvalidInput, match="fewer than 2 classes") as err:
        infer_schema(table, target="y", task="multiclass")
    assert err.value.field == "task"


# --- quality checks ------------------------------------------------------------------


def test_clean_data_has_no_findings() -> None:
    assert report(clean_frame()) == []


def test_missing_values_info_warning_and_error() -> None:
    columns = clean_frame()
    n = len(columns["height"])
    columns["few_missing"] = [None if i % 10 == 0 else float(i) for i in range(n)]
    columns["half_missing"] = [None if i % 2 else float(i) for i in range(n)]
    columns["all_missing"] = pa.array([None] * n, pa.float64())
    findings = found(report(columns), "missing")
    by_column = {f.column: f for f in findings}
    assert by_column["few_missing"].severity is Severity.info
    assert by_column["few_missing"].details == {"missing": 20, "share": 0.1}
    assert "20 rows (10.0%)" in by_column["few_missing"].message
    assert by_column["half_missing"].severity is Severity.warning
    assert by_column["all_missing"].severity is Severity.error
    assert "empty on every row" in by_column["all_missing"].message
    assert set(by_column) == {"few_missing", "half_missing", "all_missing"}


def test_findings_are_sorted_most_severe_first() -> None:
    columns = clean_frame()
    n = len(columns["height"])
    columns["all_missing"] = pa.array([None] * n, pa.string())
    columns["half_missing"] = [None if i % 2 else float(i) for i in range(n)]
    severities = [f.severity for f in report(columns)]
    order = [Severity.error, Severity.warning, Severity.info]
    assert severities == sorted(severities, key=order.index)
    assert severities[0] is Severity.error


def test_constant_and_near_constant_columns() -> None:
    columns = clean_frame()
    columns["country"] = ["FR"] * 200
    columns["flag"] = ["ok"] * 199 + ["odd"]
    findings = report(columns)
    [constant] = found(findings, "constant")
    assert (constant.column, constant.severity) == ("country", Severity.warning)
    [near] = found(findings, "near_constant")
    assert (near.column, near.severity) == ("flag", Severity.info)
    assert near.details["value"] == "ok"
    assert "'ok' on 99.5% of rows" in near.message


def test_identifier_column_is_reported_with_advice() -> None:
    columns = clean_frame()
    columns["customer_id"] = [f"C{i:05d}" for i in range(200)]
    [finding] = found(report(columns), "identifier")
    assert finding.column == "customer_id"
    assert finding.severity is Severity.info
    assert "grouped split" in finding.message


def test_placeholder_9999_is_an_outliers_warning_naming_it() -> None:
    columns = clean_frame()
    income = np.random.default_rng(3).normal(40_000, 5_000, 200).round(0)
    income[[5, 50, 120, 180]] = 9_999_999
    columns["income"] = income
    columns["height"] = columns["height"].copy()
    columns["height"][[3, 33, 133]] = 9999
    findings = found(report(columns), "outliers")
    by_column = {f.column: f for f in findings}
    assert set(by_column) == {"income", "height"}
    height = by_column["height"]
    assert height.severity is Severity.warning
    assert height.details["sentinel"] == 9999
    assert height.details["count"] == 3
    assert "9999 alone appears 3 times" in height.message
    assert by_column["income"].details["sentinel"] == 9_999_999


def test_one_far_value_is_only_info() -> None:
    columns = clean_frame()
    columns["height"] = columns["height"].copy()
    columns["height"][7] = 1700.0  # a unit slip, once
    [finding] = found(report(columns), "outliers")
    assert finding.severity is Severity.info
    assert finding.details["sentinel"] is None
    assert "unit mix-ups" in finding.message


def test_outliers_of_the_target_are_not_reported() -> None:
    columns = clean_frame()
    del columns["outcome"]
    target = np.random.default_rng(4).normal(10, 1, 200)
    target[:5] = 9999
    columns["target"] = target
    findings = report(columns)
    assert infer_schema(pa.table(columns)).task is TaskType.regression
    assert found(findings, "outliers") == []


def test_numbers_mixed_with_text_are_reported() -> None:
    columns = clean_frame()
    columns["weight"] = [str(60 + i % 30) if i % 10 else "n/a" for i in range(200)]
    [finding] = found(report(columns), "mixed_types")
    assert finding.column == "weight"
    assert finding.severity is Severity.warning
    assert finding.details["text_examples"] == ["n/a"]
    assert "10.0% of values are not numbers" in finding.message


def test_numbers_mixed_with_text_after_a_long_gap_are_reported() -> None:
    """The values looked at are the column's first ones that are there, wherever they
    start: here the numbers begin after the first 10,000 rows."""
    n = 15_000
    columns = clean_frame(n)
    columns["code"] = [None] * 6_000 + ["abc"] * 4_000 + [str(i % 50) for i in range(5_000)]
    [finding] = found(report(columns), "mixed_types")
    assert finding.column == "code"
    assert finding.details["text_examples"] == ["abc"]


def test_spelling_variants_are_near_duplicates() -> None:
    columns = clean_frame()
    columns["answer"] = [["Yes", "yes ", "No", "no", "maybe"][i % 5] for i in range(200)]
    [finding] = found(report(columns), "near_duplicate_values")
    assert finding.column == "answer"
    assert finding.severity is Severity.warning
    assert finding.details["groups"] == [["Yes", "yes "], ["No", "no"]]
    assert "'Yes' / 'yes '" in finding.message


def test_other_separators_are_near_duplicates_too() -> None:
    columns = clean_frame()
    columns["city"] = [["New York", "new-york", "Boston"][i % 3] for i in range(200)]
    [finding] = found(report(columns), "near_duplicate_values")
    assert finding.details["groups"] == [["New York", "new-york"]]


def test_one_duplicated_row_is_counted() -> None:
    columns = {k: list(v) for k, v in clean_frame().items()}
    for values in columns.values():
        values.append(values[17])
    [finding] = found(report(columns), "duplicate_rows")
    assert finding.details["count"] == 1
    assert finding.column is None
    assert finding.message.startswith("1 row")
    assert "(0.5%)" in finding.message


def test_rows_differing_in_one_value_are_not_duplicates() -> None:
    columns = {k: list(v) for k, v in clean_frame().items()}
    for values in columns.values():
        values.append(values[17])
    columns["height"][-1] += 0.1
    assert found(report(columns), "duplicate_rows") == []


def test_class_imbalance_warning_and_error() -> None:
    columns = clean_frame()
    columns["outcome"] = ["rare"] * 15 + ["common"] * 185
    [warning] = found(report(columns), "class_imbalance")
    assert warning.severity is Severity.warning
    assert warning.details["classes"] == {"rare": 15, "common": 185}
    assert "'rare'" in warning.message and "balanced_accuracy" in warning.message

    columns["outcome"] = ["rare"] * 4 + ["common"] * 196
    [error] = found(report(columns), "class_imbalance")
    assert error.severity is Severity.error
    assert "4 rows" in error.message


def test_regression_target_has_no_class_imbalance() -> None:
    columns = clean_frame()
    columns["outcome"] = np.random.default_rng(5).exponential(size=200)
    assert found(report(columns), "class_imbalance") == []


def test_a_copy_of_the_target_is_leakage() -> None:
    columns = clean_frame()
    columns["outcome_code"] = ["A" if v == "a" else "B" for v in columns["outcome"]]
    columns["outcome"] = columns.pop("outcome")  # keep the target last
    [finding] = found(report(columns), "target_leakage")
    assert finding.column == "outcome_code"
    assert finding.severity is Severity.warning
    assert finding.details["score"] == 1.0
    assert "alone predicts 'outcome' with accuracy 1.000" in finding.message


def test_a_number_derived_from_a_regression_target_is_leakage() -> None:
    columns = clean_frame()
    target = np.random.default_rng(6).normal(100, 20, 200)
    columns["price_in_cents"] = (target * 100).round()
    columns["target"] = target
    findings = report(columns)
    [finding] = found(findings, "target_leakage")
    assert finding.column == "price_in_cents"
    assert "R²" in finding.message
    assert finding.details["score"] > 0.98


def test_no_leakage_without_a_target() -> None:
    columns = clean_frame()
    columns["group"] = columns.pop("outcome")
    columns["copy"] = list(columns["group"])
    columns["text"] = [SENTENCES[i % 4] + f" {i}" for i in range(200)]  # last: not a target
    table = pa.table(columns)
    schema = infer_schema(table)
    assert schema.target is None
    assert found(quality_report(table, schema), "target_leakage") == []


def test_rare_class_among_many_classes_is_found() -> None:
    columns = clean_frame(n=300)
    # Twelve classes: the rare one is not among the most common ten.
    labels = [f"class_{i % 12:02d}" for i in range(297)] + ["class_rare"] * 3
    columns["outcome"] = labels
    [finding] = found(report(columns), "class_imbalance")
    assert finding.severity is Severity.error
    assert "'class_rare'" in finding.message
    assert "3 rows" in finding.message


@pytest.mark.parametrize("shared_floats", [False, True])
def test_duplicates_in_a_wide_table_are_counted_whether_or_not_floats_tell_rows_apart(
    shared_floats: bool,
) -> None:
    # Rows are first told apart by a few float columns; rows that share those are compared
    # whole. Both ways must count the same copies.
    from loopml.data.quality import duplicate_rows

    rng = np.random.default_rng(7)
    n = 20_000
    floats = np.zeros((n, 4)) if shared_floats else rng.normal(size=(n, 4))
    columns: dict[str, Any] = {f"x{i}": floats[:, i] for i in range(4)}
    columns["city"] = rng.choice(["Oslo", "Lima"], n).astype(object)
    columns["n"] = rng.integers(0, 1_000_000, n)
    copies = rng.choice(n - 1, 30, replace=False)
    for name in columns:
        columns[name][copies + 1] = columns[name][copies]  # 30 rows repeat the row before
    columns["city"][5] = None  # a missing value is a value like any other
    columns["city"][6] = None
    columns["n"][6] = columns["n"][5]
    for i in range(4):
        columns[f"x{i}"][6] = columns[f"x{i}"][5]
    for i in range(4):  # rows 10 and 11 share their floats but not their count
        columns[f"x{i}"][11] = columns[f"x{i}"][10]
    columns["n"][11] = columns["n"][10] + 1
    table = pa.table(columns)
    frame = table.to_pandas()
    expected = int(frame.duplicated().sum())
    assert expected >= 30
    [finding] = duplicate_rows(table)
    assert finding.details["count"] == expected


def test_duplicates_over_chunks_count_missing_floats_and_negative_zero_as_equal() -> None:
    from loopml.data.quality import duplicate_rows

    rng = np.random.default_rng(8)
    n = 9_000
    x = rng.normal(size=n)
    x[rng.random(n) < 0.2] = np.nan
    x[100:110] = 0.0
    columns = {"x": x, "y": np.where(np.isnan(x), 1.0, x * 2), "g": rng.integers(0, 3, n)}
    columns["x"][5_000], columns["y"][5_000], columns["g"][5_000] = np.nan, 1.0, 1
    columns["x"][5_001], columns["y"][5_001], columns["g"][5_001] = np.nan, 1.0, 1
    columns["x"][105] = -0.0  # the same value as 0.0
    # float32, with NaN as a value (not missing) in the two repeated rows
    z = rng.normal(size=n).astype(np.float32)
    z[5_000] = z[5_001] = np.nan
    z[100:110] = 0.5
    columns["g"][100:110] = 2  # ten equal rows, one of them with -0.0
    whole = pa.table(
        {**{k: pa.array(v, from_pandas=True) for k, v in columns.items()}, "z": pa.array(z)}
    )
    assert whole.column("z").null_count == 0
    # As a reader gives it: many chunks, missing cells as nulls.
    table = pa.concat_tables([whole.slice(i, 1_000) for i in range(0, n, 1_000)])
    assert table.column("x").num_chunks == 9 and table.column("x").null_count > 0
    expected = int(whole.to_pandas().duplicated().sum())
    assert expected == 10  # nine copies of row 100, one of row 5,000
    [finding] = duplicate_rows(table)
    assert finding.details["count"] == expected


def test_a_stray_quote_that_merged_rows_is_pointed_at(tmp_path: Path) -> None:
    notes = [f"item {i}" for i in range(200)]
    lines = [f"{i},{10 + i},{note}" for i, note in enumerate(notes)]
    lines[40] = '40,50,"Lamp, small'  # opened, and closed only three lines later
    lines[43] = '43,53,TV 55"'
    path = tmp_path / "stray.csv"
    path.write_text("id,price,desc\n" + "\n".join(lines) + "\n")
    table = read_table(path, "stray.csv")
    assert table.num_rows == 197  # valid CSV: no reader can refuse it
    [warning] = found(quality_report(table, infer_schema(table)), "line_breaks")
    assert warning.severity is Severity.warning and warning.column == "desc"
    assert warning.details["first_row"] == 41
    assert "quote" in warning.message and "row 41" in warning.message


def test_a_column_of_multi_line_notes_is_not_a_stray_quote() -> None:
    notes = [f"first line {i}\nsecond line" if i % 3 else f"one line {i}" for i in range(300)]
    findings = report({"id": list(range(300)), "notes": notes})
    assert found(findings, "line_breaks") == []
    assert found(report(clean_frame()), "line_breaks") == []
