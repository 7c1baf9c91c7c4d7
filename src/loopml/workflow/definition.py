"""Validate and compile Amazon States Language definitions (read by
:mod:`loopml.workflow.document`).

Every problem is collected, each named by where it is (``States.Classify.Next``), and
raised together as :class:`~loopml.core.errors.InvalidDefinition`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loopml.core.errors import InvalidDefinition
from loopml.workflow.choice import compile_rule, parse_timestamp
from loopml.workflow.document import load_definition
from loopml.workflow.fields import FieldReader
from loopml.workflow.paths import Path, PathSyntaxError
from loopml.workflow.states import STATE_TYPES, Machine, State

RESOURCE_PREFIXES = ("loopml:task:", "loopml:deployment:")
_COMMON = {"Type", "Comment"}
_IO = {"InputPath", "OutputPath"}
_FLOW = {"Next", "End"}
_RESULT = {"Parameters", "ResultSelector", "ResultPath", "Retry", "Catch"}
_FIELDS: dict[str, set[str]] = {
    "Pass": _COMMON | _IO | _FLOW | {"Parameters", "ResultPath", "Result"},
    "Task": _COMMON
    | _IO
    | _FLOW
    | _RESULT
    | {
        "Resource",
        "TimeoutSeconds",
        "TimeoutSecondsPath",
        "HeartbeatSeconds",
        "HeartbeatSecondsPath",
    },
    "Choice": _COMMON | _IO | {"Choices", "Default"},
    "Wait": _COMMON | _IO | _FLOW | {"Seconds", "Timestamp", "SecondsPath", "TimestampPath"},
    "Succeed": _COMMON | _IO,
    "Fail": _COMMON | {"Error", "Cause", "ErrorPath", "CausePath"},
    "Parallel": _COMMON | _IO | _FLOW | _RESULT | {"Branches"},
    "Map": _COMMON
    | _IO
    | _FLOW
    | _RESULT
    | {
        "Iterator",
        "ItemProcessor",
        "ItemsPath",
        "ItemSelector",
        "MaxConcurrency",
        "MaxConcurrencyPath",
    },
}
_DISTRIBUTED = {
    "ItemReader",
    "ItemBatcher",
    "ResultWriter",
    "ToleratedFailurePercentage",
    "ToleratedFailureCount",
    "Label",
}
_MAX_NAME = 80


def compile_definition(
    definition: str | bytes | dict[str, Any],
    known_task: Callable[[str], bool] | None = None,
) -> Machine:
    """Validate a definition and compile it into a :class:`Machine`.

    Parameters
    ----------
    definition : str, bytes or dict
        ASL as JSON or YAML text, or already parsed.
    known_task : callable, optional
        Says whether a ``loopml:task:<name>`` is registered; unregistered names are problems.

    Raises
    ------
    InvalidDefinition
        With every problem found, each naming its state and field.
    """
    data = load_definition(definition)
    problems: list[tuple[str, str]] = []
    machine = _Compiler(problems, known_task).machine(data, "")
    if problems:
        raise InvalidDefinition(problems)
    assert machine is not None
    machine.definition = data
    return machine


def _never(data: Any, context: Any) -> bool:
    return False


class _Compiler(FieldReader):
    def machine(self, data: Any, where: str) -> Machine | None:
        prefix = f"{where}." if where else ""
        if not isinstance(data, dict):
            self.problem(where, "must be an object with StartAt and States")
            return None
        if data.get("QueryLanguage", "JSONPath") != "JSONPath":
            self.problem(f"{prefix}QueryLanguage", "only JSONPath is supported, not JSONata")
        for key in set(data) - {
            "StartAt",
            "States",
            "Comment",
            "TimeoutSeconds",
            "Version",
            "QueryLanguage",
            "ProcessorConfig",
        }:
            self.problem(f"{prefix}{key}", "is not a field of a state machine")
        states = data.get("States")
        start = data.get("StartAt")
        if not isinstance(states, dict) or not states:
            self.problem(f"{prefix}States", "must be a non-empty object of states")
            return None
        if not isinstance(start, str) or start not in states:
            self.problem(f"{prefix}StartAt", f"{start!r} is not one of the states")
        timeout = self.seconds(data, "TimeoutSeconds", prefix)
        compiled = {}
        for name, body in states.items():
            state = self.state(name, body, f"{prefix}States.{name}")
            if state is not None:
                compiled[name] = state
        self.check_transitions(compiled, states, prefix)
        self.check_reachable(compiled, start, prefix)
        return Machine(str(start), compiled, timeout, str(data.get("Comment", "")), data)

    def check_transitions(
        self, compiled: dict[str, State], names: dict[str, Any], prefix: str
    ) -> None:
        for name, state in compiled.items():
            targets = [("Next", state.next), ("Default", state.default)]
            targets += [(f"Choices[{i}].Next", nxt) for i, (_, nxt) in enumerate(state.choices)]
            targets += [(f"Catch[{i}].Next", c.next) for i, c in enumerate(state.catch)]
            for field, target in targets:
                if target is not None and target not in names:
                    self.problem(
                        f"{prefix}States.{name}.{field}",
                        f"{target!r} is not a state of this machine",
                    )

    def check_reachable(self, compiled: dict[str, State], start: Any, prefix: str) -> None:
        if start not in compiled:
            return
        seen = {start}
        todo = [start]
        while todo:
            state = compiled.get(todo.pop())
            if state is None:
                continue
            for nxt in [
                state.next,
                state.default,
                *(n for _, n in state.choices),
                *(c.next for c in state.catch),
            ]:
                if nxt is not None and nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        for name in compiled:
            if name not in seen:
                self.problem(f"{prefix}States.{name}", "is never reached from StartAt")

    def state(self, name: str, body: Any, where: str) -> State | None:
        if len(name) > _MAX_NAME:
            self.problem(where, f"a state name has at most {_MAX_NAME} characters")
        if not isinstance(body, dict):
            self.problem(where, "a state is an object with a Type")
            return None
        kind = body.get("Type")
        if kind not in STATE_TYPES:
            self.problem(f"{where}.Type", f"{kind!r} is not one of {', '.join(STATE_TYPES)}")
            return None
        for key in set(body) - _FIELDS[kind]:
            why = (
                "belongs to a distributed Map, which loopml does not run"
                if key in _DISTRIBUTED
                else "only JSONPath is supported, not JSONata"
                if key == "QueryLanguage" and body[key] != "JSONPath"
                else f"is not a field of a {kind} state"
            )
            self.problem(f"{where}.{key}", why)
        state = State(name, kind)
        self.flow(state, body, where)
        state.input_path = self.select(body, "InputPath", where)
        state.output_path = self.select(body, "OutputPath", where)
        state.parameters = self.template(body, "Parameters", where)
        state.result_selector = self.template(body, "ResultSelector", where)
        if "ResultPath" in body:
            if body["ResultPath"] is None:
                state.discard_result = True
            else:
                state.result_path = self.reference(body["ResultPath"], f"{where}.ResultPath")
        else:
            state.result_path = Path("$")
        if "Result" in body:
            state.result, state.has_result = body["Result"], True
        state.retry = self.retriers(body.get("Retry", []), f"{where}.Retry")
        state.catch = self.catchers(body.get("Catch", []), f"{where}.Catch")
        getattr(self, f"compile_{kind.lower()}")(state, body, where)
        return state

    def flow(self, state: State, body: dict[str, Any], where: str) -> None:
        terminal = state.type in ("Choice", "Succeed", "Fail")
        has_next, end = "Next" in body, body.get("End") is True
        if "End" in body and not isinstance(body["End"], bool):
            self.problem(f"{where}.End", "must be true or false")
        if terminal:
            return
        if has_next == end:
            self.problem(where, "needs exactly one of Next and End: true")
        if has_next:
            if not isinstance(body["Next"], str):
                self.problem(f"{where}.Next", "must be the name of a state")
            else:
                state.next = body["Next"]

    def compile_pass(self, state: State, body: dict[str, Any], where: str) -> None:
        pass

    def compile_succeed(self, state: State, body: dict[str, Any], where: str) -> None:
        pass

    def compile_task(self, state: State, body: dict[str, Any], where: str) -> None:
        resource = body.get("Resource")
        if not isinstance(resource, str) or not resource.startswith(RESOURCE_PREFIXES):
            self.problem(
                f"{where}.Resource",
                f"{resource!r} is not loopml:task:<name> or "
                "loopml:deployment:<name>; register the code as a task and name it",
            )
        elif (
            resource.startswith("loopml:task:")
            and self.known_task is not None
            and not self.known_task(resource.removeprefix("loopml:task:"))
        ):
            self.problem(
                f"{where}.Resource",
                f"no task is registered as {resource.removeprefix('loopml:task:')!r}",
            )
        elif resource.endswith(":"):
            self.problem(f"{where}.Resource", "the resource needs a name after the colon")
        state.resource = resource if isinstance(resource, str) else ""
        if "TimeoutSeconds" in body and "TimeoutSecondsPath" in body:
            self.problem(f"{where}.TimeoutSeconds", "give TimeoutSeconds or TimeoutSecondsPath")
        state.timeout = self.seconds(body, "TimeoutSeconds", f"{where}.")
        if "TimeoutSecondsPath" in body:
            state.timeout_path = self.reference(
                body["TimeoutSecondsPath"], f"{where}.TimeoutSecondsPath"
            )
        heartbeat = self.seconds(body, "HeartbeatSeconds", f"{where}.")
        if heartbeat is not None and state.timeout is not None and heartbeat >= state.timeout:
            self.problem(f"{where}.HeartbeatSeconds", "must be smaller than TimeoutSeconds")
        if "HeartbeatSeconds" in body and "HeartbeatSecondsPath" in body:
            self.problem(f"{where}.HeartbeatSeconds", "give HeartbeatSeconds or "
                         "HeartbeatSecondsPath, not both")  # fmt: skip
        if "HeartbeatSecondsPath" in body:  # checked; heartbeats come from callback tasks
            self.reference(body["HeartbeatSecondsPath"], f"{where}.HeartbeatSecondsPath")

    def compile_choice(self, state: State, body: dict[str, Any], where: str) -> None:
        choices = body.get("Choices")
        if not isinstance(choices, list) or not choices:
            self.problem(f"{where}.Choices", "must be a non-empty list of rules")
            choices = []
        for i, rule in enumerate(choices):
            at = f"{where}.Choices[{i}]"
            if not isinstance(rule, dict) or not isinstance(rule.get("Next"), str):
                self.problem(f"{at}.Next", "every top-level rule needs Next")
                continue
            try:
                compiled = compile_rule({k: v for k, v in rule.items() if k != "Next"}, at)
            except PathSyntaxError as exc:
                self.located(at, exc)
                # Keep the transition, so that its target is not also "never reached".
                compiled = _never
            state.choices.append((compiled, rule["Next"]))
        if "Default" in body:
            if isinstance(body["Default"], str):
                state.default = body["Default"]
            else:
                self.problem(f"{where}.Default", "must be the name of a state")

    def compile_wait(self, state: State, body: dict[str, Any], where: str) -> None:
        given = [
            key for key in ("Seconds", "Timestamp", "SecondsPath", "TimestampPath") if key in body
        ]
        if len(given) != 1:
            self.problem(
                where,
                "a Wait state needs exactly one of Seconds, Timestamp, "
                f"SecondsPath and TimestampPath, not {given or 'none'}",
            )
            return
        if "Seconds" in body:
            state.wait_seconds = self.seconds(body, "Seconds", f"{where}.", positive=False)
        elif "Timestamp" in body:
            if parse_timestamp(body["Timestamp"]) is None:
                self.problem(f"{where}.Timestamp", "must be an RFC 3339 timestamp with a zone")
            state.wait_timestamp = body["Timestamp"]
        elif "SecondsPath" in body:
            state.wait_seconds_path = self.reference(body["SecondsPath"], f"{where}.SecondsPath")
        else:
            state.wait_timestamp_path = self.reference(
                body["TimestampPath"], f"{where}.TimestampPath"
            )

    def compile_fail(self, state: State, body: dict[str, Any], where: str) -> None:
        for key, path_key in (("Error", "ErrorPath"), ("Cause", "CausePath")):
            if key in body and path_key in body:
                self.problem(f"{where}.{key}", f"give {key} or {path_key}, not both")
            if key in body and not isinstance(body[key], str):
                self.problem(f"{where}.{key}", "must be a string")
        state.error, state.cause = body.get("Error"), body.get("Cause")
        if "ErrorPath" in body:
            state.error_path = self.dynamic(body["ErrorPath"], f"{where}.ErrorPath")
        if "CausePath" in body:
            state.cause_path = self.dynamic(body["CausePath"], f"{where}.CausePath")

    def compile_parallel(self, state: State, body: dict[str, Any], where: str) -> None:
        branches = body.get("Branches")
        if not isinstance(branches, list) or not branches:
            self.problem(f"{where}.Branches", "must be a non-empty list of state machines")
            return
        for i, branch in enumerate(branches):
            machine = self.machine(branch, f"{where}.Branches[{i}]")
            if machine is not None:
                state.branches.append(machine)

    def compile_map(self, state: State, body: dict[str, Any], where: str) -> None:
        key = "ItemProcessor" if "ItemProcessor" in body else "Iterator"
        if ("ItemProcessor" in body) == ("Iterator" in body):
            self.problem(where, "a Map state needs one of ItemProcessor and Iterator")
            return
        processor = body[key]
        config = processor.get("ProcessorConfig") if isinstance(processor, dict) else None
        if config is not None and not isinstance(config, dict):
            self.problem(f"{where}.{key}.ProcessorConfig", "must be an object")
        elif isinstance(processor, dict):
            mode = (config or {}).get("Mode", "INLINE")
            if mode != "INLINE":
                self.problem(
                    f"{where}.{key}.ProcessorConfig.Mode",
                    f"only INLINE Map runs in loopml, not {mode!r}",
                )
        state.iterator = self.machine(processor, f"{where}.{key}")
        if "Parameters" in body and "ItemSelector" in body:
            self.problem(f"{where}.ItemSelector", "give ItemSelector or Parameters, not both")
        state.item_selector = self.template(body, "ItemSelector", where) or state.parameters
        state.parameters = None
        if "ItemsPath" in body:
            state.items_path = self.path(body["ItemsPath"], f"{where}.ItemsPath")
        concurrency = self.seconds(body, "MaxConcurrency", f"{where}.", positive=False, unit="")
        state.max_concurrency = int(concurrency or 0)
        if "MaxConcurrency" in body and "MaxConcurrencyPath" in body:
            self.problem(f"{where}.MaxConcurrency", "give MaxConcurrency or MaxConcurrencyPath, "
                         "not both")  # fmt: skip
        if "MaxConcurrencyPath" in body:
            state.max_concurrency_path = self.reference(
                body["MaxConcurrencyPath"], f"{where}.MaxConcurrencyPath"
            )
