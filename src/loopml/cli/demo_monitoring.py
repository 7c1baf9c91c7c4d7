"""The demo's monitoring step: the deployment gets traffic whose tumours look larger than
those it was trained on, people label the answers, and a monitoring run finds the drift,
measures the model on the labels, raises alerts and draws the report."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

from loopml.cli.jobs import follow
from loopml.cli.output import console
from loopml.core.errors import StorageError
from loopml.sdk import Client

SHIFTED = ("mean radius", "mean area", "worst radius")


def monitoring_step(
    client: Client, project: str, deployment: str, dataset: str, home: Path, step: int
) -> None:
    # Critical alerts go to the server's log; the rest are listed below.
    client.alerts.set_settings(
        project, {"notifiers": [{"kind": "log", "name": "log", "min_severity": "critical"}]}
    )
    # The window starts now: earlier steps asked about the same test rows several times.
    start = datetime.now(timezone.utc)
    rows = json.loads(client.datasets.rows(project, dataset, part="test", format="json"))
    truth = [row.pop("target") for row in rows]
    larger = [{**row, **{c: row[c] * 1.4 for c in SHIFTED}} for row in rows]
    answers = client.deployments.predict(project, deployment, larger)["predictions"]
    for answer, actual in zip(answers, truth, strict=True):
        client.deployments.feedback(project, deployment, answer["prediction_id"], str(actual))
    console.print(
        f"[green]{step}.[/] monitoring: the {len(rows)} test rows come back with their "
        f"{', '.join(SHIFTED)} 40% larger, and people label the answers (feedback); a "
        "monitoring run compares this traffic with the training data:"
    )
    time.sleep(1.5)  # captures are written about once a second
    job = follow(client, client.monitoring.start(project, deployment, start=start.isoformat()))
    if job.state.value != "succeeded" or job.result is None:
        raise StorageError(f"monitoring job {job.state.value}: {job.error}")
    report = client.monitoring.report(project, deployment, job.id)
    for line in report["summary"][:4]:
        console.print(f"   {line}")
    opened = client.alerts.list(project, state="open", deployment=deployment)
    console.print(
        f"   {len(opened)} open alert(s), e.g. "
        + "; ".join(f"{a.rule}: {a.subject or a.message}" for a in opened[:3])
    )
    page = home / "demo-monitoring.html"
    page.write_text(client.monitoring.report_html(project, deployment, job.id), "utf-8")
    console.print(
        f"   the report with its plots: [bold]{page.resolve()}[/]; `loopml monitor schedule "
        f"{project}/{deployment}` runs it every hour"
    )
