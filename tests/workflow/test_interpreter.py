"""Running state machines: data flow, every state type, errors, retries, timeouts, history."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from loopml.core.errors import StatesError
from loopml.workflow import Runner, TaskContext, TaskRegistry, compile_definition
from loopml.workflow.execution import RunContext, Scope

from .support import count, one_state, run, types


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the waits of retries and Wait states instead of sleeping through them."""
    waited: list[float] = []

    def sleep(self: RunContext, seconds: float, scope: Scope) -> None:
        waited.append(seconds)
        self.check(scope)

    monkeypatch.setattr(RunContext, "sleep", sleep)
    return waited


def sleep_then_answer(data: Any) -> Any:
    time.sleep(2)
    return "late"


def failing(tasks: TaskRegistry, name: str, times: int, error: type[Exception] = ValueError):
    """Register a task that raises ``error`` on its first ``times`` calls, then succeeds."""
    calls: list[Any] = []

    @tasks.task(name)
    def flaky(data: Any) -> Any:
        calls.append(data)
        if len(calls) <= times:
            raise error(f"attempt {len(calls)} failed")
        return {"attempts": len(calls)}

    return calls


# Data flow ----------------------------------------------------------------------------


def test_the_data_flows_input_path_parameters_task_selector_result_path(
    tasks: TaskRegistry,
) -> None:
    seen: list[Any] = []

    @tasks.task("double")
    def double(data: Any) -> Any:
        seen.append(data)
        return {"doubled": data["x"] * 2, "noise": "dropped"}

    state = {
        "Type": "Task",
        "Resource": "loopml:task:double",
        "InputPath": "$.in",
        "Parameters": {"x.$": "$.v", "const": "c", "run.$": "$$.Execution.Name"},
        "ResultSelector": {"d.$": "$.doubled"},
        "ResultPath": "$.result",
    }
    data = {"in": {"v": 7, "unused": 0}, "keep": 1}
    result = run(tasks, one_state(state), data, name="flow")
    assert result.status == "SUCCEEDED"
    assert seen == [{"x": 7, "const": "c", "run": "flow"}]
    # ResultPath writes into the state's raw input, not what InputPath selected.
    assert result.output == {"in": {"v": 7, "unused": 0}, "keep": 1, "result": {"d": 14}}

    with_output = one_state({**state, "OutputPath": "$.result.d"})
    assert run(tasks, with_output, data).output == 14


def test_result_path_defaults_to_replacing_the_input(tasks: TaskRegistry) -> None:
    tasks.add("answer", lambda data: {"answer": 42})
    result = run(tasks, one_state({"Type": "Task", "Resource": "loopml:task:answer"}), {"q": 1})
    assert result.output == {"answer": 42}


def test_null_paths_discard(tasks: TaskRegistry) -> None:
    seen: list[Any] = []

    @tasks.task("record")
    def record(data: Any) -> Any:
        seen.append(data)
        return "result"

    state = {"Type": "Task", "Resource": "loopml:task:record", "InputPath": None}
    assert run(tasks, one_state({**state, "ResultPath": None}), {"a": 1}).output == {"a": 1}
    assert seen == [{}]
    assert run(tasks, one_state({**state, "OutputPath": None}), {"a": 1}).output == {}


def test_result_path_into_a_non_object_fails_the_state(tasks: TaskRegistry) -> None:
    tasks.add("one", lambda data: 1)
    state = {"Type": "Task", "Resource": "loopml:task:one", "ResultPath": "$.a.b"}
    result = run(tasks, one_state(state), {"a": "text"})
    assert result.status == "FAILED"
    assert result.error == "States.ResultPathMatchFailure"


def test_a_missing_input_path_is_a_runtime_error(tasks: TaskRegistry) -> None:
    result = run(tasks, one_state({"Type": "Pass", "InputPath": "$.nope"}), {"a": 1})
    assert (result.status, result.error) == ("FAILED", "States.Runtime")
    assert "$.nope" in (result.cause or "")


def test_pass_with_result_parameters_and_intrinsics(tasks: TaskRegistry) -> None:
    definition = {
        "StartAt": "Result",
        "States": {
            "Result": {
                "Type": "Pass",
                "Result": {"fixed": [1, 2]},
                "ResultPath": "$.r",
                "Next": "Params",
            },
            "Params": {
                "Type": "Pass",
                "Parameters": {
                    "sum.$": "States.MathAdd($.r.fixed[0], $.r.fixed[1])",
                    "who.$": "States.Format('{} ran {}', $$.Execution.Id, $$.State.Name)",
                    "input.$": "$$.Execution.Input.n",
                },
                "Next": "Through",
            },
            "Through": {"Type": "Pass", "End": True},
        },
    }
    result = run(tasks, definition, {"n": 5}, execution_id="e-1")
    assert result.output == {"sum": 3, "who": "e-1 ran Params", "input": 5}


def test_a_choice_loop_counts_to_three(tasks: TaskRegistry) -> None:
    definition = {
        "StartAt": "Inc",
        "States": {
            "Inc": {
                "Type": "Pass",
                "Parameters": {"n.$": "States.MathAdd($.n, 1)"},
                "Next": "More?",
            },
            "More?": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.n", "NumericLessThan": 3, "Next": "Inc"}],
                "Default": "Done",
            },
            "Done": {"Type": "Succeed"},
        },
    }
    result = run(tasks, definition, {"n": 0})
    assert result.output == {"n": 3}
    assert count(result, "PassStateEntered") == 3


# Choice, Wait, Succeed, Fail -----------------------------------------------------------

ROUTER = {
    "StartAt": "Route",
    "States": {
        "Route": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.size", "NumericGreaterThan": 10, "Next": "Big"},
                {"Variable": "$.size", "NumericGreaterThan": 5, "Next": "Medium"},
            ],
            "Default": "Small",
        },
        "Big": {"Type": "Pass", "Result": "big", "End": True},
        "Medium": {"Type": "Pass", "Result": "medium", "End": True},
        "Small": {"Type": "Pass", "Result": "small", "End": True},
    },
}


