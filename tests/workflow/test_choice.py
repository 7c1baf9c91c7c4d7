"""Choice rules: comparisons, type tests, combinators and their errors."""

from __future__ import annotations

from typing import Any

import pytest

from loopml.core.errors import StatesError
from loopml.workflow.choice import compile_rule
from loopml.workflow.paths import PathSyntaxError

CONTEXT = {"State": {"Name": "Route", "RetryCount": 2}}


def check(rule: dict[str, Any], data: Any) -> bool:
    return compile_rule(rule, "States.C.Choices[0]")(data, CONTEXT)


def holds(operator: str, operand: Any, value: Any) -> bool:
    """Whether ``{"Variable": "$.v", operator: operand}`` holds for ``{"v": value}``."""
    return check({"Variable": "$.v", operator: operand}, {"v": value})


@pytest.mark.parametrize(
    ("operator", "operand", "value", "expected"),
    [
        ("StringEquals", "abc", "abc", True),
        ("StringEquals", "abc", "abd", False),
        ("StringLessThan", "b", "a", True),
        ("StringLessThan", "b", "b", False),
        ("StringGreaterThan", "b", "c", True),
        ("StringGreaterThan", "b", "b", False),
        ("StringLessThanEquals", "b", "b", True),
        ("StringLessThanEquals", "b", "c", False),
        ("StringGreaterThanEquals", "b", "b", True),
        ("StringGreaterThanEquals", "b", "a", False),
        ("NumericEquals", 5, 5.0, True),
        ("NumericEquals", 5, 6, False),
        ("NumericLessThan", 5, 4.5, True),
        ("NumericLessThan", 5, 5, False),
        ("NumericGreaterThan", 5, 6, True),
        ("NumericGreaterThan", 5, 5, False),
        ("NumericLessThanEquals", 5, 5, True),
        ("NumericLessThanEquals", 5, 6, False),
        ("NumericGreaterThanEquals", -1, -1, True),
        ("NumericGreaterThanEquals", -1, -2, False),
        ("BooleanEquals", True, True, True),
        ("BooleanEquals", False, False, True),
        ("BooleanEquals", False, True, False),
        ("TimestampEquals", "2024-05-01T10:00:00Z", "2024-05-01T10:00:00Z", True),
        ("TimestampEquals", "2024-05-01T10:00:00Z", "2024-05-01T10:00:01Z", False),
        ("TimestampLessThan", "2024-05-01T10:00:00Z", "2024-05-01T09:59:59Z", True),
        ("TimestampLessThan", "2024-05-01T10:00:00Z", "2024-05-01T10:00:00Z", False),
        ("TimestampGreaterThan", "2024-05-01T10:00:00Z", "2024-05-02T00:00:00Z", True),
        ("TimestampGreaterThan", "2024-05-01T10:00:00Z", "2024-05-01T10:00:00Z", False),
        ("TimestampLessThanEquals", "2024-05-01T10:00:00Z", "2024-05-01T10:00:00Z", True),
        ("TimestampLessThanEquals", "2024-05-01T10:00:00Z", "2024-05-01T10:00:00.001Z", False),
        ("TimestampGreaterThanEquals", "2024-05-01T10:00:00Z", "2024-05-01T10:00:00Z", True),
        ("TimestampGreaterThanEquals", "2024-05-01T10:00:00Z", "2023-05-01T10:00:00Z", False),
    ],
)
def test_each_comparison_against_a_literal(
    operator: str, operand: Any, value: Any, expected: bool
) -> None:
    assert holds(operator, operand, value) is expected


@pytest.mark.parametrize(
    ("operator", "value", "other", "expected"),
    [
        ("StringEqualsPath", "x", "x", True),
        ("StringEqualsPath", "x", "y", False),
        ("StringLessThanPath", "a", "b", True),
        ("StringGreaterThanPath", "a", "b", False),
        ("StringLessThanEqualsPath", "b", "b", True),
        ("StringGreaterThanEqualsPath", "a", "b", False),
        ("NumericEqualsPath", 3, 3, True),
        ("NumericLessThanPath", 3, 2, False),
        ("NumericGreaterThanPath", 3, 2, True),
        ("NumericLessThanEqualsPath", 2, 2, True),
        ("NumericGreaterThanEqualsPath", 1, 2, False),
        ("BooleanEqualsPath", True, True, True),
        ("BooleanEqualsPath", True, False, False),
        ("TimestampEqualsPath", "2024-01-01T00:00:00Z", "2024-01-01T02:00:00+02:00", True),
        ("TimestampLessThanPath", "2024-01-01T00:00:00Z", "2024-01-01T00:00:01Z", True),
        ("TimestampGreaterThanPath", "2024-01-01T00:00:00Z", "2024-01-01T00:00:01Z", False),
        ("TimestampLessThanEqualsPath", "2024-01-01T00:00:00Z", "2023-12-31T23:00:00Z", False),
        ("TimestampGreaterThanEqualsPath", "2024-01-01T00:00:00Z", "2023-12-31T23:00:00Z", True),
    ],
)
def test_each_path_comparison_reads_its_operand_from_the_input(
    operator: str, value: Any, other: Any, expected: bool
) -> None:
    rule = {"Variable": "$.v", operator: "$.other"}
    assert check(rule, {"v": value, "other": other}) is expected


