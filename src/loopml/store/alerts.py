"""Alerts in the metadata DB: a project's alert settings, alerts raised by monitoring
runs (deduplicated by fingerprint, with a cool-down), their states and notifications."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from loopml.core.alerts import SECRET_FIELDS, Alert, AlertSettings, Notification
from loopml.core.errors import Conflict, InvalidInput, NotFound
from loopml.core.ids import new_id
from loopml.store.models import AlertRow, NotificationRow, ProjectRow, utcnow
from loopml.store.projects import project_id

ACTIVE = ("open", "acknowledged")


def get_settings(session: Session, project: str) -> AlertSettings:
    """The project's alert settings (the defaults until it sets its own)."""
    row = session.get(ProjectRow, project_id(session, project))
    assert row is not None
    return AlertSettings.model_validate(row.alerting or {})


def set_settings(session: Session, project: str, settings: AlertSettings) -> AlertSettings:
    """Replace the project's alert settings. A secret sent back as ``"***"`` (as GET
    shows it) keeps the stored one of the notifier with the same name."""
    row = session.get(ProjectRow, project_id(session, project))
    assert row is not None
    stored = {n["name"]: n for n in (row.alerting or {}).get("notifiers", [])}
    data = settings.model_dump(mode="json")
    for notifier in data["notifiers"]:
        before = stored.get(notifier["name"], {})
        # A kept secret goes only where it went: not to a new URL, host or user.
        same = all(before.get(k) == notifier.get(k) for k in ("kind", "url", "host", "username"))
        for name in SECRET_FIELDS:
            if notifier.get(name) == "***":
                kept = before.get(name) if same else None
                if kept is None:
                    raise InvalidInput(
                        f"notifier {notifier['name']!r} has no stored {name} for this "
                        f"destination to keep; send it",
                        field=f"notifiers.{notifier['name']}.{name}",
                    )
                notifier[name] = kept
    row.alerting = data
    session.flush()
    return AlertSettings.model_validate(data)


@dataclass(frozen=True)
class Change:
    """What a monitoring run did to an alert, and whether notifiers hear of it."""

    alert: Alert
    event: str  # opened | repeated | resolved | seen | reopened
    notify: bool


def record(
    session: Session,
    project: str,
    deployment: str,
    found: list[dict[str, Any]],
    *,
    run: str | None,
    cooldown: timedelta,
    now: datetime | None = None,
    judged: frozenset[str] | None = None,
) -> list[Change]:
    """Apply one monitoring run's firings to the deployment's alerts.

    ``found`` items have ``rule``, ``check``, ``subject``, ``severity``, ``message`` and
    ``details``. A firing with an active alert of the same fingerprint updates it (and
    is repeated to notifiers once ``cooldown`` has passed since they last heard, unless
    someone acknowledged it); one whose alert was resolved less than ``cooldown`` ago
    reopens it quietly; others open new alerts. Active alerts of the deployment that no
    longer fire are resolved, unless ``judged`` (the checks this run could decide) leaves
    their check out.
    """
    pid = project_id(session, project)
    # One run at a time records a project's alerts (two at once would both open the same
    # one): a write to the project row takes its lock (PostgreSQL: the row; SQLite: the
    # database) until commit. The time is read after it, so alerts are first seen in
    # the order they are committed, which an alert trigger's cursor relies on.
    session.execute(update(ProjectRow).where(ProjectRow.id == pid).values(id=pid))
    now = now or utcnow()
    active = {
        row.fingerprint: row
        for row in session.scalars(
            select(AlertRow).where(
                AlertRow.project_id == pid,
                AlertRow.deployment == deployment,
                AlertRow.state.in_(ACTIVE),
            )
        )
    }
    changes: list[Change] = []
    seen: set[str] = set()
    for item in found:
        key = fingerprint(deployment, item["rule"], item["subject"])
        seen.add(key)
        row = active.get(key)
        if row is None:
            row, event = _reopened_or_new(session, pid, deployment, key, item, cooldown, now)
        else:
            event = "seen"
        _update(row, item, run, now)
        notify = event == "opened"
        told = row.notified_at
        if event == "seen" and row.state == "open" and told is not None and now - told >= cooldown:
            event, notify = "repeated", True
        if notify:
            row.notified_at = now
        changes.append(Change(alert_entity(row, project), event, notify))
    for key, row in active.items():
        if key not in seen and (judged is None or row.check in judged):
            row.state, row.resolved_at, row.notified_at = "resolved", now, now
            row.resolution = "no longer found by monitoring" + (f" (run {run})" if run else "")
            changes.append(Change(alert_entity(row, project), "resolved", True))
    session.flush()
    return changes


def _reopened_or_new(
    session: Session,
    pid: str,
    deployment: str,
    key: str,
    item: dict[str, Any],
    cooldown: timedelta,
    now: datetime,
) -> tuple[AlertRow, str]:
    last = session.scalars(
        select(AlertRow)
        .where(AlertRow.project_id == pid, AlertRow.fingerprint == key)
        .order_by(AlertRow.resolved_at.desc())
        .limit(1)
    ).first()
    if last is not None and last.resolved_at is not None and now - last.resolved_at < cooldown:
        last.state, last.resolved_at, last.resolution = "open", None, None
        last.acknowledged_by = last.acknowledged_at = None
        return last, "reopened"
    row = AlertRow(
        id=new_id(), project_id=pid, deployment=deployment, rule=item["rule"],
        check=item["check"], subject=item["subject"], fingerprint=key, state="open",
        severity=item["severity"], message=item["message"], details={}, count=0,
        first_seen=now, last_seen=now,
    )  # fmt: skip
    session.add(row)
    return row, "opened"


