"""``loopml monitor alerts|alert|ack|resolve|settings``: the alerts monitoring runs
raise, and a project's alert rules and notifiers."""

from __future__ import annotations

import json
from pathlib import Path

import typer
import yaml
from rich.markup import escape

from loopml.cli.context import state
from loopml.cli.monitor import monitor_app
from loopml.cli.output import console, fields, print_json, table
from loopml.core.errors import InvalidInput

PROJECT = typer.Option(..., "--project", "-p", help="Project.")
JSON = typer.Option(False, "--json", help="Print JSON.")
NOTE = typer.Option("", "--note", "-m", help="Why, for the record.")
ALERT = typer.Argument(..., metavar="ALERT", help="An alert id (loopml monitor alerts).")


@monitor_app.command("alerts")
def list_alerts(
    ctx: typer.Context,
    project: str = PROJECT,
    alert_state: str = typer.Option(None, "--state", help="open, acknowledged or resolved."),
    deployment: str = typer.Option(None, "--deployment", "-d", help="Only this deployment."),
    as_json: bool = JSON,
) -> None:
    """The project's alerts, most recently seen first."""
    found = state(ctx).client().alerts.list(project, state=alert_state, deployment=deployment)
    if as_json:
        print_json(found)
        return
    rows = [(a.id, f"{a.state} ({a.severity})", f"{a.deployment}: {a.rule}", a.message)
            for a in found]  # fmt: skip
    table(f"Alerts of {project}", ["alert", "state", "where", "message"], rows)


@monitor_app.command("alert")
def show_alert(
    ctx: typer.Context, alert_id: str = ALERT, project: str = PROJECT, as_json: bool = JSON
) -> None:
    """One alert and the notifications sent about it (failures included)."""
    alert = state(ctx).client().alerts.get(project, alert_id)
    if as_json:
        print_json(alert)
        return
    fields(
        f"alert {alert.id}",
        {
            "state": alert.state, "severity": alert.severity, "deployment": alert.deployment,
            "rule": f"{alert.rule} ({alert.check})", "subject": alert.subject or "-",
            "message": alert.message, "seen": f"{alert.count} time(s)",
            "first seen": alert.first_seen.isoformat(timespec="seconds"),
            "last seen": alert.last_seen.isoformat(timespec="seconds"),
            "acknowledged by": alert.acknowledged_by, "resolution": alert.resolution,
        },
    )  # fmt: skip
    rows = [
        (n.created_at.isoformat(timespec="seconds"), n.notifier, n.kind, n.event, n.state,
         n.attempts, n.error or "")
        for n in alert.notifications
    ]  # fmt: skip
    table("Notifications", ["at", "notifier", "kind", "event", "state", "attempts", "error"], rows)


@monitor_app.command("ack")
def acknowledge(
    ctx: typer.Context, alert_id: str = ALERT, project: str = PROJECT, note: str = NOTE
) -> None:
    """Acknowledge an open alert: notifiers are not told again while it keeps firing."""
    alert = state(ctx).client().alerts.acknowledge(project, alert_id, note)
    console.print(f"alert {alert.id} acknowledged by {escape(alert.acknowledged_by or '')}")


@monitor_app.command("resolve")
def resolve(
    ctx: typer.Context, alert_id: str = ALERT, project: str = PROJECT, note: str = NOTE
) -> None:
    """Resolve an alert by hand; a later run that finds it firing raises it again."""
    alert = state(ctx).client().alerts.resolve(project, alert_id, note)
    console.print(f"alert {alert.id} resolved: {escape(alert.resolution or '')}")


@monitor_app.command("settings")
def settings(
    ctx: typer.Context,
    project: str = PROJECT,
    set_from: Path = typer.Option(
        None, "--set", help="Replace them with this JSON or YAML file (rules, notifiers ...)."
    ),
    as_json: bool = JSON,
) -> None:
    """Show (or replace) the project's alert rules, notifiers and drift options; secrets
    show as ***, and *** sent back keeps the stored secret."""
    client = state(ctx).client()
    if set_from is not None:
        try:
            wanted = yaml.safe_load(set_from.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise InvalidInput(f"{set_from}: cannot read settings: {exc}", field="set") from None
        if not isinstance(wanted, dict):
            raise InvalidInput(f"{set_from}: settings are a mapping", field="set")
        shown = client.alerts.set_settings(project, wanted)
    else:
        shown = client.alerts.settings(project)
    if as_json:
        print_json(shown)
        return
    rows = [
        (r["name"], r["check"], "" if r["threshold"] is None else r["threshold"], r["severity"],
         "yes" if r["enabled"] else "no")
        for r in shown["rules"]
    ]  # fmt: skip
    table(f"Alert rules of {project}", ["rule", "check", "threshold", "severity", "on"], rows)
    for notifier in shown["notifiers"]:
        where = notifier.get("url") or ", ".join(notifier.get("to", [])) or "the server log"
        console.print(f"notifier {escape(notifier['name'])} ({notifier['kind']}): {escape(where)}")
    tests = json.dumps(shown["drift_thresholds"]) if shown["drift_thresholds"] else "default"
    console.print(
        f"cool-down {shown['cooldown_minutes']:g} min; dataset drift at "
        f"{shown['drift_share']:.0%} of columns; test thresholds {escape(tests)}"
    )
