"""Workflows, executions and event histories in the metadata database: revisions, named
executions, checkpoints, heartbeats and takeover, on SQLite and PostgreSQL; and the
migration that adds their tables."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from loopml.core.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from loopml.store import execution_leases as leases
from loopml.store import projects
from loopml.store import workflows as store
from loopml.store.db import Database
from loopml.store.migrate import _config, current_revision
from loopml.store.models import WorkflowExecutionRow, utcnow

ONE = {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}
TWO = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": 2, "End": True}}}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """One migrated database per module and backend (migrating per test is slow); tests
    that scan every execution (takeover) use a fresh ``db`` instead."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('workflows') / 'loopml.db'}"
        with _migrated(url) as database:
            yield database
        return
    import psycopg

    server = str(request.getfixturevalue("postgres_server_url"))
    schema = f"loopml_test_{uuid.uuid4().hex[:12]}"
    conninfo = server.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in server else "?"
    try:
        with _migrated(f"{server}{sep}options=-csearch_path%3D{schema}") as database:
            yield database
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@contextmanager
def _migrated(url: str) -> Iterator[Database]:
    database = Database(url)
    database.upgrade()
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def shop(database: Database) -> Database:
    """Projects "shop" (workflow "flow" saved) and "other", new for each test."""
    with database.session() as s:
        for name in ("shop", "other"):
            with contextlib.suppress(NotFound):
                projects.delete(s, name)
    with database.session() as s:
        projects.create(s, "shop")
        projects.create(s, "other")
        store.save(s, "shop", "flow", ONE)
    return database


@pytest.fixture
def fresh(db: Database) -> Database:
    """Like ``shop``, on an empty database of its own."""
    with db.session() as s:
        projects.create(s, "shop")
        projects.create(s, "other")
        store.save(s, "shop", "flow", ONE)
    return db


def start(db: Database, data: Any = None, *, owner: str = "server:a", **kwargs: Any) -> str:
    with db.session() as s:
        execution, new = store.start(s, "shop", "flow", data, owner=owner, **kwargs)
    assert new
    return execution.id


def event(number: int, kind: str = "PassStateEntered") -> dict[str, Any]:
    return {"id": number, "previousEventId": number - 1, "type": kind}


def row(db: Database, execution_id: str) -> dict[str, Any]:
    with db.engine.connect() as conn:
        found = conn.execute(
            sa.text("SELECT * FROM workflow_executions WHERE id = :id"), {"id": execution_id}
        ).mappings()
        return dict(found.one())


# --- workflows -------------------------------------------------------------------------


def test_save_creates_then_replaces_counting_revisions(shop: Database) -> None:
    with shop.session() as s:
        first = store.get(s, "shop", "flow")
    assert (first.revision, first.definition, first.project) == (1, ONE, "shop")

    with shop.session() as s:
        same, created = store.save(s, "shop", "flow", ONE)
    assert not created
    assert same.revision == 1 and same.updated_at == first.updated_at  # nothing changed

    with shop.session() as s:
        replaced, created = store.save(s, "shop", "flow", TWO)
    assert not created
    assert (replaced.id, replaced.revision, replaced.definition) == (first.id, 2, TWO)
    assert replaced.created_at == first.created_at
    assert replaced.updated_at > first.updated_at
    with shop.session() as s:
        assert store.get(s, "shop", "flow").revision == 2


def test_workflows_are_listed_by_name_within_their_project(shop: Database) -> None:
    with shop.session() as s:
        _, created = store.save(s, "shop", "alpha", ONE)
        store.save(s, "other", "flow", TWO)  # the same name in another project
    assert created
    with shop.session() as s:
        assert [w.name for w in store.list_all(s, "shop")] == ["alpha", "flow"]
        assert [w.definition for w in store.list_all(s, "other")] == [TWO]
        assert store.get(s, "shop", "flow").definition == ONE


def test_bad_names_and_missing_workflows_are_refused(shop: Database) -> None:
    with pytest.raises(InvalidInput) as bad, shop.session() as s:
        store.save(s, "shop", "Not_A_Name", ONE)
    assert bad.value.field == "name"
    missing_workflow = pytest.raises(NotFound, match="'ghost' does not exist in project 'shop'")
    with missing_workflow, shop.session() as s:
        store.get(s, "shop", "ghost")
    with pytest.raises(NotFound) as missing, shop.session() as s:
        store.start(s, "other", "flow-x", None, owner="server:a")
    assert missing.value.field == "name"


