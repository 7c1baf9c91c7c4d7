"""Triggers: a workflow started on a schedule, on a new dataset version, on each new
file under a source prefix, or on each new monitoring alert.

Only servers fire triggers (the CLI's in-process one does not). A trigger that misses
firings while no server runs fires once when one comes back, not once per missed time;
each execution it starts is named after the trigger and the moment, so a firing never
starts two.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import fsspec

from loopml.core.alerts import Alert
from loopml.core.errors import InvalidInput, NotFound
from loopml.core.schemas import WorkflowExecution, WorkflowTrigger
from loopml.store import alerts, datasets
from loopml.store import triggers as store
from loopml.store.db import Database
from loopml.workflow.cron import parse_cron

log = logging.getLogger("loopml.workflow")

KINDS = ("schedule", "dataset", "source", "alert")
DEFAULT_EVERY = {"dataset": 10.0, "source": 60.0, "alert": 10.0}
SEVERITIES = ("info", "warning", "critical")
MAX_EVERY = 366 * 86_400
MAX_SEEN = 100_000  # files a source trigger remembers
MAX_PER_LOOK = 100  # executions one look at a source or dataset starts; the rest wait
_LOCAL = ("file", "local")
Start = Callable[..., WorkflowExecution]


def check_spec(kind: str, spec: dict[str, Any], allow_local_files: bool) -> dict[str, Any]:
    """The spec of a ``kind`` trigger with defaults filled in; :class:`InvalidInput` says
    what is wrong."""
    if kind not in KINDS:
        raise InvalidInput(f"a trigger is one of {', '.join(KINDS)}, not {kind!r}", field="kind")
    allowed = {"schedule": {"cron", "timezone"}, "dataset": {"dataset", "every"},
               "source": {"url", "every"},
               "alert": {"deployment", "rule", "severity", "every"}}[kind]  # fmt: skip
    for key in set(spec) - allowed:
        raise InvalidInput(f"a {kind} trigger has no {key!r}", field=key)
    if kind == "schedule":
        cron, zone = spec.get("cron"), spec.get("timezone", "UTC")
        if not isinstance(cron, str) or not isinstance(zone, str):
            raise InvalidInput(
                "a schedule needs cron (five fields) and a timezone name", field="cron"
            )
        try:
            parse_cron(cron, zone).next_after(datetime.now(timezone.utc))  # 30 February never
        except InvalidInput as exc:
            # Named as the caller sent it ("cron"), not as the parser calls it.
            field = "cron" if exc.field == "schedule" else exc.field
            raise InvalidInput(exc.message, field=field) from None
        return {"cron": cron, "timezone": zone}
    every = spec.get("every", DEFAULT_EVERY[kind])
    # Bounded (NaN and infinity fail the test too): a due time past year 9999 is a 500.
    if isinstance(every, bool) or not isinstance(every, int | float) or not 1 <= every <= MAX_EVERY:
        raise InvalidInput(
            f"every is the seconds between looks, at least 1 and at most {MAX_EVERY} (a year)",
            field="every",
        )
    if kind == "dataset":
        if not isinstance(spec.get("dataset"), str) or "@" in spec["dataset"]:
            raise InvalidInput(
                "name the dataset whose new versions start the workflow", field="dataset"
            )
        return {"dataset": spec["dataset"], "every": float(every)}
    if kind == "alert":
        return _alert_spec(spec, float(every))
    url = spec.get("url")
    if not isinstance(url, str) or not url:
        raise InvalidInput("name the folder or URL prefix to watch", field="url")
    protocol = url.split("://", 1)[0] if "://" in url else "file"
    if protocol in _LOCAL and not allow_local_files:
        raise InvalidInput(
            f"{url!r} is a folder on the server; watch a URL (s3://, …), or "
            "allow local files (workflow_local_files)",
            field="url",
        )
    return {"url": url, "every": float(every)}


def first_look(
    db: Database, project: str, kind: str, spec: dict[str, Any], now: datetime
) -> tuple[datetime, Any]:
    """When a new trigger is first due, and what it has already seen (so that it fires
    for what comes next, not for what is there)."""
    if kind == "schedule":
        return parse_cron(spec["cron"], spec["timezone"]).next_after(now), None
    due = now + timedelta(seconds=spec["every"])
    if kind == "dataset":
        return due, _latest_version(db, project, spec["dataset"])
    if kind == "alert":
        return due, {"after": now.isoformat(), "id": ""}
    return due, sorted(_listing(spec["url"]))[-MAX_SEEN:]


class TriggerPoller:
    """Fires the triggers that are due; a server calls :meth:`tick` every few seconds."""

    def __init__(self, db: Database, start: Start) -> None:
        self.db = db
        self.start = start

    def tick(self, now: datetime | None = None) -> int:
        """Fire what is due; returns how many executions were started."""
        now = now or datetime.now(timezone.utc)
        with self.db.session() as session:
            due = store.due(session, now)
        started = 0
        for trigger, cursor in due:
            retry = now + timedelta(seconds=60)
            try:
                started += self._fire(trigger, cursor, now)
            except _Unstarted as exc:  # claimed, but not all started: those wait a retry
                started += exc.started
                self._failed(exc.claimed, exc.error, retry, exc.cursor, -exc.unstarted)
            except Exception as exc:  # one bad trigger must not stop the others
                self._failed(trigger, exc, retry, cursor, 0)
        return started

    def _failed(
        self, trigger: WorkflowTrigger, exc: Exception, retry: datetime, cursor: Any, fired: int
    ) -> None:
        log.warning(
            "trigger %s of %s/%s failed: %s", trigger.name, trigger.project, trigger.workflow, exc
        )
        with self.db.session() as session:
            store.advance(
                session, trigger, retry, cursor=cursor, fired=fired, error=str(exc)[:2000]
            )

    def _fire(self, trigger: WorkflowTrigger, cursor: Any, now: datetime) -> int:
        spec = trigger.spec
        if trigger.kind == "schedule":
            # A moment whose execution could not start is kept in the cursor for the retry.
            pending = cursor.get("moment") if isinstance(cursor, dict) else None
            moment = datetime.fromisoformat(pending) if pending else trigger.due_at
            following = parse_cron(spec["cron"], spec["timezone"]).next_after(now)
            events = [({"time": moment.isoformat()}, f"{moment:%Y%m%dT%H%M%SZ}")]
            return self._claim_and_start(
                trigger, following, None, events, lambda _: {"moment": moment.isoformat()}
            )
        later = now + timedelta(seconds=spec["every"])
        if trigger.kind == "dataset":
            name = spec["dataset"]
            latest = _latest_version(self.db, trigger.project, name)
            seen = int(cursor or 0)
            versions = list(range(seen + 1, latest + 1))[:MAX_PER_LOOK]
            # The dataset is in the name: a trigger moved to another dataset meets v1 again.
            events = [({"dataset": f"{name}@{n}"}, f"{name}-v{n}") for n in versions]
            return self._claim_and_start(
                trigger, later, versions[-1] if versions else seen, events,
                lambda done: seen + done,
            )  # fmt: skip
        if trigger.kind == "alert":
            return self._fire_alerts(trigger, cursor, later)
        listing = _listing(spec["url"])
        known = set(cursor or [])
        # Past MAX_SEEN files only the last names are remembered; one that sorts before
        # them all counts as seen (else each forgotten file would fire again and again).
        floor = min(known) if len(known) >= MAX_SEEN else ""
        news = sorted(f for f in set(listing) - known if f > floor)[:MAX_PER_LOOK]
        remembered = sorted((known & set(listing)) | set(news))[-MAX_SEEN:]
        return self._claim_and_start(
            trigger, later, remembered, [({"url": url}, _short(url)) for url in news],
            lambda done: sorted(set(remembered) - set(news[done:])),
        )  # fmt: skip

    def _fire_alerts(self, trigger: WorkflowTrigger, cursor: Any, later: datetime) -> int:
        spec = trigger.spec
        after = datetime.fromisoformat(cursor["after"]), str(cursor["id"])
        with self.db.session() as session:
            found = alerts.opened_after(
                session, trigger.project, after, deployment=spec.get("deployment"),
                rule=spec.get("rule"), severities=_at_least(spec["severity"]),
                limit=MAX_PER_LOOK,
            )  # fmt: skip

        def mark(alert: Alert | None) -> dict[str, str]:
            if alert is None:
                return {"after": after[0].isoformat(), "id": after[1]}
            return {"after": alert.first_seen.isoformat(), "id": alert.id}

        events = [({"alert": a.model_dump(mode="json", exclude={"notifications"})}, a.id)
                  for a in found]  # fmt: skip
        return self._claim_and_start(
            trigger, later, mark(found[-1] if found else None), events,
            lambda done: mark(found[done - 1] if done else None),
        )  # fmt: skip

    def _claim_and_start(
        self,
        trigger: WorkflowTrigger,
        due_at: datetime,
        cursor: Any,
        events: list[tuple[dict[str, Any], str]],
        cursor_after: Callable[[int], Any],
    ) -> int:
        """Claim the firing (moving ``due_at`` and ``cursor`` on), then start one
        execution per event; :class:`_Unstarted` when one could not start, with the
        cursor of those that did (``cursor_after(started)``)."""
        with self.db.session() as session:
            if not store.advance(session, trigger, due_at, cursor=cursor, fired=len(events)):
                return 0  # another server fired it first
        for done, (event, suffix) in enumerate(events):
            try:
                self._start(trigger, event, suffix)
            except Exception as exc:
                claimed = trigger.model_copy(update={"due_at": due_at})
                unstarted = len(events) - done
                raise _Unstarted(claimed, exc, cursor_after(done), done, unstarted) from exc
        return len(events)

    def _start(self, trigger: WorkflowTrigger, event: dict[str, Any], suffix: str) -> None:
        base = trigger.input if isinstance(trigger.input, dict) else {}
        data = {**base, **event, "trigger": trigger.name}
        self.start(
            trigger.project,
            trigger.workflow,
            data,
            name=_name(trigger.name, suffix),
            trigger=f"{trigger.kind}:{trigger.name}",
            started_by=f"trigger {trigger.name}",
        )


class _Unstarted(Exception):
    """A claimed firing whose executions did not all start."""

    def __init__(
        self, claimed: WorkflowTrigger, error: Exception, cursor: Any, started: int, unstarted: int
    ) -> None:
        super().__init__(str(error))
        self.claimed, self.error, self.cursor = claimed, error, cursor
        self.started, self.unstarted = started, unstarted


def _alert_spec(spec: dict[str, Any], every: float) -> dict[str, Any]:
    out: dict[str, Any] = {"every": every, "severity": spec.get("severity", "warning")}
    if out["severity"] not in SEVERITIES:
        raise InvalidInput(
            f"severity is the least severe alert that fires: {', '.join(SEVERITIES)}",
            field="severity",
        )
    for key in ("deployment", "rule"):
        if key in spec:
            if not isinstance(spec[key], str) or not spec[key]:
                raise InvalidInput(f"{key} names one {key} whose alerts fire", field=key)
            out[key] = spec[key]
    return out


def _at_least(severity: str) -> tuple[str, ...]:
    return SEVERITIES[SEVERITIES.index(severity) :]


def _latest_version(db: Database, project: str, dataset: str) -> int:
    """The newest version's number (not the current one, which a source going back to
    earlier content moves back): versions above it are new."""
    with db.session() as session:
        try:
            return datasets.get(session, project, dataset).versions
        except NotFound:
            return 0  # no version yet: the first one fires


def _listing(url: str) -> list[str]:
    fs, root = fsspec.core.url_to_fs(url)
    try:
        found = fs.find(root)
    except FileNotFoundError:
        return []
    protocol = url.split("://", 1)[0] if "://" in url else None
    return [
        f"{protocol}://{path}" if protocol and protocol not in _LOCAL else path for path in found
    ]


def _name(trigger: str, suffix: str) -> str:
    """``trigger-suffix``; past the 80 characters of an execution name, its start and a
    hash of all of it (cut short, two names would collide and one file never start)."""
    name = f"{trigger}-{suffix}"
    if len(name) <= 80:
        return name
    return f"{name[:67]}-{hashlib.sha256(name.encode()).hexdigest()[:12]}"


def _short(url: str) -> str:
    """The file's name, readable, and a hash of its whole URL (names repeat in folders)."""
    tail = url.rstrip("/").rsplit("/", 1)[-1]
    readable = "".join(c if c.isalnum() or c in "-_." else "-" for c in tail)[-40:]
    return f"{readable}-{hashlib.sha256(url.encode()).hexdigest()[:12]}"
