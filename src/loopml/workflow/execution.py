"""An execution's shared state: its result, its clock, its cancellation."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from loopml.core.errors import StatesError
from loopml.workflow.history import History
from loopml.workflow.states import State


@dataclass
class ExecutionResult:
    """How an execution ended.

    Attributes
    ----------
    status : str
        ``SUCCEEDED``, ``FAILED``, ``TIMED_OUT`` or ``ABORTED``.
    output : object
        The last state's output when it succeeded, else ``None``.
    error, cause : str or None
        The error name and its explanation when it did not succeed.
    events : list of dict
        The whole history, in Step Functions' shape.
    """

    id: str
    status: str
    output: Any = None
    error: str | None = None
    cause: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    started: str = ""
    stopped: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "executionId": self.id,
            "status": self.status,
            "output": self.output,
            "error": self.error,
            "cause": self.cause,
            "startDate": self.started,
            "stopDate": self.stopped,
        }


# (next state, its input, last event id, whether the finished state must not run again)
MAX_EXECUTION_THREADS = 40
Checkpoint = Callable[[str, Any, int, bool], None]


@dataclass(frozen=True, slots=True)
class Resume:
    """Where an interrupted execution starts again: the state it had not finished.

    Attributes
    ----------
    state : str
        The top-level state to run next.
    input : object
        That state's input.
    last_event : int
        The id of the last event recorded before the interruption.
    execution_input : object
        The execution's original input (``$$.Execution.Input``).
    started : str
        When the execution first started (``$$.Execution.StartTime``).
    elapsed : float
        Seconds already spent, counted against the machine's ``TimeoutSeconds``.
    """

    state: str
    input: Any
    last_event: int
    execution_input: Any
    started: str
    elapsed: float = 0.0


class Stopped(Exception):
    """The execution as a whole ends (timeout or abort): no Catch sees it."""

    def __init__(self, status: str, error: str, cause: str) -> None:
        super().__init__(cause)
        self.status, self.error, self.cause = status, error, cause


class Scope:
    """Cancellation shared down a tree of branches: a failed branch stops its siblings."""

    def __init__(self, parent: Scope | None = None) -> None:
        self.parent = parent
        self.event = threading.Event()

    def stopped(self) -> bool:
        scope: Scope | None = self
        while scope is not None:
            if scope.event.is_set():
                return True
            scope = scope.parent
        return False


class RunContext:
    def __init__(
        self,
        history: History,
        execution: dict[str, Any],
        deadline: float | None,
        abort: threading.Event,
        suspend: threading.Event | None = None,
    ) -> None:
        self.history = history
        self.execution = execution
        self.deadline = deadline
        self.abort = abort
        self.suspend = suspend
        # Threads all of this execution's Maps and Parallels may use at once, together.
        self.threads = threading.Semaphore(MAX_EXECUTION_THREADS)

    def check(self, scope: Scope) -> None:
        if self.abort.is_set():
            raise Stopped("ABORTED", "States.Aborted", "the execution was stopped")
        if self.suspend is not None and self.suspend.is_set():
            raise Stopped("SUSPENDED", "loopml.Suspended", "the server stopped; it resumes")
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise Stopped(
                "TIMED_OUT", "States.Timeout", "the execution ran past its TimeoutSeconds"
            )
        if scope.stopped():
            raise StatesError("States.BranchFailed", "a sibling branch failed")

    def sleep(self, seconds: float, scope: Scope) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if self.deadline is not None:
                left = min(left, self.deadline - time.monotonic())
            self.check(scope)
            self.abort.wait(min(max(left, 0.0), 0.05))
        self.check(scope)

    def context(self, state: State, entered: str, retries: int, item: Any) -> dict[str, Any]:
        context = {
            "Execution": self.execution,
            "StateMachine": self.execution["StateMachine"],
            "State": {"Name": state.name, "EnteredTime": entered, "RetryCount": retries},
        }
        if item is not None:
            context["Map"] = {"Item": item}
        return context


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")