def test_delete_is_refused_while_an_execution_runs_then_removes_its_history(
    shop: Database,
) -> None:
    execution = start(shop, {"x": 1})
    with shop.session() as s:
        store.record(s, execution, [event(1, "ExecutionStarted")])
    with pytest.raises(Conflict, match="1 running execution") as refused, shop.session() as s:
        store.remove(s, "shop", "flow")
    assert refused.value.field == "name"
    with shop.session() as s:
        assert store.get(s, "shop", "flow").name == "flow"  # still there

    with shop.session() as s:
        store.finish(s, execution, "SUCCEEDED", output={"x": 1})
        store.remove(s, "shop", "flow")
    with shop.session() as s:
        assert store.list_all(s, "shop") == []
    with shop.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM workflow_executions")).scalar() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM workflow_events")).scalar() == 0


def test_deleting_a_project_deletes_its_workflows_and_executions(shop: Database) -> None:
    start(shop)
    with shop.session() as s:
        projects.delete(s, "shop")
    with shop.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM workflows")).scalar() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM workflow_executions")).scalar() == 0


# --- executions ------------------------------------------------------------------------


def test_an_execution_keeps_the_definition_and_revision_it_started_with(
    shop: Database,
) -> None:
    execution = start(shop, {"n": 1}, trigger="schedule", started_by="ci")
    with shop.session() as s:
        store.save(s, "shop", "flow", TWO)
        found = store.get_execution(s, "shop", execution)
        point = store.resume_point(s, execution)
    assert (found.status, found.revision, found.input) == ("RUNNING", 1, {"n": 1})
    assert (found.trigger, found.started_by, found.workflow) == ("schedule", "ci", "flow")
    assert found.name == execution  # unnamed: the id
    assert point["definition"] == ONE
    assert row(shop, execution)["owner"] == "server:a"


def test_a_named_execution_starts_once_per_input(shop: Database) -> None:
    first = start(shop, {"order": 7}, name="order-7")
    with shop.session() as s:
        again, new = store.start(s, "shop", "flow", {"order": 7}, name="order-7", owner="b")
    assert not new and again.id == first
    with pytest.raises(AlreadyExists, match="another input") as other, shop.session() as s:
        store.start(s, "shop", "flow", {"order": 8}, name="order-7", owner="b")
    assert other.value.field == "name"
    with shop.session() as s:
        assert len(store.list_executions(s, "shop", "flow")) == 1
        # A name is unique per workflow, not per project.
        store.save(s, "shop", "second", ONE)
        _, new = store.start(s, "shop", "second", {"order": 8}, name="order-7", owner="b")
    assert new


@pytest.mark.parametrize("name", ["", "x" * 81])
def test_execution_names_have_one_to_eighty_characters(shop: Database, name: str) -> None:
    with pytest.raises(InvalidInput, match="1 to 80") as bad, shop.session() as s:
        store.start(s, "shop", "flow", None, name=name, owner="a")
    assert bad.value.field == "name"
    start(shop, name="x" * 80)


def test_history_is_oldest_first_and_pages_after_an_id(shop: Database) -> None:
    execution = start(shop)
    with shop.session() as s:
        store.record(s, execution, [event(3), event(1, "ExecutionStarted"), event(2)])
        store.record(s, execution, [event(4)], checkpoint=("B", {"b": 1}, 4))
    with shop.session() as s:
        assert [e["id"] for e in store.history(s, "shop", execution)] == [1, 2, 3, 4]
        assert [e["id"] for e in store.history(s, "shop", execution, after=2)] == [3, 4]
        assert [e["id"] for e in store.history(s, "shop", execution, limit=2)] == [1, 2]
        assert store.history(s, "shop", execution)[0]["type"] == "ExecutionStarted"
        point = store.resume_point(s, execution)
        assert store.get_execution(s, "shop", execution).events == 4
    assert (point["state"], point["state_input"], point["last_event"]) == ("B", {"b": 1}, 4)
    assert (point["name"], point["status"], point["abort"]) == (execution, "RUNNING", False)


def test_events_past_the_checkpoint_are_dropped_for_a_resume(shop: Database) -> None:
    execution = start(shop)
    with shop.session() as s:
        store.record(s, execution, [event(1), event(2)], checkpoint=("B", None, 2))
        store.record(s, execution, [event(3), event(4)])  # in B when the server died
    with shop.session() as s:
        store.drop_events_after(s, execution, 2)
    with shop.session() as s:
        assert [e["id"] for e in store.history(s, "shop", execution)] == [1, 2]


