"""Compiled state machines: what :mod:`loopml.workflow.definition` builds and the
interpreter runs. Paths, templates and choice rules are compiled once, here, so that a
state transition costs microseconds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from loopml.workflow.choice import Rule
from loopml.workflow.paths import Path
from loopml.workflow.templates import Template

Select = Callable[[Any, Any], Any]

STATE_TYPES = ("Pass", "Task", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map")


@dataclass(slots=True)
class Retrier:
    """One entry of a state's ``Retry``."""

    errors: tuple[str, ...]
    interval: float = 1.0
    max_attempts: int = 3
    backoff: float = 2.0
    max_delay: float | None = None
    full_jitter: bool = False

    def delay(self, attempt: int) -> float:
        """Seconds before retry number ``attempt + 1`` (before jitter)."""
        try:
            seconds = self.interval * self.backoff**attempt
        except OverflowError:  # BackoffRate 1e200: the cap (or a day) is the answer
            seconds = float("inf")
        return min(seconds, self.max_delay if self.max_delay is not None else 86_400.0)


@dataclass(slots=True)
class Catcher:
    """One entry of a state's ``Catch``."""

    errors: tuple[str, ...]
    next: str
    result_path: Path | None
    discard: bool = False


@dataclass(slots=True)
class State:
    """One compiled state; fields a state's type does not use keep their defaults."""

    name: str
    type: str
    next: str | None = None
    input_path: Select | None = None
    output_path: Select | None = None
    parameters: Template | None = None
    result_selector: Template | None = None
    result_path: Path | None = None
    discard_result: bool = False
    result: Any = None
    has_result: bool = False
    retry: list[Retrier] = field(default_factory=list)
    catch: list[Catcher] = field(default_factory=list)
    resource: str = ""
    timeout: float | None = None
    timeout_path: Path | None = None
    choices: list[tuple[Rule, str]] = field(default_factory=list)
    default: str | None = None
    wait_seconds: float | None = None
    wait_timestamp: str | None = None
    wait_seconds_path: Path | None = None
    wait_timestamp_path: Path | None = None
    error: str | None = None
    cause: str | None = None
    error_path: Select | None = None  # a path or an intrinsic, of (input, context)
    cause_path: Select | None = None
    branches: list[Machine] = field(default_factory=list)
    items_path: Path | None = None
    item_selector: Template | None = None
    iterator: Machine | None = None
    max_concurrency: int = 0
    max_concurrency_path: Path | None = None


@dataclass(slots=True)
class Machine:
    """A compiled state machine (or a ``Parallel`` branch, or a ``Map`` item processor)."""

    start_at: str
    states: dict[str, State]
    timeout: float | None = None
    comment: str = ""
    definition: dict[str, Any] = field(default_factory=dict)

    @property
    def resources(self) -> set[str]:
        """Every ``Resource`` the machine's tasks name, branches and iterators included."""
        found: set[str] = set()
        for state in self.states.values():
            if state.resource:
                found.add(state.resource)
            for machine in [*state.branches, *([state.iterator] if state.iterator else [])]:
                found |= machine.resources
        return found
