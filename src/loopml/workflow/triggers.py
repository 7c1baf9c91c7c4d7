"""Triggers: a workflow started on a schedule, on a new dataset version, or on each new
file under a source prefix.

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

from loopml.core.errors import InvalidInput, LoopmlError, NotFound
from loopml.core.schemas import WorkflowExecution, WorkflowTrigger
from loopml.store import datasets
from loopml.store import triggers as store
from loopml.store.db import Database
from loopml.workflow.cron import parse_cron

log = logging.getLogger("loopml.workflow")

KINDS = ("schedule", "dataset", "source")
DEFAULT_EVERY = {"dataset": 10.0, "source": 60.0}
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
               "source": {"url", "every"}}[kind]  # fmt: skip
    for key in set(spec) - allowed:
        raise InvalidInput(f"a {kind} trigger has no {key!r}", field=key)
    if kind == "schedule":
        cron, zone = spec.get("cron"), spec.get("timezone", "UTC")
        if not isinstance(cron, str) or not isinstance(zone, str):
            raise InvalidInput(
                "a schedule needs cron (five fields) and a timezone name", field="cron"
            )
        parse_cron(cron, zone)
        return {"cron": cron, "timezone": zone}
    every = spec.get("every", DEFAULT_EVERY[kind])
    if isinstance(every, bool) or not isinstance(every, int | float) or every < 1:
        raise InvalidInput("every is the seconds between looks, at least 1", field="every")
    if kind == "dataset":
        if not isinstance(spec.get("dataset"), str) or "@" in spec["dataset"]:
            raise InvalidInput(
                "name the dataset whose new versions start the workflow", field="dataset"
            )
        return {"dataset": spec["dataset"], "every": float(every)}
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
    return due, sorted(_listing(spec["url"]))


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
            try:
                started += self._fire(trigger, cursor, now)
            except Exception as exc:  # one bad trigger must not stop the others
                log.warning(
                    "trigger %s of %s/%s failed: %s",
                    trigger.name,
                    trigger.project,
                    trigger.workflow,
                    exc,
                )
                retry = now + timedelta(seconds=60)
                with self.db.session() as session:
                    store.advance(session, trigger, retry, cursor=cursor, error=str(exc)[:2000])
        return started

    def _fire(self, trigger: WorkflowTrigger, cursor: Any, now: datetime) -> int:
        spec = trigger.spec
        if trigger.kind == "schedule":
            moment = trigger.due_at
            following = parse_cron(spec["cron"], spec["timezone"]).next_after(now)
            if not self._claim(trigger, following, cursor, fired=1):
                return 0
            self._start(trigger, {"time": moment.isoformat()}, f"{moment:%Y%m%dT%H%M%SZ}")
            return 1
        later = now + timedelta(seconds=spec["every"])
        if trigger.kind == "dataset":
            latest = _latest_version(self.db, trigger.project, spec["dataset"])
            seen = int(cursor or 0)
            versions = list(range(seen + 1, latest + 1))[:MAX_PER_LOOK]
            last = versions[-1] if versions else seen
            if not self._claim(trigger, later, last, fired=len(versions)):
                return 0
            for number in versions:
                ref = f"{spec['dataset']}@{number}"
                self._start(trigger, {"dataset": ref}, f"v{number}")
            return len(versions)
        listing = _listing(spec["url"])
        known = set(cursor or [])
        news = sorted(set(listing) - known)[:MAX_PER_LOOK]
        remembered = sorted((known & set(listing)) | set(news))[-MAX_SEEN:]
        if not self._claim(trigger, later, remembered, fired=len(news)):
            return 0
        for url in news:
            self._start(trigger, {"url": url}, _short(url))
        return len(news)

    def _claim(self, trigger: WorkflowTrigger, due_at: datetime, cursor: Any, fired: int) -> bool:
        with self.db.session() as session:
            return store.advance(session, trigger, due_at, cursor=cursor, fired=fired)

    def _start(self, trigger: WorkflowTrigger, event: dict[str, Any], suffix: str) -> None:
        base = trigger.input if isinstance(trigger.input, dict) else {}
        data = {**base, **event, "trigger": trigger.name}
        name = f"{trigger.name}-{suffix}"[:80]
        try:
            self.start(
                trigger.project,
                trigger.workflow,
                data,
                name=name,
                trigger=f"{trigger.kind}:{trigger.name}",
                started_by=f"trigger {trigger.name}",
            )
        except LoopmlError as exc:
            log.warning("trigger %s could not start %s: %s", trigger.name, trigger.workflow, exc)
            raise


def _latest_version(db: Database, project: str, dataset: str) -> int:
    with db.session() as session:
        try:
            return datasets.get_version(session, project, dataset).number
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


def _short(url: str) -> str:
    """The file's name, readable, and a hash of its whole URL (names repeat in folders)."""
    tail = url.rstrip("/").rsplit("/", 1)[-1]
    readable = "".join(c if c.isalnum() or c in "-_." else "-" for c in tail)[-40:]
    return f"{readable}-{hashlib.sha256(url.encode()).hexdigest()[:12]}"
