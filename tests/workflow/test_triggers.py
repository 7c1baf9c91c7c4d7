"""Workflow triggers on SQLite and PostgreSQL: schedules fired once per moment (once after
missing many), two servers never firing the same moment twice, new dataset versions and
new files under a folder or an S3 prefix each starting one execution, disabled and failing
triggers, replaced triggers keeping or resetting what they have seen, the specs refused,
and a server (not the CLI's in-process one) firing them by itself."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import fsspec
import pytest

from loopml.core.errors import InvalidInput, NotFound
from loopml.core.schemas import WorkflowExecution, WorkflowTrigger
from loopml.store import datasets, projects, workflows
from loopml.store import triggers as store
from loopml.store.db import Database
from loopml.workflow import TaskRegistry, triggers
from loopml.workflow.service import WorkflowService
from loopml.workflow.triggers import TriggerPoller, check_spec, first_look
from tests.conftest import wait_for

FAST = {"heartbeat_interval": 0.05, "heartbeat_timeout": 1.0, "flush_seconds": 0.0}
ECHO = {"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}}
T0 = datetime(2026, 1, 1, 10, 7, tzinfo=timezone.utc)


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)  # type: ignore[misc]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """One migrated database per module and backend; ``shop`` empties it for each test."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path_factory.mktemp('triggers') / 'loopml.db'}")
        database.upgrade()
        yield database
        database.dispose()
        return
    import psycopg

    server = str(request.getfixturevalue("postgres_server_url"))
    schema = f"loopml_test_{uuid.uuid4().hex[:12]}"
    conninfo = server.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in server else "?"
    database = Database(f"{server}{sep}options=-csearch_path%3D{schema}")
    try:
        database.upgrade()
        yield database
    finally:
        database.dispose()
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


class Rig:
    """Project "shop" with workflow "flow" (its output is its input), a workflow service
    that does not poll by itself, and its trigger poller ticked with explicit times."""

    def __init__(self, db: Database, service: WorkflowService) -> None:
        self.db = db
        self.service = service
        self.poller = service.triggers

    def put(
        self,
        name: str,
        kind: str,
        now: datetime = T0,
        *,
        data: Any = None,
        enabled: bool = True,
        local: bool = True,
        **spec: Any,
    ) -> WorkflowTrigger:
        """Create or replace a trigger as the REST route does."""
        checked = check_spec(kind, spec, local)
        due_at, cursor = first_look(self.db, "shop", kind, checked, now)
        with self.db.session() as s:
            saved, _ = store.put(
                s, "shop", "flow", name, kind=kind, spec=checked, data=data,
                due_at=due_at, cursor=cursor, enabled=enabled,
            )  # fmt: skip
        return saved

    def tick(self, now: datetime) -> int:
        return self.poller.tick(now)

    def trigger(self, name: str) -> WorkflowTrigger:
        with self.db.session() as s:
            return store.get(s, "shop", "flow", name)

    def executions(self) -> list[WorkflowExecution]:
        """Oldest first."""
        with self.db.session() as s:
            return list(reversed(workflows.list_executions(s, "shop", "flow")))

    def names(self) -> list[str]:
        return sorted(e.name for e in self.executions())

    def version(self, dataset: str, content: str) -> int:
        """Record a new version of ``dataset`` (made first if needed)."""
        with self.db.session() as s:
            if dataset not in [d.name for d in datasets.list_all(s, "shop")]:
                datasets.create(s, "shop", dataset)
            version, created = datasets.add_version(
                s, "shop", dataset, content_hash=content, rows=1, data_schema={"columns": []}
            )
        assert created
        return version.number


@pytest.fixture
def rig(database: Database) -> Iterator[Rig]:
    with database.session() as s:
        for name in ("shop", "other"):
            with contextlib.suppress(NotFound):
                projects.delete(s, name)
    with database.session() as s:
        projects.create(s, "shop")
        workflows.save(s, "shop", "flow", ECHO)
    service = WorkflowService(database, tasks=TaskRegistry(), **FAST)  # type: ignore[arg-type]
    service.open(take_over=False)  # no polling of its own: the tests tick
    yield Rig(database, service)
    service.close(timeout=10)


