"""Threads for a workflow: fan-out for Parallel and Map, and tasks with a time limit."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from loopml.core.errors import StatesError
from loopml.workflow.execution import Scope
from loopml.workflow.tasks import TaskContext

MAX_THREADS = 40  # Step Functions' ceiling for an inline Map without MaxConcurrency


def fan_out(
    work: Callable[[Any], tuple[Any, int]],
    items: list[Any],
    limit: int,
    scope: Scope,
    budget: threading.Semaphore,
) -> list[tuple[Any, int]]:
    """Run ``work`` on every item, ``limit`` at a time (0: as many as allowed), in order.

    Threads come from the execution's ``budget`` (shared by every nested Map and
    Parallel): a Map in a Map in a Map would otherwise start 40 x 40 x 40 of them. With
    none left, the items run one after another, in this thread.
    """
    wanted = min(limit or MAX_THREADS, MAX_THREADS, len(items))
    workers = 0
    while workers < wanted and budget.acquire(blocking=False):
        workers += 1
    try:
        if workers <= 1:
            return [work(item) for item in items]
        return _in_threads(work, items, workers, scope)
    finally:
        for _ in range(workers):
            budget.release()


def _in_threads(
    work: Callable[[Any], tuple[Any, int]], items: list[Any], workers: int, scope: Scope
) -> list[tuple[Any, int]]:
    def guarded(item: Any) -> tuple[Any, int]:
        try:
            return work(item)
        except BaseException:
            scope.event.set()  # the first failure stops the others at their next state
            raise

    with ThreadPoolExecutor(workers, thread_name_prefix="loopml-workflow") as pool:
        futures = [pool.submit(guarded, item) for item in items]
        outcomes = []
        first: BaseException | None = None
        for future in futures:
            try:
                outcomes.append(future.result())
            except BaseException as exc:
                # Report the failure that caused the stop, not a sibling's "stopped" echo.
                if first is None or (
                    getattr(first, "error", "") == "States.BranchFailed"
                    and getattr(exc, "error", "") != "States.BranchFailed"
                ):
                    first = exc
        if first is not None:
            raise first
    return outcomes


def within(
    call: Callable[[Any, TaskContext], Any],
    data: Any,
    context: TaskContext,
    deadline: float,
    limit: float | None,
) -> Any:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = call(data, context)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True, name="loopml-task")
    thread.start()
    thread.join(max(deadline - time.monotonic(), 0.0))
    if thread.is_alive():
        # A Python thread cannot be killed: the task runs on, its answer is dropped.
        raise StatesError(
            "States.Timeout",
            f"the task did not finish within {limit or 'the execution time left'} seconds",
        )
    if "error" in box:
        raise box["error"]
    return box["result"]
