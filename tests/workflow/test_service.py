"""The workflow service of a server: executions run in the background and are recorded,
stopped, suspended when the server closes and resumed by the next one, taken over from a
server that died, and kept on the definition they started with."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loopml.core.errors import (
    AlreadyExists,
    Conflict,
    InvalidDefinition,
    InvalidInput,
    LoopmlError,
    NotFound,
    StorageError,
)
from loopml.core.schemas import WorkflowExecution
from loopml.store import execution_leases as leases
from loopml.store import projects
from loopml.store import workflows as store
from loopml.store.db import Database
from loopml.workflow import TaskRegistry
from loopml.workflow.service import WorkflowService
from tests.conftest import wait_for

FAST = {"heartbeat_interval": 0.05, "heartbeat_timeout": 1.0, "flush_seconds": 0.0}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file with project "shop", copied for each test (faster than
    migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "loopml.db"
    database = Database(f"sqlite:///{path}")
    database.upgrade()
    with database.session() as s:
        projects.create(s, "shop")
    database.dispose()
    return path


@pytest.fixture
def db(template: Path, tmp_path: Path) -> Iterator[Database]:
    path = tmp_path / "loopml.db"
    shutil.copy(template, path)
    database = Database(f"sqlite:///{path}")
    yield database
    database.dispose()


class Steps:
    """Tasks that count their calls; ``hold`` blocks until ``gate`` is set."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.gate = threading.Event()
        self.holding = threading.Event()
        self.registry = TaskRegistry()
        self.registry.add("add", self.add)
        self.registry.add("hold", self.hold)
        self.registry.add("fail", self.fail)

    def add(self, data: dict[str, Any]) -> int:
        self.calls.append("add")
        return int(data["n"]) + 1

    def hold(self, data: Any) -> Any:
        self.calls.append("hold")
        self.holding.set()
        assert self.gate.wait(20), "the test never opened the gate"
        return data

    def fail(self, data: Any) -> Any:
        self.calls.append("fail")
        raise ValueError(f"cannot handle {data['n']}")


@pytest.fixture
def steps() -> Steps:
    return Steps()


@pytest.fixture
def services(db: Database, steps: Steps) -> Iterator[list[WorkflowService]]:
    """Services made by :func:`open_service`; closed at the end (the gate opened first)."""
    made: list[WorkflowService] = []
    yield made
    steps.gate.set()
    for service in made:
        service.close(timeout=10)


def open_service(
    db: Database,
    services: list[WorkflowService],
    tasks: TaskRegistry,
    *,
    take_over: bool = True,
    **kwargs: Any,
) -> WorkflowService:
    service = WorkflowService(db, tasks=tasks, **{**FAST, **kwargs})
    services.append(service)
    service.open(take_over=take_over)
    return service


def task(resource: str, **more: Any) -> dict[str, Any]:
    return {"Type": "Task", "Resource": f"loopml:task:{resource}", **more}


# A: n+1 into $.a;  B: hold;  C: n+1 of $.a, with the execution's start time and input.
THREE = {
    "StartAt": "A",
    "States": {
        "A": task("add", ResultPath="$.a", Next="B"),
        "B": task("hold", Next="C"),
        "C": {
            "Type": "Task",
            "Resource": "loopml:task:add",
            "Parameters": {"n.$": "$.a"},
            "ResultSelector": {
                "c.$": "$",
                "started.$": "$$.Execution.StartTime",
                "input.$": "$$.Execution.Input",
            },
            "End": True,
        },
    },
}


def execution(db: Database, execution_id: str) -> WorkflowExecution:
    with db.session() as s:
        return store.get_execution(s, "shop", execution_id)


def history(db: Database, execution_id: str) -> list[dict[str, Any]]:
    with db.session() as s:
        return store.history(s, "shop", execution_id)


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def owner(db: Database, execution_id: str) -> str | None:
    with db.engine.connect() as conn:
        value = conn.exec_driver_sql(
            "SELECT owner FROM workflow_executions WHERE id = ?", (execution_id,)
        ).scalar()
    return None if value is None else str(value)