@pytest.mark.parametrize(
    ("size", "route"), [(11, "big"), (10, "medium"), (6, "medium"), (5, "small")]
)
def test_choice_takes_the_first_matching_rule_or_the_default(
    tasks: TaskRegistry, size: int, route: str
) -> None:
    assert run(tasks, ROUTER, {"size": size}).output == route


def test_choice_without_a_match_or_default_fails(tasks: TaskRegistry) -> None:
    definition = {
        "StartAt": "Route",
        "States": {
            "Route": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.size", "NumericGreaterThan": 10, "Next": "Big"}],
            },
            "Big": {"Type": "Succeed"},
        },
    }
    result = run(tasks, definition, {"size": 1})
    assert (result.status, result.error) == ("FAILED", "States.NoChoiceMatched")
    missing = run(tasks, definition, {"other": 1})
    assert (missing.status, missing.error) == ("FAILED", "States.Runtime")


def test_wait_seconds_zero_and_timestamps_in_the_past_do_not_wait(tasks: TaskRegistry) -> None:
    past = (datetime.now(timezone.utc) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    definition = {
        "StartAt": "Zero",
        "States": {
            "Zero": {"Type": "Wait", "Seconds": 0, "Next": "ZeroPath"},
            "ZeroPath": {"Type": "Wait", "SecondsPath": "$.wait", "Next": "Past"},
            "Past": {"Type": "Wait", "Timestamp": "2001-02-03T04:05:06Z", "Next": "PastPath"},
            "PastPath": {"Type": "Wait", "TimestampPath": "$.when", "End": True},
        },
    }
    started = time.monotonic()
    result = run(tasks, definition, {"wait": 0, "when": past})
    assert result.status == "SUCCEEDED"
    assert result.output == {"wait": 0, "when": past}
    assert time.monotonic() - started < 0.5


def test_wait_seconds_path_really_waits(tasks: TaskRegistry) -> None:
    definition = one_state({"Type": "Wait", "SecondsPath": "$.wait"})
    started = time.monotonic()
    result = run(tasks, definition, {"wait": 1})
    assert result.status == "SUCCEEDED"
    assert 0.95 <= time.monotonic() - started < 3


@pytest.mark.parametrize("wait", [-1, "1", None, True])
def test_wait_seconds_path_needs_a_non_negative_number(tasks: TaskRegistry, wait: Any) -> None:
    result = run(tasks, one_state({"Type": "Wait", "SecondsPath": "$.wait"}), {"wait": wait})
    assert (result.status, result.error) == ("FAILED", "States.Runtime")


def test_wait_records_what_it_waits(tasks: TaskRegistry, sleeps: list[float]) -> None:
    future = (datetime.now(timezone.utc) + timedelta(seconds=90)).strftime("%Y-%m-%dT%H:%M:%SZ")
    definition = {
        "StartAt": "Seconds",
        "States": {
            "Seconds": {"Type": "Wait", "Seconds": 7, "Next": "Until"},
            "Until": {"Type": "Wait", "TimestampPath": "$.until", "End": True},
        },
    }
    assert run(tasks, definition, {"until": future}).status == "SUCCEEDED"
    assert sleeps[0] == 7
    assert 85 < sleeps[1] <= 90


def test_succeed_ends_the_execution_with_its_filtered_input(tasks: TaskRegistry) -> None:
    definition = {
        "StartAt": "Stop",
        "States": {"Stop": {"Type": "Succeed", "InputPath": "$.keep", "OutputPath": "$.x"}},
    }
    result = run(tasks, definition, {"keep": {"x": [1]}, "drop": 2})
    assert (result.status, result.output) == ("SUCCEEDED", [1])
    assert types(result)[-2:] == ["SucceedStateExited", "ExecutionSucceeded"]


def test_succeed_stops_a_machine_that_would_go_on(tasks: TaskRegistry) -> None:
    definition = {
        "StartAt": "Route",
        "States": {
            "Route": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.stop", "BooleanEquals": True, "Next": "Stop"}],
                "Default": "More",
            },
            "Stop": {"Type": "Succeed"},
            "More": {"Type": "Pass", "Result": "went on", "End": True},
        },
    }
    assert run(tasks, definition, {"stop": True}).output == {"stop": True}
    assert run(tasks, definition, {"stop": False}).output == "went on"


def test_fail_with_error_and_cause(tasks: TaskRegistry) -> None:
    definition = one_state({"Type": "Fail", "Error": "Model.TooWeak", "Cause": "auc 0.51"})
    del definition["States"]["S"]["End"]
    result = run(tasks, definition, {})
    assert (result.status, result.error, result.cause) == ("FAILED", "Model.TooWeak", "auc 0.51")
    assert result.output is None
    assert result.events[-1]["executionFailedEventDetails"] == {
        "error": "Model.TooWeak",
        "cause": "auc 0.51",
    }


def test_fail_with_error_path_and_cause_path(tasks: TaskRegistry) -> None:
    definition = {
        "StartAt": "F",
        "States": {"F": {"Type": "Fail", "ErrorPath": "$.why.code", "CausePath": "$.why.text"}},
    }
    result = run(tasks, definition, {"why": {"code": "Data.Empty", "text": "no rows"}})
    assert (result.error, result.cause) == ("Data.Empty", "no rows")
    context = {"StartAt": "F", "States": {"F": {"Type": "Fail", "CausePath": "$$.Execution.Id"}}}
    assert run(tasks, context, {}, execution_id="ex-9").cause == "ex-9"


# Errors from tasks ---------------------------------------------------------------------