def ended(rig: Rig, count: int) -> list[WorkflowExecution]:
    """The workflow's executions once ``count`` have ended, oldest first."""

    def check() -> list[WorkflowExecution] | None:
        found = rig.executions()
        done = len(found) == count and all(e.status != "RUNNING" for e in found)
        return found if done else None

    return wait_for(f"{count} ended executions", check, timeout=20)  # type: ignore[no-any-return]


# --- schedules ---------------------------------------------------------------------------


def test_a_schedule_fires_once_when_due_then_at_its_next_time(rig: Rig) -> None:
    made = rig.put("quarterly", "schedule", data={"region": "eu"}, cron="*/15 * * * *")
    assert made.due_at == at(2026, 1, 1, 10, 15)
    assert (made.fired, made.last_fired_at, made.spec["timezone"]) == (0, None, "UTC")

    assert rig.tick(at(2026, 1, 1, 10, 14, 59)) == 0
    assert rig.executions() == []

    assert rig.tick(at(2026, 1, 1, 10, 15)) == 1
    assert rig.tick(at(2026, 1, 1, 10, 15, 30)) == 0  # the same moment: once
    (first,) = ended(rig, 1)
    assert first.name == "quarterly-20260101T101500Z"
    assert first.trigger == "schedule:quarterly"
    assert first.input == {
        "region": "eu",
        "time": "2026-01-01T10:15:00+00:00",
        "trigger": "quarterly",
    }
    assert (first.status, first.output) == ("SUCCEEDED", first.input)
    after = rig.trigger("quarterly")
    assert after.due_at == at(2026, 1, 1, 10, 30)
    assert after.fired == 1 and after.last_fired_at is not None and after.last_error is None

    assert rig.tick(at(2026, 1, 1, 10, 30)) == 1
    assert rig.names() == ["quarterly-20260101T101500Z", "quarterly-20260101T103000Z"]
    assert rig.trigger("quarterly").due_at == at(2026, 1, 1, 10, 45)


def test_a_schedule_in_a_time_zone_is_due_at_its_utc_instant(rig: Rig) -> None:
    made = rig.put("morning", "schedule", cron="0 9 * * *", timezone="Europe/Paris")
    assert made.due_at == at(2026, 1, 2, 8)  # 09:00 in Paris, in winter
    assert rig.tick(at(2026, 1, 2, 7, 59)) == 0
    assert rig.tick(at(2026, 1, 2, 8)) == 1
    assert rig.names() == ["morning-20260102T080000Z"]


def test_a_schedule_that_missed_many_times_fires_once_when_a_server_is_back(rig: Rig) -> None:
    rig.put("minutely", "schedule", at(2026, 1, 1, 10, 0), cron="* * * * *")
    back = at(2026, 1, 1, 13, 0, 30)  # three hours of missed minutes
    assert rig.tick(back) == 1
    assert rig.tick(back + timedelta(seconds=10)) == 0
    assert len(rig.executions()) == 1
    after = rig.trigger("minutely")
    assert (after.fired, after.due_at) == (1, at(2026, 1, 1, 13, 1))
    assert rig.tick(at(2026, 1, 1, 13, 1)) == 1
    assert len(rig.executions()) == 2


class Gate:
    """``db`` for a poller whose first session (its look at what is due) waits for the
    other poller's, so that both see the same due trigger before either fires it."""

    def __init__(self, db: Database, barrier: threading.Barrier) -> None:
        self.db = db
        self.barrier = barrier
        self.looked = False

    @contextmanager
    def session(self) -> Iterator[Any]:
        with self.db.session() as s:
            yield s
        if not self.looked:
            self.looked = True
            self.barrier.wait(10)


def tick_into(poller: TriggerPoller, now: datetime, counts: list[int]) -> None:
    counts.append(poller.tick(now))