def ended(db: Database, execution_id: str, timeout: float = 20) -> WorkflowExecution:
    def check() -> WorkflowExecution | None:
        found = execution(db, execution_id)
        return found if found.status != "RUNNING" else None

    return wait_for(f"execution {execution_id} to end", check, timeout)  # type: ignore[no-any-return]


def assert_chained(events: list[dict[str, Any]]) -> None:
    """Ids count 1, 2, 3 … and each event follows one recorded before it."""
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    for e in events:
        assert 0 <= e["previousEventId"] < e["id"]


# --- running and recording -----------------------------------------------------------


def test_an_execution_runs_in_the_background_and_is_recorded_as_it_goes(
    db: Database, steps: Steps, services: list[WorkflowService]
) -> None:
    service = open_service(db, services, steps.registry)
    service.save("shop", "three", THREE)
    started = service.start("shop", "three", {"n": 1})
    assert (started.status, started.revision, started.workflow) == ("RUNNING", 1, "three")

    assert steps.holding.wait(10)
    # Events reach the database while the execution runs, not only at its end.
    so_far = wait_for(
        "B's TaskStarted", lambda: "TaskStarted" in types(history(db, started.id)[6:])
    )
    assert so_far
    assert execution(db, started.id).status == "RUNNING"
    assert not service.wait(started.id, timeout=0.05)

    steps.gate.set()
    assert service.wait(started.id, timeout=10)
    done = execution(db, started.id)
    assert done.status == "SUCCEEDED"
    assert done.output["c"] == 3
    assert done.output["input"] == {"n": 1}
    assert done.stopped_at is not None and done.error is None
    events = history(db, started.id)
    assert_chained(events)
    assert done.events == len(events)
    task_events = [
        "TaskStateEntered",
        "TaskScheduled",
        "TaskStarted",
        "TaskSucceeded",
        "TaskStateExited",
    ]
    assert types(events) == ["ExecutionStarted", *task_events * 3, "ExecutionSucceeded"]
    assert json.loads(events[-1]["executionSucceededEventDetails"]["output"]) == done.output
    assert steps.calls == ["add", "hold", "add"]
    assert owner(db, started.id) is None


def test_a_failing_task_fails_the_execution_with_its_error_and_cause(
    db: Database, steps: Steps, services: list[WorkflowService]
) -> None:
    service = open_service(db, services, steps.registry)
    service.save("shop", "boom", {"StartAt": "F", "States": {"F": task("fail", End=True)}})
    started = service.start("shop", "boom", {"n": 7})
    assert service.wait(started.id, timeout=10)
    done = execution(db, started.id)
    assert (done.status, done.error, done.cause) == ("FAILED", "ValueError", "cannot handle 7")
    assert done.output is None
    events = history(db, started.id)
    assert types(events)[-2:] == ["TaskFailed", "ExecutionFailed"]
    assert events[-1]["executionFailedEventDetails"] == {
        "error": "ValueError",
        "cause": "cannot handle 7",
    }