def test_a_task_exception_fails_with_its_class_name_and_message(tasks: TaskRegistry) -> None:
    @tasks.task("explode")
    def explode(data: Any) -> Any:
        raise KeyError("column 'y' is missing")

    @tasks.task("silent")
    def silent(data: Any) -> Any:
        raise RuntimeError()

    result = run(tasks, one_state({"Type": "Task", "Resource": "loopml:task:explode"}), {})
    assert (result.status, result.error) == ("FAILED", "KeyError")
    assert "column 'y' is missing" in (result.cause or "")
    failed = result.events[-2]
    assert failed["type"] == "TaskFailed"
    assert failed["taskFailedEventDetails"]["error"] == "KeyError"
    result = run(tasks, one_state({"Type": "Task", "Resource": "loopml:task:silent"}), {})
    assert (result.error, result.cause) == ("RuntimeError", "RuntimeError")


def test_a_task_raising_states_error_keeps_its_name(tasks: TaskRegistry) -> None:
    @tasks.task("gate")
    def gate(data: Any) -> Any:
        raise StatesError("ConfidenceThresholdNotMet", "0.81 < 0.93")

    result = run(tasks, one_state({"Type": "Task", "Resource": "loopml:task:gate"}), {})
    assert (result.error, result.cause) == ("ConfidenceThresholdNotMet", "0.81 < 0.93")


NOT_JSON = [object(), {1, 2}, {"when": datetime.now()}, b"bytes"]
NOT_FINITE = [float("nan"), float("inf")]


@pytest.mark.parametrize("value", [*NOT_JSON, *NOT_FINITE])
def test_a_task_returning_non_json_fails(tasks: TaskRegistry, value: Any) -> None:
    tasks.add("weird", lambda data: value)
    state = {
        "Type": "Task",
        "Resource": "loopml:task:weird",
        "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "Caught"}],
        "Next": "Caught",
    }
    definition = {"StartAt": "T", "States": {"T": state, "Caught": {"Type": "Pass", "End": True}}}
    result = run(tasks, definition, {})
    assert result.status == "SUCCEEDED"
    assert result.output["Error"] == "States.TaskFailed"
    assert "JSON" in result.output["Cause"]


def test_an_unregistered_task_fails_naming_the_registered_ones(tasks: TaskRegistry) -> None:
    tasks.add("alpha", lambda data: 1)
    tasks.add("beta", lambda data: 2)
    machine = compile_definition(one_state({"Type": "Task", "Resource": "loopml:task:gamma"}))
    result = Runner(tasks).run(machine, {})
    assert (result.status, result.error) == ("FAILED", "States.TaskFailed")
    assert "'gamma'" in (result.cause or "")
    assert "alpha, beta" in (result.cause or "")


def test_deployments_are_called_through_the_runner(tasks: TaskRegistry) -> None:
    machine = compile_definition(
        one_state({"Type": "Task", "Resource": "loopml:deployment:churn", "ResultPath": "$.p"})
    )
    result = Runner(tasks).run(machine, {"x": 1})
    assert (result.status, result.error) == ("FAILED", "loopml.NoDeployments")
    calls: list[tuple[str, Any, TaskContext]] = []

    def deployments(name: str, data: Any, context: TaskContext) -> Any:
        calls.append((name, data, context))
        return {"label": "stays"}

    result = Runner(tasks, deployments=deployments).run(machine, {"x": 1})
    assert result.output == {"x": 1, "p": {"label": "stays"}}
    assert [(name, data) for name, data, _ in calls] == [("churn", {"x": 1})]
    assert calls[0][2].state == "S"


# Retry --------------------------------------------------------------------------------


def test_retry_runs_the_task_again_with_exponential_backoff(
    tasks: TaskRegistry, sleeps: list[float]
) -> None:
    calls = failing(tasks, "flaky", times=3)
    state = {
        "Type": "Task",
        "Resource": "loopml:task:flaky",
        "Retry": [{"ErrorEquals": ["ValueError"], "IntervalSeconds": 3, "MaxAttempts": 3}],
    }
    result = run(tasks, one_state(state), {"n": 1})
    assert (result.status, result.output) == ("SUCCEEDED", {"attempts": 4})
    assert len(calls) == 4
    assert count(result, "TaskScheduled") == 4
    assert count(result, "TaskFailed") == 3
    assert sleeps == [3, 6, 12]  # BackoffRate defaults to 2.0


def test_retry_gives_up_after_max_attempts(tasks: TaskRegistry, sleeps: list[float]) -> None:
    failing(tasks, "flaky", times=10)
    retrier = {
        "ErrorEquals": ["States.ALL"],
        "IntervalSeconds": 2,
        "MaxAttempts": 2,
        "BackoffRate": 1.5,
    }
    state = {"Type": "Task", "Resource": "loopml:task:flaky", "Retry": [retrier]}
    result = run(tasks, one_state(state), {})
    assert (result.status, result.error, result.cause) == (
        "FAILED",
        "ValueError",
        "attempt 3 failed",
    )
    assert count(result, "TaskScheduled") == 3
    assert sleeps == [2, 3]


def test_max_delay_seconds_caps_the_backoff(tasks: TaskRegistry, sleeps: list[float]) -> None:
    failing(tasks, "flaky", times=10)
    retrier = {
        "ErrorEquals": ["ValueError"],
        "IntervalSeconds": 1,
        "BackoffRate": 10,
        "MaxAttempts": 4,
        "MaxDelaySeconds": 30,
    }
    state = {"Type": "Task", "Resource": "loopml:task:flaky", "Retry": [retrier]}
    run(tasks, one_state(state), {})
    assert sleeps == [1, 10, 30, 30]


