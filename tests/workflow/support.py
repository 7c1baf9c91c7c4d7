"""Helpers of the workflow tests: compile and run a definition on a fresh task registry."""

from __future__ import annotations

from typing import Any

from loopml.workflow import ExecutionResult, Runner, TaskRegistry, compile_definition


def run(
    tasks: TaskRegistry, definition: dict[str, Any], data: Any = None, **kwargs: Any
) -> ExecutionResult:
    """Validate ``definition`` against ``tasks`` and run it to the end."""
    machine = compile_definition(definition, known_task=tasks.__contains__)
    return Runner(tasks).run(machine, data, **kwargs)


def types(result: ExecutionResult) -> list[str]:
    return [event["type"] for event in result.events]


def count(result: ExecutionResult, kind: str) -> int:
    return types(result).count(kind)


def one_state(state: dict[str, Any], **machine: Any) -> dict[str, Any]:
    """A machine whose only state is ``state`` (ending the execution)."""
    return {"StartAt": "S", "States": {"S": {"End": True, **state}}, **machine}
