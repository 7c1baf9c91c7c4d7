"""Alerts of a project, raised by monitoring runs: list, read (with their
notifications), acknowledge, resolve; and the project's alert settings (rules,
notifiers, how drift is decided), secrets never shown back."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from loopml.api import auth
from loopml.core.alerts import Alert, AlertSettings
from loopml.core.errors import InvalidInput
from loopml.core.schemas import ApiKey
from loopml.home import Home
from loopml.monitoring.drift import DriftOptions
from loopml.store import alerts

router = APIRouter(prefix="/projects/{project}", tags=["monitoring"])


class AlertNote(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=2000, description="Why, for the record.")


@router.get("/alerts", response_model=list[Alert], dependencies=[Depends(auth.viewer)])
def list_alerts(
    project: str,
    state: Literal["open", "acknowledged", "resolved"] | None = None,
    deployment: str | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
    home: Home = Depends(auth.get_home),
) -> list[Alert]:
    """The project's alerts, most recently seen first."""
    with home.db.session() as s:
        return alerts.list_alerts(s, project, state=state, deployment=deployment, limit=limit)


@router.get("/alerts/{alert_id}", response_model=Alert, dependencies=[Depends(auth.viewer)])
def get_alert(project: str, alert_id: str, home: Home = Depends(auth.get_home)) -> Alert:
    """One alert and every notification sent (or that failed) about it."""
    with home.db.session() as s:
        return alerts.get_alert(s, project, alert_id)


@router.post(
    "/alerts/{alert_id}/acknowledge", response_model=Alert, dependencies=[Depends(auth.maintainer)]
)
def acknowledge(
    project: str,
    alert_id: str,
    body: AlertNote,
    key: ApiKey = Depends(auth.maintainer),
    home: Home = Depends(auth.get_home),
) -> Alert:
    """Someone is on it: notifiers are not told again while it keeps firing."""
    with home.db.session() as s:
        return alerts.acknowledge(s, project, alert_id, key.name, body.note)


@router.post(
    "/alerts/{alert_id}/resolve", response_model=Alert, dependencies=[Depends(auth.maintainer)]
)
def resolve(
    project: str,
    alert_id: str,
    body: AlertNote,
    key: ApiKey = Depends(auth.maintainer),
    home: Home = Depends(auth.get_home),
) -> Alert:
    """Close an alert; a later run that finds it firing raises it again."""
    with home.db.session() as s:
        return alerts.resolve(s, project, alert_id, key.name, body.note)


@router.get("/alert-settings", dependencies=[Depends(auth.maintainer)])
def get_settings(project: str, home: Home = Depends(auth.get_home)) -> dict[str, Any]:
    """Rules, notifiers (secrets as ``***``), cool-down and how drift is decided; for
    maintainers, since where alerts go (a webhook's address) can itself be a secret."""
    with home.db.session() as s:
        return alerts.get_settings(s, project).shown()


@router.put("/alert-settings", dependencies=[Depends(auth.maintainer)])
def put_settings(
    project: str, body: AlertSettings, home: Home = Depends(auth.get_home)
) -> dict[str, Any]:
    """Replace the settings. A secret sent as ``***`` keeps the stored one."""
    try:
        DriftOptions(body.drift_method, {}, body.drift_thresholds, body.drift_share).check()
    except InvalidInput as exc:
        raise InvalidInput(exc.message, field=f"body.drift_{exc.field or 'method'}") from None
    with home.db.session() as s:
        return alerts.set_settings(s, project, body).shown()
