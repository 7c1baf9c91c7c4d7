"""The ``monitoring.run`` job: a deployment's traffic over a window against its model's
reference, stored as a JSON report and an HTML page."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from loopml.core.alerts import AlertSettings
from loopml.core.errors import InvalidInput
from loopml.jobs.context import JobContext
from loopml.monitoring import DriftOptions
from loopml.monitoring.alerting import drift_options, firing, judged, quality_limits
from loopml.monitoring.notify import deliver, wanted
from loopml.monitoring.report_html import render
from loopml.monitoring.run import monitor, parse_window
from loopml.store import alerts, deployments, registry

PREFIX = "monitoring/reports"
CURRENT = timedelta(hours=1)  # a window ending this close to now speaks for the present


def _moment(text: str, name: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} {text!r} is not an ISO 8601 time", field=name) from None
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


def run_monitoring(
    ctx: JobContext,
    *,
    deployment: str,
    window: str = "24h",
    start: str | None = None,
    end: str | None = None,
    model_version: int | None = None,
    method: str | None = None,
    thresholds: dict[str, float] | None = None,
    drift_share: float | None = None,
) -> dict[str, Any]:
    """Monitor ``deployment`` over the last ``window`` (or ``start``..``end``); the model
    version is the one it serves unless ``model_version`` names another. Drift is
    decided by the project's alert settings unless ``method``, ``thresholds`` or
    ``drift_share`` say otherwise; a run of the served model applies the project's alert
    rules to the deployment's alerts and tells its notifiers."""
    project = str(ctx.job.project)
    finish = _moment(end, "end") if end else datetime.now(timezone.utc)
    begin = _moment(start, "start") if start else finish - parse_window(window)
    with ctx.db.session() as s:
        settings = alerts.get_settings(s, project)
        served = deployments.served(s, project, deployment)
        model = (
            served.model if model_version is None else registry.get_model(s, project, model_version)
        )
    ctx.log(f"monitoring {project}/{deployment} (model v{model.number}) from {begin} to {finish}")
    chosen = drift_options(settings)
    options = DriftOptions(
        method=method if method is not None else chosen.method,
        thresholds={**chosen.thresholds, **(thresholds or {})},
        drift_share=drift_share if drift_share is not None else chosen.drift_share,
    )
    with ctx.db.session() as s:
        labels = {
            f.prediction_id: f.label for f in deployments.list_feedback(s, project, deployment)
        }
    report = monitor(
        ctx.blobs, served.deployment, model, begin, finish, options.check(),
        quality_limits(settings), labels=labels,
        progress=lambda share: ctx.progress(0.9 * share, "reading captured traffic"),
    )  # fmt: skip
    ctx.progress(0.95, "writing the report")
    key = f"{PREFIX}/{project}/{deployment}/{ctx.job.id}"
    ctx.blobs.put(f"{key}.json", json.dumps(report, default=str).encode())
    ctx.blobs.put(f"{key}.html", render(report).encode())
    for line in report["summary"]:
        ctx.log(line)
    raised: dict[str, int] = {}
    refused = report["service"]["rejected"]["requests"]
    # Alerts are about now, by the project's rules: a look at last month, or with drift
    # options of the run's own, reports but neither raises nor resolves.
    current = finish >= datetime.now(timezone.utc) - CURRENT
    own = method is None and not thresholds and drift_share is None
    if (
        model.number == served.model.number
        and current
        and own
        and (report["service"]["requests"] or refused)
    ):
        raised = _alert(ctx, project, deployment, report, settings)
    drift = report["drift"]
    return {
        "deployment": deployment,
        "model_version": model.number,
        "window": report["window"],
        "requests": report["service"]["requests"],
        "dataset_drifted": drift["dataset_drifted"],
        "drifted_columns": drift["drifted_columns"],
        "quality_findings": len(report["quality"]),
        "summary": report["summary"],
        "report": f"{key}.json",
        "report_html": f"{key}.html",
        "alerts": raised,
    }


def _alert(
    ctx: JobContext, project: str, deployment: str, report: dict[str, Any], settings: AlertSettings
) -> dict[str, int]:
    """Apply the project's rules to the deployment's alerts; tell its notifiers."""
    found = [
        {"rule": f.rule.name, "check": f.rule.check, "subject": f.subject,
         "severity": f.rule.severity, "message": f.message, "details": f.details}
        for f in firing(report, settings)
    ]  # fmt: skip
    with ctx.db.session() as s:
        changes = alerts.record(
            s, project, deployment, found, run=ctx.job.id,
            cooldown=timedelta(minutes=settings.cooldown_minutes), judged=judged(report),
        )  # fmt: skip
    counts = {"firing": len(found), "opened": 0, "resolved": 0, "notifications_failed": 0}
    for change in changes:
        if change.event in ("opened", "resolved"):
            counts[change.event] += 1
            ctx.log(f"alert {change.event}: {change.alert.message}")
        if not change.notify:
            continue
        for notifier in settings.notifiers:
            if not wanted(notifier, change.alert):
                continue
            sent = deliver(notifier, change.alert, change.event)
            counts["notifications_failed"] += sent.error is not None
            with ctx.db.session() as s:
                alerts.add_notification(
                    s, change.alert.id, notifier=sent.notifier, kind=sent.kind,
                    event=change.event, error=sent.error, attempts=sent.attempts,
                )  # fmt: skip
    return counts