def test_finish_ends_an_execution_and_forgets_its_owner_and_checkpoint(shop: Database) -> None:
    execution = start(shop)
    with shop.session() as s:
        store.record(s, execution, [event(1)], checkpoint=("B", {"b": 1}, 1))
        store.finish(s, execution, "FAILED", error="Boom", cause="it broke", last_event=3)
    with shop.session() as s:
        found = store.get_execution(s, "shop", execution)
    assert (found.status, found.error, found.cause, found.events) == (
        "FAILED",
        "Boom",
        "it broke",
        3,
    )
    assert found.stopped_at is not None and found.stopped_at >= found.started_at
    stored = row(shop, execution)
    assert stored["owner"] is None and stored["resume_state"] is None

    with pytest.raises(InvalidInput, match="does not end") as bad, shop.session() as s:
        store.finish(s, execution, "RUNNING")
    assert bad.value.field == "status"
    with pytest.raises(NotFound), shop.session() as s:
        store.finish(s, "nope", "FAILED")


def test_executions_are_listed_newest_first_and_filtered(shop: Database) -> None:
    ids = [start(shop, {"i": i}) for i in range(3)]
    with shop.session() as s:
        store.finish(s, ids[1], "SUCCEEDED", output=1)
        store.save(s, "shop", "second", ONE)
        elsewhere, _ = store.start(s, "shop", "second", None, owner="a")
    with shop.session() as s:
        assert [e.id for e in store.list_executions(s, "shop", "flow")] == ids[::-1]
        assert [e.id for e in store.list_executions(s, "shop", "flow", status="succeeded")] == [
            ids[1]
        ]
        running = store.list_executions(s, "shop", "flow", status="RUNNING")
        assert [e.id for e in running] == [ids[2], ids[0]]
        assert [e.id for e in store.list_executions(s, "shop", "flow", limit=1)] == [ids[2]]
        assert len(store.list_executions(s, "shop")) == 4  # every workflow of the project
        assert elsewhere.id in {e.id for e in store.list_executions(s, "shop")}
        assert store.list_executions(s, "other") == []


def test_an_execution_is_not_found_from_another_project(shop: Database) -> None:
    execution = start(shop)
    for call in (store.get_execution, store.history, store.request_abort):
        with pytest.raises(NotFound, match="in project 'other'") as missing, shop.session() as s:
            call(s, "other", execution)
        assert missing.value.field == "execution"
    with shop.session() as s:
        assert store.project_of(s, execution) == "shop"
    with pytest.raises(NotFound), shop.session() as s:
        store.project_of(s, "nope")


def test_stopping_flags_the_execution_for_its_owner(shop: Database) -> None:
    mine, theirs = start(shop, owner="server:a"), start(shop, owner="server:b")
    with shop.session() as s:
        assert leases.beat(s, "server:a") == []
        flagged = store.request_abort(s, "shop", mine)
        store.request_abort(s, "shop", theirs)
    assert flagged.status == "RUNNING"  # it ends when its owner stops it
    with shop.session() as s:
        assert leases.beat(s, "server:a") == [mine]
        assert store.resume_point(s, mine)["abort"] is True
        store.finish(s, mine, "ABORTED", error="States.Aborted")
    with pytest.raises(Conflict, match="already ended \\(ABORTED\\)"), shop.session() as s:
        store.request_abort(s, "shop", mine)
    with shop.session() as s:
        assert leases.beat(s, "server:a") == []


# --- owners: heartbeats, release and takeover --------------------------------------------


def test_a_silent_owners_executions_are_taken_over_after_the_timeout(fresh: Database) -> None:
    execution = start(fresh, owner="server:a")
    beaten = row(fresh, execution)["heartbeat_at"]
    with fresh.session() as s:
        assert leases.take_over(s, "server:b", 30) == []  # a's heartbeat is fresh
    with fresh.session() as s:
        leases.beat(s, "server:a")
    later = utcnow() + timedelta(seconds=31)
    with fresh.session() as s:
        assert leases.take_over(s, "server:b", 30, now=later) == [execution]
    stored = row(fresh, execution)
    assert stored["owner"] == "server:b"
    assert stored["heartbeat_at"] != beaten
    # b owns it now: a third server waits for b's heartbeat to go stale in turn
    with fresh.session() as s:
        assert leases.take_over(s, "server:c", 30, now=later + timedelta(seconds=5)) == []
        assert leases.take_over(s, "server:c", 30, now=later + timedelta(seconds=31)) == [execution]


def test_released_executions_are_taken_over_at_once_and_ended_ones_never(
    fresh: Database,
) -> None:
    running, ended, kept = (start(fresh, owner=o) for o in ("server:a", "server:a", "server:c"))
    with fresh.session() as s:
        store.finish(s, ended, "SUCCEEDED")
        assert leases.release(s, "server:a") == 1
    assert (row(fresh, running)["owner"], row(fresh, running)["heartbeat_at"]) == (None, None)
    assert row(fresh, kept)["owner"] == "server:c"
    with fresh.session() as s:
        assert leases.take_over(s, "server:b", 3600) == [running]
        assert leases.take_over(s, "server:d", 3600) == []
        assert leases.beat(s, "server:b") == []
    assert row(fresh, running)["owner"] == "server:b"
    assert row(fresh, ended)["status"] == "SUCCEEDED"


