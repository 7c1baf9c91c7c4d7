"""A server's workflow executions: run on a thread pool, recorded, stopped and resumed.

Every event is written to the metadata database; after each top-level state the
execution's checkpoint moves on. A server that stops cleanly hands its executions back;
one that dies stops beating. Either way another server (or the same one restarted)
takes them over and resumes each from its last completed state.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime, timezone
from typing import Any

from loopml.core.errors import InvalidDefinition, InvalidInput, LoopmlError
from loopml.core.ids import new_id
from loopml.core.schemas import Workflow, WorkflowExecution
from loopml.store import execution_leases as leases
from loopml.store import workflows as store
from loopml.store.db import Database
from loopml.workflow.definition import compile_definition
from loopml.workflow.execution import Resume
from loopml.workflow.interpreter import DeploymentCall, Runner
from loopml.workflow.recorder import Recorder
from loopml.workflow.states import Machine
from loopml.workflow.tasks import DEFAULT_TASKS, TaskRegistry
from loopml.workflow.triggers import TriggerPoller

TYPES = ("STANDARD", "EXPRESS")
log = logging.getLogger("loopml.workflow")

ProjectDeploymentCall = Any  # (project, name, input, context) -> result


class WorkflowService:
    """Runs workflow executions for one server.

    Parameters
    ----------
    db : Database
    tasks : TaskRegistry, optional
        What ``loopml:task:<name>`` may run; the default registry when omitted.
    deployments : callable, optional
        ``(project, name, input, context) -> result`` for ``loopml:deployment:<name>``.
    services : object, optional
        Passed to tasks as ``context.services``.
    threads : int
        Executions that run at once; more wait their turn.
    heartbeat_interval, heartbeat_timeout : float
        How often this server proves its executions alive, and how long a silent
        owner's executions wait before another server takes them over.
    flush_seconds : float
        Longest time an event waits in memory before it is written (checkpoints and
        ends are written at once).
    """

    def __init__(
        self,
        db: Database,
        *,
        tasks: TaskRegistry | None = None,
        deployments: ProjectDeploymentCall | None = None,
        services: Any = None,
        threads: int = 8,
        heartbeat_interval: float = 5.0,
        heartbeat_timeout: float = 30.0,
        flush_seconds: float = 0.5,
    ) -> None:
        self.db = db
        self.tasks = tasks if tasks is not None else DEFAULT_TASKS
        self.deployments = deployments
        self.services = services
        self.threads = threads
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_timeout = heartbeat_timeout
        self.flush_seconds = flush_seconds
        self.owner = f"server:{new_id()}"
        self._pool: ThreadPoolExecutor | None = None
        self._running: dict[str, tuple[threading.Event, threading.Event, Future[None]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beater: threading.Thread | None = None
        self._flusher: threading.Thread | None = None
        self._triggering: threading.Thread | None = None
        self._recorders: dict[str, Recorder] = {}
        self._adopt = True
        self.triggers = TriggerPoller(db, self.start)

    def open(self, *, take_over: bool = True) -> None:
        """Start the pool and the heartbeat; with ``take_over``, also resume executions
        whose owner stopped (now, and whenever one goes silent)."""
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="loopml-execution")
        self._adopt = take_over
        self._beater = threading.Thread(
            target=self._beat_loop, name="loopml-workflow-beat", daemon=True
        )
        self._flusher = threading.Thread(
            target=self._flush_loop, name="loopml-workflow-flush", daemon=True
        )
        # Only a real server fires triggers, not the CLI's passing in-process one.
        self._triggering = threading.Thread(
            target=self._trigger_loop, name="loopml-workflow-triggers", daemon=True
        )
        if take_over:
            self._take_over()
            self._triggering.start()
        self._beater.start()
        self._flusher.start()

    def close(self, timeout: float = 30.0) -> None:
        """Stop each running execution at its next state and hand it back for resuming."""
        self._stop.set()
        with self._lock:
            running = list(self._running.values())
        for _, suspend, _ in running:
            suspend.set()
        end = time.monotonic() + timeout
        for _, _, future in running:
            # The run records its own failure, if any; here it only has to have stopped.
            with contextlib.suppress(Exception):
                future.result(timeout=max(end - time.monotonic(), 0.0))
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        for thread in (self._beater, self._flusher, self._triggering):
            if thread is not None and thread.is_alive():
                thread.join(timeout=self.heartbeat_interval + 1)
        with self.db.session() as session:
            leases.release(session, self.owner)

    def validate(self, definition: Any) -> Machine:
        """Compile a definition against this server's tasks; :class:`InvalidDefinition`
        lists every problem."""
        return compile_definition(definition, known_task=self.tasks.__contains__)

    def save(
        self, project: str, name: str, definition: Any, type: str = "STANDARD"
    ) -> tuple[Workflow, bool]:
        if type not in TYPES:
            raise InvalidInput(f"a workflow's type is {' or '.join(TYPES)}", field="type")
        machine = self.validate(definition)
        with self.db.session() as session:
            return store.save(session, project, name, machine.definition, type)

    def start(
        self,
        project: str,
        workflow: str,
        data: Any = None,
        *,
        name: str | None = None,
        trigger: str = "manual",
        started_by: str = "",
    ) -> WorkflowExecution:
        """Start an execution; it runs in the background (see :meth:`wait`)."""
        _check_json(data)
        if self._pool is None or self._stop.is_set():
            raise LoopmlError("the workflow service is not running")
        with self.db.session() as session:
            definition = store.get(session, project, workflow).definition
        machine = self.validate(definition)
        with self.db.session() as session:
            execution, new = store.start(
                session, project, workflow, data, name=name, trigger=trigger,
                started_by=started_by, owner=self.owner,
            )  # fmt: skip
        if new:
            self._launch(execution.id, project, machine, data, execution.name, None,
                         express=execution.type == "EXPRESS")  # fmt: skip
        return execution

    def stop(self, project: str, execution_id: str) -> WorkflowExecution:
        """Ask an execution to stop; it ends ``ABORTED`` at its next state (at once when no
        server runs it)."""
        with self._lock:
            running = self._running.get(execution_id)
        with self.db.session() as session:
            execution = store.request_abort(session, project, execution_id)
            if running is None and store.resume_point(session, execution_id)["owner"] is None:
                # Handed back (a server stopped, or the CLI's own ended): nobody would
                # hear the request until a server takes it over, maybe never.
                store.finish(
                    session, execution_id, "ABORTED", error="States.Aborted",
                    cause="the execution was stopped while no server ran it",
                )  # fmt: skip
                return store.get_execution(session, project, execution_id)
        if running is not None:
            running[0].set()
        return execution

    def wait(self, execution_id: str, timeout: float | None = None) -> bool:
        """Block until a local execution ends; False if it is still running at ``timeout``."""
        with self._lock:
            running = self._running.get(execution_id)
        if running is None:
            return True
        try:
            running[2].result(timeout=timeout)
        except FutureTimeout:  # not the builtin TimeoutError before Python 3.11
            return False
        return True

    def _launch(
        self,
        execution_id: str,
        project: str,
        machine: Machine,
        data: Any,
        name: str,
        resume: Resume | None,
        *,
        express: bool = False,
    ) -> None:
        assert self._pool is not None
        abort, suspend = threading.Event(), threading.Event()
        with self._lock:
            future: Future[None] = self._pool.submit(
                self._execute, execution_id, project, machine, data, name, resume, abort,
                suspend, express,
            )  # fmt: skip
            self._running[execution_id] = (abort, suspend, future)
        future.add_done_callback(lambda _: self._forget(execution_id))

    def _forget(self, execution_id: str) -> None:
        with self._lock:
            self._running.pop(execution_id, None)

    def _execute(
        self,
        execution_id: str,
        project: str,
        machine: Machine,
        data: Any,
        name: str,
        resume: Resume | None,
        abort: threading.Event,
        suspend: threading.Event,
        express: bool = False,
    ) -> None:
        recorder = Recorder(self.db, execution_id, self.flush_seconds, self.owner, express)
        deployments: DeploymentCall | None = None
        if self.deployments is not None:
            call = self.deployments
            deployments = lambda deployment, value, context: call(  # noqa: E731
                project, deployment, value, context
            )
        runner = Runner(self.tasks, deployments, self.services, project)
        with self._lock:
            self._recorders[execution_id] = recorder
        try:
            result = runner.run(
                machine, data, execution_id=execution_id, name=name, sink=recorder.add,
                abort=abort, suspend=suspend, checkpoint=recorder.checkpoint, resume=resume,
            )  # fmt: skip
            recorder.end(result)
        except Exception as exc:
            log.exception("workflow execution %s could not be recorded", execution_id)
            # Not left RUNNING forever: it ends FAILED if this server still owns it (if
            # the database is down, its heartbeat stops and another server resumes it).
            with contextlib.suppress(Exception):
                self._end(
                    execution_id, "FAILED", "loopml.ExecutionError",
                    f"the server could not run or record it: {type(exc).__name__}: {exc}",
                )  # fmt: skip
        finally:
            with self._lock:
                self._recorders.pop(execution_id, None)

    def _beat_loop(self) -> None:
        while not self._stop.wait(self.heartbeat_interval):
            try:
                with self._lock:
                    mine = list(self._running)
                with self.db.session() as session:
                    aborted = leases.beat(session, self.owner, mine)
                with self._lock:
                    for execution_id in aborted:
                        if execution_id in self._running:
                            self._running[execution_id][0].set()
                if self._adopt:
                    self._take_over()
            except Exception:
                log.exception("workflow heartbeat failed; retrying")

    def _trigger_loop(self) -> None:
        # Its own thread: listing a big bucket must never delay the heartbeats, or another
        # server would take running executions over and run their tasks twice.
        while not self._stop.wait(min(self.heartbeat_interval, 5.0)):
            try:
                self.triggers.tick()
            except Exception:
                log.exception("workflow triggers failed; retrying")

    def _flush_loop(self) -> None:
        # Events of a long state (a Wait, a slow task) are written while it runs.
        while not self._stop.wait(max(self.flush_seconds, 0.05)):
            with self._lock:
                recorders = list(self._recorders.values())
            for recorder in recorders:
                try:
                    recorder.flush(due=True)
                except Exception:
                    log.exception("workflow events could not be written; retrying")

    def _take_over(self) -> None:
        with self.db.session() as session:
            claimed = leases.take_over(session, self.owner, self.heartbeat_timeout)
        with self._lock:
            # Its own execution, silent for a while (a database outage), still runs here.
            claimed = [c for c in claimed if c not in self._running]
        for execution_id in claimed:
            try:
                self._resume(execution_id)
            except Exception:
                log.exception("could not resume workflow execution %s", execution_id)

    def _resume(self, execution_id: str) -> None:
        with self.db.session() as session:
            point = store.resume_point(session, execution_id)
            project = store.project_of(session, execution_id)
            store.drop_events_after(
                session, execution_id, point["last_event"] if point["state"] else 0
            )
        if point["abort"]:
            self._end(execution_id, "ABORTED", "States.Aborted", "stopped while unowned")
            return
        try:
            machine = self.validate(point["definition"])
        except InvalidDefinition as exc:
            self._end(
                execution_id,
                "FAILED",
                "loopml.ResumeFailed",
                f"the definition no longer compiles on this server: {exc}",
            )
            return
        resume = None
        if point["state"]:
            started: datetime = point["started_at"]
            resume = Resume(
                point["state"], point["state_input"], point["last_event"], point["input"],
                started.isoformat(timespec="milliseconds"),
                (datetime.now(timezone.utc) - started).total_seconds(),
            )  # fmt: skip
        log.info(
            "resuming workflow execution %s at %s", execution_id, point["state"] or "the start"
        )
        self._launch(execution_id, project, machine, point["input"], point["name"], resume,
                     express=point["type"] == "EXPRESS")  # fmt: skip

    def _end(self, execution_id: str, status: str, error: str, cause: str) -> None:
        with self.db.session() as session:
            store.finish(session, execution_id, status, error=error, cause=cause, owner=self.owner)


def _check_json(data: Any) -> None:
    try:
        json.dumps(data, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"the execution input must be JSON: {exc}", field="input") from None
