"""The model registry of a project: versions, their stages and history, model cards."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from loopml.api import auth
from loopml.core.enums import Stage
from loopml.core.schemas import ApiKey, ModelVersion, StageChange
from loopml.home import Home
from loopml.registry.card import model_card
from loopml.store import registry

router = APIRouter(prefix="/projects/{project}/models", tags=["models"])


class StageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage: Stage
    reason: str = Field(default="", max_length=10_000, description="Kept in the history.")


@router.get("", response_model=list[ModelVersion], dependencies=[Depends(auth.viewer)])
def list_models(
    project: str, stage: Stage | None = None, home: Home = Depends(auth.get_home)
) -> list[ModelVersion]:
    """Every registered model version (each finished training registers one)."""
    with home.db.session() as s:
        return registry.list_models(s, project, stage)


@router.get("/{number}", response_model=ModelVersion, dependencies=[Depends(auth.viewer)])
def get_model(project: str, number: int, home: Home = Depends(auth.get_home)) -> ModelVersion:
    with home.db.session() as s:
        return registry.get_model(s, project, number)


@router.get(
    "/{number}/history", response_model=list[StageChange], dependencies=[Depends(auth.viewer)]
)
def get_history(
    project: str, number: int, home: Home = Depends(auth.get_home)
) -> list[StageChange]:
    """Who moved the model between stages, when and why."""
    with home.db.session() as s:
        return registry.stage_history(s, project, number)


@router.post(
    "/{number}/stage", response_model=ModelVersion, dependencies=[Depends(auth.maintainer)]
)
def set_stage(
    project: str,
    number: int,
    body: StageRequest,
    key: ApiKey = Depends(auth.maintainer),
    home: Home = Depends(auth.get_home),
) -> ModelVersion:
    """Move a model to a stage; a new production model archives the previous one."""
    with home.db.session() as s:
        return registry.set_stage(
            s, project, number, body.stage, actor=key.name, reason=body.reason
        )


@router.get(
    "/{number}/card",
    response_class=Response,
    responses={200: {"content": {"text/markdown": {}}}},
    dependencies=[Depends(auth.viewer)],
)
def get_card(project: str, number: int, home: Home = Depends(auth.get_home)) -> Response:
    """The model card, in Markdown."""
    with home.db.session() as s:
        card = model_card(
            registry.get_model(s, project, number), registry.stage_history(s, project, number)
        )
    return Response(card, media_type="text/markdown; charset=utf-8")
