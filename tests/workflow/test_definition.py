"""Reading and validating definitions: every problem is reported, each with where it is."""

from __future__ import annotations

import json
from typing import Any

import pytest

from loopml.core.errors import InvalidDefinition, InvalidInput
from loopml.workflow import compile_definition, load_definition


def problems(definition: Any, **kwargs: Any) -> list[tuple[str, str]]:
    """The problems ``compile_definition`` reports (failing the test when it reports none)."""
    with pytest.raises(InvalidDefinition) as caught:
        compile_definition(definition, **kwargs)
    return caught.value.problems


def wheres(definition: Any, **kwargs: Any) -> list[str]:
    return [where for where, _ in problems(definition, **kwargs)]


def machine(states: dict[str, Any], start: str = "A", **top: Any) -> dict[str, Any]:
    return {"StartAt": start, "States": states, **top}


def passing(**fields: Any) -> dict[str, Any]:
    return {"Type": "Pass", **fields}


def task(name: str = "t", **fields: Any) -> dict[str, Any]:
    return {"Type": "Task", "Resource": f"loopml:task:{name}", **fields}


EVERY_STATE = machine(
    {
        "A": passing(Result={"n": 1}, ResultPath="$.pass", Next="T"),
        "T": task(
            InputPath="$",
            Parameters={"n.$": "$.pass.n", "label.$": "States.Format('n={}', $.pass.n)"},
            ResultSelector={"out.$": "$"},
            ResultPath="$.task",
            OutputPath="$",
            TimeoutSeconds=5,
            Retry=[{"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 1, "MaxAttempts": 2}],
            Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Oops"}],
            Next="C",
        ),
        "C": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.pass.n", "NumericEquals": 1, "Next": "W"}],
            "Default": "Oops",
        },
        "W": {"Type": "Wait", "Seconds": 0, "Next": "P"},
        "P": {
            "Type": "Parallel",
            "Branches": [
                machine({"X": passing(End=True)}, "X"),
                machine({"Y": task("u", End=True)}, "Y"),
            ],
            "Next": "M",
        },
        "M": {
            "Type": "Map",
            "ItemsPath": "$[0]",
            "ItemSelector": {"i.$": "$$.Map.Item.Index"},
            "MaxConcurrency": 2,
            "ItemProcessor": machine({"Z": task("v", End=True)}, "Z"),
            "Next": "Done",
        },
        "Done": {"Type": "Succeed"},
        "Oops": {"Type": "Fail", "Error": "Oops", "Cause": "it failed"},
    },
    Comment="every kind of state",
    TimeoutSeconds=60,
)


def test_a_definition_with_every_kind_of_state_compiles() -> None:
    compiled = compile_definition(EVERY_STATE)
    assert compiled.start_at == "A"
    assert list(compiled.states) == ["A", "T", "C", "W", "P", "M", "Done", "Oops"]
    assert compiled.timeout == 60
    assert compiled.resources == {"loopml:task:t", "loopml:task:u", "loopml:task:v"}
    assert compiled.definition == EVERY_STATE


def test_json_and_yaml_text_give_the_same_machine() -> None:
    as_json = json.dumps(EVERY_STATE)
    as_yaml = """
StartAt: A
States:
  A:
    Type: Pass
    Next: B
  B:
    Type: Task
    Resource: "loopml:task:t"
    Retry:
      - ErrorEquals: [States.ALL]
        MaxAttempts: 1
    End: true
"""
    assert compile_definition(as_json).definition == EVERY_STATE
    assert compile_definition(as_json.encode()).definition == EVERY_STATE
    from_yaml = compile_definition(as_yaml)
    assert list(from_yaml.states) == ["A", "B"]
    assert from_yaml.states["B"].retry[0].max_attempts == 1
    assert load_definition(as_yaml) == {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Next": "B"},
            "B": {
                "Type": "Task",
                "Resource": "loopml:task:t",
                "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 1}],
                "End": True,
            },
        },
    }


@pytest.mark.parametrize("text", ["{not json", "StartAt: [unclosed", "- a list", "just text", ""])
def test_text_that_is_not_a_definition_object_is_rejected(text: str) -> None:
    found = problems(text)
    assert [where for where, _ in found] == ["definition"]