def test_full_jitter_waits_at_most_the_backoff(tasks: TaskRegistry, sleeps: list[float]) -> None:
    failing(tasks, "flaky", times=10)
    retrier = {
        "ErrorEquals": ["ValueError"],
        "IntervalSeconds": 4,
        "MaxAttempts": 3,
        "JitterStrategy": "FULL",
    }
    state = {"Type": "Task", "Resource": "loopml:task:flaky", "Retry": [retrier]}
    run(tasks, one_state(state), {})
    assert len(sleeps) == 3
    assert all(0 <= wait <= limit for wait, limit in zip(sleeps, [4, 8, 16], strict=True))


def test_max_attempts_zero_never_retries(tasks: TaskRegistry, sleeps: list[float]) -> None:
    calls = failing(tasks, "flaky", times=1)
    retrier = {"ErrorEquals": ["ValueError"], "MaxAttempts": 0}
    result = run(
        tasks, one_state({"Type": "Task", "Resource": "loopml:task:flaky", "Retry": [retrier]})
    )
    assert result.status == "FAILED"
    assert len(calls) == 1
    assert sleeps == []


def test_only_the_first_matching_retrier_applies(tasks: TaskRegistry, sleeps: list[float]) -> None:
    calls = failing(tasks, "flaky", times=1)
    retry = [
        {"ErrorEquals": ["KeyError"], "MaxAttempts": 5},
        {"ErrorEquals": ["ValueError"], "MaxAttempts": 0},
        {"ErrorEquals": ["States.ALL"], "MaxAttempts": 5},
    ]
    result = run(
        tasks, one_state({"Type": "Task", "Resource": "loopml:task:flaky", "Retry": retry})
    )
    assert (result.status, result.error) == ("FAILED", "ValueError")
    assert len(calls) == 1


def test_an_error_no_retrier_names_is_not_retried(tasks: TaskRegistry, sleeps: list[float]) -> None:
    calls = failing(tasks, "flaky", times=1, error=KeyError)
    retry = [{"ErrorEquals": ["ValueError", "States.Timeout"], "MaxAttempts": 3}]
    result = run(
        tasks, one_state({"Type": "Task", "Resource": "loopml:task:flaky", "Retry": retry})
    )
    assert (result.status, result.error) == ("FAILED", "KeyError")
    assert len(calls) == 1


