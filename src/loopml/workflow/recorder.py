"""Writing an execution's history and checkpoints to the metadata database."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from loopml.core.errors import Conflict, StorageError
from loopml.store import workflows as store
from loopml.store.db import Database
from loopml.workflow.interpreter import ExecutionResult

log = logging.getLogger("loopml.workflow")
_RETRIES = (0.2, 0.5, 1.0, None)  # pauses between tries of a checkpoint; then it fails


class Recorder:
    """Buffers an execution's events and writes them at checkpoints, at its end, and
    at least every ``flush_seconds``.

    A checkpoint after a Task, Parallel, Map or Wait state is written at once: running
    such a state again after a crash repeats work or side effects. One after a Pass or
    Choice state waits for the next write, since redoing those costs nothing and changes
    nothing; a chain of them then costs one transaction, not one per state. An EXPRESS
    execution treats every checkpoint so: a crash may run a Task again.
    """

    def __init__(
        self, db: Database, execution_id: str, flush_seconds: float, owner: str,
        express: bool = False,
    ) -> None:  # fmt: skip
        self.db = db
        self.express = express  # no checkpoint is written at once: all ride with events
        self.execution_id = execution_id
        self.flush_seconds = flush_seconds
        self.owner = owner
        self.buffer: list[dict[str, Any]] = []
        self.flushed = time.monotonic()
        self.lock = threading.Lock()
        self.lost: Conflict | None = None  # set once another server took the execution
        self.pending: tuple[str, Any, int] | None = None  # a checkpoint not yet written

    def add(self, event: dict[str, Any]) -> None:
        with self.lock:
            self.buffer.append(event)
            if time.monotonic() - self.flushed >= self.flush_seconds:
                try:
                    self._write(None)
                except StorageError as exc:  # kept: the next write or the flusher retries
                    log.warning("execution %s: events wait for the database: %s",
                                self.execution_id, exc)  # fmt: skip

    def checkpoint(self, state: str, data: Any, last_event: int, durable: bool = True) -> None:
        with self.lock:
            self.pending = (state, data, last_event)
            durable = durable and not self.express
            if not durable and time.monotonic() - self.flushed < self.flush_seconds:
                return
            # The state must not run again: its checkpoint is worth waiting a little for.
            for pause in _RETRIES:
                try:
                    self._write(None)
                    return
                except StorageError:
                    if pause is None:
                        raise
                    time.sleep(pause)

    def flush(self, *, due: bool = False) -> None:
        """Write the buffered events (with ``due``, only once they waited long enough)."""
        with self.lock:
            waited = time.monotonic() - self.flushed >= self.flush_seconds
            if (self.buffer or self.pending) and self.lost is None and (waited or not due):
                self._write(None)

    def end(self, result: ExecutionResult) -> None:
        with self.lock:
            if result.status == "SUSPENDED":
                self._write(None)
                return
            events, self.buffer = self.buffer, []
            with self.db.session() as session:
                store.record(session, self.execution_id, events, owner=self.owner)
                store.finish(
                    session, self.execution_id, result.status, output=result.output,
                    error=result.error, cause=result.cause,
                    last_event=result.events[-1]["id"] if result.events else None,
                    owner=self.owner,
                )  # fmt: skip

    def _write(self, checkpoint: tuple[str, Any, int] | None) -> None:
        if self.lost is not None:
            raise self.lost
        checkpoint = checkpoint or self.pending
        try:
            with self.db.session() as session:
                store.record(
                    session, self.execution_id, self.buffer, checkpoint=checkpoint,
                    owner=self.owner,
                )  # fmt: skip
        except Conflict as exc:
            self.lost, self.buffer = exc, []
            raise
        # Cleared only once written: a failed write is tried again with the next one.
        self.buffer, self.pending = [], None
        self.flushed = time.monotonic()
