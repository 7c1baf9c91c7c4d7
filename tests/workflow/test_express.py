"""EXPRESS workflows: the same answers and history as STANDARD ones, with their
checkpoints written alongside the events instead of one transaction per Task."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from loopml.core.errors import InvalidInput
from loopml.store import projects
from loopml.store import workflows as store
from loopml.store.db import Database
from loopml.workflow import TaskRegistry
from loopml.workflow.recorder import Recorder
from loopml.workflow.service import WorkflowService

TASKS = 30


class Counting(Database):
    """A database that counts its transactions."""

    opened = 0

    @contextmanager
    def session(self) -> Iterator[Session]:
        self.opened += 1
        with super().session() as s:
            yield s


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Counting]:
    database = Counting(f"sqlite:///{tmp_path / 'loopml.db'}")
    database.upgrade()
    with database.session() as s:
        projects.create(s, "shop")
    yield database
    database.dispose()


def chain() -> dict[str, Any]:
    states: dict[str, Any] = {}
    for i in range(TASKS):
        states[f"T{i}"] = {"Type": "Task", "Resource": "loopml:task:inc"}
        states[f"T{i}"]["End" if i == TASKS - 1 else "Next"] = (
            True if i == TASKS - 1 else f"T{i + 1}"
        )
    return {"StartAt": "T0", "States": states}


def run(db: Counting, kind: str) -> tuple[Any, list[Any], int]:
    tasks = TaskRegistry()
    tasks.add("inc", lambda n: n + 1)
    service = WorkflowService(db, tasks=tasks, heartbeat_interval=60, flush_seconds=30)
    service.open(take_over=False)
    try:
        service.save("shop", kind.lower(), chain(), kind)
        before = db.opened
        execution = service.start("shop", kind.lower(), 0)
        assert service.wait(execution.id, timeout=30)
        used = db.opened - before
    finally:
        service.close(timeout=10)
    with db.session() as s:
        done = store.get_execution(s, "shop", execution.id)
        history = store.history(s, "shop", execution.id)
    return done, history, used


def test_an_express_run_answers_and_records_as_a_standard_one_in_fewer_writes(
    db: Counting,
) -> None:
    standard, standard_history, standard_writes = run(db, "STANDARD")
    express, express_history, express_writes = run(db, "EXPRESS")
    assert (standard.status, standard.output) == (express.status, express.output) == (
        "SUCCEEDED", TASKS,
    )  # fmt: skip
    assert (standard.type, express.type) == ("STANDARD", "EXPRESS")
    assert [e["type"] for e in express_history] == [e["type"] for e in standard_history]
    # A standard run writes a checkpoint after each Task; an express one does not.
    assert standard_writes >= TASKS
    assert express_writes < standard_writes - TASKS + 5


def test_a_recorder_writes_express_checkpoints_only_with_the_events(db: Counting) -> None:
    before = db.opened
    recorder = Recorder(db, "nothing", flush_seconds=60, owner="me", express=True)
    recorder.checkpoint("T1", {"n": 1}, 3, durable=True)
    assert db.opened == before  # waits for the next write, as after a Pass
    standard = Recorder(db, "nothing", flush_seconds=60, owner="me")
    with pytest.raises(Exception):  # noqa: B017  (the execution does not exist: it tried)
        standard.checkpoint("T1", {"n": 1}, 3, durable=True)
    assert db.opened > before


def test_the_type_is_kept_changed_and_checked(db: Counting) -> None:
    service = WorkflowService(db, tasks=TaskRegistry())
    saved, created = service.save("shop", "flow", {"StartAt": "P", "States": {
        "P": {"Type": "Pass", "End": True}}}, "EXPRESS")  # fmt: skip
    assert created and (saved.type, saved.revision) == ("EXPRESS", 1)
    again, _ = service.save("shop", "flow", saved.definition, "STANDARD")
    assert (again.type, again.revision) == ("STANDARD", 2)
    with pytest.raises(InvalidInput) as err:
        service.save("shop", "flow", saved.definition, "FAST")
    assert err.value.field == "type"