def test_a_path_operand_may_read_the_context_object() -> None:
    rule = {"Variable": "$.retries", "NumericEqualsPath": "$$.State.RetryCount"}
    assert check(rule, {"retries": 2})
    assert not check(rule, {"retries": 3})


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("log-*.txt", "log-2024-05.txt", True),
        ("log-*.txt", "log-.txt", True),
        ("log-*.txt", "log-2024.csv", False),
        ("*", "", True),
        ("a*b*c", "aXXbYYc", True),
        ("a*b*c", "acb", False),
        ("exact", "exact", True),
        ("exact", "exactly", False),
        ("a.c", "abc", False),  # only * is special
        ("[ab]", "a", False),
        ("a\\*b", "a*b", True),
        ("a\\*b", "aXb", False),
        ("a\\\\*", "a\\anything", True),
        ("a\\\\*", "ab", False),
        ("*.txt", "line1\nline2.txt", True),
    ],
)
def test_string_matches_wildcards_and_escapes(pattern: str, value: str, expected: bool) -> None:
    assert holds("StringMatches", pattern, value) is expected


def test_timestamps_compare_as_instants_across_zones() -> None:
    assert holds("TimestampEquals", "2024-01-01T10:00:00Z", "2024-01-01T12:00:00+02:00")
    assert holds("TimestampEquals", "2024-01-01T10:00:00Z", "2024-01-01T05:00:00-05:00")
    assert holds("TimestampLessThan", "2024-01-01T10:00:00Z", "2024-01-01T11:00:00+02:00")
    assert holds("TimestampEquals", "2024-01-01T10:00:00Z", "2024-01-01T10:00:00.000Z")
    assert holds("TimestampGreaterThan", "2024-01-01T10:00:00Z", "2024-01-01T10:00:00.5Z")


@pytest.mark.parametrize(
    ("operator", "operand", "value"),
    [
        ("StringEquals", "5", 5),
        ("StringLessThan", "z", None),
        ("StringMatches", "*", 5),
        ("NumericEquals", 5, "5"),
        ("NumericEquals", 1, True),
        ("NumericGreaterThanEquals", 0, False),
        ("NumericLessThan", 10, None),
        ("BooleanEquals", True, 1),
        ("BooleanEquals", False, 0),
        ("BooleanEquals", False, None),
        ("TimestampEquals", "2024-01-01T00:00:00Z", "2024-01-01"),
        ("TimestampLessThan", "2024-01-01T00:00:00Z", 1704067200),
        ("TimestampLessThan", "2030-01-01T00:00:00Z", "not a time"),
    ],
)
def test_a_value_of_another_type_never_matches(operator: str, operand: Any, value: Any) -> None:
    assert holds(operator, operand, value) is False
    assert check({"Not": {"Variable": "$.v", operator: operand}}, {"v": value}) is True


@pytest.mark.parametrize(
    ("test", "value", "expected"),
    [
        ("IsNull", None, True),
        ("IsNull", 0, False),
        ("IsNull", "", False),
        ("IsNumeric", 3, True),
        ("IsNumeric", -2.5, True),
        ("IsNumeric", True, False),
        ("IsNumeric", False, False),
        ("IsNumeric", "3", False),
        ("IsString", "", True),
        ("IsString", "2024-01-01T00:00:00Z", True),
        ("IsString", None, False),
        ("IsBoolean", False, True),
        ("IsBoolean", 0, False),
        ("IsBoolean", "true", False),
        ("IsTimestamp", "2024-01-01T00:00:00Z", True),
        ("IsTimestamp", "2024-01-01T00:00:00.123456+05:30", True),
        ("IsTimestamp", "2024-01-01T00:00:00", False),  # no zone
        ("IsTimestamp", "2024-01-01T00:00Z", False),  # no seconds
        ("IsTimestamp", "2024-01-01t00:00:00z", False),  # the T and Z must be uppercase
        ("IsTimestamp", "2024-01-01", False),
        ("IsTimestamp", "2024-02-30T00:00:00Z", False),
        ("IsTimestamp", 1704067200, False),
    ],
)
def test_type_tests(test: str, value: Any, expected: bool) -> None:
    assert holds(test, True, value) is expected
    assert holds(test, False, value) is not expected


