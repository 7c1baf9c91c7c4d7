"""Triggers of a workflow: a cron schedule, new versions of a dataset, new files under a
source prefix. Servers fire them; each firing starts one execution."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from loopml.api import auth
from loopml.core.errors import InvalidInput, LoopmlError
from loopml.core.schemas import WorkflowTrigger
from loopml.home import Home
from loopml.store import triggers, workflows
from loopml.workflow.triggers import check_spec, first_look

router = APIRouter(prefix="/projects/{project}/workflows/{name}/triggers", tags=["workflows"])


class TriggerBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["schedule", "dataset", "source", "alert"]
    cron: str | None = Field(default=None, description='schedule: e.g. "0 3 * * *".')
    timezone: str | None = Field(default=None, description="schedule: an IANA zone (UTC).")
    dataset: str | None = Field(default=None, description="dataset: its name.")
    url: str | None = Field(default=None, description="source: a folder or URL prefix.")
    deployment: str | None = Field(default=None, description="alert: only this deployment's.")
    rule: str | None = Field(default=None, description="alert: only this rule's.")
    severity: Literal["info", "warning", "critical"] | None = Field(
        default=None, description="alert: the least severe that fires (warning)."
    )
    every: float | None = Field(
        default=None, description="dataset, source, alert: seconds between looks (10, 60, 10)."
    )
    input: Any = Field(default=None, description="Merged into each execution's input.")
    enabled: bool = True


@router.put("/{trigger}", response_model=WorkflowTrigger, dependencies=[Depends(auth.maintainer)])
def put_trigger(
    project: str,
    name: str,
    trigger: str,
    body: TriggerBody,
    request: Request,
    response: Response,
    home: Home = Depends(auth.get_home),
) -> WorkflowTrigger:
    """Create or replace a trigger; it fires for what comes after it is made."""
    given = body.model_dump(exclude_none=True, exclude={"kind", "input", "enabled"})
    if body.input is not None and not isinstance(body.input, dict):
        # Merged into each execution's input (an object), anything else would be dropped.
        raise InvalidInput("a trigger's input is an object (or null)", field="input")
    allow_local = bool(getattr(request.app.state.workflows.services, "allow_local_files", False))
    spec = check_spec(body.kind, given, allow_local)
    with home.db.session() as s:
        workflows.get(s, project, name)
    try:
        due_at, cursor = first_look(home.db, project, body.kind, spec, datetime.now(timezone.utc))
    except Exception as exc:  # a source this server cannot list: the caller's to fix, not a 500
        if isinstance(exc, LoopmlError) or body.kind != "source":
            raise
        raise InvalidInput(
            f"cannot list {spec.get('url')!r}: {type(exc).__name__}: {exc}", field="url"
        ) from exc
    with home.db.session() as s:
        saved, created = triggers.put(
            s, project, name, trigger, kind=body.kind, spec=spec, data=body.input,
            due_at=due_at, cursor=cursor, enabled=body.enabled,
        )  # fmt: skip
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return saved


@router.get("", response_model=list[WorkflowTrigger], dependencies=[Depends(auth.viewer)])
def list_triggers(
    project: str, name: str, home: Home = Depends(auth.get_home)
) -> list[WorkflowTrigger]:
    with home.db.session() as s:
        return triggers.list_all(s, project, name)


@router.get("/{trigger}", response_model=WorkflowTrigger, dependencies=[Depends(auth.viewer)])
def get_trigger(
    project: str, name: str, trigger: str, home: Home = Depends(auth.get_home)
) -> WorkflowTrigger:
    with home.db.session() as s:
        return triggers.get(s, project, name, trigger)


@router.delete(
    "/{trigger}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[Depends(auth.maintainer)]
)
def delete_trigger(
    project: str, name: str, trigger: str, home: Home = Depends(auth.get_home)
) -> None:
    with home.db.session() as s:
        triggers.remove(s, project, name, trigger)
