"""The task registry: the only code a workflow's ``loopml:task:<name>`` can run.

A workflow definition sent over the API names tasks; it can never name arbitrary code.
Tasks are plain functions of the state's input, registered with :func:`task`; a task
that also takes ``context`` receives a :class:`TaskContext`.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loopml.core.errors import AlreadyExists, InvalidInput, NotFound

TaskFunction = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class TaskContext:
    """What a task may know about the execution calling it.

    Attributes
    ----------
    execution_id : str
    state : str
        The Task state's name.
    retry_count : int
        0 on the first attempt, then 1, 2, … as ``Retry`` runs the state again.
    deadline : float or None
        ``time.monotonic()`` by which the task must finish (its ``TimeoutSeconds`` or the
        execution's), ``None`` without a limit.
    services : object
        What the host that runs the workflow provides (the server's settings and
        database, for the built-in tasks); ``None`` for a bare :class:`Runner`.
    project : str
        The project the execution belongs to; empty for a bare :class:`Runner`.
    """

    execution_id: str
    state: str
    retry_count: int
    deadline: float | None
    services: Any
    project: str = ""


@dataclass(frozen=True, slots=True)
class Task:
    name: str
    function: TaskFunction
    wants_context: bool

    def __call__(self, data: Any, context: TaskContext) -> Any:
        if self.wants_context:
            return self.function(data, context=context)
        return self.function(data)


class TaskRegistry:
    """Named tasks; ``loopml:task:<name>`` resolves here."""

    def __init__(self) -> None:
        self._tasks: dict[str, Task] = {}
        self._lock = threading.Lock()

    def add(self, name: str, function: TaskFunction, *, replace: bool = False) -> Task:
        """Register ``function`` as ``name``; a second registration of a name needs ``replace``."""
        if not name or not isinstance(name, str) or ":" in name:
            raise InvalidInput(
                f"a task name is a non-empty string without ':', not {name!r}", field="name"
            )
        parameters = inspect.signature(function).parameters
        task = Task(name, function, "context" in parameters)
        with self._lock:
            if name in self._tasks and not replace and self._tasks[name].function is not function:
                raise AlreadyExists(f"a task named {name!r} is already registered", field="name")
            self._tasks[name] = task
        return task

    def task(
        self, name: str | None = None, *, replace: bool = False
    ) -> Callable[[TaskFunction], TaskFunction]:
        """Decorator: register the function under ``name`` (default: its own name)."""

        def register(function: TaskFunction) -> TaskFunction:
            self.add(name or function.__name__, function, replace=replace)
            return function

        return register

    def get(self, name: str) -> Task:
        try:
            return self._tasks[name]
        except KeyError:
            raise NotFound(
                f"no task is registered as {name!r}; registered: "
                f"{', '.join(sorted(self._tasks)) or 'none'}",
                field="Resource",
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._tasks

    def names(self) -> list[str]:
        return sorted(self._tasks)

    def copy(self) -> TaskRegistry:
        other = TaskRegistry()
        other._tasks = dict(self._tasks)
        return other


DEFAULT_TASKS = TaskRegistry()


def task(
    name: str | None = None, *, replace: bool = False
) -> Callable[[TaskFunction], TaskFunction]:
    """Register a function as a workflow task in the default registry.

    Examples
    --------
    >>> @task("double")
    ... def double(data):
    ...     return {"value": data["value"] * 2}
    """
    return DEFAULT_TASKS.task(name, replace=replace)