CASES: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "unknown field",
        machine({"A": passing(End=True, Resource="x")}),
        "States.A.Resource",
        "not a field of a Pass state",
    ),
    (
        "unknown top-level field",
        machine({"A": passing(End=True)}, Version="1.0", Extra=1),
        "Extra",
        "not a field of a state machine",
    ),
    ("missing Next and End", machine({"A": passing()}), "States.A", "Next and End"),
    (
        "both Next and End",
        machine({"A": passing(Next="B", End=True), "B": passing(End=True)}),
        "States.A",
        "Next and End",
    ),
    ("End not a boolean", machine({"A": passing(End="yes")}), "States.A.End", "true or false"),
    ("Next to nowhere", machine({"A": passing(Next="Nowhere")}), "States.A.Next", "'Nowhere'"),
    (
        "unreachable state",
        machine({"A": passing(End=True), "Island": passing(End=True)}),
        "States.Island",
        "never reached",
    ),
    ("StartAt not a state", machine({"A": passing(End=True)}, "Z"), "StartAt", "'Z'"),
    ("StartAt missing", {"States": {"A": passing(End=True)}}, "StartAt", "None"),
    ("no states", machine({}), "States", "non-empty"),
    ("a state not an object", machine({"A": "Pass"}), "States.A", "object"),
    ("bad Type", machine({"A": {"Type": "Lambda", "End": True}}), "States.A.Type", "'Lambda'"),
    ("long name", machine({"A" * 81: passing(End=True)}, "A" * 81), "States." + "A" * 81, "80"),
    (
        "bad InputPath",
        machine({"A": passing(End=True, InputPath="a.b")}),
        "States.A.InputPath",
        "'a.b'",
    ),
    (
        "indefinite ResultPath",
        machine({"A": passing(End=True, ResultPath="$.xs[*]")}),
        "States.A.ResultPath",
        "reference path",
    ),
    (
        "bad Parameters intrinsic",
        machine({"A": passing(End=True, Parameters={"x.$": "States.Nope($.a)"})}),
        "States.A.Parameters.x.$",
        "States.Nope",
    ),
    (
        "Retry not a list",
        machine({"A": task(End=True, Retry={"ErrorEquals": ["X"]})}),
        "States.A.Retry",
        "list",
    ),
    (
        "retrier without errors",
        machine({"A": task(End=True, Retry=[{"MaxAttempts": 2}])}),
        "States.A.Retry[0].ErrorEquals",
        "non-empty",
    ),
    (
        "retrier with an unknown field",
        machine({"A": task(End=True, Retry=[{"ErrorEquals": ["X"], "Tries": 2}])}),
        "States.A.Retry[0].Tries",
        "not a field of a retrier",
    ),
    (
        "negative MaxAttempts",
        machine({"A": task(End=True, Retry=[{"ErrorEquals": ["X"], "MaxAttempts": -1}])}),
        "States.A.Retry[0].MaxAttempts",
        "-1",
    ),
    (
        "BackoffRate below 1",
        machine({"A": task(End=True, Retry=[{"ErrorEquals": ["X"], "BackoffRate": 0.5}])}),
        "States.A.Retry[0].BackoffRate",
        "1.0",
    ),
    (
        "zero IntervalSeconds",
        machine({"A": task(End=True, Retry=[{"ErrorEquals": ["X"], "IntervalSeconds": 0}])}),
        "States.A.Retry[0].IntervalSeconds",
        "positive",
    ),
    (
        "unknown JitterStrategy",
        machine({"A": task(End=True, Retry=[{"ErrorEquals": ["X"], "JitterStrategy": "HALF"}])}),
        "States.A.Retry[0].JitterStrategy",
        "NONE or FULL",
    ),
    (
        "catcher with an unknown field",
        machine(
            {
                "A": task(End=True, Catch=[{"ErrorEquals": ["X"], "Next": "B", "Then": "B"}]),
                "B": passing(End=True),
            }
        ),
        "States.A.Catch[0].Then",
        "not a field of a catcher",
    ),
    (
        "catcher to an unknown state",
        machine({"A": task(End=True, Catch=[{"ErrorEquals": ["X"], "Next": "Gone"}])}),
        "States.A.Catch[0].Next",
        "'Gone'",
    ),
    (
        "States.ALL with other errors",
        machine({"A": task(End=True, Retry=[{"ErrorEquals": ["States.ALL", "X"]}])}),
        "States.A.Retry[0].ErrorEquals",
        "alone",
    ),
    (
        "States.ALL before the last catcher",
        machine(
            {
                "A": task(
                    End=True,
                    Catch=[
                        {"ErrorEquals": ["States.ALL"], "Next": "B"},
                        {"ErrorEquals": ["X"], "Next": "B"},
                    ],
                ),
                "B": passing(End=True),
            }
        ),
        "States.A.Catch[0].ErrorEquals",
        "last",
    ),
    (
        "Wait without a duration",
        machine({"A": {"Type": "Wait", "End": True}}),
        "States.A",
        "exactly one of Seconds",
    ),
    (
        "Wait with two durations",
        machine({"A": {"Type": "Wait", "Seconds": 1, "SecondsPath": "$.s", "End": True}}),
        "States.A",
        "exactly one of Seconds",
    ),
    (
        "Wait with a bad Timestamp",
        machine({"A": {"Type": "Wait", "Timestamp": "tomorrow", "End": True}}),
        "States.A.Timestamp",
        "RFC 3339",
    ),
    (
        "Choice without rules",
        machine({"A": {"Type": "Choice", "Choices": []}}),
        "States.A.Choices",
        "non-empty",
    ),
    (
        "Choice rule without Next",
        machine(
            {
                "A": {
                    "Type": "Choice",
                    "Choices": [{"Variable": "$.x", "IsNull": True}],
                    "Default": "B",
                },
                "B": passing(End=True),
            }
        ),
        "States.A.Choices[0].Next",
        "Next",
    ),
    (
        "Choice Default to nowhere",
        machine(
            {
                "A": {
                    "Type": "Choice",
                    "Choices": [{"Variable": "$.x", "IsNull": True, "Next": "B"}],
                    "Default": "Gone",
                },
                "B": passing(End=True),
            }
        ),
        "States.A.Default",
        "'Gone'",
    ),
    (
        "Choice with End",
        machine(
            {
                "A": {
                    "Type": "Choice",
                    "Choices": [{"Variable": "$.x", "IsNull": True, "Next": "B"}],
                    "End": True,
                },
                "B": passing(End=True),
            }
        ),
        "States.A.End",
        "not a field of a Choice state",
    ),
    (
        "Fail with Error and ErrorPath",
        machine({"A": {"Type": "Fail", "Error": "E", "ErrorPath": "$.e"}}),
        "States.A.Error",
        "not both",
    ),
    (
        "Succeed with Next",
        machine({"A": {"Type": "Succeed", "Next": "A"}}),
        "States.A.Next",
        "not a field of a Succeed state",
    ),
    (
        "Map without a processor",
        machine({"A": {"Type": "Map", "End": True}}),
        "States.A",
        "ItemProcessor",
    ),
    (
        "distributed Map field",
        machine(
            {
                "A": {
                    "Type": "Map",
                    "End": True,
                    "ItemReader": {"Resource": "arn:aws:states:::s3:getObject"},
                    "ItemProcessor": machine({"X": passing(End=True)}, "X"),
                }
            }
        ),
        "States.A.ItemReader",
        "distributed Map",
    ),
    (
        "distributed Map mode",
        machine(
            {
                "A": {
                    "Type": "Map",
                    "End": True,
                    "ItemProcessor": {
                        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                        **machine({"X": passing(End=True)}, "X"),
                    },
                }
            }
        ),
        "States.A.ItemProcessor.ProcessorConfig.Mode",
        "INLINE",
    ),
    (
        "JSONata",
        machine({"A": passing(End=True)}, QueryLanguage="JSONata"),
        "QueryLanguage",
        "JSONata",
    ),
    (
        "AWS resource",
        machine({"A": {"Type": "Task", "Resource": "arn:aws:lambda:::function:f", "End": True}}),
        "States.A.Resource",
        "loopml:task:<name>",
    ),
    (
        "Task without Resource",
        machine({"A": {"Type": "Task", "End": True}}),
        "States.A.Resource",
        "loopml:task:<name>",
    ),
    (
        "deployment without a name",
        machine({"A": {"Type": "Task", "Resource": "loopml:deployment:", "End": True}}),
        "States.A.Resource",
        "name",
    ),
    (
        "zero TimeoutSeconds",
        machine({"A": task(End=True, TimeoutSeconds=0)}),
        "States.A.TimeoutSeconds",
        "positive",
    ),
    (
        "heartbeat not below the timeout",
        machine({"A": task(End=True, TimeoutSeconds=5, HeartbeatSeconds=5)}),
        "States.A.HeartbeatSeconds",
        "smaller",
    ),
    (
        "machine TimeoutSeconds not whole",
        machine({"A": passing(End=True)}, TimeoutSeconds=1.5),
        "TimeoutSeconds",
        "whole number",
    ),
    (
        "Parallel without branches",
        machine({"A": {"Type": "Parallel", "Branches": [], "End": True}}),
        "States.A.Branches",
        "non-empty",
    ),
]


