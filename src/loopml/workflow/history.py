"""Execution history in the shape and order Step Functions' ``GetExecutionHistory`` uses."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from loopml.core.errors import StatesError

Event = dict[str, Any]
MAX_EVENTS = 25_000
MAX_PAYLOAD_CHARS = 1_048_576  # a state's input or output; Step Functions allows 256 KiB
_PAYLOADS = ("input", "output", "parameters")
Sink = Callable[[Event], None]


def details_key(kind: str) -> str:
    """The field that holds an event's details, as Step Functions names it."""
    if kind.endswith("StateEntered"):
        return "stateEnteredEventDetails"
    if kind.endswith("StateExited"):
        return "stateExitedEventDetails"
    return kind[0].lower() + kind[1:] + "EventDetails"


def to_json(value: Any) -> str:
    """Compact JSON; NaN and Infinity are refused (ValueError), as JSON has neither."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class History:
    """The events of one execution, numbered from 1, each pointing at the one before it
    on its own path (a ``Parallel`` branch or ``Map`` iteration has its own path).

    Parameters
    ----------
    sink : callable, optional
        Called with each event as it is added (to persist or stream it), under the lock
        that orders the events.
    start : int
        The id of the last event already recorded (a resumed execution goes on from it).
    limit : int
        Events an execution may have, as Step Functions caps a history at 25,000: a
        state machine that loops without end fails with ``States.Runtime`` instead of
        running, and writing, forever.
    """

    def __init__(self, sink: Sink | None = None, start: int = 0, limit: int = MAX_EVENTS) -> None:
        self.events: list[Event] = []
        self._start = start
        self._limit = limit
        self._lock = threading.Lock()
        self._sink = sink

    def add(
        self,
        kind: str,
        previous: int,
        details: dict[str, Any] | None = None,
        *,
        final: bool = False,
    ) -> int:
        """Append an event; past the limit only the ``final`` one that ends the execution."""
        with self._lock:
            if not final and self._start + len(self.events) >= self._limit:
                raise StatesError(
                    "States.Runtime",
                    f"the execution's history reached {self._limit:,} events; does the state "
                    "machine loop without end?",
                )
            if not final and details is not None:
                for key in _PAYLOADS:
                    text = details.get(key)
                    if isinstance(text, str) and len(text) > MAX_PAYLOAD_CHARS:
                        raise StatesError(
                            "States.DataLimitExceeded",
                            f"the {key} of {details.get('name') or kind} has {len(text):,} "
                            f"characters of JSON; the limit is {MAX_PAYLOAD_CHARS:,}",
                        )
            event: Event = {
                "id": self._start + len(self.events) + 1,
                "previousEventId": previous,
                "timestamp": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
                "type": kind,
            }
            if details is not None:
                event[details_key(kind)] = details
            self.events.append(event)
            if self._sink is not None:
                self._sink(event)
            return event["id"]
