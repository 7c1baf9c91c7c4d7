"""Deployments of a project: named endpoints serving a model version, and the challenger
tried beside it (a shadow that sees a copy of the traffic, or a weighted canary)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from loopml.api import auth
from loopml.core.enums import ChallengerMode, Stage
from loopml.core.schemas import ApiKey, Deployment
from loopml.home import Home
from loopml.serving.models import ModelCache
from loopml.serving.openapi import deployment_openapi
from loopml.store import deployments, registry
from loopml.store.deployments import KEEP

router = APIRouter(prefix="/projects/{project}/deployments", tags=["deployments"])


class DeployRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: int = Field(ge=1, description="The model version number to serve.")
    confidence_threshold: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="Below it a prediction abstains; null stops abstaining, leaving it out "
        "keeps the deployment's current one.",
    )
    fallback_label: str | None = Field(
        default=None, max_length=200, description='What an abstaining row says ("unknown").'
    )
    capture_percent: float | None = Field(
        default=None, ge=0, le=100, description="Share of predicted rows captured (100)."
    )
    reason: str = Field(default="", max_length=10_000)


class ChallengerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: int = Field(ge=1, description="The model version number to try.")
    mode: ChallengerMode = Field(
        description="shadow: predicts a copy of the traffic, answers captured, never "
        "returned; canary: answers a share of the requests itself."
    )
    percent: float = Field(
        default=100.0,
        gt=0,
        le=100,
        description="canary: share of requests it answers (below 100); shadow: share it "
        "sees a copy of.",
    )
    reason: str = Field(default="", max_length=10_000)


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=10_000)


def _models(request: Request) -> ModelCache:
    models: ModelCache = request.app.state.models
    return models


@router.get("", response_model=list[Deployment], dependencies=[Depends(auth.viewer)])
def list_deployments(project: str, home: Home = Depends(auth.get_home)) -> list[Deployment]:
    with home.db.session() as s:
        return deployments.list_deployments(s, project)


@router.put("/{name}", response_model=Deployment, dependencies=[Depends(auth.maintainer)])
def deploy(
    project: str,
    name: str,
    body: DeployRequest,
    response: Response,
    key: ApiKey = Depends(auth.maintainer),
    home: Home = Depends(auth.get_home),
    models: ModelCache = Depends(_models),
) -> Deployment:
    """Serve a model version under ``name`` (201 when the deployment is new); rolling back
    is deploying the earlier version. The model is loaded and checked before the switch,
    so requests never meet a model that fails to load; it moves to the production stage,
    with the reason kept in its history."""
    deployment, created = serve_model(home, models, project, name, body, key.name)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return deployment


def serve_model(
    home: Home, models: ModelCache, project: str, name: str, body: DeployRequest, actor: str
) -> tuple[Deployment, bool]:
    """Load and check the model, switch the deployment to it, move it to production."""
    with home.db.session() as s:
        version = registry.get_model(s, project, body.model)
    models.get(version)
    threshold = (
        body.confidence_threshold if "confidence_threshold" in body.model_fields_set else KEEP
    )
    with home.db.session() as s:
        deployment, created = deployments.deploy(
            s, project, name, body.model,
            confidence_threshold=threshold, fallback_label=body.fallback_label,
            capture_percent=body.capture_percent,
        )  # fmt: skip
        registry.set_stage(
            s, project, body.model, Stage.production, actor=actor,
            reason=body.reason or f"deployed to {name}",
        )  # fmt: skip
    return deployment, created


@router.get("/{name}", response_model=Deployment, dependencies=[Depends(auth.viewer)])
def get_deployment(project: str, name: str, home: Home = Depends(auth.get_home)) -> Deployment:
    with home.db.session() as s:
        return deployments.get_deployment(s, project, name)


@router.delete(
    "/{name}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[Depends(auth.maintainer)]
)
def delete_deployment(project: str, name: str, home: Home = Depends(auth.get_home)) -> Response:
    with home.db.session() as s:
        deployments.delete_deployment(s, project, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put(
    "/{name}/challenger", response_model=Deployment, dependencies=[Depends(auth.maintainer)]
)
def set_challenger(
    project: str,
    name: str,
    body: ChallengerRequest,
    key: ApiKey = Depends(auth.maintainer),
    home: Home = Depends(auth.get_home),
    models: ModelCache = Depends(_models),
) -> Deployment:
    """Try a model version beside the served one, as a shadow or a canary. It is loaded
    first; a candidate moves to the staging stage."""
    with home.db.session() as s:
        version = registry.get_model(s, project, body.model)
    models.get(version)
    with home.db.session() as s:
        deployment = deployments.set_challenger(
            s, project, name, body.model, body.mode, body.percent
        )
        if version.stage in (Stage.candidate, Stage.archived):
            registry.set_stage(
                s, project, body.model, Stage.staging, actor=key.name,
                reason=body.reason or f"{body.mode.value} challenger on {name}",
            )  # fmt: skip
    return deployment


@router.delete(
    "/{name}/challenger", response_model=Deployment, dependencies=[Depends(auth.maintainer)]
)
def clear_challenger(project: str, name: str, home: Home = Depends(auth.get_home)) -> Deployment:
    """Stop trying the challenger; the served model answers everything again."""
    with home.db.session() as s:
        return deployments.clear_challenger(s, project, name)


@router.post("/{name}/promote", response_model=Deployment, dependencies=[Depends(auth.maintainer)])
def promote(
    project: str,
    name: str,
    body: PromoteRequest | None = None,
    key: ApiKey = Depends(auth.maintainer),
    home: Home = Depends(auth.get_home),
) -> Deployment:
    """Serve the challenger in place of the current model (which stays deployable for a
    rollback); the challenger slot is then empty."""
    reason = body.reason if body is not None else ""
    with home.db.session() as s:
        number = deployments.challenger_number(s, project, name)
        deployment, _ = deployments.deploy(s, project, name, number)
        registry.set_stage(
            s, project, number, Stage.production, actor=key.name,
            reason=reason or f"promoted from challenger on {name}", always_record=True,
        )  # fmt: skip
    return deployment


@router.get("/{name}/openapi.json", dependencies=[Depends(auth.viewer)])
def deployment_schema(
    project: str, name: str, request: Request, home: Home = Depends(auth.get_home)
) -> dict[str, Any]:
    """This deployment's own OpenAPI document: its predict endpoint with the served
    model's input columns and classes."""
    with home.db.session() as s:
        served = deployments.served(s, project, name)
    return deployment_openapi(served.deployment, served.model, str(request.base_url).rstrip("/"))