@pytest.mark.parametrize(
    ("definition", "where", "message"), [case[1:] for case in CASES], ids=[c[0] for c in CASES]
)
def test_each_problem_is_reported_where_it_is(
    definition: dict[str, Any], where: str, message: str
) -> None:
    found = problems(definition)
    assert where in [w for w, _ in found], found
    assert any(w == where and message in m for w, m in found), found


def test_unknown_tasks_are_problems_only_when_the_registry_is_known() -> None:
    definition = machine({"A": task("missing", Next="B"), "B": task("present", End=True)})
    assert compile_definition(definition).resources == {
        "loopml:task:missing",
        "loopml:task:present",
    }
    found = problems(definition, known_task=lambda name: name == "present")
    assert found == [("States.A.Resource", "no task is registered as 'missing'")]
    deployment = machine({"A": {"Type": "Task", "Resource": "loopml:deployment:d", "End": True}})
    assert compile_definition(deployment, known_task=lambda name: False).resources == {
        "loopml:deployment:d"
    }


def test_problems_inside_parallel_branches_carry_their_full_path() -> None:
    definition = machine(
        {
            "P": {
                "Type": "Parallel",
                "End": True,
                "Branches": [
                    machine({"X": passing(End=True)}, "X"),
                    machine({"X": passing(Next="Y"), "Z": passing(End=True)}, "X"),
                ],
            }
        },
        "P",
    )
    assert sorted(wheres(definition)) == [
        "States.P.Branches[1].States.X.Next",
        "States.P.Branches[1].States.Z",
    ]


