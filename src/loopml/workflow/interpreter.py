"""Run compiled state machines: data flow, retries, catches, timeouts, Parallel and Map.

The order of work inside a state follows the States Language: ``InputPath`` →
``Parameters`` → the state's work → ``ResultSelector`` → ``ResultPath`` → ``OutputPath``.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from loopml.core.errors import Conflict, NotFound, StatesError, StorageError
from loopml.core.ids import new_id
from loopml.workflow.concurrency import fan_out, within
from loopml.workflow.execution import (
    Checkpoint,
    ExecutionResult,
    Resume,
    RunContext,
    Scope,
    Stopped,
    now,
)
from loopml.workflow.history import History, Sink, to_json
from loopml.workflow.paths import put
from loopml.workflow.semantics import (
    TERMINAL,
    choose,
    fail,
    guard,
    matches,
    positive,
    retry_delay,
    wait_seconds,
)
from loopml.workflow.states import Machine, State
from loopml.workflow.tasks import DEFAULT_TASKS, TaskContext, TaskRegistry

DeploymentCall = Callable[[str, Any, TaskContext], Any]


_PURE = ("Pass", "Choice")  # states that redo nothing and change nothing when run again


class Runner:
    """Runs state machines on local threads.

    Parameters
    ----------
    tasks : TaskRegistry, optional
        Where ``loopml:task:<name>`` resolves; the default registry when omitted.
    deployments : callable, optional
        ``(name, input, context) -> result`` for ``loopml:deployment:<name>``; the server
        supplies one that predicts with the project's deployment.
    services : object, optional
        Passed to tasks as ``context.services``.
    project : str, optional
        The project whose deployments and data the tasks use (``context.project``).
    """

    def __init__(
        self,
        tasks: TaskRegistry | None = None,
        deployments: DeploymentCall | None = None,
        services: Any = None,
        project: str = "",
    ) -> None:
        self.tasks = tasks if tasks is not None else DEFAULT_TASKS
        self.deployments = deployments
        self.services = services
        self.project = project

    def run(
        self,
        machine: Machine,
        data: Any = None,
        *,
        execution_id: str | None = None,
        name: str = "",
        sink: Sink | None = None,
        abort: threading.Event | None = None,
        suspend: threading.Event | None = None,
        checkpoint: Checkpoint | None = None,
        resume: Resume | None = None,
    ) -> ExecutionResult:
        """Run ``machine`` on ``data`` to the end and return how it ended.

        Parameters
        ----------
        machine : Machine
        data : object
            The execution's input (JSON-compatible).
        execution_id, name : str, optional
            Identify the execution in ``$$.Execution`` and the result.
        sink : callable, optional
            Receives each history event as it happens.
        abort : threading.Event, optional
            Set it to stop the execution (status ``ABORTED``).
        suspend : threading.Event, optional
            Set it to stop at the next state without ending the execution (status
            ``SUSPENDED``), so that it can be resumed later.
        checkpoint : callable, optional
            ``(next_state, input, last_event_id, durable)`` after each top-level state:
            what a resumed execution needs; ``durable`` is False after a Pass or Choice
            state, which may safely run again.
        resume : Resume, optional
            Start again from a checkpoint instead of from ``StartAt``.
        """
        execution_id = execution_id or new_id()
        history = History(sink, start=resume.last_event if resume else 0)
        started = resume.started if resume else now()
        original = resume.execution_input if resume else data
        execution = {
            "Id": execution_id,
            "Name": name or execution_id,
            "StartTime": started,
            "Input": original,
            "StateMachine": {"Id": name, "Name": name},
        }
        elapsed = resume.elapsed if resume else 0.0
        deadline = time.monotonic() + machine.timeout - elapsed if machine.timeout else None
        run = RunContext(history, execution, deadline, abort or threading.Event(), suspend)
        if resume is None:
            start = machine.start_at
            last = history.add(
                "ExecutionStarted",
                0,
                {"input": to_json(data), "inputDetails": {"truncated": False}},
            )
            if checkpoint is not None:  # a restart before the first state keeps the start
                checkpoint(start, data, last, True)
        else:
            start, data = resume.state, resume.input
            last = history.add("ExecutionResumed", resume.last_event, {"state": start})
        result = ExecutionResult(execution_id, "RUNNING", started=started)
        try:
            output, last = self._machine(run, machine, data, last, Scope(), None, start, checkpoint)
        except Stopped as stop:
            result.status, result.error, result.cause = stop.status, stop.error, stop.cause
            if stop.status != "SUSPENDED":
                kind = {"TIMED_OUT": "ExecutionTimedOut", "ABORTED": "ExecutionAborted"}
                details = {"error": stop.error, "cause": stop.cause}
                history.add(kind[stop.status], last, details, final=True)
        except (StorageError, Conflict):
            raise  # the recorder's: the host decides (retry, resume elsewhere, or fail it)
        except Exception as exc:
            # A bug or a value no JSON holds still ends the execution, with its history.
            error = (
                exc
                if isinstance(exc, StatesError)
                else StatesError("States.Runtime", f"{type(exc).__name__}: {exc}")
            )
            details = {"error": error.error, "cause": error.cause}
            history.add("ExecutionFailed", last, details, final=True)
            result.status, result.error, result.cause = "FAILED", error.error, error.cause
        else:
            history.add(
                "ExecutionSucceeded",
                last,
                {"output": to_json(output), "outputDetails": {"truncated": False}},
                final=True,
            )
            result.status, result.output = "SUCCEEDED", output
        result.stopped = now()
        result.events = history.events
        return result

    def _machine(
        self,
        run: RunContext,
        machine: Machine,
        data: Any,
        last: int,
        scope: Scope,
        item: Any,
        start: str | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> tuple[Any, int]:
        name: str | None = start or machine.start_at
        while name is not None:
            run.check(scope)
            state = machine.states[name]
            data, name, last = self._state(run, state, data, last, scope, item)
            if checkpoint is not None and name is not None:
                checkpoint(name, data, last, state.type not in _PURE)
        return data, last

    def _state(
        self, run: RunContext, state: State, raw: Any, last: int, scope: Scope, item: Any
    ) -> tuple[Any, str | None, int]:
        history = run.history
        kind = state.type
        entered = now()
        last = history.add(f"{kind}StateEntered", last, {"name": state.name, "input": to_json(raw)})
        if kind in ("Choice", "Succeed", "Wait", "Fail"):
            context = run.context(state, entered, 0, item)
            data = state.input_path(raw, context) if state.input_path else raw
            nxt = state.next
            if kind == "Fail":
                raise fail(state, data, context)
            if kind == "Choice":
                nxt = choose(state, data, context)
            elif kind == "Wait":
                run.sleep(wait_seconds(state, data), scope)
            output = state.output_path(data, context) if state.output_path else data
        else:
            output, nxt, last = self._with_retries(run, state, raw, last, scope, entered, item)
        last = history.add(
            f"{kind}StateExited", last, {"name": state.name, "output": to_json(output)}
        )
        return output, nxt, last

    def _with_retries(
        self,
        run: RunContext,
        state: State,
        raw: Any,
        last: int,
        scope: Scope,
        entered: str,
        item: Any,
    ) -> tuple[Any, str | None, int]:
        attempts = [0] * len(state.retry)
        while True:
            context = run.context(state, entered, sum(attempts), item)
            try:
                data = state.input_path(raw, context) if state.input_path else raw
                if state.parameters is not None:
                    data = state.parameters(data, context)
                result, last = self._work(run, state, data, last, scope, context)
                if state.result_selector is not None:
                    result = state.result_selector(result, context)
                output = raw if state.discard_result else put(raw, state.result_path, result)
                if state.output_path is not None:
                    output = state.output_path(output, context)
                return output, state.next, last
            except StatesError as exc:
                if exc.error in TERMINAL:
                    raise
                delay = retry_delay(state, attempts, exc.error)
                if delay is not None:
                    run.sleep(delay, scope)
                    continue
                for catcher in state.catch:
                    if matches(catcher.errors, exc.error):
                        error = {"Error": exc.error, "Cause": exc.cause}
                        output = raw if catcher.discard else put(raw, catcher.result_path, error)
                        return output, catcher.next, last
                raise

    def _work(
        self,
        run: RunContext,
        state: State,
        data: Any,
        last: int,
        scope: Scope,
        context: dict[str, Any],
    ) -> tuple[Any, int]:
        if state.type == "Pass":
            # A copy: a task further on may change what it is given, never the definition.
            return (copy.deepcopy(state.result) if state.has_result else data), last
        if state.type == "Task":
            return self._task(run, state, data, last, context)
        if state.type == "Parallel":
            return self._parallel(run, state, data, last, scope)
        return self._map(run, state, data, last, scope, context)

    def _task(
        self, run: RunContext, state: State, data: Any, last: int, context: dict[str, Any]
    ) -> tuple[Any, int]:
        history = run.history
        parameters = to_json(data)
        last = history.add(
            "TaskScheduled",
            last,
            {"resource": state.resource, "resourceType": "loopml", "parameters": parameters},
        )
        # The task gets its own copy: what it changes in place stays out of the state's
        # input (a retry sees the input again, not the first attempt's leftovers).
        given = json.loads(parameters)
        last = history.add("TaskStarted", last, {"resource": state.resource})
        limit = state.timeout
        if state.timeout_path is not None:
            limit = positive(state.timeout_path.get(data), "TimeoutSecondsPath")
        deadline = time.monotonic() + limit if limit else None
        if run.deadline is not None and (deadline is None or run.deadline < deadline):
            deadline = run.deadline
        task_context = TaskContext(
            run.execution["Id"],
            state.name,
            context["State"]["RetryCount"],
            deadline,
            self.services,
            self.project,
        )
        try:
            call = self._resolve(state.resource)
            result = (
                call(given, task_context)
                if deadline is None
                else within(call, given, task_context, deadline, limit)
            )
            text = to_json(result)
        except StatesError as exc:
            kind = "TaskTimedOut" if exc.error == "States.Timeout" else "TaskFailed"
            history.add(
                kind, last, {"resource": state.resource, "error": exc.error, "cause": exc.cause}
            )
            if (
                exc.error == "States.Timeout"
                and run.deadline is not None
                and time.monotonic() >= run.deadline
            ):
                run.check(Scope())
            raise
        except (TypeError, ValueError) as exc:
            error = StatesError("States.TaskFailed", f"the task's result is not JSON: {exc}")
            history.add(
                "TaskFailed",
                last,
                {"resource": state.resource, "error": error.error, "cause": error.cause},
            )
            raise error from None
        last = history.add("TaskSucceeded", last, {"resource": state.resource, "output": text})
        return result, last

    def _resolve(self, resource: str) -> Callable[[Any, TaskContext], Any]:
        kind, _, name = resource.removeprefix("loopml:").partition(":")
        if kind == "deployment":
            if self.deployments is None:
                raise StatesError(
                    "loopml.NoDeployments",
                    f"{resource}: deployments are called "
                    "through a loopml server; this runner has none",
                )
            deployments = self.deployments
            return lambda data, context: guard(deployments, name, data, context)
        try:
            task = self.tasks.get(name)
        except NotFound as exc:
            raise StatesError("States.TaskFailed", exc.message) from None
        return lambda data, context: guard(task, data, context)

    def _parallel(
        self, run: RunContext, state: State, data: Any, last: int, scope: Scope
    ) -> tuple[Any, int]:
        history = run.history
        last = history.add("ParallelStateStarted", last)
        inner = Scope(scope)

        def branch(machine: Machine) -> tuple[Any, int]:
            return self._machine(run, machine, data, last, inner, None)

        try:
            outcomes = fan_out(branch, state.branches, len(state.branches), inner, run.threads)
        except (StatesError, Stopped) as exc:
            if isinstance(exc, StatesError):
                history.add("ParallelStateFailed", last, {"error": exc.error, "cause": exc.cause})
            raise
        last = history.add("ParallelStateSucceeded", max(step for _, step in outcomes))
        return [output for output, _ in outcomes], last

    def _map(
        self,
        run: RunContext,
        state: State,
        data: Any,
        last: int,
        scope: Scope,
        context: dict[str, Any],
    ) -> tuple[Any, int]:
        history = run.history
        path = state.items_path
        items = data if path is None else path.get(context if path.context else data)
        if not isinstance(items, list):
            raise StatesError(
                "States.Runtime",
                f"the Map state {state.name!r} needs an array "
                f"at its ItemsPath, not {to_json(items)[:80]}",
            )
        limit = state.max_concurrency
        if state.max_concurrency_path is not None:
            # 0, as for MaxConcurrency, means no limit.
            selected = state.max_concurrency_path.get(data)
            limit = int(positive(selected, "MaxConcurrencyPath", zero=True))
        last = history.add("MapStateStarted", last, {"length": len(items)})
        inner = Scope(scope)
        machine = state.iterator
        assert machine is not None

        def iteration(index: int) -> tuple[Any, int]:
            item = {"Index": index, "Value": items[index]}
            value = (
                state.item_selector(data, {**context, "Map": {"Item": item}})
                if state.item_selector is not None
                else items[index]
            )
            step = history.add("MapIterationStarted", last, {"name": state.name, "index": index})
            try:
                output, step = self._machine(run, machine, value, step, inner, item)
            except StatesError as exc:
                history.add("MapIterationFailed", step, {"name": state.name, "index": index})
                raise exc from None
            step = history.add("MapIterationSucceeded", step, {"name": state.name, "index": index})
            return output, step

        try:
            outcomes = fan_out(iteration, list(range(len(items))), limit, inner, run.threads)
        except StatesError as exc:
            history.add("MapStateFailed", last, {"error": exc.error, "cause": exc.cause})
            raise
        last = history.add("MapStateSucceeded", max([last, *(s for _, s in outcomes)]))
        return [output for output, _ in outcomes], last
