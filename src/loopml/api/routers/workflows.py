"""Workflows of a project (Amazon States Language state machines), their executions and
the executions' histories."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from loopml.api import auth
from loopml.core.errors import InvalidInput, NotFound
from loopml.core.schemas import ApiKey, Workflow, WorkflowExecution
from loopml.home import Home
from loopml.store import workflows
from loopml.workflow.document import load_definition
from loopml.workflow.service import WorkflowService

router = APIRouter(prefix="/projects/{project}/workflows", tags=["workflows"])


class DefinitionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    definition: dict[str, Any] | str = Field(
        description="Amazon States Language: an object, or JSON or YAML text."
    )


class SaveBody(DefinitionBody):
    type: Literal["STANDARD", "EXPRESS"] = Field(
        default="STANDARD",
        description="STANDARD: a durable checkpoint after each Task (never run twice); "
        "EXPRESS: checkpoints written with the events, about once a second (faster; after "
        "a crash a Task may run again).",
    )


class Validation(BaseModel):
    valid: bool
    states: int = Field(description="States in the machine, branches and iterators included.")
    resources: list[str] = Field(description="Every task and deployment the machine calls.")


class StartBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: Any = Field(default=None, description="The execution's input (any JSON).")
    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=80,
        description="Unique per workflow; starting the same name with the same input again "
        "returns the first execution instead of starting another.",
    )


class History(BaseModel):
    events: list[dict[str, Any]] = Field(
        description="In Step Functions' GetExecutionHistory shape, oldest first."
    )


def _service(request: Request) -> WorkflowService:
    service: WorkflowService = request.app.state.workflows
    return service


@router.post("/validate", response_model=Validation, dependencies=[Depends(auth.viewer)])
def validate(
    project: str, body: DefinitionBody, service: WorkflowService = Depends(_service)
) -> Validation:
    """Check a definition without saving it: 422 lists every problem with its place."""
    machine = service.validate(load_definition(body.definition))
    return Validation(valid=True, states=_count(machine), resources=sorted(machine.resources))


@router.put("/{name}", response_model=Workflow, dependencies=[Depends(auth.maintainer)])
def save(
    project: str,
    name: str,
    body: SaveBody,
    response: Response,
    service: WorkflowService = Depends(_service),
) -> Workflow:
    """Create the workflow or replace its definition or type (running executions keep
    theirs)."""
    workflow, created = service.save(project, name, load_definition(body.definition), body.type)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return workflow


@router.get("", response_model=list[Workflow], dependencies=[Depends(auth.viewer)])
def list_workflows(project: str, home: Home = Depends(auth.get_home)) -> list[Workflow]:
    with home.db.session() as s:
        return workflows.list_all(s, project)


@router.get("/{name}", response_model=Workflow, dependencies=[Depends(auth.viewer)])
def get_workflow(project: str, name: str, home: Home = Depends(auth.get_home)) -> Workflow:
    with home.db.session() as s:
        return workflows.get(s, project, name)


@router.delete(
    "/{name}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[Depends(auth.maintainer)]
)
def delete_workflow(project: str, name: str, home: Home = Depends(auth.get_home)) -> None:
    """Delete the workflow and its executions' records; refused while one runs."""
    with home.db.session() as s:
        workflows.remove(s, project, name)


@router.post(
    "/{name}/executions",
    response_model=WorkflowExecution,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Depends(auth.maintainer)],
)
def start(
    project: str,
    name: str,
    body: StartBody,
    service: WorkflowService = Depends(_service),
    key: ApiKey = Depends(auth.maintainer),
) -> WorkflowExecution:
    """Start an execution; it runs in the background (poll it, or its history)."""
    return service.start(project, name, body.input, name=body.name, started_by=key.name)


@router.get(
    "/{name}/executions",
    response_model=list[WorkflowExecution],
    dependencies=[Depends(auth.viewer)],
)
def list_executions(
    project: str,
    name: str,
    status_: str | None = Query(
        default=None, alias="status", description="RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED"
    ),
    limit: int = Query(default=100, ge=1, le=1000),
    home: Home = Depends(auth.get_home),
) -> list[WorkflowExecution]:
    """Newest first."""
    if status_ is not None and status_.upper() not in (workflows.RUNNING, *workflows.ENDED):
        raise InvalidInput(
            f"status is one of {workflows.RUNNING}, {', '.join(workflows.ENDED)}, not {status_!r}",
            field="status",
        )
    with home.db.session() as s:
        workflows.get(s, project, name)
        return workflows.list_executions(s, project, name, status=status_, limit=limit)


@router.get(
    "/{name}/executions/{execution}",
    response_model=WorkflowExecution,
    dependencies=[Depends(auth.viewer)],
)
def get_execution(
    project: str, name: str, execution: str, home: Home = Depends(auth.get_home)
) -> WorkflowExecution:
    with home.db.session() as s:
        return _execution(s, project, name, execution)


@router.get(
    "/{name}/executions/{execution}/history",
    response_model=History,
    dependencies=[Depends(auth.viewer)],
)
def history(
    project: str,
    name: str,
    execution: str,
    after: int = Query(default=0, ge=0, description="Only events with a larger id."),
    limit: int = Query(default=1000, ge=1, le=10_000),
    home: Home = Depends(auth.get_home),
) -> History:
    with home.db.session() as s:
        _execution(s, project, name, execution)
        return History(events=workflows.history(s, project, execution, after=after, limit=limit))


@router.post(
    "/{name}/executions/{execution}/stop",
    response_model=WorkflowExecution,
    dependencies=[Depends(auth.maintainer)],
)
def stop(
    project: str,
    name: str,
    execution: str,
    home: Home = Depends(auth.get_home),
    service: WorkflowService = Depends(_service),
) -> WorkflowExecution:
    """Stop a running execution: it ends ``ABORTED`` at its next state."""
    with home.db.session() as s:
        _execution(s, project, name, execution)
    return service.stop(project, execution)


def _execution(s: Any, project: str, name: str, execution: str) -> WorkflowExecution:
    found = workflows.get_execution(s, project, execution)
    if found.workflow != name:
        raise NotFound(
            f"execution {execution!r} does not belong to workflow {name!r}", field="execution"
        )
    return found


def _count(machine: Any) -> int:
    total = 0
    for state in machine.states.values():
        total += 1
        for inner in [*state.branches, *([state.iterator] if state.iterator else [])]:
            total += _count(inner)
    return total