def test_start_refuses_what_cannot_run(
    db: Database, steps: Steps, services: list[WorkflowService]
) -> None:
    closed = WorkflowService(db, tasks=steps.registry, **FAST)
    closed.save("shop", "one", {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    with pytest.raises(LoopmlError, match="not running"):
        closed.start("shop", "one")  # never opened

    service = open_service(db, services, steps.registry)
    for bad in (float("nan"), {"when": object()}):
        with pytest.raises(InvalidInput, match="must be JSON") as refused:
            service.start("shop", "one", bad)
        assert refused.value.field == "input"
    with pytest.raises(NotFound):
        service.start("shop", "ghost", {})
    with db.session() as s:
        assert store.list_executions(s, "shop") == []
    service.close(timeout=5)
    with pytest.raises(LoopmlError, match="not running"):
        service.start("shop", "one")


def test_a_definition_is_saved_only_when_the_services_tasks_exist(
    db: Database, steps: Steps, services: list[WorkflowService]
) -> None:
    service = open_service(db, services, steps.registry)
    definition = {"StartAt": "S", "States": {"S": task("sharpen", End=True)}}
    with pytest.raises(InvalidDefinition) as refused:
        service.save("shop", "sharp", definition)
    assert [where for where, _ in refused.value.problems] == ["States.S.Resource"]
    assert "sharpen" in refused.value.message
    with db.session() as s, pytest.raises(NotFound):
        store.get(s, "shop", "sharp")

    steps.registry.add("sharpen", lambda data: data)
    workflow, created = service.save("shop", "sharp", definition)
    assert created and workflow.revision == 1
    assert service.validate(definition).resources == {"loopml:task:sharpen"}


def test_an_execution_keeps_the_revision_it_started_with(
    db: Database, steps: Steps, services: list[WorkflowService]
) -> None:
    service = open_service(db, services, steps.registry)

    def version(result: str) -> dict[str, Any]:
        states = {"H": task("hold", Next="R"), "R": {"Type": "Pass", "Result": result, "End": True}}
        return {"StartAt": "H", "States": states}

    service.save("shop", "flow", version("first"))
    old = service.start("shop", "flow", {})
    assert steps.holding.wait(10)
    replaced, created = service.save("shop", "flow", version("second"))
    assert not created and replaced.revision == 2
    new = service.start("shop", "flow", {})
    steps.gate.set()
    assert service.wait(old.id, 10) and service.wait(new.id, 10)
    assert (execution(db, old.id).output, execution(db, old.id).revision) == ("first", 1)
    assert (execution(db, new.id).output, execution(db, new.id).revision) == ("second", 2)


def test_a_named_execution_runs_once_and_refuses_another_input(
    db: Database, steps: Steps, services: list[WorkflowService]
) -> None:
    service = open_service(db, services, steps.registry)
    service.save("shop", "inc", {"StartAt": "A", "States": {"A": task("add", End=True)}})
    first = service.start("shop", "inc", {"n": 1}, name="order-1")
    again = service.start("shop", "inc", {"n": 1}, name="order-1")
    assert again.id == first.id and first.name == "order-1"
    assert service.wait(first.id, 10)
    with pytest.raises(AlreadyExists) as refused:
        service.start("shop", "inc", {"n": 2}, name="order-1")
    assert refused.value.field == "name"
    after = service.start("shop", "inc", {"n": 1}, name="order-1")  # ended: still the same
    assert (after.id, after.status, after.output) == (first.id, "SUCCEEDED", 2)
    assert steps.calls == ["add"]


def test_stop_aborts_a_waiting_execution(
    db: Database, steps: Steps, services: list[WorkflowService]
) -> None:
    service = open_service(db, services, steps.registry)
    service.save(
        "shop",
        "nap",
        {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 60, "End": True}}},
    )
    started = service.start("shop", "nap", {})
    wait_for("the Wait state", lambda: "WaitStateEntered" in types(history(db, started.id)))
    stopping = service.stop("shop", started.id)
    assert stopping.id == started.id
    assert service.wait(started.id, 5)
    done = execution(db, started.id)
    assert (done.status, done.error) == ("ABORTED", "States.Aborted")
    assert types(history(db, started.id))[-1] == "ExecutionAborted"
    with pytest.raises(Conflict, match="already ended"):
        service.stop("shop", started.id)


def test_a_stop_through_another_server_reaches_the_owner_by_its_heartbeat(
    db: Database, steps: Steps, services: list[WorkflowService]
) -> None:
    owner_ = open_service(db, services, steps.registry)
    other = open_service(db, services, steps.registry, take_over=False)
    owner_.save(
        "shop",
        "held",
        {"StartAt": "H", "States": {"H": task("hold", Next="A"), "A": task("add", End=True)}},
    )
    started = owner_.start("shop", "held", {"n": 1})
    assert steps.holding.wait(10)
    assert other.stop("shop", started.id).status == "RUNNING"  # it ends at its next state
    wait_for("the owner to hear of the stop", lambda: owner_._running[started.id][0].is_set())
    steps.gate.set()
    done = ended(db, started.id)
    assert (done.status, done.error) == ("ABORTED", "States.Aborted")
    assert steps.calls == ["hold"]  # A never ran