def test_retry_really_waits_its_interval(tasks: TaskRegistry) -> None:
    failing(tasks, "flaky", times=1)
    retry = [{"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 1, "MaxAttempts": 1}]
    started = time.monotonic()
    result = run(
        tasks, one_state({"Type": "Task", "Resource": "loopml:task:flaky", "Retry": retry})
    )
    assert result.status == "SUCCEEDED"
    assert 0.95 <= time.monotonic() - started < 3


def test_a_task_with_a_context_parameter_sees_its_retry_count(
    tasks: TaskRegistry, sleeps: list[float]
) -> None:
    contexts: list[TaskContext] = []

    @tasks.task("careful")
    def careful(data: Any, context: TaskContext) -> Any:
        contexts.append(context)
        if context.retry_count < 2:
            raise ConnectionError("try again")
        return context.retry_count

    retry = [{"ErrorEquals": ["ConnectionError"], "MaxAttempts": 5}]
    state = {
        "Type": "Task",
        "Resource": "loopml:task:careful",
        "Retry": retry,
        "TimeoutSeconds": 30,
    }
    machine = compile_definition(one_state(state))
    result = Runner(tasks, services="the services").run(machine, {}, execution_id="ex-1")
    assert result.output == 2
    assert [c.retry_count for c in contexts] == [0, 1, 2]
    assert {(c.execution_id, c.state, c.services) for c in contexts} == {
        ("ex-1", "S", "the services")
    }
    assert all(c.deadline is not None and c.deadline > time.monotonic() for c in contexts)


def test_a_task_without_a_time_limit_has_no_deadline(tasks: TaskRegistry) -> None:
    contexts: list[TaskContext] = []

    @tasks.task("look")
    def look(data: Any, context: TaskContext) -> Any:
        contexts.append(context)
        return 0

    run(tasks, one_state({"Type": "Task", "Resource": "loopml:task:look"}), {})
    assert contexts[0].deadline is None


# Catch --------------------------------------------------------------------------------


def catching(state: dict[str, Any], *catchers: dict[str, Any]) -> dict[str, Any]:
    """``state`` as ``T`` with ``catchers``, each leading to a Pass state of its ``Next``."""
    ends = {c["Next"]: {"Type": "Pass", "End": True} for c in catchers}
    return {
        "StartAt": "T",
        "States": {"T": {**state, "Catch": list(catchers), "End": True}, **ends},
    }


def test_catch_with_result_path_keeps_the_input(tasks: TaskRegistry) -> None:
    failing(tasks, "flaky", times=1)
    definition = catching(
        {"Type": "Task", "Resource": "loopml:task:flaky"},
        {"ErrorEquals": ["ValueError"], "ResultPath": "$.error", "Next": "Recover"},
    )
    result = run(tasks, definition, {"id": 3})
    assert result.status == "SUCCEEDED"
    assert result.output == {"id": 3, "error": {"Error": "ValueError", "Cause": "attempt 1 failed"}}
    entered = [e for e in result.events if e["type"] == "PassStateEntered"]
    assert [e["stateEnteredEventDetails"]["name"] for e in entered] == ["Recover"]


def test_catch_without_result_path_passes_the_error_on(tasks: TaskRegistry) -> None:
    failing(tasks, "flaky", times=1)
    definition = catching(
        {"Type": "Task", "Resource": "loopml:task:flaky"},
        {"ErrorEquals": ["States.ALL"], "Next": "Recover"},
    )
    assert run(tasks, definition, {"id": 3}).output == {
        "Error": "ValueError",
        "Cause": "attempt 1 failed",
    }


def test_the_first_matching_catcher_wins(tasks: TaskRegistry) -> None:
    failing(tasks, "flaky", times=1)
    definition = catching(
        {"Type": "Task", "Resource": "loopml:task:flaky"},
        {"ErrorEquals": ["KeyError"], "Next": "Wrong"},
        {"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.first", "Next": "Right"},
        {"ErrorEquals": ["States.ALL"], "Next": "AlsoWrong"},
    )
    result = run(tasks, definition, {})
    names = [
        e["stateEnteredEventDetails"]["name"]
        for e in result.events
        if "stateEnteredEventDetails" in e
    ]
    assert names == ["T", "Right"]
    assert result.output["first"]["Error"] == "ValueError"


def test_retry_comes_before_catch(tasks: TaskRegistry, sleeps: list[float]) -> None:
    calls = failing(tasks, "flaky", times=10)
    state = {
        "Type": "Task",
        "Resource": "loopml:task:flaky",
        "Retry": [{"ErrorEquals": ["ValueError"], "MaxAttempts": 2}],
    }
    definition = catching(state, {"ErrorEquals": ["ValueError"], "ResultPath": "$.e", "Next": "C"})
    result = run(tasks, definition, {})
    assert len(calls) == 3
    assert result.output == {"e": {"Error": "ValueError", "Cause": "attempt 3 failed"}}


def test_states_all_does_not_catch_or_retry_runtime_errors(
    tasks: TaskRegistry, sleeps: list[float]
) -> None:
    calls: list[Any] = []

    @tasks.task("answer")
    def answer(data: Any) -> Any:
        calls.append(data)
        return {"a": 1}

    state = {
        "Type": "Task",
        "Resource": "loopml:task:answer",
        "ResultSelector": {"x.$": "$.not_there"},
        "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 3}],
    }
    definition = catching(state, {"ErrorEquals": ["States.ALL"], "Next": "Caught"})
    result = run(tasks, definition, {})
    assert (result.status, result.error) == ("FAILED", "States.Runtime")
    assert len(calls) == 1
    assert sleeps == []


# Timeouts and aborts -------------------------------------------------------------------


def test_a_task_past_its_timeout_fails_with_states_timeout(tasks: TaskRegistry) -> None:
    tasks.add("slow", sleep_then_answer)
    definition = catching(
        {"Type": "Task", "Resource": "loopml:task:slow", "TimeoutSeconds": 1},
        {"ErrorEquals": ["States.TaskFailed"], "Next": "NotATaskFailure"},
        {"ErrorEquals": ["States.Timeout"], "ResultPath": "$.timeout", "Next": "TimedOut"},
    )
    started = time.monotonic()
    result = run(tasks, definition, {"n": 1})
    elapsed = time.monotonic() - started
    assert result.status == "SUCCEEDED"
    assert result.output["timeout"]["Error"] == "States.Timeout"
    assert count(result, "TaskTimedOut") == 1
    timed_out = next(e for e in result.events if e["type"] == "TaskTimedOut")
    assert timed_out["taskTimedOutEventDetails"]["error"] == "States.Timeout"
    names = [
        e["stateEnteredEventDetails"]["name"]
        for e in result.events
        if "stateEnteredEventDetails" in e
    ]
    assert names == ["T", "TimedOut"]
    assert 0.95 <= elapsed < 1.9  # the runner does not wait for the task to finish


def test_the_execution_timeout_times_out_even_a_caught_task(tasks: TaskRegistry) -> None:
    tasks.add("slow", sleep_then_answer)
    definition = catching(
        {"Type": "Task", "Resource": "loopml:task:slow"},
        {"ErrorEquals": ["States.ALL"], "Next": "Caught"},
    )
    definition["TimeoutSeconds"] = 1
    started = time.monotonic()
    result = run(tasks, definition, {})
    assert (result.status, result.error) == ("TIMED_OUT", "States.Timeout")
    assert result.events[-1]["type"] == "ExecutionTimedOut"
    assert "Caught" not in str([e.get("stateEnteredEventDetails") for e in result.events])
    assert time.monotonic() - started < 1.9


def test_setting_abort_stops_the_execution_before_the_next_state(tasks: TaskRegistry) -> None:
    abort = threading.Event()

    @tasks.task("stop")
    def stop(data: Any) -> Any:
        abort.set()
        return "stopped"

    definition = {
        "StartAt": "T",
        "States": {
            "T": {"Type": "Task", "Resource": "loopml:task:stop", "Next": "After"},
            "After": {"Type": "Pass", "End": True},
        },
    }
    result = run(tasks, definition, {}, abort=abort)
    assert (result.status, result.error) == ("ABORTED", "States.Aborted")
    assert "PassStateEntered" not in types(result)
    assert types(result)[-1] == "ExecutionAborted"


def test_an_abort_set_before_the_start_runs_nothing(tasks: TaskRegistry) -> None:
    abort = threading.Event()
    abort.set()
    result = run(tasks, one_state({"Type": "Wait", "Seconds": 1}), {}, abort=abort)
    assert result.status == "ABORTED"
    assert types(result) == ["ExecutionStarted", "ExecutionAborted"]


# Parallel -----------------------------------------------------------------------------


def branch(state: dict[str, Any]) -> dict[str, Any]:
    return {"StartAt": "B", "States": {"B": {**state, "End": True}}}


def test_parallel_outputs_follow_the_branch_order(tasks: TaskRegistry) -> None:
    finished: list[str] = []

    @tasks.task("slow")
    def slow(data: Any) -> Any:
        time.sleep(0.2)
        finished.append("slow")
        return {"slow": data["x"]}

    @tasks.task("fast")
    def fast(data: Any) -> Any:
        finished.append("fast")
        return {"fast": data["x"]}

    state = {
        "Type": "Parallel",
        "Branches": [
            branch({"Type": "Task", "Resource": "loopml:task:slow"}),
            branch({"Type": "Task", "Resource": "loopml:task:fast"}),
            branch({"Type": "Pass", "Result": "third"}),
        ],
        "ResultPath": "$.results",
    }
    result = run(tasks, one_state(state), {"x": 1})
    assert finished == ["fast", "slow"]  # the branches really ran side by side
    assert result.output == {"x": 1, "results": [{"slow": 1}, {"fast": 1}, "third"]}
    assert count(result, "ParallelStateSucceeded") == 1


def test_a_failing_branch_fails_the_parallel_state_with_its_error(tasks: TaskRegistry) -> None:
    failing(tasks, "flaky", times=10)
    state = {
        "Type": "Parallel",
        "Branches": [
            branch({"Type": "Pass"}),
            branch({"Type": "Task", "Resource": "loopml:task:flaky"}),
        ],
    }
    result = run(tasks, one_state(state), {})
    assert (result.status, result.error, result.cause) == (
        "FAILED",
        "ValueError",
        "attempt 1 failed",
    )
    assert count(result, "ParallelStateFailed") == 1

    caught = catching(state, {"ErrorEquals": ["ValueError"], "ResultPath": "$.err", "Next": "C"})
    result = run(tasks, caught, {"keep": True})
    assert result.status == "SUCCEEDED"
    assert result.output == {
        "keep": True,
        "err": {"Error": "ValueError", "Cause": "attempt 2 failed"},
    }


def test_a_fail_state_in_a_branch_is_caught_by_name(tasks: TaskRegistry) -> None:
    fail = {
        "StartAt": "F",
        "States": {"F": {"Type": "Fail", "Error": "Gate.Closed", "Cause": "no"}},
    }
    state = {"Type": "Parallel", "Branches": [branch({"Type": "Pass"}), fail]}
    definition = catching(state, {"ErrorEquals": ["Gate.Closed"], "Next": "Handled"})
    result = run(tasks, definition, {})
    assert result.output == {"Error": "Gate.Closed", "Cause": "no"}


def test_parallel_branches_share_the_input_and_result_selector_applies(
    tasks: TaskRegistry,
) -> None:
    state = {
        "Type": "Parallel",
        "Branches": [
            branch({"Type": "Pass", "InputPath": "$.a"}),
            branch({"Type": "Pass", "InputPath": "$.b"}),
        ],
        "ResultSelector": {"first.$": "$[0]", "both.$": "$[*]"},
    }
    assert run(tasks, one_state(state), {"a": 1, "b": 2}).output == {"first": 1, "both": [1, 2]}


# Map ----------------------------------------------------------------------------------


def test_map_runs_the_processor_per_item_with_item_selector(tasks: TaskRegistry) -> None:
    tasks.add("label", lambda data: f"{data['index']}:{data['value']}:{data['prefix']}")
    state = {
        "Type": "Map",
        "ItemsPath": "$.rows",
        "ItemSelector": {
            "index.$": "$$.Map.Item.Index",
            "value.$": "$$.Map.Item.Value",
            "prefix.$": "$.prefix",
        },
        "ItemProcessor": branch({"Type": "Task", "Resource": "loopml:task:label"}),
        "ResultPath": "$.labels",
    }
    result = run(tasks, one_state(state), {"rows": ["a", "b", "c"], "prefix": "p"})
    assert result.output["labels"] == ["0:a:p", "1:b:p", "2:c:p"]
    assert count(result, "MapIterationStarted") == 3
    assert count(result, "MapIterationSucceeded") == 3
    started = next(e for e in result.events if e["type"] == "MapStateStarted")
    assert started["mapStateStartedEventDetails"] == {"length": 3}


def test_map_items_see_the_item_in_their_context(tasks: TaskRegistry) -> None:
    inner = branch({"Type": "Pass", "Parameters": {"i.$": "$$.Map.Item.Index", "v.$": "$"}})
    state = {"Type": "Map", "Iterator": inner}  # the older name of ItemProcessor
    assert run(tasks, one_state(state), [{"x": 1}, {"x": 2}]).output == [
        {"i": 0, "v": {"x": 1}},
        {"i": 1, "v": {"x": 2}},
    ]


def test_map_over_an_empty_array_gives_an_empty_array(tasks: TaskRegistry) -> None:
    state = {"Type": "Map", "ItemsPath": "$.xs", "ItemProcessor": branch({"Type": "Pass"})}
    assert run(tasks, one_state(state), {"xs": []}).output == []


@pytest.mark.parametrize("items", [{"a": 1}, "abc", 3, None])
def test_map_over_a_non_array_is_a_runtime_error(tasks: TaskRegistry, items: Any) -> None:
    state = {"Type": "Map", "ItemsPath": "$.xs", "ItemProcessor": branch({"Type": "Pass"})}
    definition = catching(state, {"ErrorEquals": ["States.ALL"], "Next": "Caught"})
    result = run(tasks, definition, {"xs": items})
    assert (result.status, result.error) == ("FAILED", "States.Runtime")


def concurrency_probe(tasks: TaskRegistry, pause: float) -> dict[str, Any]:
    """Register ``work``, which records how many of its calls overlap."""
    seen: dict[str, Any] = {"active": 0, "most": 0, "order": []}
    lock = threading.Lock()

    @tasks.task("work")
    def work(data: Any) -> Any:
        with lock:
            seen["active"] += 1
            seen["most"] = max(seen["most"], seen["active"])
            seen["order"].append(data)
        time.sleep(pause)
        with lock:
            seen["active"] -= 1
        return data * 10

    return seen


def test_max_concurrency_one_runs_items_one_at_a_time_in_order(tasks: TaskRegistry) -> None:
    seen = concurrency_probe(tasks, pause=0.02)
    state = {
        "Type": "Map",
        "MaxConcurrency": 1,
        "ItemProcessor": branch({"Type": "Task", "Resource": "loopml:task:work"}),
    }
    result = run(tasks, one_state(state), [1, 2, 3, 4, 5])
    assert result.output == [10, 20, 30, 40, 50]
    assert seen["most"] == 1
    assert seen["order"] == [1, 2, 3, 4, 5]


def test_max_concurrency_bounds_the_items_running_at_once(tasks: TaskRegistry) -> None:
    seen = concurrency_probe(tasks, pause=0.15)
    state = {
        "Type": "Map",
        "MaxConcurrency": 2,
        "ItemProcessor": branch({"Type": "Task", "Resource": "loopml:task:work"}),
    }
    result = run(tasks, one_state(state), [1, 2, 3, 4, 5, 6])
    assert result.output == [10, 20, 30, 40, 50, 60]
    assert seen["most"] == 2


def test_without_max_concurrency_items_run_side_by_side(tasks: TaskRegistry) -> None:
    together = threading.Barrier(4, timeout=5)
    tasks.add("meet", lambda data: together.wait() >= 0 and data)
    state = {
        "Type": "Map",
        "ItemProcessor": branch({"Type": "Task", "Resource": "loopml:task:meet"}),
    }
    result = run(tasks, one_state(state), ["a", "b", "c", "d"])
    assert (result.status, result.output) == ("SUCCEEDED", ["a", "b", "c", "d"])


def test_a_failing_item_fails_the_map_and_can_be_caught(tasks: TaskRegistry) -> None:
    @tasks.task("check")
    def check(data: Any) -> Any:
        if data < 0:
            raise ArithmeticError(f"negative: {data}")
        return data

    state = {
        "Type": "Map",
        "MaxConcurrency": 1,
        "ItemProcessor": branch({"Type": "Task", "Resource": "loopml:task:check"}),
    }
    result = run(tasks, one_state(state), [1, -2, 3])
    assert (result.status, result.error, result.cause) == (
        "FAILED",
        "ArithmeticError",
        "negative: -2",
    )
    assert count(result, "MapIterationFailed") == 1
    assert count(result, "MapStateFailed") == 1
    definition = catching(state, {"ErrorEquals": ["ArithmeticError"], "Next": "Caught"})
    assert run(tasks, definition, [1, -2, 3]).output["Error"] == "ArithmeticError"


# History ------------------------------------------------------------------------------


def test_history_follows_step_functions_for_a_small_machine(tasks: TaskRegistry) -> None:
    tasks.add("echo", lambda data: {"echo": data})
    definition = {
        "StartAt": "P",
        "States": {
            "P": {"Type": "Pass", "Next": "T"},
            "T": {"Type": "Task", "Resource": "loopml:task:echo", "End": True},
        },
    }
    received: list[dict[str, Any]] = []
    result = run(tasks, definition, {"a": 1}, sink=received.append)
    assert types(result) == [
        "ExecutionStarted",
        "PassStateEntered",
        "PassStateExited",
        "TaskStateEntered",
        "TaskScheduled",
        "TaskStarted",
        "TaskSucceeded",
        "TaskStateExited",
        "ExecutionSucceeded",
    ]
    events = result.events
    assert [e["id"] for e in events] == list(range(1, 10))
    assert [e["previousEventId"] for e in events] == list(range(0, 9))
    assert received == events
    stamps = [datetime.fromisoformat(e["timestamp"]) for e in events]
    assert stamps == sorted(stamps)
    by_type = {e["type"]: e for e in events}
    assert by_type["ExecutionStarted"]["executionStartedEventDetails"]["input"] == '{"a":1}'
    assert by_type["PassStateEntered"]["stateEnteredEventDetails"] == {
        "name": "P",
        "input": '{"a":1}',
    }
    assert by_type["PassStateExited"]["stateExitedEventDetails"] == {
        "name": "P",
        "output": '{"a":1}',
    }
    scheduled = by_type["TaskScheduled"]["taskScheduledEventDetails"]
    assert scheduled["resource"] == "loopml:task:echo"
    assert scheduled["parameters"] == '{"a":1}'
    assert by_type["TaskStarted"]["taskStartedEventDetails"]["resource"] == "loopml:task:echo"
    assert by_type["TaskSucceeded"]["taskSucceededEventDetails"]["output"] == '{"echo":{"a":1}}'
    assert by_type["TaskStateExited"]["stateExitedEventDetails"]["name"] == "T"
    succeeded = by_type["ExecutionSucceeded"]["executionSucceededEventDetails"]
    assert succeeded["output"] == '{"echo":{"a":1}}'


def test_parallel_branches_chain_their_events_from_the_parallel_start(tasks: TaskRegistry) -> None:
    state = {
        "Type": "Parallel",
        "Branches": [branch({"Type": "Pass", "Result": n}) for n in range(3)],
    }
    result = run(tasks, one_state(state), {})
    events = {e["id"]: e for e in result.events}
    started = next(e for e in result.events if e["type"] == "ParallelStateStarted")
    firsts = [
        e
        for e in result.events
        if e["type"] == "PassStateEntered" and e["previousEventId"] == started["id"]
    ]
    assert len(firsts) == 3
    for exited in (e for e in result.events if e["type"] == "PassStateExited"):
        assert events[exited["previousEventId"]]["type"] == "PassStateEntered"
    assert sorted(e["id"] for e in result.events) == list(range(1, len(result.events) + 1))


def test_the_result_reports_how_the_execution_ended(tasks: TaskRegistry) -> None:
    result = run(tasks, one_state({"Type": "Pass"}), {"a": 1}, execution_id="ex-5")
    summary = result.as_dict()
    assert summary["executionId"] == "ex-5"
    assert summary["status"] == "SUCCEEDED"
    assert summary["output"] == {"a": 1}
    assert summary["error"] is None
    assert datetime.fromisoformat(summary["startDate"]) <= datetime.fromisoformat(
        summary["stopDate"]
    )


def test_runs_do_not_share_a_registry(tasks: TaskRegistry) -> None:
    other = TaskRegistry()
    other.add("only_there", lambda data: 1)
    definition = one_state({"Type": "Task", "Resource": "loopml:task:only_there"})
    with pytest.raises(Exception, match="only_there"):
        run(tasks, definition, {})
    assert Runner(other).run(compile_definition(definition), {}).output == 1


def test_a_machine_that_loops_forever_fails_at_the_history_limit() -> None:
    states = {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "Next": "A"}}
    loop = compile_definition({"StartAt": "A", "States": states})
    result = Runner(TaskRegistry()).run(loop, {})
    assert (result.status, result.error) == ("FAILED", "States.Runtime")
    assert "25,000 events" in (result.cause or "")
    # The history stops at the limit, then records how the execution ended.
    assert len(result.events) == 25_001
    assert result.events[-1]["type"] == "ExecutionFailed"


def test_the_history_limit_is_not_caught_by_states_all() -> None:
    definition = {"StartAt": "M", "States": {"M": {
        "Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 1,
        "ItemProcessor": {"StartAt": "X", "States": {"X": {"Type": "Pass", "End": True}}},
        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}], "End": True},
        "Caught": {"Type": "Succeed"}}}  # fmt: skip
    result = Runner(TaskRegistry()).run(compile_definition(definition), {"items": [0] * 7000})
    assert (result.status, result.error) == ("FAILED", "States.Runtime")