def test_is_present_tells_a_missing_field_from_a_null() -> None:
    present = {"Variable": "$.v", "IsPresent": True}
    absent = {"Variable": "$.v", "IsPresent": False}
    assert check(present, {"v": None})
    assert not check(present, {"w": 1})
    assert check(absent, {"w": 1})
    assert not check(absent, {"v": 0})
    assert check({"Variable": "$$.State.Name", "IsPresent": True}, {})
    assert not check({"Variable": "$.xs[*]", "IsPresent": True}, {"xs": []})


def test_and_or_not_nest() -> None:
    rule = {
        "Or": [
            {
                "And": [
                    {"Variable": "$.kind", "StringEquals": "image"},
                    {"Not": {"Variable": "$.size", "NumericGreaterThan": 100}},
                ]
            },
            {"Variable": "$.force", "BooleanEquals": True},
        ]
    }
    assert check(rule, {"kind": "image", "size": 100, "force": False})
    assert not check(rule, {"kind": "image", "size": 101, "force": False})
    assert not check(rule, {"kind": "text", "size": 1, "force": False})
    assert check(rule, {"kind": "text", "size": 1000, "force": True})
    assert check({"Not": {"Not": {"Variable": "$.force", "BooleanEquals": True}}}, {"force": True})


def test_and_or_stop_at_the_first_deciding_rule() -> None:
    missing = {"Variable": "$.missing", "NumericEquals": 1}
    assert not check({"And": [{"Variable": "$.a", "NumericEquals": 0}, missing]}, {"a": 1})
    assert check({"Or": [{"Variable": "$.a", "NumericEquals": 1}, missing]}, {"a": 1})


@pytest.mark.parametrize(
    "rule",
    [
        {"Variable": "$.missing", "StringEquals": "x"},
        {"Variable": "$.missing", "IsNull": True},
        {"Variable": "$.a.b", "NumericEquals": 1},
        {"Variable": "$.a", "NumericEqualsPath": "$.missing"},
        {"Not": {"Variable": "$.missing", "BooleanEquals": True}},
    ],
)
def test_a_missing_variable_is_a_runtime_error(rule: dict[str, Any]) -> None:
    with pytest.raises(StatesError) as caught:
        check(rule, {"a": 1})
    assert caught.value.error == "States.Runtime"
    assert "$.missing" in caught.value.cause or "$.a.b" in caught.value.cause


@pytest.mark.parametrize(
    "rule",
    [
        "not a rule",
        {},
        {"Variable": "$.v"},
        {"Variable": "$.v", "NumericEquals": 1, "NumericLessThan": 2},
        {"Variable": "$.v", "NumericEquals": "1"},
        {"Variable": "$.v", "StringEquals": 1},
        {"Variable": "$.v", "BooleanEquals": "true"},
        {"Variable": "$.v", "TimestampEquals": "yesterday"},
        {"Variable": "$.v", "TimestampEquals": "2024-01-01T00:00:00"},
        {"Variable": "$.v", "IsNull": "yes"},
        {"Variable": "$.v", "StringMatchesPath": "$.p"},
        {"Variable": "$.v", "NumericEqualsPath": "not a path"},
        {"Variable": "v", "NumericEquals": 1},
        {"And": []},
        {"Or": {"Variable": "$.v", "IsNull": True}},
        {"Not": "x"},
        {"And": [{"Variable": "$.v"}]},
    ],
)
def test_malformed_rules_are_syntax_errors(rule: Any) -> None:
    with pytest.raises(PathSyntaxError) as caught:
        compile_rule(rule, "States.C.Choices[0]")
    assert str(caught.value).startswith("States.C.Choices[0]")


def test_string_matches_does_not_backtrack_on_many_stars() -> None:
    rule = compile_rule({"Variable": "$.s", "StringMatches": "*a" * 12 + "b"}, "C")
    assert rule({"s": "a" * 34}, {}) is False
    assert rule({"s": "a" * 34 + "b"}, {}) is True