def test_a_workflow_is_not_deleted_while_an_execution_runs(
    db: Database, steps: Steps, services: list[WorkflowService]
) -> None:
    service = open_service(db, services, steps.registry)
    service.save("shop", "held", {"StartAt": "H", "States": {"H": task("hold", End=True)}})
    started = service.start("shop", "held", {})
    assert steps.holding.wait(10)
    with pytest.raises(Conflict, match="stop them first"), db.session() as s:
        store.remove(s, "shop", "held")
    steps.gate.set()
    assert service.wait(started.id, 10)
    with db.session() as s:
        store.remove(s, "shop", "held")
    with db.session() as s, pytest.raises(NotFound):
        store.get_execution(s, "shop", started.id)


# --- closing, resuming and taking over ------------------------------------------------


def test_close_suspends_at_the_next_state_and_the_next_server_resumes_there(
    db: Database, steps: Steps, services: list[WorkflowService]
) -> None:
    first = open_service(db, services, steps.registry)
    first.save("shop", "three", THREE)
    started = first.start("shop", "three", {"n": 1})
    assert steps.holding.wait(10)
    closing = threading.Thread(target=first.close, kwargs={"timeout": 10})
    closing.start()
    steps.gate.set()  # B finishes; C must not start on this server
    closing.join(15)
    assert not closing.is_alive()

    assert steps.calls == ["add", "hold"]
    suspended = execution(db, started.id)
    assert suspended.status == "RUNNING" and owner(db, started.id) is None
    before = history(db, started.id)
    assert types(before)[-1] == "TaskStateExited"
    assert before[-1]["stateExitedEventDetails"]["name"] == "B"

    # A server that does not take over leaves it alone ...
    bystander = open_service(db, services, steps.registry, take_over=False)
    assert bystander.wait(started.id, 0.3)  # nothing of its own to wait for
    assert owner(db, started.id) is None

    # ... the next one resumes it at C.
    second = open_service(db, services, steps.registry)
    done = ended(db, started.id)
    assert done.status == "SUCCEEDED"
    assert steps.calls == ["add", "hold", "add"]  # A and B were not run again
    assert done.output["c"] == 3
    assert done.output["input"] == {"n": 1}  # $$.Execution.Input survives the restart
    # $$.Execution.StartTime is when it first started, not when it was resumed.
    assert done.output["started"] == done.started_at.isoformat(timespec="milliseconds")
    events = history(db, started.id)
    assert_chained(events)
    assert events[: len(before)] == before
    resumed = events[len(before)]
    assert resumed["type"] == "ExecutionResumed"
    assert resumed["previousEventId"] == before[-1]["id"]
    assert resumed["executionResumedEventDetails"] == {"state": "C"}
    assert types(events)[len(before) + 1 :] == [
        "TaskStateEntered",
        "TaskScheduled",
        "TaskStarted",
        "TaskSucceeded",
        "TaskStateExited",
        "ExecutionSucceeded",
    ]
    assert done.events == len(events)
    assert second.owner != first.owner


def test_an_execution_queued_when_the_server_closed_starts_over_once(
    db: Database, steps: Steps, services: list[WorkflowService]
) -> None:
    first = open_service(db, services, steps.registry, threads=1)
    first.save(
        "shop",
        "held",
        {"StartAt": "H", "States": {"H": task("hold", Next="A"), "A": task("add", End=True)}},
    )
    running = first.start("shop", "held", {"n": 1})
    queued = first.start("shop", "held", {"n": 10})
    assert steps.holding.wait(10)
    closing = threading.Thread(target=first.close, kwargs={"timeout": 10})
    closing.start()
    steps.gate.set()
    closing.join(15)
    assert steps.calls == ["hold"]

    open_service(db, services, steps.registry)
    assert ended(db, running.id).output == 2
    assert ended(db, queued.id).output == 11
    events = history(db, queued.id)
    assert_chained(events)
    # The queued one got as far as its start (recorded, with its first checkpoint) before
    # the server stopped it: the next server resumes it from there, once.
    assert types(events).count("ExecutionStarted") == 1
    assert types(events).count("ExecutionResumed") == 1
    assert types(history(db, running.id)).count("ExecutionResumed") == 1


