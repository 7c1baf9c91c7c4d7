"""Intrinsic functions, checked against the examples of AWS's documentation."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest

from loopml.core.errors import StatesError
from loopml.workflow.intrinsics import FUNCTIONS, compile_intrinsic
from loopml.workflow.paths import PathSyntaxError

CONTEXT = {"Execution": {"Id": "exec-7", "Name": "nightly"}}


def ev(text: str, data: Any = None) -> Any:
    return compile_intrinsic(text)(data if data is not None else {}, CONTEXT)


def test_every_function_of_the_states_language_is_there() -> None:
    assert set(FUNCTIONS) == {
        "States.Format",
        "States.StringToJson",
        "States.JsonToString",
        "States.Array",
        "States.ArrayPartition",
        "States.ArrayContains",
        "States.ArrayRange",
        "States.ArrayGetItem",
        "States.ArrayLength",
        "States.ArrayUnique",
        "States.Base64Encode",
        "States.Base64Decode",
        "States.Hash",
        "States.JsonMerge",
        "States.MathRandom",
        "States.MathAdd",
        "States.StringSplit",
        "States.UUID",
    }


# States.Format ------------------------------------------------------------------------


def test_format_fills_placeholders_in_order() -> None:
    data = {"name": "Arnav", "template": "Hello, my name is {}."}
    assert ev("States.Format('Hello, my name is {}.', $.name)", data) == (
        "Hello, my name is Arnav."
    )
    assert ev("States.Format($.template, $.name)", data) == "Hello, my name is Arnav."
    assert ev("States.Format('{}-{}-{}-{}', 'a', 42, true, null)") == "a-42-true-null"
    assert ev("States.Format('{} {}', 1.5, -3)") == "1.5 -3"
    assert ev("States.Format('no placeholders')") == "no placeholders"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"States.Format('\{\} is {}', 'x')", "{} is x"),
        (r"States.Format('it\'s {}', 'x')", "it's x"),
        (r"States.Format('C:\\dir {}', 'x')", "C:\\dir x"),
        (r"States.Format('\\{}', 'x')", "\\x"),  # an escaped backslash, then a placeholder
        (r"States.Format('{}', 'a,b) \{c\}')", "a,b) {c}"),
    ],
)
def test_format_reads_the_four_escapes(text: str, expected: str) -> None:
    assert ev(text) == expected


def test_escaped_braces_are_plain_text_outside_format() -> None:
    assert ev(r"States.Array('\{x\}', 'a\\b')") == ["{x}", "a\\b"]
    assert ev(r"States.StringSplit('a\{b', '\{')") == ["a", "b"]


@pytest.mark.parametrize(
    "text",
    [
        "States.Format('{} {}', 'only one')",
        "States.Format('none', 'extra')",
        "States.Format('{}', $.object)",
        "States.Format('{}', $.list)",
        "States.Format($.number)",
    ],
)
def test_format_with_mismatched_arguments_fails(text: str) -> None:
    with pytest.raises(StatesError) as caught:
        ev(text, {"object": {"a": 1}, "list": [1], "number": 3})
    assert caught.value.error == "States.IntrinsicFailure"


# JSON ---------------------------------------------------------------------------------


def test_string_to_json_and_back() -> None:
    data = {"escapedJsonString": '{"foo": "bar"}', "unescapedJson": {"foo": "bar", "n": [1, 2]}}
    assert ev("States.StringToJson($.escapedJsonString)", data) == {"foo": "bar"}
    assert ev("States.JsonToString($.unescapedJson)", data) == '{"foo":"bar","n":[1,2]}'
    round_trip = "States.StringToJson(States.JsonToString($.unescapedJson))"
    assert ev(round_trip, data) == data["unescapedJson"]


def test_json_merge_is_shallow() -> None:
    data = {"json1": {"a": {"a1": 1, "a2": 2}, "b": 2}, "json2": {"a": {"a3": 1, "a4": 2}, "c": 3}}
    assert ev("States.JsonMerge($.json1, $.json2, false)", data) == {
        "a": {"a3": 1, "a4": 2},
        "b": 2,
        "c": 3,
    }
    assert data["json1"] == {"a": {"a1": 1, "a2": 2}, "b": 2}


# Arrays -------------------------------------------------------------------------------

NINE = {"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9], "index": 5, "lookingFor": 5}


def test_array_collects_its_arguments() -> None:
    assert ev("States.Array($.Id)", {"Id": 123456}) == [123456]
    assert ev("States.Array('Foo', 2020, $.a, null, true)", {"a": {"b": 1}}) == [
        "Foo",
        2020,
        {"b": 1},
        None,
        True,
    ]
    assert ev("States.Array()") == []


def test_array_partition_leaves_the_remainder_last() -> None:
    assert ev("States.ArrayPartition($.inputArray,4)", NINE) == [[1, 2, 3, 4], [5, 6, 7, 8], [9]]
    assert ev("States.ArrayPartition($.inputArray, 9)", NINE) == [NINE["inputArray"]]
    assert ev("States.ArrayPartition(States.Array(), 2)") == []


def test_array_contains() -> None:
    assert ev("States.ArrayContains($.inputArray, $.lookingFor)", NINE) is True
    assert ev("States.ArrayContains($.inputArray, 10)", NINE) is False
    assert ev("States.ArrayContains($.xs, $.x)", {"xs": [{"k": [1]}], "x": {"k": [1]}}) is True


def test_array_contains_and_unique_do_not_take_true_for_1() -> None:
    assert ev("States.ArrayContains(States.Array(true, 0), 1)") is False
    assert ev("States.ArrayContains(States.Array(false), 0)") is False
    assert ev("States.ArrayUnique(States.Array(1, true, 1, 0, false, true))") == [1, True, 0, False]


def test_array_range_includes_its_end() -> None:
    assert ev("States.ArrayRange(1, 9, 2)") == [1, 3, 5, 7, 9]
    assert ev("States.ArrayRange(1, 3, 1)") == [1, 2, 3]
    assert ev("States.ArrayRange(1, 8, 2)") == [1, 3, 5, 7]
    assert ev("States.ArrayRange(5, 1, -2)") == [5, 3, 1]
    assert ev("States.ArrayRange(3, 3, 1)") == [3]
    assert len(ev("States.ArrayRange(1, 1000, 1)")) == 1000


def test_non_integer_arguments_are_rounded_to_the_nearest_integer() -> None:
    assert ev("States.ArrayRange(0.6, 3.4, 1)") == [1, 2, 3]
    assert ev("States.ArrayPartition(States.Array(1, 2, 3), 1.6)") == [[1, 2], [3]]
    assert ev("States.MathAdd(2.4, 2.6)") == 5


def test_array_get_item_length_and_unique() -> None:
    assert ev("States.ArrayGetItem($.inputArray, $.index)", NINE) == 6
    assert ev("States.ArrayGetItem($.inputArray, 0)", NINE) == 1
    assert ev("States.ArrayLength($.inputArray)", NINE) == 9
    assert ev("States.ArrayLength(States.Array())") == 0
    assert ev("States.ArrayUnique($.a)", {"a": [1, 2, 3, 3, 3, 3, 3, 3, 4]}) == [1, 2, 3, 4]
    assert ev("States.ArrayUnique($.a)", {"a": [{"x": 1}, {"x": 1}, "s", "s"]}) == [{"x": 1}, "s"]


# Encoding, hashing, numbers, strings, identifiers --------------------------------------


def test_base64_encodes_and_decodes() -> None:
    assert ev("States.Base64Encode($.input)", {"input": "Data to encode"}) == (
        "RGF0YSB0byBlbmNvZGU="
    )
    assert ev("States.Base64Decode('RGF0YSB0byBlbmNvZGU=')") == "Data to encode"
    assert ev("States.Base64Decode(States.Base64Encode('héllo wörld'))") == "héllo wörld"


def test_hash_computes_the_named_digest() -> None:
    sha256_abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert ev("States.Hash('abc', 'SHA-256')") == sha256_abc
    assert ev("States.Hash($.Data, $.Algorithm)", {"Data": "", "Algorithm": "MD5"}) == (
        "d41d8cd98f00b204e9800998ecf8427e"
    )
    for algorithm, name in [("SHA-1", "sha1"), ("SHA-384", "sha384"), ("SHA-512", "sha512")]:
        expected = hashlib.new(name, b"input data").hexdigest()
        assert ev(f"States.Hash('input data', '{algorithm}')") == expected


def test_math_random_stays_in_its_range_with_the_end_excluded() -> None:
    seen = {ev("States.MathRandom(1, 3)") for _ in range(200)}
    assert seen == {1, 2}
    big = ev("States.MathRandom($.start, $.end)", {"start": 1, "end": 999})
    assert isinstance(big, int)
    assert 1 <= big < 999


def test_math_random_with_a_seed_repeats_itself() -> None:
    first = [ev(f"States.MathRandom(1, 1000000, {seed})") for seed in range(10)]
    again = [ev(f"States.MathRandom(1, 1000000, {seed})") for seed in range(10)]
    assert first == again
    assert len(set(first)) > 1  # the seed matters


def test_math_add() -> None:
    assert ev("States.MathAdd($.value1, $.step)", {"value1": 111, "step": -1}) == 110
    assert ev("States.MathAdd(-5, 5)") == 0
    assert ev("States.MathAdd(States.MathAdd(1, 2), 3)") == 6


def test_string_split_on_each_delimiter_character() -> None:
    assert ev("States.StringSplit($.s, $.d)", {"s": "1,2,3,4,5", "d": ","}) == [
        "1",
        "2",
        "3",
        "4",
        "5",
    ]
    assert ev("States.StringSplit('This.is+a,test=string', '.+,=')") == [
        "This",
        "is",
        "a",
        "test",
        "string",
    ]


def test_uuid_is_a_fresh_version_4_uuid() -> None:
    pattern = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
    first, second = ev("States.UUID()"), ev("States.UUID()")
    assert pattern.fullmatch(first)
    assert pattern.fullmatch(second)
    assert first != second


# Arguments: nesting, paths, literals ---------------------------------------------------


def test_calls_nest() -> None:
    data = {"arn": "arn:aws:imagebuilder:us-east-1:123:image-recipe/recipe/2.7.1"}
    version = "States.StringSplit(States.ArrayGetItem(States.StringSplit($.arn, '/'), 2), '.')"
    name = "States.ArrayGetItem(States.StringSplit($.arn, '/'), 1)"
    text = (
        f"States.Format('v{{}}.{{}} of {{}}', States.ArrayGetItem({version}, 0), "
        f"States.ArrayGetItem({version}, 1), {name})"
    )
    assert ev(text, data) == "v2.7 of recipe"


def test_path_arguments_read_the_input_and_the_context() -> None:
    data = {"items": [{"n": 1}, {"n": 2}], "a b": "x", "odd)key,": "y"}
    assert ev("States.Format('{} {}', $$.Execution.Id, $$.Execution.Name)", data) == (
        "exec-7 nightly"
    )
    assert ev("States.Array($.items[1].n, $['a b'])", data) == [2, "x"]
    assert ev("States.Array($.items[*].n)", data) == [[1, 2]]
    assert ev("States.ArrayLength($.items[?(@.n > 1)])", data) == 1
    assert ev("States.Format('{}', $['odd)key,'])", data) == "y"


def test_a_path_argument_that_misses_is_a_runtime_error() -> None:
    with pytest.raises(StatesError) as caught:
        ev("States.Format('{}', $.missing)", {"present": 1})
    assert caught.value.error == "States.Runtime"


@pytest.mark.parametrize(
    "text",
    [
        "States.StringToJson('not json')",
        "States.StringToJson($.number)",
        "States.ArrayPartition($.number, 2)",
        "States.ArrayPartition(States.Array(1), 0)",
        "States.ArrayContains($.number, 1)",
        "States.ArrayRange(1, 5, 0)",
        "States.ArrayRange(1, 1001, 1)",
        "States.ArrayGetItem(States.Array(1, 2), 2)",
        "States.ArrayGetItem(States.Array(1, 2), -1)",
        "States.ArrayLength('abc')",
        "States.Base64Decode('!!not base64!!')",
        "States.Hash('x', 'SHA-3')",
        "States.JsonMerge($.object, $.number, false)",
        "States.JsonMerge($.object, $.object, true)",
        "States.MathAdd('1', 2)",
        "States.MathAdd(2147483648, 1)",
        "States.MathRandom('a', 5)",
        "States.StringSplit($.number, ',')",
    ],
)
def test_a_bad_argument_value_is_an_intrinsic_failure(text: str) -> None:
    with pytest.raises(StatesError) as caught:
        ev(text, {"number": 3, "object": {"a": 1}})
    assert caught.value.error == "States.IntrinsicFailure"
    assert text.split("(")[0] in caught.value.cause


@pytest.mark.parametrize(
    "text",
    [
        "States.Nope(1)",
        "States.format('x')",
        "States.Format",
        "States.Format('open",
        "States.Format('a'",
        "States.Format('a') trailing",
        "States.Format('a' 'b')",
        "States.Format(bare)",
        "States.Format('a', [1])",
        r"States.Format('\n')",
        "States.Format()",
        "States.ArrayLength()",
        "States.ArrayLength($.a, $.b)",
        "States.JsonMerge($.a, $.b)",
        "States.MathRandom(1)",
        "States.MathRandom(1, 2, 3, 4)",
        "States.UUID(1)",
        "States.Array($.[)",
    ],
)
def test_malformed_calls_are_syntax_errors(text: str) -> None:
    with pytest.raises(PathSyntaxError):
        compile_intrinsic(text)