def test_two_servers_fire_each_due_moment_exactly_once(rig: Rig) -> None:
    rig.put("race", "schedule", at(2026, 1, 1, 10, 0), cron="* * * * *")
    started: list[str] = []
    lock = threading.Lock()

    def start(project: str, workflow: str, data: Any, **kwargs: Any) -> None:
        with lock:
            started.append(kwargs["name"])

    for minute in range(1, 9):
        now = at(2026, 1, 1, 10, minute)
        barrier = threading.Barrier(2)
        counts: list[int] = []
        threads = [
            threading.Thread(
                target=tick_into,
                args=(TriggerPoller(Gate(rig.db, barrier), start), now, counts),  # type: ignore[arg-type]
            )
            for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        assert sorted(counts) == [0, 1], f"minute {minute}: {counts}"
    assert started == [f"race-20260101T10{m:02d}00Z" for m in range(1, 9)]
    assert rig.trigger("race").fired == 8


# --- datasets ----------------------------------------------------------------------------


def test_each_new_dataset_version_starts_one_execution(rig: Rig) -> None:
    rig.version("orders", "a")
    rig.version("orders", "b")  # versions 1 and 2 were there before the trigger
    made = rig.put("on-orders", "dataset", data={"team": "ops"}, dataset="orders", every=10)
    assert made.spec == {"dataset": "orders", "every": 10.0}
    assert made.due_at == T0 + timedelta(seconds=10)

    assert rig.tick(T0 + timedelta(seconds=10)) == 0  # nothing new
    assert rig.trigger("on-orders").due_at == T0 + timedelta(seconds=20)

    assert rig.version("orders", "c") == 3
    assert rig.tick(T0 + timedelta(seconds=15)) == 0  # not yet time to look
    assert rig.tick(T0 + timedelta(seconds=20)) == 1
    (third,) = ended(rig, 1)
    assert third.input == {"team": "ops", "dataset": "orders@3", "trigger": "on-orders"}
    assert third.trigger == "dataset:on-orders"
    assert third.status == "SUCCEEDED"

    rig.version("orders", "d")
    rig.version("orders", "e")
    assert rig.tick(T0 + timedelta(seconds=30)) == 2
    assert rig.tick(T0 + timedelta(seconds=40)) == 0
    found = ended(rig, 3)
    assert [e.input["dataset"] for e in found] == ["orders@3", "orders@4", "orders@5"]
    assert len({e.name for e in found}) == 3
    assert rig.trigger("on-orders").fired == 3


def test_a_source_back_to_an_earlier_version_fires_nothing_old_again(rig: Rig) -> None:
    for content in ("a", "b", "c"):
        rig.version("orders", content)
    with rig.db.session() as s:  # its source holds version 1's content again
        datasets.read_from_source(s, "shop", "orders", 3)
        assert datasets.read_from_source(s, "shop", "orders", 1)
        assert datasets.get_version(s, "shop", "orders").number == 1
    rig.put("on-orders", "dataset", dataset="orders", every=1)
    assert rig.tick(T0 + timedelta(seconds=1)) == 0  # versions 2 and 3 are not new
    assert rig.version("orders", "d") == 4
    assert rig.tick(T0 + timedelta(seconds=2)) == 1
    assert [e.input["dataset"] for e in ended(rig, 1)] == ["orders@4"]


def test_a_dataset_made_after_its_trigger_fires_from_its_first_version(rig: Rig) -> None:
    rig.put("on-later", "dataset", dataset="later", every=1)
    assert rig.tick(T0 + timedelta(seconds=1)) == 0
    rig.version("later", "x")
    assert rig.tick(T0 + timedelta(seconds=2)) == 1
    assert [e.input["dataset"] for e in rig.executions()] == ["later@1"]


def test_a_dataset_trigger_watches_its_own_dataset_only(rig: Rig) -> None:
    rig.version("orders", "a")
    rig.put("on-orders", "dataset", dataset="orders", every=1)
    rig.version("refunds", "r")
    assert rig.tick(T0 + timedelta(seconds=1)) == 0
    assert rig.executions() == []


# --- sources -----------------------------------------------------------------------------


def write(path: Path, text: str = "a,b\n1,2\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_each_new_file_under_a_folder_starts_one_execution(rig: Rig, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    write(inbox / "old.csv")
    write(inbox / "2025" / "old.csv")  # nested, and there before the trigger
    made = rig.put("on-file", "source", data={"sep": ","}, url=str(inbox))
    assert made.spec == {"url": str(inbox), "every": 60.0}
    later = T0 + timedelta(seconds=60)
    assert rig.tick(later) == 0

    new = write(inbox / "new.csv")
    deep = write(inbox / "2026" / "01" / "new.csv")  # same file name, deeper
    assert rig.tick(later + timedelta(seconds=30)) == 0  # not yet time to look
    assert rig.tick(later + timedelta(seconds=60)) == 2
    found = ended(rig, 2)
    assert sorted(e.input["url"] for e in found) == sorted([str(deep), str(new)])
    for e in found:
        assert e.input["sep"] == "," and e.input["trigger"] == "on-file"
        assert e.trigger == "source:on-file" and e.status == "SUCCEEDED"
        assert e.name.startswith("on-file-new.csv-")
    assert len({e.name for e in found}) == 2

    new.write_text("a,b\n3,4\n")  # the same file, changed: not new
    assert rig.tick(later + timedelta(seconds=120)) == 0
    write(inbox / "third.csv")
    assert rig.tick(later + timedelta(seconds=180)) == 1
    assert rig.tick(later + timedelta(seconds=240)) == 0
    assert len(rig.executions()) == 3
    assert rig.trigger("on-file").fired == 3


def test_a_folder_made_after_its_trigger_fires_for_its_files(rig: Rig, tmp_path: Path) -> None:
    url = (tmp_path / "later").as_uri()  # file:///…
    rig.put("on-later", "source", url=url, every=5)
    assert rig.tick(T0 + timedelta(seconds=5)) == 0
    first = write(tmp_path / "later" / "a.json", "{}")
    assert rig.tick(T0 + timedelta(seconds=10)) == 1
    assert [e.input["url"] for e in rig.executions()] == [str(first)]


def test_long_trigger_and_file_names_still_start_one_execution_per_file(
    rig: Rig, tmp_path: Path
) -> None:
    name = "t" * 63
    rig.put(name, "source", url=str(tmp_path / "in"), every=1)
    stem = "export-of-the-orders-table-from-the-warehouse-part"
    for part in range(3):
        write(tmp_path / "in" / f"{stem}-{part}.csv")
    assert rig.tick(T0 + timedelta(seconds=1)) == 3
    found = rig.executions()
    assert len(found) == 3 and len({e.name for e in found}) == 3
    assert all(len(e.name) <= 80 and e.name.startswith(name) for e in found)
    assert rig.trigger(name).last_error is None


def test_a_folder_with_more_files_than_remembered_fires_for_new_ones_only(
    rig: Rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(triggers, "MAX_SEEN", 3)  # as with 100 000 files, in small
    for day in range(1, 6):
        write(tmp_path / "in" / f"day{day}.csv")
    rig.put("daily", "source", url=str(tmp_path / "in"), every=1)
    for second in range(1, 5):  # the files forgotten are not new again
        assert rig.tick(T0 + timedelta(seconds=second)) == 0, second
    write(tmp_path / "in" / "day6.csv")
    assert rig.tick(T0 + timedelta(seconds=5)) == 1
    for second in range(6, 9):
        assert rig.tick(T0 + timedelta(seconds=second)) == 0, second
    assert [Path(e.input["url"]).name for e in rig.executions()] == ["day6.csv"]


@pytest.mark.s3
def test_each_new_object_under_an_s3_prefix_starts_one_execution(
    rig: Rig,
    s3_storage: tuple[str, dict[str, Any]],
    s3_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)  # how a server reaches its S3
    root, options = s3_storage
    prefix = f"{root}/{uuid.uuid4().hex[:8]}/drops"

    def put(key: str) -> str:
        with fsspec.open(f"{prefix}/{key}", "wb", **options) as fh:
            fh.write(b"a,b\n1,2\n")
        return f"{prefix}/{key}"

    put("before.csv")
    rig.put("on-drop", "source", url=prefix, every=1, local=False)
    assert rig.tick(T0 + timedelta(seconds=1)) == 0
    one, two = put("day1.csv"), put("2026/day2.csv")
    assert rig.tick(T0 + timedelta(seconds=2)) == 2
    assert sorted(e.input["url"] for e in ended(rig, 2)) == sorted([one, two])
    assert rig.tick(T0 + timedelta(seconds=3)) == 0
    assert rig.trigger("on-drop").last_error is None


# --- disabled, failing, replaced ------------------------------------------------------------


def test_a_disabled_trigger_never_fires_until_enabled(rig: Rig) -> None:
    rig.put("off", "schedule", cron="*/15 * * * *", enabled=False)
    rig.put("off-data", "dataset", dataset="orders", every=1, enabled=False)
    rig.version("orders", "a")
    for minutes in (15, 30, 60, 600):
        assert rig.tick(T0 + timedelta(minutes=minutes)) == 0
    assert rig.executions() == []
    assert not rig.trigger("off").enabled and rig.trigger("off").fired == 0

    rig.put("off-data", "dataset", dataset="orders", every=1)  # enabled, same spec
    assert rig.tick(T0 + timedelta(minutes=601)) == 1  # the version made while disabled
    assert [e.input["dataset"] for e in rig.executions()] == ["orders@1"]


def test_a_failing_trigger_records_its_error_retries_later_and_spares_the_others(
    rig: Rig,
) -> None:
    rig.put("fine", "schedule", cron="*/15 * * * *")
    with rig.db.session() as s:  # a source this server cannot read (no such protocol)
        store.put(
            s, "shop", "flow", "broken", kind="source", spec={"url": "nosuch://in/", "every": 5.0},
            data=None, due_at=T0, cursor=[],
        )  # fmt: skip
    now = at(2026, 1, 1, 10, 15)
    assert rig.tick(now) == 1  # "fine" fires all the same
    assert rig.names() == ["fine-20260101T101500Z"]
    broken = rig.trigger("broken")
    assert broken.last_error and "nosuch" in broken.last_error
    assert broken.due_at == now + timedelta(seconds=60)
    assert broken.fired == 0

    assert rig.tick(now + timedelta(seconds=30)) == 0  # not before the retry
    assert rig.trigger("broken").due_at == now + timedelta(seconds=60)
    assert rig.tick(now + timedelta(seconds=60)) == 0  # retried, failing again
    assert rig.trigger("broken").due_at == now + timedelta(seconds=120)
    assert rig.trigger("fine").last_error is None


def test_a_trigger_whose_workflow_cannot_start_keeps_the_version_for_the_retry(
    rig: Rig,
) -> None:
    rig.put("on-orders", "dataset", dataset="orders", every=1)
    with rig.db.session() as s:  # saved past validation: this server lacks the task
        workflows.save(s, "shop", "flow", {
            "StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "loopml:task:gone",
                                              "End": True}}})  # fmt: skip
    rig.version("orders", "a")
    now = T0 + timedelta(seconds=1)
    assert rig.tick(now) == 0
    failed = rig.trigger("on-orders")
    assert failed.last_error and "gone" in failed.last_error
    assert failed.due_at == now + timedelta(seconds=60)
    assert failed.fired == 0
    assert rig.executions() == []

    with rig.db.session() as s:
        workflows.save(s, "shop", "flow", ECHO)  # fixed
    assert rig.tick(now + timedelta(seconds=60)) == 1
    assert [e.input["dataset"] for e in rig.executions()] == ["orders@1"]
    fixed = rig.trigger("on-orders")
    assert (fixed.last_error, fixed.fired) == (None, 1)


def test_a_schedule_whose_workflow_cannot_start_fires_its_moment_on_the_retry(
    rig: Rig,
) -> None:
    rig.put("nightly", "schedule", cron="0 3 * * *")
    with rig.db.session() as s:
        workflows.save(s, "shop", "flow", {
            "StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "loopml:task:gone",
                                              "End": True}}})  # fmt: skip
    moment = at(2026, 1, 2, 3)
    assert rig.tick(moment) == 0
    assert "gone" in (rig.trigger("nightly").last_error or "")
    with rig.db.session() as s:
        workflows.save(s, "shop", "flow", ECHO)
    assert rig.tick(moment + timedelta(seconds=60)) == 1
    (fired,) = rig.executions()
    assert fired.input["time"] == moment.isoformat()
    after = rig.trigger("nightly")
    assert (after.due_at, after.last_error, after.fired) == (at(2026, 1, 3, 3), None, 1)


