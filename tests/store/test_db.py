"""The metadata database: migrations, SQLite settings, schema drift, UTC datetimes."""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from loopml.store import jobs, projects
from loopml.store.db import Database
from loopml.store.migrate import _config, current_revision, head_revision
from loopml.store.models import Base, utcnow

TABLES = {"projects", "api_keys", "project_roles", "jobs", "job_logs"}


def _tables(database: Database) -> set[str]:
    return set(sa.inspect(database.engine).get_table_names())


def test_upgrade_on_empty_database_creates_schema_at_head(database_url: str) -> None:
    database = Database(database_url)
    try:
        assert current_revision(database.engine) is None
        assert not TABLES & _tables(database)

        database.upgrade()

        assert head_revision() is not None
        assert current_revision(database.engine) == head_revision()
        assert _tables(database) >= TABLES
    finally:
        database.dispose()


def test_upgrading_twice_is_a_no_op_and_keeps_data(db: Database) -> None:
    with db.session() as s:
        projects.create(s, "kept", "still here")
    before = _tables(db)

    db.upgrade()
    # A second Database object on the same URL (another process starting) upgrades too.
    other = Database(db.url)
    try:
        other.upgrade()
        assert current_revision(other.engine) == head_revision()
    finally:
        other.dispose()

    assert current_revision(db.engine) == head_revision()
    assert _tables(db) == before
    with db.session() as s:
        assert projects.get(s, "kept").description == "still here"


def test_sqlite_file_database_uses_wal_and_foreign_keys(sqlite_url: str) -> None:
    database = Database(sqlite_url)
    try:
        database.upgrade()
        with database.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        # And foreign keys are really enforced: a role for a key that does not exist.
        with pytest.raises(sa.exc.IntegrityError), database.engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO project_roles (key_id, project_id, role) "
                "VALUES ('nokey', 'noproj', 'viewer')"
            )
    finally:
        database.dispose()


def test_migrations_match_the_orm_models(db: Database) -> None:
    """A model change without a matching Alembic migration fails here."""
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, Base.metadata)
    assert diffs == []


def test_deleting_a_project_cascades_to_its_jobs_and_logs(db: Database) -> None:
    with db.session() as s:
        projects.create(s, "doomed")
        projects.create(s, "survivor")
        doomed = jobs.enqueue(s, "train", project="doomed")
        jobs.log(s, doomed.id, "hello")
        kept = jobs.enqueue(s, "train", project="survivor")
    with db.session() as s:
        projects.delete(s, "doomed")
    with db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT id FROM jobs")).scalars().all() == [kept.id]
        assert conn.execute(sa.text("SELECT count(*) FROM job_logs")).scalar() == 0


def _assert_utc(value: object) -> None:
    assert value is not None
    assert value.tzinfo is not None, f"{value!r} is naive"  # type: ignore[attr-defined]
    assert value.utcoffset() == timedelta(0), f"{value!r} is not UTC"  # type: ignore[attr-defined]


def test_datetimes_come_back_timezone_aware_utc(db: Database) -> None:
    with db.session() as s:
        project = projects.create(s, "clock")
        job = jobs.enqueue(s, "train", project="clock")
        jobs.claim(s, "w1")
        jobs.log(s, job.id, "line")
    _assert_utc(project.created_at)
    with db.session() as s:
        again = projects.get(s, "clock")
        loaded = jobs.get(s, job.id)
        line = jobs.logs(s, job.id)[0]
    _assert_utc(again.created_at)
    assert again.created_at == project.created_at
    for value in (loaded.created_at, loaded.started_at, loaded.heartbeat_at, line.at):
        _assert_utc(value)


@pytest.mark.postgres
def test_datetimes_are_utc_even_when_the_postgres_session_timezone_is_not(
    postgres_url: str,
) -> None:
    # A server (or role) configured for local time must not leak offsets to users.
    url = postgres_url + "%20-ctimezone%3DAsia%2FKolkata"
    database = Database(url)
    try:
        database.upgrade()
        with database.engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW timezone").scalar() == "Asia/Kolkata"
        with database.session() as s:
            created = projects.create(s, "kolkata").created_at
        with database.session() as s:
            loaded = projects.get(s, "kolkata").created_at
        _assert_utc(loaded)
        assert loaded == created
    finally:
        database.dispose()


def test_aware_non_utc_datetimes_are_stored_as_the_same_instant(db: Database) -> None:
    with db.session() as s:
        job = jobs.enqueue(s, "train")
        claimed = jobs.claim(s, "w1")
    assert claimed is not None and claimed.heartbeat_at is not None
    plus_five = timezone(timedelta(hours=5))
    # 10 s after the heartbeat, written in UTC+5: not yet stale for a 30 s timeout ...
    with db.session() as s:
        assert (
            jobs.reap(
                s, 30, now=(claimed.heartbeat_at + timedelta(seconds=10)).astimezone(plus_five)
            )
            == []
        )
    # ... 40 s after it is.
    with db.session() as s:
        reaped = jobs.reap(
            s, 30, now=(claimed.heartbeat_at + timedelta(seconds=40)).astimezone(plus_five)
        )
    assert [j.id for j in reaped] == [job.id]
    _assert_utc(reaped[0].finished_at)
    assert reaped[0].finished_at == claimed.heartbeat_at + timedelta(seconds=40)


def test_the_job_problems_migration_keeps_every_jobs_log_both_ways(database_url: str) -> None:
    database = Database(database_url)
    config = _config(database.engine)

    def sql(statement: str, **values: Any) -> Any:
        with database.engine.begin() as connection:
            return connection.execute(sa.text(statement), values)

    try:
        command.upgrade(config, "0011")
        sql("INSERT INTO jobs (id, kind, params, state, progress, message, attempts, "
            "max_attempts, cancel_requested, created_at) VALUES ('j1', 'k', '{}', 'failed', 0, "
            "'', 1, 1, false, :now)", now=utcnow())  # fmt: skip
        sql("INSERT INTO job_logs (job_id, at, level, message) "
            "VALUES ('j1', :now, 'error', 'it broke')", now=utcnow())  # fmt: skip
        command.upgrade(config, "0012")
        sql("UPDATE jobs SET problem = :p", p='{"type": "InvalidInput"}')
        command.downgrade(config, "0011")  # SQLite's table rebuild would cascade to the logs
        assert [r[0] for r in sql("SELECT message FROM job_logs")] == ["it broke"]
        command.upgrade(config, "head")
        assert [r[0] for r in sql("SELECT message FROM job_logs")] == ["it broke"]
    finally:
        database.dispose()
