"""Two monitoring runs recording the same firing at the same moment open one alert, not
two (on SQLite and on PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from loopml.store import alerts, projects
from loopml.store.db import Database


def test_two_runs_at_once_open_one_alert(db: Database) -> None:
    with db.session() as s:
        projects.create(s, "shop")
    found = {"rule": "feature-drift", "check": "feature_drift", "subject": "age",
             "severity": "warning", "message": "`age` drifted", "details": {}}  # fmt: skip
    start = threading.Barrier(2)
    events: list[str] = []
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            start.wait()
            with db.session() as s:
                changes = alerts.record(s, "shop", "web", [found], run=name,
                                        cooldown=timedelta(hours=1))  # fmt: skip
            events.extend(c.event for c in changes)
        except BaseException as exc:  # reported below, with the other thread's outcome
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert sorted(events) == ["opened", "seen"]
    with db.session() as s:
        found_alerts: list[Any] = alerts.list_alerts(s, "shop")
    assert len(found_alerts) == 1 and found_alerts[0].count == 2