def test_replacing_a_trigger_keeps_what_it_has_seen_unless_its_spec_changes(rig: Rig) -> None:
    rig.version("orders", "a")
    made = rig.put("on-orders", "dataset", dataset="orders", every=10, data={"n": 1})
    rig.version("orders", "b")  # version 2: new to the trigger

    same = rig.put("on-orders", "dataset", T0 + timedelta(seconds=5), data={"n": 2},
                   dataset="orders", every=10)  # fmt: skip
    assert (same.id, same.due_at) == (made.id, made.due_at)
    assert rig.tick(T0 + timedelta(seconds=10)) == 1
    assert [e.input for e in rig.executions()] == [
        {"n": 2, "dataset": "orders@2", "trigger": "on-orders"}
    ]

    rig.version("orders", "c")  # version 3, there when the spec changes: not new
    other = rig.put("on-orders", "dataset", T0 + timedelta(seconds=12), dataset="orders",
                    every=20)  # fmt: skip
    assert other.due_at == T0 + timedelta(seconds=32)
    assert rig.tick(T0 + timedelta(seconds=32)) == 0
    rig.version("orders", "d")
    assert rig.tick(T0 + timedelta(seconds=52)) == 1
    assert [e.input["dataset"] for e in rig.executions()] == ["orders@2", "orders@4"]