def test_a_state_output_past_the_payload_limit_is_terminal() -> None:
    grow = {
        "StartAt": "Grow",
        "States": {"Grow": {"Type": "Pass", "Result": "y" * 1_100_000, "End": True}},
    }
    definition = {"StartAt": "Big", "States": {
        "Big": {"Type": "Parallel", "Branches": [grow], "End": True,
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]},
        "Caught": {"Type": "Succeed"}}}  # fmt: skip
    result = Runner(TaskRegistry()).run(compile_definition(definition), {})
    assert (result.status, result.error) == ("FAILED", "States.DataLimitExceeded")
    assert "Grow" in (result.cause or "")


def test_a_task_changing_its_input_in_place_changes_nothing_else() -> None:
    tasks = TaskRegistry()
    seen: list[int] = []

    @tasks.task("meddle")
    def meddle(data: Any) -> Any:
        seen.append(data["c"]["n"])
        data["c"]["n"] += 1
        raise StatesError("Again", "once more")

    definition = {"StartAt": "Start", "States": {
        "Start": {"Type": "Pass", "Result": {"n": 0}, "ResultPath": "$.c", "Next": "T"},
        "T": {"Type": "Task", "Resource": "loopml:task:meddle", "End": True,
              "Retry": [{"ErrorEquals": ["Again"], "IntervalSeconds": 1, "MaxAttempts": 1,
                         "MaxDelaySeconds": 1}],
              "Catch": [{"ErrorEquals": ["Again"], "ResultPath": "$.error", "Next": "Done"}]},
        "Done": {"Type": "Pass", "End": True}}}  # fmt: skip
    machine = compile_definition(definition)
    result = Runner(tasks).run(machine, {})
    assert seen == [0, 0]  # the retry saw the input, not the first attempt's leftovers
    assert result.output["c"] == {"n": 0}
    assert Runner(tasks).run(machine, {}).output["c"] == {"n": 0}  # nor the definition


