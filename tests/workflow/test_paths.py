"""JSONPath as the States Language uses it: selecting, ``ResultPath`` and payload templates."""

from __future__ import annotations

from typing import Any

import pytest

from loopml.core.errors import StatesError
from loopml.workflow.paths import Path, PathSyntaxError, put, reference
from loopml.workflow.templates import compile_template

DOC: dict[str, Any] = {
    "a": {"b": "deep"},
    "a b": "spaced",
    "it's": "quoted",
    "flag": True,
    "items": [
        {"sku": "x", "qty": 1, "tags": ["new"]},
        {"sku": "y", "qty": 5},
        {"sku": "z", "qty": 3, "box": {"qty": 9}},
    ],
}
CONTEXT = {"Execution": {"Id": "exec-1", "Input": {"n": 1}}, "State": {"Name": "S"}}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$.a.b", "deep"),
        ("$['a b']", "spaced"),
        ('$["a b"]', "spaced"),
        ("$['a']['b']", "deep"),
        ("$['it\\'s']", "quoted"),
        ("$.a.['b']", "deep"),  # AWS's documentation writes bracket names after a dot
        ("$.items[1].qty", 5),
        ("$.items[-1].sku", "z"),
        ("$.items[0].tags[0]", "new"),
        ("$.items[2].box", {"qty": 9}),
        ("$.flag", True),
    ],
)
def test_a_definite_path_selects_one_value(text: str, expected: Any) -> None:
    assert Path(text).get(DOC) == expected


def test_dollar_alone_is_the_whole_input() -> None:
    assert Path("$").get(DOC) is DOC
    assert Path("$").get([1, 2]) == [1, 2]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$.items[*].qty", [1, 5, 3]),
        ("$.items.*.sku", ["x", "y", "z"]),
        ("$..qty", [1, 5, 3, 9]),  # document order, nested box last
        ("$.items[0:2].sku", ["x", "y"]),
        ("$.items[-2:].sku", ["y", "z"]),
        ("$.items[::2].sku", ["x", "z"]),
        ("$.items[0,2].sku", ["x", "z"]),
        ("$.items[1]['sku','qty']", ["y", 5]),
        ("$.items[?(@.qty > 1)].sku", ["y", "z"]),
        ("$.items[?(@.qty <= 3)].sku", ["x", "z"]),
        ("$.items[?(@.sku == 'y')].qty", [5]),
        ("$.items[?(@.sku != 'y')].qty", [1, 3]),
        ("$.items[?(@.box)].sku", ["z"]),
        ("$.items[?(@.tags[0] == 'new')].sku", ["x"]),
        ("$.items[5:].sku", []),
        ("$.nothing[*]", []),
        ("$..nothing", []),
    ],
)
def test_an_indefinite_path_selects_a_list(text: str, expected: list[Any]) -> None:
    assert Path(text).get(DOC) == expected


def test_a_one_item_indefinite_path_still_gives_a_list() -> None:
    assert Path("$.items[?(@.qty == 5)].qty").get(DOC) == [5]
    assert Path("$.items[1:2]").get(DOC) == [DOC["items"][1]]


def test_a_filter_does_not_take_true_for_1() -> None:
    data = {"xs": [{"v": True}, {"v": 1}, {"v": "1"}, {"v": 1.0}]}
    assert Path("$.xs[?(@.v == 1)]").get(data) == [{"v": 1}, {"v": 1.0}]
    assert Path("$.xs[?(@.v == true)]").get(data) == [{"v": True}]
    assert Path("$.xs[?(@.v != 1)]").get(data) == [{"v": True}, {"v": "1"}]


def test_a_filter_skips_items_it_cannot_compare() -> None:
    data = {"xs": [{"v": "text"}, {"v": 4}, {}, 7]}
    assert Path("$.xs[?(@.v > 2)]").get(data) == [{"v": 4}]


def test_context_paths_read_the_context_object() -> None:
    path = Path("$$.Execution.Id")
    assert path.context
    assert path.get(CONTEXT) == "exec-1"
    assert not Path("$.Execution.Id").context


@pytest.mark.parametrize(
    "text", ["$.missing", "$.a.b.c", "$.items[3]", "$.items[-4]", "$.a[0]", "$.items.qty"]
)
def test_a_definite_path_that_misses_is_a_runtime_error(text: str) -> None:
    with pytest.raises(StatesError) as caught:
        Path(text).get(DOC)
    assert caught.value.error == "States.Runtime"
    assert text in caught.value.cause


