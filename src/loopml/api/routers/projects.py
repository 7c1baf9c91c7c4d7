"""Projects."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, Field, model_validator

from loopml.api import auth
from loopml.core.schemas import ApiKey, Project
from loopml.home import Home
from loopml.registry.gates import check_gate_settings
from loopml.store import projects

router = APIRouter(prefix="/projects", tags=["projects"])


class ProjectCreate(BaseModel):
    name: str = Field(description="1-63 lowercase letters, digits and hyphens.")
    description: str = Field(default="", max_length=10_000)


class ProjectUpdate(BaseModel):
    """What to change; at least one field."""

    description: str | None = Field(default=None, max_length=10_000)
    label_review: bool | None = Field(
        default=None, description="Whether labels wait for a reviewer before training."
    )
    gates: dict[str, Any] | None = Field(
        default=None,
        description="Quality gates (min_score, beat_baselines, max_predict_seconds_per_1000, "
        "max_size_bytes) and auto_deploy, the deployment passing trainings go to.",
    )

    @model_validator(mode="after")
    def _something(self) -> ProjectUpdate:
        if self.description is None and self.label_review is None and self.gates is None:
            raise ValueError("give description, label_review or gates: there is nothing to change")
        return self


@router.get("", response_model=list[Project])
def list_projects(
    key: ApiKey = Depends(auth.any_key), home: Home = Depends(auth.get_home)
) -> list[Project]:
    """Projects the caller holds a role in (every project for admin keys)."""
    names = None if key.global_role else set(key.project_roles)
    with home.db.session() as s:
        return projects.list_all(s, names)


@router.post(
    "",
    response_model=Project,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(auth.admin)],
)
def create_project(body: ProjectCreate, home: Home = Depends(auth.get_home)) -> Project:
    with home.db.session() as s:
        return projects.create(s, body.name, body.description)


@router.get("/{project}", response_model=Project, dependencies=[Depends(auth.viewer)])
def get_project(project: str, home: Home = Depends(auth.get_home)) -> Project:
    with home.db.session() as s:
        return projects.get(s, project)


@router.patch("/{project}", response_model=Project, dependencies=[Depends(auth.maintainer)])
def update_project(
    project: str, body: ProjectUpdate, home: Home = Depends(auth.get_home)
) -> Project:
    with home.db.session() as s:
        gates = None if body.gates is None else check_gate_settings(body.gates)
        return projects.update(
            s, project, body.description, label_review=body.label_review, gates=gates
        )
