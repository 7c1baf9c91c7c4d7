"""Model versions (numbered per project) and their stage history."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exc, func, select
from sqlalchemy.orm import Session

from loopml.core.enums import Stage
from loopml.core.errors import AlreadyExists, Conflict, NotFound
from loopml.core.ids import new_id
from loopml.core.schemas import ModelVersion, StageChange
from loopml.store.models import (
    DeploymentRow,
    ModelVersionRow,
    StageChangeRow,
    utcnow,
)
from loopml.store.projects import project_id


def add_model(
    session: Session,
    project: str,
    details: dict[str, Any],
    *,
    training: str | None,
    actor: str,
    stage: Stage = Stage.candidate,
) -> tuple[ModelVersion, bool]:
    """Register a model; a training registers once (its version comes back again)."""
    pid = project_id(session, project)
    if training is not None:
        found = session.scalar(
            select(ModelVersionRow).where(ModelVersionRow.training_id == training)
        )
        if found is not None:
            return model_entity(found, project), False
    number = (
        session.scalar(
            select(func.max(ModelVersionRow.number)).where(ModelVersionRow.project_id == pid)
        )
        or 0
    ) + 1
    row = ModelVersionRow(
        id=new_id(),
        project_id=pid,
        number=number,
        stage=stage.value,
        training_id=training,
        details=details,
        created_at=utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(row)
    except exc.IntegrityError as error:
        raise AlreadyExists(
            f"another model version of {project} was registered at the same time; retry",
            field="model",
        ) from error
    session.add(
        StageChangeRow(
            model_version_id=row.id,
            from_stage=None,
            to_stage=stage.value,
            actor=actor,
            reason="registered",
            at=utcnow(),
        )
    )
    session.flush()
    return model_entity(row, project), True


def get_model(session: Session, project: str, number: int) -> ModelVersion:
    return model_entity(model_row(session, project, number), project)


def list_models(session: Session, project: str, stage: Stage | None = None) -> list[ModelVersion]:
    query = select(ModelVersionRow).where(
        ModelVersionRow.project_id == project_id(session, project)
    )
    if stage is not None:
        query = query.where(ModelVersionRow.stage == stage.value)
    rows = session.scalars(query.order_by(ModelVersionRow.number))
    return [model_entity(r, project) for r in rows]


def set_stage(
    session: Session,
    project: str,
    number: int,
    stage: Stage,
    *,
    actor: str,
    reason: str = "",
    always_record: bool = False,
) -> ModelVersion:
    """Move a model to ``stage``, recording who and why (``always_record``: even when it
    is there already, for events such as a promotion that the history should show).

    A model a deployment serves stays in production until the deployment serves another;
    a new production model archives the production models no deployment serves (and
    records it in their history).
    """
    row = model_row(session, project, number)
    if row.stage == stage.value:
        if always_record:
            _move(session, row, stage, actor, reason)
            session.flush()
        return model_entity(row, project)
    serving = _served_by(session, row.id)
    if stage is not Stage.production and serving:
        raise Conflict(
            f"v{number} is served by {', '.join(serving)}; deploy another version there "
            "first (or delete the deployment)",
            field="stage",
        )
    trying = _challenger_on(session, row.id)
    if stage in (Stage.candidate, Stage.archived) and trying:
        raise Conflict(
            f"v{number} is the challenger on {', '.join(trying)}; remove it there first",
            field="stage",
        )
    if stage is Stage.production:
        current = session.scalars(
            select(ModelVersionRow).where(
                ModelVersionRow.project_id == row.project_id,
                ModelVersionRow.stage == Stage.production.value,
                ModelVersionRow.id != row.id,
            )
        )
        for other in current:
            if not _served_by(session, other.id) and not _challenger_on(session, other.id):
                _move(session, other, Stage.archived, actor, f"replaced by v{number}")
    _move(session, row, stage, actor, reason)
    session.flush()
    return model_entity(row, project)


def _served_by(session: Session, model_id: str) -> list[str]:
    return list(
        session.scalars(
            select(DeploymentRow.name)
            .where(DeploymentRow.model_version_id == model_id)
            .order_by(DeploymentRow.name)
        )
    )


def _challenger_on(session: Session, model_id: str) -> list[str]:
    return list(
        session.scalars(
            select(DeploymentRow.name)
            .where(DeploymentRow.challenger_version_id == model_id)
            .order_by(DeploymentRow.name)
        )
    )


def stage_history(session: Session, project: str, number: int) -> list[StageChange]:
    row = model_row(session, project, number)
    changes = session.scalars(
        select(StageChangeRow)
        .where(StageChangeRow.model_version_id == row.id)
        .order_by(StageChangeRow.seq)
    )
    return [
        StageChange(
            model=number,
            from_stage=Stage(c.from_stage) if c.from_stage else None,
            to_stage=Stage(c.to_stage),
            actor=c.actor,
            reason=c.reason,
            at=c.at,
        )
        for c in changes
    ]


def _move(session: Session, row: ModelVersionRow, stage: Stage, actor: str, reason: str) -> None:
    session.add(
        StageChangeRow(
            model_version_id=row.id,
            from_stage=row.stage,
            to_stage=stage.value,
            actor=actor,
            reason=reason,
            at=utcnow(),
        )
    )
    row.stage = stage.value


def model_row(session: Session, project: str, number: int) -> ModelVersionRow:
    row = session.scalar(
        select(ModelVersionRow).where(
            ModelVersionRow.project_id == project_id(session, project),
            ModelVersionRow.number == number,
        )
    )
    if row is None:
        raise NotFound(f"project {project!r} has no model version {number}", field="model")
    return row


def model_entity(row: ModelVersionRow, project: str) -> ModelVersion:
    return ModelVersion.model_validate(
        {
            **row.details,
            "id": row.id,
            "project": project,
            "number": row.number,
            "stage": row.stage,
            "training": row.training_id,
            "created_at": row.created_at,
        }
    )
