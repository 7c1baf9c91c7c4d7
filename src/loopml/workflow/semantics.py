"""The States Language's rules for single states: which retrier or catcher takes an
error, how long a retry waits, which choice wins, what a Fail or Wait state does."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from loopml.core.errors import StatesError
from loopml.workflow.choice import parse_timestamp
from loopml.workflow.history import to_json
from loopml.workflow.states import State


def guard(function: Callable[..., Any], *args: Any) -> Any:
    try:
        return function(*args)
    except StatesError:
        raise
    except Exception as exc:
        raise StatesError(type(exc).__name__, str(exc) or type(exc).__name__) from None


def retry_delay(state: State, attempts: list[int], error: str) -> float | None:
    """Seconds to wait before the next attempt, or ``None`` when no retrier retries ``error``.

    Only the first retrier naming the error applies; once it is spent, the error is final.
    """
    for i, retrier in enumerate(state.retry):
        if matches(retrier.errors, error):
            if attempts[i] >= retrier.max_attempts:
                return None
            delay = retrier.delay(attempts[i])
            attempts[i] += 1
            return random.uniform(0, delay) if retrier.full_jitter else delay
    return None


TERMINAL = ("States.Runtime", "States.DataLimitExceeded")  # no Retry or Catch takes them


def matches(errors: tuple[str, ...], error: str) -> bool:
    if error in TERMINAL:
        return False
    if error in errors:
        return True
    if "States.ALL" in errors:
        return True
    if "States.TaskFailed" in errors:
        return error != "States.Timeout"
    return False


def choose(state: State, data: Any, context: dict[str, Any]) -> str:
    for rule, nxt in state.choices:
        if rule(data, context):
            return nxt
    if state.default is None:
        raise StatesError(
            "States.NoChoiceMatched",
            f"no choice rule of {state.name!r} matched the input and it has no Default",
        )
    return state.default


def fail(state: State, data: Any, context: dict[str, Any]) -> StatesError:
    """The error a Fail state ends with; ``ErrorPath`` and ``CausePath`` must select strings."""
    found = {"Error": state.error, "Cause": state.cause}
    for key, read in (("Error", state.error_path), ("Cause", state.cause_path)):
        if read is None:
            continue
        value = read(data, context)
        if not isinstance(value, str):
            return StatesError(
                "States.Runtime",
                f"The {key}Path of {state.name!r} must select a string, not {to_json(value)[:80]}",
            )
        found[key] = value
    return StatesError(found["Error"] or "", found["Cause"] or "")


def wait_seconds(state: State, data: Any) -> float:
    if state.wait_seconds is not None:
        return state.wait_seconds
    if state.wait_seconds_path is not None:
        return positive(state.wait_seconds_path.get(data), "SecondsPath", zero=True)
    text = (
        state.wait_timestamp
        if state.wait_timestamp is not None
        else state.wait_timestamp_path.get(data)
        if state.wait_timestamp_path
        else None
    )
    moment = parse_timestamp(text)
    if moment is None:
        raise StatesError("States.Runtime", f"{text!r} is not an RFC 3339 timestamp")
    return max((moment - datetime.now(timezone.utc)).total_seconds(), 0.0)


def positive(value: Any, what: str, zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < (0 if zero else 1):
        raise StatesError(
            "States.Runtime",
            f"{what} must select a {'non-negative' if zero else 'positive'} number, not {value!r}",
        )
    return float(value)