def test_two_servers_racing_for_orphans_claim_each_once(fresh: Database) -> None:
    orphans = {start(fresh, {"i": i}, owner="server:dead") for i in range(8)}
    with fresh.session() as s:
        leases.release(s, "server:dead")
    barrier = threading.Barrier(2)
    claimed: dict[str, list[str]] = {}

    def claim(owner: str) -> None:
        barrier.wait()
        with fresh.session() as s:
            claimed[owner] = leases.take_over(s, owner, 30)

    threads = [threading.Thread(target=claim, args=(o,)) for o in ("server:x", "server:y")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    x, y = claimed["server:x"], claimed["server:y"]
    assert set(x) | set(y) == orphans
    assert not set(x) & set(y)
    for execution in orphans:
        assert row(fresh, execution)["owner"] == ("server:x" if execution in x else "server:y")


def test_a_server_that_lost_an_execution_cannot_write_to_it(fresh: Database) -> None:
    execution = start(fresh, owner="server:a")
    with fresh.session() as s:
        store.record(s, execution, [event(1)], checkpoint=("B", None, 1), owner="server:a")
        claimed = leases.take_over(s, "server:b", 30, now=utcnow() + timedelta(seconds=60))
    assert claimed == [execution]
    with pytest.raises(Conflict, match="server:a no longer owns") as lost, fresh.session() as s:
        store.record(s, execution, [event(2)], checkpoint=("C", None, 2), owner="server:a")
    assert lost.value.field == "execution"
    with pytest.raises(Conflict), fresh.session() as s:
        store.finish(s, execution, "SUCCEEDED", output="late", owner="server:a")
    with fresh.session() as s:
        assert [e["id"] for e in store.history(s, "shop", execution)] == [1]
        assert store.resume_point(s, execution)["state"] == "B"
        store.record(s, execution, [event(2)], owner="server:b")
        store.finish(s, execution, "SUCCEEDED", output="b's", owner="server:b")
    assert execution_of(fresh, execution).output == "b's"


def test_a_heartbeat_covers_only_the_executions_the_server_still_runs(fresh: Database) -> None:
    running, dead = start(fresh, owner="server:a"), start(fresh, owner="server:a")
    before = heartbeat(fresh, dead)
    with fresh.session() as s:
        leases.beat(s, "server:a", [running])
    beaten = heartbeat(fresh, running)
    assert beaten > before and heartbeat(fresh, dead) == before
    # Between the two heartbeats, 30 s on: only the one nobody beats for is taken over.
    now = beaten + timedelta(seconds=30) - (beaten - before) / 2
    with fresh.session() as s:
        assert leases.take_over(s, "server:b", 30, now=now) == [dead]


def heartbeat(db: Database, execution_id: str) -> datetime:
    with db.session() as s:
        found = s.get(WorkflowExecutionRow, execution_id)
        assert found is not None and found.heartbeat_at is not None
        return found.heartbeat_at


def execution_of(db: Database, execution_id: str) -> Any:
    with db.session() as s:
        return store.get_execution(s, "shop", execution_id)


# --- the migration -----------------------------------------------------------------------


def test_the_migration_adds_and_drops_the_workflow_tables(database_url: str) -> None:
    database = Database(database_url)
    config = _config(database.engine)
    tables = {"workflows", "workflow_executions", "workflow_events"}

    def present() -> set[str]:
        return tables & set(sa.inspect(database.engine).get_table_names())

    def sql(statement: str, **values: Any) -> Any:
        # Plain SQL: the ORM describes the newest schema, not this revision's.
        with database.engine.begin() as connection:
            return connection.execute(sa.text(statement), values)

    try:
        command.upgrade(config, "0006")
        assert present() == set()
        sql("INSERT INTO projects (id, name, description, label_review, gates, created_at) "
            "VALUES ('p1', 'kept', '', true, '{}', :now)", now=utcnow())  # fmt: skip
        command.upgrade(config, "0007")
        assert current_revision(database.engine) == "0007"
        assert present() == tables
        sql("INSERT INTO workflows (id, project_id, name, definition, revision, created_at, "
            "updated_at) VALUES ('w1', 'p1', 'flow', '{}', 1, :now, :now)",
            now=utcnow())  # fmt: skip

        command.downgrade(config, "0006")
        assert present() == set()
        assert [r[0] for r in sql("SELECT name FROM projects")] == ["kept"]
        command.upgrade(config, "head")
        with database.session() as s:
            assert [p.name for p in projects.list_all(s)] == ["kept"]
            assert store.list_all(s, "kept") == []
    finally:
        database.dispose()