def test_a_trigger_moved_to_another_dataset_fires_for_its_versions(rig: Rig) -> None:
    rig.put("on-data", "dataset", dataset="first", every=1)
    rig.version("first", "a")
    assert rig.tick(T0 + timedelta(seconds=1)) == 1
    rig.put("on-data", "dataset", T0 + timedelta(seconds=1), dataset="second", every=1)
    rig.version("second", "a")  # version 1 again, of another dataset
    assert rig.tick(T0 + timedelta(seconds=2)) == 1
    assert sorted(e.input["dataset"] for e in rig.executions()) == ["first@1", "second@1"]
    assert rig.trigger("on-data").last_error is None


def test_triggers_are_listed_by_name_and_removed(rig: Rig) -> None:
    rig.put("b-nightly", "schedule", cron="@daily")
    rig.put("a-orders", "dataset", dataset="orders")
    with rig.db.session() as s:
        assert [t.name for t in store.list_all(s, "shop", "flow")] == ["a-orders", "b-nightly"]
        store.remove(s, "shop", "flow", "b-nightly")
    with rig.db.session() as s:
        assert [t.name for t in store.list_all(s, "shop", "flow")] == ["a-orders"]
        with pytest.raises(NotFound) as err:
            store.get(s, "shop", "flow", "b-nightly")
    assert err.value.field == "trigger"
    assert rig.tick(at(2026, 1, 2)) == 0  # the removed schedule fires no more
    with rig.db.session() as s, pytest.raises(InvalidInput) as bad:
        store.put(s, "shop", "flow", "Bad Name", kind="schedule", spec={}, data=None,
                  due_at=T0, cursor=None)  # fmt: skip
    assert bad.value.field == "trigger"


