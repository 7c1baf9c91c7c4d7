"""Monitoring runs of a deployment: start one, list them, read their reports."""

from __future__ import annotations

import builtins
from typing import Any

from loopml.core.schemas import Job
from loopml.sdk.resource import Resource


class Monitoring(Resource):
    def start(
        self,
        project: str,
        deployment: str,
        *,
        window: str = "24h",
        start: str | None = None,
        end: str | None = None,
        model_version: int | None = None,
        method: str | None = None,
        thresholds: dict[str, float] | None = None,
        drift_share: float | None = None,
    ) -> Job:
        """Queue a monitoring run over the last ``window`` (or ``start``..``end``, ISO
        8601) of ``deployment``'s traffic; wait for it with ``client.jobs.wait``."""
        given = {
            "window": window, "start": start, "end": end, "model_version": model_version,
            "method": method, "thresholds": thresholds, "drift_share": drift_share,
        }  # fmt: skip
        body = {k: v for k, v in given.items() if v is not None}
        return self._call("POST", self._path(project, deployment), Job, json=body)

    def runs(self, project: str, deployment: str) -> builtins.list[Job]:
        """The deployment's monitoring runs, newest first."""
        return self._call("GET", self._path(project, deployment), list[Job])

    def report(self, project: str, deployment: str, run: str) -> dict[str, Any]:
        """A finished run's report: drift, quality, service figures, hour by hour."""
        return dict(self._call("GET", f"{self._path(project, deployment)}/{run}/report", dict))

    def report_html(self, project: str, deployment: str, run: str) -> str:
        """A finished run's report as a self-contained HTML page."""
        path = f"{self._path(project, deployment)}/{run}/report.html"
        return self._client.raw("GET", path).text

    @staticmethod
    def _path(project: str, deployment: str) -> str:
        return f"/projects/{project}/deployments/{deployment}/monitoring/runs"