def test_an_execution_stopped_while_nobody_ran_it_ends_aborted_on_takeover(
    db: Database, steps: Steps, services: list[WorkflowService]
) -> None:
    first = open_service(db, services, steps.registry)
    first.save("shop", "three", THREE)
    started = first.start("shop", "three", {"n": 1})
    assert steps.holding.wait(10)
    closing = threading.Thread(target=first.close, kwargs={"timeout": 10})
    closing.start()
    steps.gate.set()
    closing.join(15)
    with db.session() as s:
        store.request_abort(s, "shop", started.id)

    open_service(db, services, steps.registry)
    done = ended(db, started.id)
    assert (done.status, done.error) == ("ABORTED", "States.Aborted")
    assert steps.calls == ["add", "hold"]


def test_stopping_an_execution_no_server_runs_ends_it_at_once(
    db: Database, steps: Steps, services: list[WorkflowService]
) -> None:
    first = open_service(db, services, steps.registry)
    first.save("shop", "three", THREE)
    started = first.start("shop", "three", {"n": 1})
    assert steps.holding.wait(10)
    closing = threading.Thread(target=first.close, kwargs={"timeout": 10})
    closing.start()
    steps.gate.set()
    closing.join(15)
    assert owner(db, started.id) is None

    # A service that does not take executions over (the CLI's) still stops it for good.
    cli = open_service(db, services, steps.registry, take_over=False)
    stopped = cli.stop("shop", started.id)
    assert (stopped.status, stopped.error) == ("ABORTED", "States.Aborted")
    assert execution(db, started.id).status == "ABORTED"
    open_service(db, services, steps.registry)  # nothing left to take over
    assert steps.calls == ["add", "hold"]
    with pytest.raises(Conflict):
        cli.stop("shop", started.id)


def test_a_resumed_execution_whose_task_is_gone_fails_naming_why(
    db: Database, steps: Steps, services: list[WorkflowService]
) -> None:
    first = open_service(db, services, steps.registry)
    first.save("shop", "three", THREE)
    started = first.start("shop", "three", {"n": 1})
    assert steps.holding.wait(10)
    closing = threading.Thread(target=first.close, kwargs={"timeout": 10})
    closing.start()
    steps.gate.set()
    closing.join(15)

    without_add = TaskRegistry()
    without_add.add("hold", steps.hold)
    open_service(db, services, without_add)
    done = ended(db, started.id)
    assert (done.status, done.error) == ("FAILED", "loopml.ResumeFailed")
    assert "no longer compiles" in (done.cause or "") and "add" in (done.cause or "")


CRASHING = textwrap.dedent(
    """
    import sys, time
    from loopml.store.db import Database
    from loopml.workflow import TaskRegistry
    from loopml.workflow.service import WorkflowService

    url, definition, calls = sys.argv[1], sys.argv[2], sys.argv[3]
    tasks = TaskRegistry()

    @tasks.task("add")
    def add(data):
        with open(calls, "a") as f:
            f.write("add\\n")
        return data["n"] + 1

    @tasks.task("hold")
    def hold(data):
        with open(calls, "a") as f:
            f.write("hold\\n")
        time.sleep(120)  # killed long before

    service = WorkflowService(Database(url), tasks=tasks, heartbeat_interval=0.05,
                              flush_seconds=0)
    service.open()
    import json
    service.save("shop", "three", json.loads(definition))
    print(service.start("shop", "three", {"n": 1}).id, flush=True)
    time.sleep(120)
    """
)