def test_problems_inside_map_processors_carry_their_full_path() -> None:
    inner = machine({"X": passing(End=True, Next="X", Bogus=1)}, "Q")
    for key in ("ItemProcessor", "Iterator"):
        definition = machine({"M": {"Type": "Map", "End": True, key: inner}}, "M")
        assert sorted(wheres(definition)) == [
            f"States.M.{key}.StartAt",
            f"States.M.{key}.States.X",
            f"States.M.{key}.States.X.Bogus",
        ]


def test_nested_branches_inside_maps_name_every_level() -> None:
    branch = machine({"B": {"Type": "Wait", "End": True}}, "B")
    inner = machine({"P": {"Type": "Parallel", "Branches": [branch], "End": True}}, "P")
    definition = machine({"M": {"Type": "Map", "ItemProcessor": inner, "End": True}}, "M")
    assert wheres(definition) == ["States.M.ItemProcessor.States.P.Branches[0].States.B"]


def test_every_problem_is_reported_at_once() -> None:
    definition = {
        "StartAt": "Missing",
        "Extra": True,
        "States": {
            "A": passing(Next="Nowhere", InputPath="oops"),
            "B": {"Type": "Wait", "End": True},
            "C": {"Type": "Sleep"},
            "D": task("t", End=True, Retry=[{"ErrorEquals": "States.ALL"}]),
        },
    }
    found = wheres(definition)
    for where in (
        "Extra",
        "StartAt",
        "States.A.InputPath",
        "States.A.Next",
        "States.B",
        "States.C.Type",
        "States.D.Retry[0].ErrorEquals",
    ):
        assert where in found
    assert len(found) == len(set(found))


