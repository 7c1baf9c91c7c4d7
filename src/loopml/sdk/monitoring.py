"""Monitoring runs of a deployment (start one, list them, read their reports) and the
alerts they raise."""

from __future__ import annotations

import builtins
from typing import Any

from loopml.core.alerts import Alert
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

    def baseline(self, project: str, model: int, kind: str = "profile") -> dict[str, Any]:
        """A model version's reference profile (``kind="profile"``) or its SageMaker
        Model Monitor files (``"statistics"``, ``"constraints"``)."""
        path = f"/projects/{project}/models/{model}/baseline"
        if kind != "profile":
            path += f"/{kind}.json"
        return dict(self._call("GET", path, dict))

    @staticmethod
    def _path(project: str, deployment: str) -> str:
        return f"/projects/{project}/deployments/{deployment}/monitoring/runs"


class Alerts(Resource):
    def list(
        self, project: str, *, state: str | None = None, deployment: str | None = None
    ) -> builtins.list[Alert]:
        """The project's alerts, most recently seen first."""
        params = {k: v for k, v in {"state": state, "deployment": deployment}.items() if v}
        return self._call("GET", f"/projects/{project}/alerts", list[Alert], params=params)

    def get(self, project: str, alert_id: str) -> Alert:
        """One alert with its notifications."""
        return self._call("GET", f"/projects/{project}/alerts/{alert_id}", Alert)

    def acknowledge(self, project: str, alert_id: str, note: str = "") -> Alert:
        path = f"/projects/{project}/alerts/{alert_id}/acknowledge"
        return self._call("POST", path, Alert, json={"note": note})

    def resolve(self, project: str, alert_id: str, note: str = "") -> Alert:
        path = f"/projects/{project}/alerts/{alert_id}/resolve"
        return self._call("POST", path, Alert, json={"note": note})

    def settings(self, project: str) -> dict[str, Any]:
        """Rules, notifiers (secrets shown as ``***``), cool-down, drift options."""
        return dict(self._call("GET", f"/projects/{project}/alert-settings", dict))

    def set_settings(self, project: str, settings: dict[str, Any]) -> dict[str, Any]:
        """Replace the settings (see :class:`loopml.core.alerts.AlertSettings`)."""
        path = f"/projects/{project}/alert-settings"
        return dict(self._call("PUT", path, dict, json=settings))