def test_values_json_cannot_hold_fail_the_execution_with_its_history() -> None:
    definition = {
        "StartAt": "P",
        "States": {
            "P": {"Type": "Pass", "Parameters": {"x.$": "States.StringToJson($.text)"}, "End": True}
        },
    }
    result = Runner(TaskRegistry()).run(compile_definition(definition), {"text": "NaN"})
    assert (result.status, result.error) == ("FAILED", "States.IntrinsicFailure")
    assert result.events[0]["type"] == "ExecutionStarted"


def test_a_huge_backoff_rate_is_capped_by_max_delay() -> None:
    from loopml.workflow.states import Retrier

    retrier = Retrier(("X",), interval=1, max_attempts=5, backoff=1e200, max_delay=3)
    assert [retrier.delay(attempt) for attempt in range(4)] == [1, 3, 3, 3]
    assert Retrier(("X",), backoff=1e200).delay(10) == 86_400


def test_items_path_may_read_the_context_object() -> None:
    definition = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "ItemsPath": "$$.Execution.Input.xs",
                "End": True,
                "ItemProcessor": {"StartAt": "X", "States": {"X": {"Type": "Pass", "End": True}}},
            }
        },
    }
    result = Runner(TaskRegistry()).run(compile_definition(definition), {"xs": [1, 2]})
    assert result.output == [1, 2]