def test_invalid_definition_is_an_invalid_input_naming_every_problem() -> None:
    definition = machine({"A": passing(Next="Gone"), "B": passing(End=True)})
    with pytest.raises(InvalidInput) as caught:
        compile_definition(definition)
    error = caught.value
    assert isinstance(error, InvalidDefinition)
    assert error.code == "invalid-definition"
    assert error.field == "States.A.Next"
    assert error.problems == [
        ("States.A.Next", "'Gone' is not a state of this machine"),
        ("States.B", "is never reached from StartAt"),
    ]
    assert "States.A.Next" in str(error)
    assert "States.B" in str(error)


def test_states_reached_only_through_catch_or_choice_are_reachable() -> None:
    definition = machine(
        {
            "A": task(Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Caught"}], Next="C"),
            "C": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.x", "IsNull": True, "Next": "Chosen"}],
                "Default": "Defaulted",
            },
            "Caught": {"Type": "Succeed"},
            "Chosen": {"Type": "Succeed"},
            "Defaulted": {"Type": "Succeed"},
        }
    )
    assert set(compile_definition(definition).states) == {
        "A",
        "C",
        "Caught",
        "Chosen",
        "Defaulted",
    }


def test_a_malformed_choice_rule_does_not_make_its_target_unreachable() -> None:
    definition = machine(
        {
            "A": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.x", "NumericEquals": "one", "Next": "B"}],
            },
            "B": passing(End=True),
        }
    )
    assert wheres(definition) == ["States.A.Choices[0].NumericEquals"]


def test_a_catcher_without_next_is_one_problem() -> None:
    definition = machine({"A": task(End=True, Catch=[{"ErrorEquals": ["States.ALL"]}])})
    assert wheres(definition) == ["States.A.Catch[0].Next"]


def test_yaml_aliases_are_refused_before_they_expand() -> None:
    bomb = "StartAt: A\nStates:\n  A:\n    Type: Pass\n    End: true\n    Parameters:\n"
    bomb += "      a: &a [x, x, x, x, x, x, x, x, x]\n      b: &b [*a, *a, *a, *a, *a]\n"
    bomb += "      c: [*b, *b, *b, *b, *b, *b]\n"
    with pytest.raises(InvalidDefinition, match=r"aliases \(\*name\) are not allowed"):
        compile_definition(bomb)


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("StartAt: A\nComment: 2024-01-01\nStates:\n  A: {Type: Pass, End: true}\n",
         "Comment", "date is not a JSON value"),
        ("StartAt: A\nStates:\n  1: {Type: Pass, End: true}\n", "States.1",
         "field name must be a string"),
        ("StartAt: A\nStates:\n  A: {Type: Pass, End: true, Result: .nan}\n",
         "States.A.Result", "NaN and Infinity"),
        ('{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true, "Result": NaN}}}',
         "States.A.Result", "NaN and Infinity"),
    ],
)  # fmt: skip
def test_only_json_values_are_accepted(text: str, where: str, message: str) -> None:
    with pytest.raises(InvalidDefinition) as refused:
        compile_definition(text)
    assert refused.value.problems[0][0] == where
    assert message in refused.value.problems[0][1]


def test_definitions_nested_too_deep_or_too_long_are_refused() -> None:
    deep: dict[str, Any] = {"End": True, "Type": "Pass"}
    for _ in range(120):
        deep = {"Result": deep, "Type": "Pass", "End": True}
    with pytest.raises(InvalidDefinition, match="nested more than 100 levels"):
        compile_definition({"StartAt": "A", "States": {"A": deep}})
    with pytest.raises(InvalidDefinition, match="longer than 1,048,576 characters"):
        compile_definition("#" * 1_048_577)


def test_a_long_slice_lookalike_is_refused() -> None:
    # A backtracking parser spent hours here (the test's timeout would fail it).
    path = "$.a[1:" + " " * 3000 + ":" + " " * 3000 + "x]"
    with pytest.raises(InvalidDefinition, match="InputPath"):
        compile_definition(machine({"A": passing(End=True, InputPath=path)}))