def test_a_dead_servers_execution_is_taken_over_after_the_heartbeat_timeout(
    db: Database, steps: Steps, services: list[WorkflowService], tmp_path: Path
) -> None:
    script, calls = tmp_path / "crashing.py", tmp_path / "calls.txt"
    script.write_text(CRASHING)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(db.engine.url), json.dumps(THREE), str(calls)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        execution_id = proc.stdout.readline().strip()
        assert execution_id, proc.stderr.read() if proc.stderr else ""
        wait_for(
            "the dead server to be in B", lambda: calls.exists() and "hold" in calls.read_text()
        )
        wait_for("B's TaskStarted", lambda: types(history(db, execution_id))[-1] == "TaskStarted")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    dead = owner(db, execution_id)
    assert dead is not None and dead.startswith("server:")
    before = history(db, execution_id)

    steps.gate.set()  # here, B is quick
    survivor = open_service(db, services, steps.registry, heartbeat_timeout=1.0)
    # Not at once: the dead server's last heartbeat is still recent ...
    assert owner(db, execution_id) == dead
    # ... but within the timeout and a heartbeat or two.
    done = ended(db, execution_id, timeout=10)
    assert owner(db, execution_id) is None
    assert done.status == "SUCCEEDED" and done.output["c"] == 3
    assert calls.read_text().split() == ["add", "hold"]  # the dead server's work
    assert steps.calls == ["hold", "add"]  # B again (it never finished), then C
    events = history(db, execution_id)
    assert_chained(events)
    # B's unfinished events are replaced by the resumed run from the checkpoint after A.
    exited_a = next(e for e in before if e["type"] == "TaskStateExited")
    assert events[: exited_a["id"]] == before[: exited_a["id"]]
    resumed = events[exited_a["id"]]
    assert resumed["type"] == "ExecutionResumed"
    assert resumed["executionResumedEventDetails"] == {"state": "B"}
    assert types(events).count("TaskStarted") == 3
    assert survivor.owner != dead


# --- what a server does when the database or its ownership fails it ----------------------


def test_the_events_of_a_long_state_are_written_while_it_runs(
    db: Database, steps: Steps, services: list[WorkflowService]
) -> None:
    service = open_service(db, services, steps.registry, flush_seconds=0.2)
    service.save(
        "shop",
        "nap",
        {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 60, "End": True}}},
    )
    started = service.start("shop", "nap", {})
    # Nothing else happens for a minute: the buffered events must not wait for it.
    seen = wait_for(
        "WaitStateEntered in the database",
        lambda: "WaitStateEntered" in types(history(db, started.id)),
        timeout=3,
    )
    assert seen
    service.stop("shop", started.id)
    assert ended(db, started.id).status == "ABORTED"


class Outage:
    """Makes the store fail like a database that is down while ``on`` is set."""

    def __init__(
        self, monkeypatch: pytest.MonkeyPatch, *, finish_too: bool, once: bool = False
    ) -> None:
        self.on = threading.Event()
        self.on.set()
        record, finish = store.record, store.finish

        def failing_record(*args: Any, **kwargs: Any) -> None:
            if self.on.is_set() and kwargs.get("checkpoint") is not None:
                if once:
                    self.on.clear()
                raise StorageError("metadata database error: connection refused")
            record(*args, **kwargs)

        def failing_finish(*args: Any, **kwargs: Any) -> None:
            if finish_too and self.on.is_set():
                raise StorageError("metadata database error: connection refused")
            finish(*args, **kwargs)

        monkeypatch.setattr(store, "record", failing_record)
        monkeypatch.setattr(store, "finish", failing_finish)


def test_an_execution_whose_events_cannot_be_written_fails_instead_of_hanging(
    db: Database, steps: Steps, services: list[WorkflowService], monkeypatch: pytest.MonkeyPatch
) -> None:
    steps.gate.set()
    service = open_service(db, services, steps.registry)
    service.save("shop", "three", THREE)
    Outage(monkeypatch, finish_too=False)
    started = service.start("shop", "three", {"n": 1})
    done = ended(db, started.id, timeout=10)
    assert (done.status, done.error) == ("FAILED", "loopml.ExecutionError")
    assert "connection refused" in (done.cause or "")
    assert owner(db, started.id) is None