def test_nested_maps_share_one_budget_of_threads() -> None:
    tasks = TaskRegistry()
    lock = threading.Lock()
    running = [0, 0]  # now, most

    @tasks.task("busy")
    def busy(data: Any) -> Any:
        with lock:
            running[0] += 1
            running[1] = max(running[1], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        return data

    inner = {"StartAt": "B", "States": {"B": {"Type": "Task", "Resource": "loopml:task:busy",
                                              "End": True}}}  # fmt: skip
    middle = {
        "StartAt": "M2",
        "States": {"M2": {"Type": "Map", "ItemsPath": "$.xs", "ItemProcessor": inner, "End": True}},
    }
    definition = {"StartAt": "M1", "States": {"M1": {
        "Type": "Map", "ItemsPath": "$.xs", "ItemSelector": {"xs.$": "$.xs"},
        "ItemProcessor": middle, "End": True}}}  # fmt: skip
    before = threading.active_count()
    result = Runner(tasks).run(compile_definition(definition), {"xs": list(range(12))})
    assert result.status == "SUCCEEDED" and len(result.output) == 12
    assert all(len(row) == 12 for row in result.output)
    # 144 tasks, but never more at once than the execution's 40 threads (and the caller).
    assert running[1] <= 41
    assert threading.active_count() == before
