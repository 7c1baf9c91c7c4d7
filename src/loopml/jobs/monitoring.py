"""The ``monitoring.run`` job: a deployment's traffic over a window against its model's
reference, stored as a JSON report and an HTML page."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from loopml.core.errors import InvalidInput
from loopml.jobs.context import JobContext
from loopml.monitoring import DriftOptions, QualityLimits
from loopml.monitoring.report_html import render
from loopml.monitoring.run import monitor, parse_window
from loopml.store import deployments, registry

PREFIX = "monitoring/reports"


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
    drift_share: float = 0.5,
) -> dict[str, Any]:
    """Monitor ``deployment`` over the last ``window`` (or ``start``..``end``); the model
    version is the one it serves unless ``model_version`` names another."""
    project = str(ctx.job.project)
    finish = _moment(end, "end") if end else datetime.now(timezone.utc)
    begin = _moment(start, "start") if start else finish - parse_window(window)
    options = DriftOptions(method=method, thresholds=thresholds or {}, drift_share=drift_share)
    with ctx.db.session() as s:
        served = deployments.served(s, project, deployment)
        model = (
            served.model if model_version is None else registry.get_model(s, project, model_version)
        )
    ctx.log(f"monitoring {project}/{deployment} (model v{model.number}) from {begin} to {finish}")
    report = monitor(
        ctx.blobs, served.deployment, model, begin, finish, options.check(), QualityLimits(),
        progress=lambda share: ctx.progress(0.9 * share, "reading captured traffic"),
    )  # fmt: skip
    ctx.progress(0.95, "writing the report")
    key = f"{PREFIX}/{project}/{deployment}/{ctx.job.id}"
    ctx.blobs.put(f"{key}.json", json.dumps(report, default=str).encode())
    ctx.blobs.put(f"{key}.html", render(report).encode())
    for line in report["summary"]:
        ctx.log(line)
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
    }
