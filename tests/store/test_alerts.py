"""Alerts in the metadata DB (SQLite and PostgreSQL): one monitoring run's firings applied
to a deployment's alerts (deduplicated, repeated after the cool-down, resolved when they
stop, reopened quietly), acknowledging and resolving by hand, notifications, and a
project's alert settings with their secrets."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from loopml.core.alerts import AlertSettings
from loopml.core.errors import Conflict, LoopmlError, NotFound
from loopml.store import alerts, projects
from loopml.store.db import Database

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
HOUR = timedelta(minutes=60)


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def drift(column: str = "petal length (cm)", message: str = "") -> dict[str, Any]:
    return {
        "rule": "feature-drift",
        "check": "feature_drift",
        "subject": column,
        "severity": "warning",
        "message": message or f"`{column}` drifted",
        "details": {"test": "ks", "statistic": 0.001, "threshold": 0.05},
    }


@pytest.fixture
def shop(db: Database) -> Database:
    with db.session() as s:
        projects.create(s, "shop")
        projects.create(s, "other")
    return db


def record(
    db: Database,
    found: list[dict[str, Any]],
    at: datetime,
    *,
    deployment: str = "web",
    run: str | None = "run",
    cooldown: timedelta = HOUR,
) -> list[alerts.Change]:
    with db.session() as s:
        return alerts.record(s, "shop", deployment, found, run=run, cooldown=cooldown, now=at)


def events(changes: list[alerts.Change]) -> list[tuple[str, str, bool]]:
    return sorted((c.alert.subject, c.event, c.notify) for c in changes)


def test_a_new_firing_opens_an_alert_and_notifies(shop: Database) -> None:
    [change] = record(shop, [drift()], T0, run="run-1")
    assert (change.event, change.notify) == ("opened", True)
    alert = change.alert
    assert alert.state == "open" and alert.count == 1
    assert (alert.project, alert.deployment, alert.rule, alert.check) == (
        "shop", "web", "feature-drift", "feature_drift",
    )  # fmt: skip
    assert alert.subject == "petal length (cm)" and alert.severity == "warning"
    assert alert.message == "`petal length (cm)` drifted"
    assert alert.details == {"test": "ks", "statistic": 0.001, "threshold": 0.05}
    assert alert.first_seen == alert.last_seen == T0
    assert alert.run == "run-1"
    with shop.session() as s:
        assert alerts.get_alert(s, "shop", alert.id) == alert


def test_the_same_firing_within_the_cool_down_is_seen_quietly(shop: Database) -> None:
    [opened] = record(shop, [drift()], T0)
    [again] = record(shop, [drift(message="still drifting")], minutes(10), run="run-2")
    assert (again.event, again.notify) == ("seen", False)
    assert again.alert.id == opened.alert.id
    assert again.alert.count == 2
    assert again.alert.first_seen == T0 and again.alert.last_seen == minutes(10)
    assert again.alert.message == "still drifting" and again.alert.run == "run-2"
    with shop.session() as s:
        assert len(alerts.list_alerts(s, "shop")) == 1


def test_an_open_alert_is_repeated_once_per_cool_down(shop: Database) -> None:
    record(shop, [drift()], T0)
    assert events(record(shop, [drift()], minutes(59))) == [("petal length (cm)", "seen", False)]
    assert events(record(shop, [drift()], minutes(60))) == [("petal length (cm)", "repeated", True)]
    # The cool-down counts from when notifiers last heard of it.
    assert events(record(shop, [drift()], minutes(100))) == [("petal length (cm)", "seen", False)]
    [change] = record(shop, [drift()], minutes(121))
    assert (change.event, change.notify, change.alert.count) == ("repeated", True, 5)


def test_an_acknowledged_alert_is_never_repeated(shop: Database) -> None:
    [opened] = record(shop, [drift()], T0)
    with shop.session() as s:
        alerts.acknowledge(s, "shop", opened.alert.id, "ana", "looking into it")
    for hours in (2, 5, 30):
        [change] = record(shop, [drift()], T0 + timedelta(hours=hours))
        assert (change.event, change.notify) == ("seen", False)
        assert change.alert.state == "acknowledged"


def test_an_alert_that_no_longer_fires_is_resolved_and_notified(shop: Database) -> None:
    opened = record(shop, [drift("a"), drift("b")], T0)
    assert events(opened) == [("a", "opened", True), ("b", "opened", True)]
    with shop.session() as s:
        alerts.acknowledge(s, "shop", opened[1].alert.id, "ana", "")
    changes = record(shop, [drift("a")], minutes(10), run="run-7")
    assert events(changes) == [("a", "seen", False), ("b", "resolved", True)]
    gone = next(c.alert for c in changes if c.event == "resolved")
    assert gone.state == "resolved" and gone.resolved_at == minutes(10)
    assert gone.resolution == "no longer found by monitoring (run run-7)"
    with shop.session() as s:
        assert [a.subject for a in alerts.list_alerts(s, "shop", state="open")] == ["a"]
    # Resolved alerts stay resolved when the next run finds nothing either.
    assert events(record(shop, [], minutes(20))) == [("a", "resolved", True)]
    assert record(shop, [], minutes(30)) == []


def test_an_alert_resolved_less_than_the_cool_down_ago_reopens_quietly(shop: Database) -> None:
    [opened] = record(shop, [drift()], T0)
    record(shop, [], minutes(10))
    [back] = record(shop, [drift()], minutes(40))
    assert (back.event, back.notify) == ("reopened", False)
    assert back.alert.id == opened.alert.id
    assert back.alert.state == "open"
    assert back.alert.resolved_at is None and back.alert.resolution is None
    assert back.alert.count == 2
    with shop.session() as s:
        assert [a.id for a in alerts.list_alerts(s, "shop")] == [opened.alert.id]


def test_a_quietly_reopened_alert_is_not_repeated_right_after_its_resolution(
    shop: Database,
) -> None:
    # Notifiers heard "resolved" at minute 100; the alert reopens quietly at 110 and is
    # still firing at 115: they last heard of it 15 minutes ago, less than the cool-down.
    record(shop, [drift()], T0)
    assert events(record(shop, [], minutes(100))) == [("petal length (cm)", "resolved", True)]
    assert events(record(shop, [drift()], minutes(110))) == [
        ("petal length (cm)", "reopened", False)
    ]
    assert events(record(shop, [drift()], minutes(115))) == [("petal length (cm)", "seen", False)]
    # A cool-down after the resolution it is repeated.
    assert events(record(shop, [drift()], minutes(160))) == [
        ("petal length (cm)", "repeated", True)
    ]


def test_an_alert_resolved_longer_ago_opens_a_new_one(shop: Database) -> None:
    [first] = record(shop, [drift()], T0)
    record(shop, [], minutes(10))
    [second] = record(shop, [drift()], minutes(71))
    assert (second.event, second.notify) == ("opened", True)
    assert second.alert.id != first.alert.id
    assert second.alert.count == 1 and second.alert.first_seen == minutes(71)
    with shop.session() as s:
        assert alerts.get_alert(s, "shop", first.alert.id).state == "resolved"
        assert {a.id for a in alerts.list_alerts(s, "shop")} == {first.alert.id, second.alert.id}


def test_other_deployments_alerts_are_untouched(shop: Database) -> None:
    [web] = record(shop, [drift()], T0, deployment="web")
    [api] = record(shop, [drift()], T0, deployment="api")
    assert web.alert.id != api.alert.id
    assert events(record(shop, [], minutes(5), deployment="web")) == [
        ("petal length (cm)", "resolved", True)
    ]
    with shop.session() as s:
        assert alerts.get_alert(s, "shop", api.alert.id).state == "open"
    [again] = record(shop, [drift()], minutes(6), deployment="api")
    assert (again.event, again.alert.count) == ("seen", 2)


def test_the_same_rule_on_another_subject_is_another_alert(shop: Database) -> None:
    record(shop, [drift("a")], T0)
    changes = record(shop, [drift("a"), drift("b")], minutes(5))
    assert events(changes) == [("a", "seen", False), ("b", "opened", True)]


# --- acknowledging and resolving by hand ------------------------------------------------


def test_acknowledge_then_resolve(shop: Database) -> None:
    [opened] = record(shop, [drift()], T0)
    key = opened.alert.id
    with shop.session() as s:
        acked = alerts.acknowledge(s, "shop", key, "ana", "on it")
    assert acked.state == "acknowledged" and acked.acknowledged_by == "ana"
    assert acked.acknowledged_at is not None
    with shop.session() as s:
        done = alerts.resolve(s, "shop", key, "bob", "retrained")
    assert done.state == "resolved" and done.resolved_at is not None
    assert done.resolution == "resolved by bob: retrained"


def test_wrong_transitions_are_conflicts(shop: Database) -> None:
    [opened] = record(shop, [drift()], T0)
    key = opened.alert.id
    with shop.session() as s:
        alerts.acknowledge(s, "shop", key, "ana", "")
    with pytest.raises(Conflict) as twice, shop.session() as s:
        alerts.acknowledge(s, "shop", key, "ana", "")
    assert twice.value.field == "alert" and "acknowledged" in twice.value.message
    with shop.session() as s:
        assert alerts.resolve(s, "shop", key, "ana", "").resolution == "resolved by ana"
    with pytest.raises(Conflict) as again, shop.session() as s:
        alerts.resolve(s, "shop", key, "ana", "")
    assert "already resolved" in again.value.message
    with pytest.raises(Conflict) as late, shop.session() as s:
        alerts.acknowledge(s, "shop", key, "ana", "")
    assert f"alert {key} is resolved" in late.value.message
    with shop.session() as s:
        assert alerts.get_alert(s, "shop", key).resolution == "resolved by ana"


@pytest.mark.parametrize("action", ["get", "acknowledge", "resolve"])
def test_another_projects_alert_is_not_found(shop: Database, action: str) -> None:
    [opened] = record(shop, [drift()], T0)
    key = opened.alert.id
    for project, alert_id in (("other", key), ("shop", "no-such-alert")):
        with pytest.raises(NotFound) as err, shop.session() as s:
            if action == "get":
                alerts.get_alert(s, project, alert_id)
            else:
                getattr(alerts, action)(s, project, alert_id, "ana", "")
        assert err.value.field == "alert"
        assert repr(alert_id) in err.value.message and repr(project) in err.value.message
    with shop.session() as s:
        assert alerts.get_alert(s, "shop", key).state == "open"


# --- notifications and listing -------------------------------------------------------------


def test_notifications_are_kept_with_the_alert_in_order(shop: Database) -> None:
    [opened] = record(shop, [drift()], T0)
    key = opened.alert.id
    with shop.session() as s:
        alerts.add_notification(
            s, key, notifier="crm", kind="webhook", event="opened", error=None, attempts=2
        )
        alerts.add_notification(
            s, key, notifier="ops", kind="email", event="opened",
            error="ConnectionRefusedError: refused", attempts=3,
        )  # fmt: skip
    with shop.session() as s:
        notes = alerts.get_alert(s, "shop", key).notifications
        assert alerts.list_alerts(s, "shop")[0].notifications == []
    assert [(n.notifier, n.kind, n.event, n.state, n.attempts) for n in notes] == [
        ("crm", "webhook", "opened", "sent", 2),
        ("ops", "email", "opened", "failed", 3),
    ]
    assert notes[0].sent_at is not None and notes[0].error is None
    assert notes[1].sent_at is None and notes[1].error == "ConnectionRefusedError: refused"


def test_list_alerts_filters_by_state_and_deployment(shop: Database) -> None:
    [a] = record(shop, [drift("a")], T0, deployment="web")
    [b] = record(shop, [drift("b")], minutes(1), deployment="api")
    [c] = record(shop, [drift("c")], minutes(2), deployment="batch")
    [d] = record(shop, [drift("a"), drift("d")], minutes(3), deployment="web")[1:]
    with shop.session() as s:
        alerts.acknowledge(s, "shop", b.alert.id, "ana", "")
        alerts.resolve(s, "shop", c.alert.id, "ana", "")
    with shop.session() as s:

        def ids(**kw: Any) -> list[str]:
            return [x.id for x in alerts.list_alerts(s, "shop", **kw)]

        # Most recently seen first.
        assert ids()[2:] == [c.alert.id, b.alert.id]
        assert set(ids()[:2]) == {a.alert.id, d.alert.id}
        assert set(ids(state="open")) == {a.alert.id, d.alert.id}
        assert ids(state="acknowledged") == [b.alert.id]
        assert ids(state="resolved") == [c.alert.id]
        assert set(ids(deployment="web")) == {a.alert.id, d.alert.id}
        assert ids(deployment="api") == [b.alert.id]
        assert ids(deployment="batch", state="open") == []
        assert len(ids(limit=1)) == 1
        assert alerts.list_alerts(s, "other") == []


# --- settings ------------------------------------------------------------------------------


def hooked(secret: str, password: str) -> AlertSettings:
    return AlertSettings.model_validate(
        {
            "cooldown_minutes": 15,
            "notifiers": [
                {"kind": "webhook", "name": "crm", "url": "https://crm.example.com/h",
                 "secret": secret},
                {"kind": "email", "name": "ops", "host": "mail", "sender": "a@example.com",
                 "to": ["b@example.com"], "username": "u", "password": password},
            ],
        }
    )  # fmt: skip


def test_settings_are_the_defaults_until_set(shop: Database) -> None:
    with shop.session() as s:
        assert alerts.get_settings(s, "shop") == AlertSettings()
        stored = alerts.set_settings(s, "shop", hooked("first-secret", "first-password"))
    assert stored.cooldown_minutes == 15
    with shop.session() as s:
        again = alerts.get_settings(s, "shop")
        assert again == stored
        assert again.notifiers[0].secret == "first-secret"  # type: ignore[union-attr]
        assert alerts.get_settings(s, "other") == AlertSettings()


def test_an_email_password_sent_back_as_stars_keeps_the_stored_one(shop: Database) -> None:
    with shop.session() as s:
        alerts.set_settings(s, "shop", hooked("first-secret", "first-password"))
    with shop.session() as s:
        shown = alerts.get_settings(s, "shop").shown()
    shown["notifiers"][1]["password"] = "***"
    shown["notifiers"][0]["secret"] = "second-secret"  # a new one replaces the old
    shown["cooldown_minutes"] = 5
    with shop.session() as s:
        kept = alerts.set_settings(s, "shop", AlertSettings.model_validate(shown))
    assert kept.notifiers[1].password == "first-password"  # type: ignore[union-attr]
    assert kept.notifiers[0].secret == "second-secret"  # type: ignore[union-attr]
    with shop.session() as s:
        assert alerts.get_settings(s, "shop") == kept


def test_settings_as_shown_sent_back_keep_the_webhook_secret(shop: Database) -> None:
    with shop.session() as s:
        alerts.set_settings(s, "shop", hooked("first-secret", "first-password"))
    with shop.session() as s:
        shown = alerts.get_settings(s, "shop").shown()
    assert shown["notifiers"][0]["secret"] == "***"
    with shop.session() as s:
        kept = alerts.set_settings(s, "shop", AlertSettings.model_validate(shown))
    assert kept.notifiers[0].secret == "first-secret"  # type: ignore[union-attr]
    assert kept.notifiers[1].password == "first-password"  # type: ignore[union-attr]


def test_stars_without_a_stored_secret_are_refused_naming_the_notifier(shop: Database) -> None:
    with shop.session() as s:
        alerts.set_settings(s, "shop", hooked("first-secret", "first-password"))
    shown = hooked("first-secret", "first-password").shown()
    shown["notifiers"][1]["name"] = "new-mail"  # no password stored under this name
    wanted = AlertSettings.model_validate({**shown, "notifiers": [shown["notifiers"][1]]})
    with pytest.raises(LoopmlError) as err, shop.session() as s:
        alerts.set_settings(s, "shop", wanted)
    assert "'new-mail' has no stored password" in err.value.message
    assert err.value.field == "notifiers.new-mail.password"
    with shop.session() as s:
        # Nothing changed.
        assert alerts.get_settings(s, "shop").cooldown_minutes == 15
        assert alerts.get_settings(s, "shop").notifiers[1].name == "ops"