def _update(row: AlertRow, item: dict[str, Any], run: str | None, now: datetime) -> None:
    row.count += 1
    row.last_seen = now
    row.message = item["message"]
    row.details = item["details"]
    row.severity = item["severity"]
    row.run_id = run


def fingerprint(deployment: str, rule: str, subject: str) -> str:
    return f"{deployment}\x1f{rule}\x1f{subject}"[:400]


def add_notification(
    session: Session,
    alert_id: str,
    *,
    notifier: str,
    kind: str,
    event: str,
    error: str | None,
    attempts: int,
) -> Notification:
    row = NotificationRow(
        id=new_id(), alert_id=alert_id, notifier=notifier, kind=kind, event=event,
        state="failed" if error else "sent", attempts=attempts, error=error,
        created_at=utcnow(), sent_at=None if error else utcnow(),
    )  # fmt: skip
    session.add(row)
    session.flush()
    return _notification(row)


def list_alerts(
    session: Session,
    project: str,
    *,
    state: str | None = None,
    deployment: str | None = None,
    limit: int = 100,
) -> list[Alert]:
    query = (
        select(AlertRow)
        .where(AlertRow.project_id == project_id(session, project))
        .order_by(AlertRow.last_seen.desc(), AlertRow.id)
        .limit(limit)
    )
    if state is not None:
        query = query.where(AlertRow.state == state)
    if deployment is not None:
        query = query.where(AlertRow.deployment == deployment)
    return [alert_entity(row, project) for row in session.scalars(query)]


def opened_after(
    session: Session,
    project: str,
    after: tuple[datetime, str],
    *,
    deployment: str | None = None,
    rule: str | None = None,
    severities: tuple[str, ...] = ("info", "warning", "critical"),
    limit: int = 100,
) -> list[Alert]:
    """Alerts first seen after ``after`` (a time and an id, for ties), oldest first."""
    at, last = after
    query = (
        select(AlertRow)
        .where(
            AlertRow.project_id == project_id(session, project),
            AlertRow.severity.in_(severities),
            (AlertRow.first_seen > at) | ((AlertRow.first_seen == at) & (AlertRow.id > last)),
        )
        .order_by(AlertRow.first_seen, AlertRow.id)
        .limit(limit)
    )
    if deployment is not None:
        query = query.where(AlertRow.deployment == deployment)
    if rule is not None:
        query = query.where(AlertRow.rule == rule)
    return [alert_entity(row, project) for row in session.scalars(query)]


def get_alert(session: Session, project: str, alert_id: str) -> Alert:
    row = _row(session, project, alert_id)
    notes = session.scalars(
        select(NotificationRow)
        .where(NotificationRow.alert_id == row.id)
        .order_by(NotificationRow.created_at, NotificationRow.id)
    )
    alert = alert_entity(row, project)
    alert.notifications = [_notification(n) for n in notes]
    return alert


def acknowledge(session: Session, project: str, alert_id: str, actor: str, note: str) -> Alert:
    """Someone is on it: notifiers are not told again while it keeps firing."""
    row = _row(session, project, alert_id)
    if row.state != "open":
        raise Conflict(f"alert {alert_id} is {row.state}; only an open alert can be acknowledged",
                       field="alert")  # fmt: skip
    row.state, row.acknowledged_by, row.acknowledged_at = "acknowledged", actor, utcnow()
    if note:
        row.details = {**(row.details or {}), "acknowledged_note": note}
    session.flush()
    return get_alert(session, project, alert_id)


def resolve(session: Session, project: str, alert_id: str, actor: str, note: str) -> Alert:
    """Close an alert by hand; the next run that finds it firing opens it again."""
    row = _row(session, project, alert_id)
    if row.state == "resolved":
        raise Conflict(f"alert {alert_id} is already resolved", field="alert")
    row.state, row.resolved_at = "resolved", utcnow()
    row.resolution = f"resolved by {actor}" + (f": {note}" if note else "")
    session.flush()
    return get_alert(session, project, alert_id)


def _row(session: Session, project: str, alert_id: str) -> AlertRow:
    row = session.get(AlertRow, alert_id)
    if row is None or row.project_id != project_id(session, project):
        raise NotFound(f"alert {alert_id!r} does not exist in project {project!r}", field="alert")
    return row


def alert_entity(row: AlertRow, project: str) -> Alert:
    return Alert.model_validate(
        {
            "id": row.id, "project": project, "deployment": row.deployment, "rule": row.rule,
            "check": row.check, "subject": row.subject, "state": row.state,
            "severity": row.severity, "message": row.message, "details": row.details or {},
            "count": row.count, "first_seen": row.first_seen, "last_seen": row.last_seen,
            "run": row.run_id, "acknowledged_by": row.acknowledged_by,
            "acknowledged_at": row.acknowledged_at, "resolved_at": row.resolved_at,
            "resolution": row.resolution,
        }
    )  # fmt: skip


def _notification(row: NotificationRow) -> Notification:
    return Notification.model_validate(
        {
            "id": row.id, "notifier": row.notifier, "kind": row.kind, "event": row.event,
            "state": row.state, "attempts": row.attempts, "error": row.error,
            "created_at": row.created_at, "sent_at": row.sent_at,
        }
    )  # fmt: skip