def test_a_checkpoint_that_fails_once_is_tried_again(
    db: Database, steps: Steps, services: list[WorkflowService], monkeypatch: pytest.MonkeyPatch
) -> None:
    steps.gate.set()
    service = open_service(db, services, steps.registry)
    service.save("shop", "three", THREE)
    Outage(monkeypatch, finish_too=False, once=True)
    started = service.start("shop", "three", {"n": 1})
    done = ended(db, started.id, timeout=10)
    assert done.status == "SUCCEEDED" and done.output["c"] == 3
    assert steps.calls == ["add", "hold", "add"]  # nothing ran twice
    assert_chained(history(db, started.id))


def test_an_execution_left_behind_in_an_outage_is_resumed_after_it(
    db: Database, steps: Steps, services: list[WorkflowService], monkeypatch: pytest.MonkeyPatch
) -> None:
    steps.gate.set()
    service = open_service(db, services, steps.registry, heartbeat_timeout=0.5)
    service.save("shop", "three", THREE)
    outage = Outage(monkeypatch, finish_too=True)
    started = service.start("shop", "three", {"n": 1})
    assert service.wait(started.id, 5)  # its thread gave up: nothing could be written
    assert execution(db, started.id).status == "RUNNING"
    outage.on.clear()
    # No thread runs it, so its heartbeat goes stale and it is taken over (here, by the
    # same server) instead of staying RUNNING forever.
    done = ended(db, started.id, timeout=5)
    assert done.status == "SUCCEEDED" and done.output["c"] == 3
    # Its first checkpoint could not be written, so A never ran before the outage ended.
    assert steps.calls == ["add", "hold", "add"]
    events = history(db, started.id)
    assert_chained(events)
    assert types(events).count("ExecutionStarted") == 1


def test_a_server_that_lost_an_execution_to_another_never_writes_to_it(
    db: Database, steps: Steps, services: list[WorkflowService], monkeypatch: pytest.MonkeyPatch
) -> None:
    silent = open_service(db, services, steps.registry, heartbeat_timeout=0.3)
    beat = leases.beat

    def deaf(session: Any, who: str, *args: Any) -> list[str]:
        if who == silent.owner:  # its database connection broke: no heartbeats, no news
            raise StorageError("metadata database error: connection reset")
        return beat(session, who, *args)

    monkeypatch.setattr(leases, "beat", deaf)
    silent.save("shop", "three", THREE)
    started = silent.start("shop", "three", {"n": 1})
    assert steps.holding.wait(10)
    with db.session() as s:
        store.request_abort(s, "shop", started.id)  # a stop it never hears of

    open_service(db, services, steps.registry, heartbeat_timeout=0.3)
    done = ended(db, started.id, timeout=5)
    assert (done.status, done.error) == ("ABORTED", "States.Aborted")
    before = history(db, started.id)

    steps.gate.set()  # the silent server's task returns: it must not carry on
    assert silent.wait(started.id, 5)
    after = execution(db, started.id)
    assert (after.status, after.output) == ("ABORTED", None)
    assert history(db, started.id) == before
    assert steps.calls == ["add", "hold"]  # C never ran


def test_racing_starts_of_one_name_start_one_execution(
    db: Database, steps: Steps, services: list[WorkflowService]
) -> None:
    steps.gate.set()
    service = open_service(db, services, steps.registry)
    service.save("shop", "three", THREE)
    barrier = threading.Barrier(8)
    found: list[str] = []
    errors: list[BaseException] = []

    def start() -> None:
        barrier.wait()
        try:
            found.append(service.start("shop", "three", {"n": 1}, name="once").id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    assert len(found) == 8 and len(set(found)) == 1
    assert ended(db, found[0]).status == "SUCCEEDED"
    with db.session() as s:
        assert len(store.list_executions(s, "shop", "three")) == 1
    assert steps.calls.count("hold") == 1
