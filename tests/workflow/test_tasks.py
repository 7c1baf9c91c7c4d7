"""The task registry: the only code a workflow can name."""

from __future__ import annotations

from typing import Any

import pytest

from loopml.core.errors import AlreadyExists, InvalidInput, NotFound
from loopml.workflow import TaskContext, TaskRegistry

CONTEXT = TaskContext("ex-1", "State", 0, None, None)


def test_add_and_get(tasks: TaskRegistry) -> None:
    def double(data: Any) -> Any:
        return data * 2

    registered = tasks.add("double", double)
    assert registered.name == "double"
    assert tasks.get("double")(21, CONTEXT) == 42
    assert "double" in tasks
    assert "triple" not in tasks
    assert tasks.names() == ["double"]


def test_the_decorator_registers_under_the_function_name_by_default(tasks: TaskRegistry) -> None:
    @tasks.task()
    def shout(data: Any) -> Any:
        return data.upper()

    @tasks.task("whisper")
    def quiet(data: Any) -> Any:
        return data.lower()

    assert shout("a") == "A"  # the decorator hands the function back unchanged
    assert tasks.names() == ["shout", "whisper"]
    assert tasks.get("whisper")("B", CONTEXT) == "b"


def test_a_second_task_under_a_taken_name_needs_replace(tasks: TaskRegistry) -> None:
    tasks.add("step", lambda data: "first")
    with pytest.raises(AlreadyExists) as caught:
        tasks.add("step", lambda data: "second")
    assert caught.value.field == "name"
    assert tasks.get("step")(None, CONTEXT) == "first"
    tasks.add("step", lambda data: "third", replace=True)
    assert tasks.get("step")(None, CONTEXT) == "third"


def test_registering_the_same_function_again_is_harmless(tasks: TaskRegistry) -> None:
    def same(data: Any) -> Any:
        return 1

    tasks.add("same", same)
    tasks.add("same", same)
    assert tasks.names() == ["same"]


@pytest.mark.parametrize("name", ["", "a:b", "loopml:task:x", None, 5])
def test_bad_names_are_refused(tasks: TaskRegistry, name: Any) -> None:
    with pytest.raises(InvalidInput):
        tasks.add(name, lambda data: data)
    assert tasks.names() == []


def test_an_unknown_name_lists_the_registered_ones(tasks: TaskRegistry) -> None:
    with pytest.raises(NotFound, match="registered: none"):
        tasks.get("anything")
    tasks.add("zeta", lambda data: 1)
    tasks.add("alpha", lambda data: 1)
    with pytest.raises(NotFound) as caught:
        tasks.get("gamma")
    assert "'gamma'" in str(caught.value)
    assert "registered: alpha, zeta" in str(caught.value)


def test_only_tasks_with_a_context_parameter_receive_it(tasks: TaskRegistry) -> None:
    received: list[Any] = []
    tasks.add("plain", lambda data: received.append(("plain", data)))
    tasks.add("aware", lambda data, context: received.append(("aware", context.state)))
    tasks.get("plain")("x", CONTEXT)
    tasks.get("aware")("x", CONTEXT)
    assert received == [("plain", "x"), ("aware", "State")]


def test_a_copy_is_independent(tasks: TaskRegistry) -> None:
    tasks.add("shared", lambda data: 1)
    copy = tasks.copy()
    copy.add("own", lambda data: 2)
    tasks.add("late", lambda data: 3)
    assert copy.names() == ["own", "shared"]
    assert tasks.names() == ["late", "shared"]