# --- specs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "spec", "field", "words"),
    [
        ("webhook", {}, "kind", "schedule, dataset, source"),
        ("schedule", {"cron": "* * * * *", "every": 5}, "every", "no 'every'"),
        ("dataset", {"dataset": "orders", "url": "s3://x/"}, "url", "no 'url'"),
        ("source", {"url": "s3://x/", "cron": "@daily"}, "cron", "no 'cron'"),
        ("schedule", {}, "cron", "cron"),
        ("schedule", {"cron": "61 * * * *"}, "cron", "'61'"),
        ("schedule", {"cron": "* * * *"}, "cron", "4 fields"),
        ("schedule", {"cron": "@daily", "timezone": "Mars/Olympus"}, "timezone", "Mars/Olympus"),
        ("dataset", {"dataset": "orders", "every": 0}, "every", "at least 1"),
        ("dataset", {"dataset": "orders", "every": -5}, "every", "at least 1"),
        ("dataset", {"dataset": "orders", "every": 0.5}, "every", "at least 1"),
        ("dataset", {"dataset": "orders", "every": 1e12}, "every", "at most"),
        ("source", {"url": "s3://x/", "every": float("inf")}, "every", "at most"),
        ("source", {"url": "s3://x/", "every": float("nan")}, "every", "at most"),
        ("dataset", {"dataset": "orders", "every": "10"}, "every", "seconds"),
        ("dataset", {"dataset": "orders", "every": True}, "every", "seconds"),
        ("dataset", {"dataset": "orders@2"}, "dataset", "new versions"),
        ("dataset", {}, "dataset", "name the dataset"),
        ("source", {}, "url", "folder or URL"),
        ("source", {"url": ""}, "url", "folder or URL"),
        ("source", {"url": "/srv/inbox"}, "url", "workflow_local_files"),
        ("source", {"url": "file:///srv/inbox"}, "url", "workflow_local_files"),
        ("source", {"url": "local:///srv/inbox"}, "url", "workflow_local_files"),
    ],
)
def test_a_bad_spec_names_its_field(
    kind: str, spec: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(InvalidInput) as err:
        check_spec(kind, spec, allow_local_files=False)
    assert err.value.field == field
    assert words in err.value.message, err.value.message


def test_specs_get_their_defaults_and_local_folders_need_permission() -> None:
    assert check_spec("schedule", {"cron": "@daily"}, False) == {
        "cron": "@daily",
        "timezone": "UTC",
    }
    assert check_spec("dataset", {"dataset": "orders"}, False) == {
        "dataset": "orders",
        "every": 10.0,
    }
    assert check_spec("source", {"url": "s3://in/drops"}, False) == {
        "url": "s3://in/drops",
        "every": 60.0,
    }
    assert check_spec("source", {"url": "/srv/inbox", "every": 5}, True) == {
        "url": "/srv/inbox",
        "every": 5.0,
    }


# --- a server fires them by itself ---------------------------------------------------------


def test_a_server_fires_due_triggers_by_itself_the_clis_in_process_one_does_not(
    rig: Rig,
) -> None:
    now = datetime.now(timezone.utc)
    rig.put("soon", "dataset", now - timedelta(seconds=5), dataset="orders", every=1)
    rig.version("orders", "a")

    cli = WorkflowService(rig.db, tasks=TaskRegistry(), **FAST)  # type: ignore[arg-type]
    cli.open(take_over=False)
    try:
        time.sleep(0.5)  # ten heartbeats
        assert rig.executions() == []
    finally:
        cli.close(timeout=5)

    server = WorkflowService(rig.db, tasks=TaskRegistry(), **FAST)  # type: ignore[arg-type]
    server.open(take_over=True)
    try:
        (fired,) = ended(rig, 1)
        assert (fired.input["dataset"], fired.trigger) == ("orders@1", "dataset:soon")
        assert fired.status == "SUCCEEDED"
    finally:
        server.close(timeout=5)
    assert rig.trigger("soon").fired == 1


def test_a_schedule_that_never_fires_is_refused() -> None:
    with pytest.raises(InvalidInput) as err:
        check_spec("schedule", {"cron": "0 0 30 2 *"}, False)
    assert err.value.field == "cron" and "never fires" in err.value.message