def test_exists_tells_a_miss_from_a_null() -> None:
    data: dict[str, Any] = {"x": None, "xs": []}
    assert Path("$.x").exists(data)
    assert not Path("$.y").exists(data)
    assert not Path("$.xs[*]").exists(data)
    assert Path("$.xs").exists(data)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a.b",
        "$.",
        "$[",
        "$..",
        "$.a b",
        "$.a[x]",
        "$[1:x]",
        "$['a]",
        "$.l[::0]",
        "$.items[?(@.qty ~ 1)]",
        "$.items[?(@.qty > )]",
    ],
)
def test_malformed_paths_are_syntax_errors(text: str) -> None:
    with pytest.raises(PathSyntaxError):
        Path(text)


def test_a_reference_path_takes_names_and_indices_only() -> None:
    assert reference("$.a[0]['b c']").get({"a": [{"b c": 1}]}) == 1
    for text in ("$.a[*]", "$..a", "$.a[0:1]", "$.a[?(@.x)]", "$$.Execution.Id"):
        with pytest.raises(PathSyntaxError):
            reference(text)


# ResultPath ---------------------------------------------------------------------------


def test_result_path_creates_the_objects_it_goes_through() -> None:
    data = {"keep": 1}
    assert put(data, Path("$.a.b.c"), 5) == {"keep": 1, "a": {"b": {"c": 5}}}
    assert data == {"keep": 1}  # the input itself is left as it was


def test_result_path_replaces_an_existing_value_and_array_items() -> None:
    data = {"a": {"b": 1, "c": 2}, "xs": [1, 2, 3]}
    assert put(data, Path("$.a.b"), "new") == {"a": {"b": "new", "c": 2}, "xs": [1, 2, 3]}
    assert put(data, Path("$.xs[-1]"), 9)["xs"] == [1, 2, 9]
    assert data["xs"] == [1, 2, 3]


def test_result_path_dollar_replaces_the_input_and_none_discards_the_result() -> None:
    assert put({"a": 1}, Path("$"), {"b": 2}) == {"b": 2}
    assert put({"a": 1}, None, {"b": 2}) == {"a": 1}


@pytest.mark.parametrize(
    ("data", "text"),
    [
        ({"a": 1}, "$.a.b"),
        ({"a": "text"}, "$.a.b"),
        ({"a": [1, 2]}, "$.a.b"),
        ({"a": [1, 2]}, "$.a[5]"),
        ({"a": {}}, "$.a[0]"),
    ],
)
def test_result_path_into_a_non_object_fails(data: Any, text: str) -> None:
    with pytest.raises(StatesError) as caught:
        put(data, Path(text), "result")
    assert caught.value.error == "States.ResultPathMatchFailure"
    assert text in caught.value.cause


# Payload templates (Parameters, ResultSelector, ItemSelector) -------------------------


def test_a_template_copies_plain_values_and_resolves_dollar_keys() -> None:
    template = compile_template(
        {
            "static": {"nested": [1, "two", None]},
            "qty.$": "$.items[1].qty",
            "skus.$": "$.items[*].sku",
            "run.$": "$$.Execution.Id",
            "greeting.$": "States.Format('hi {}', $.a.b)",
            "list": [{"first.$": "$.items[0].sku"}, "$.not.a.path"],
        },
        "Parameters",
    )
    assert template(DOC, CONTEXT) == {
        "static": {"nested": [1, "two", None]},
        "qty": 5,
        "skus": ["x", "y", "z"],
        "run": "exec-1",
        "greeting": "hi deep",
        "list": [{"first": "x"}, "$.not.a.path"],
    }


def test_a_template_path_that_misses_names_the_field() -> None:
    template = compile_template({"deep": {"x.$": "$.nope"}}, "States.T.Parameters")
    with pytest.raises(StatesError) as caught:
        template(DOC, CONTEXT)
    assert caught.value.error == "States.Runtime"
    assert "States.T.Parameters.deep.x.$" in caught.value.cause
    assert "'$.nope'" in caught.value.cause


@pytest.mark.parametrize(
    "template", [{"x.$": 5}, {"x.$": "not a path"}, {"x.$": "States.Nope()"}, [{"y.$": "$["}]]
)
def test_a_malformed_template_is_a_syntax_error(template: Any) -> None:
    with pytest.raises(PathSyntaxError):
        compile_template(template, "Parameters")
