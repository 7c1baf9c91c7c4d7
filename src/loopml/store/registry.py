"""Model versions (numbered per project), their stage history, and deployments."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exc, func, select
from sqlalchemy.orm import Session

from loopml.core.enums import Stage
from loopml.core.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from loopml.core.ids import check_name, new_id
from loopml.core.schemas import Deployment, Feedback, ModelVersion, StageChange
from loopml.store.models import (
    DeploymentRow,
    FeedbackRow,
    ModelVersionRow,
    StageChangeRow,
    utcnow,
)
from loopml.store.projects import project_id


class Keep:
    """Marks an option to leave as it is."""


KEEP = Keep()


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
            return _model(found, project), False
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
    return _model(row, project), True


def get_model(session: Session, project: str, number: int) -> ModelVersion:
    return _model(_model_row(session, project, number), project)


def list_models(session: Session, project: str, stage: Stage | None = None) -> list[ModelVersion]:
    query = select(ModelVersionRow).where(
        ModelVersionRow.project_id == project_id(session, project)
    )
    if stage is not None:
        query = query.where(ModelVersionRow.stage == stage.value)
    rows = session.scalars(query.order_by(ModelVersionRow.number))
    return [_model(r, project) for r in rows]


def set_stage(
    session: Session, project: str, number: int, stage: Stage, *, actor: str, reason: str = ""
) -> ModelVersion:
    """Move a model to ``stage``, recording who and why.

    A model a deployment serves stays in production until the deployment serves another;
    a new production model archives the production models no deployment serves (and
    records it in their history).
    """
    row = _model_row(session, project, number)
    if row.stage == stage.value:
        return _model(row, project)
    serving = _served_by(session, row.id)
    if stage is not Stage.production and serving:
        raise Conflict(
            f"v{number} is served by {', '.join(serving)}; deploy another version there "
            "first (or delete the deployment)",
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
            if not _served_by(session, other.id):
                _move(session, other, Stage.archived, actor, f"replaced by v{number}")
    _move(session, row, stage, actor, reason)
    session.flush()
    return _model(row, project)


def _served_by(session: Session, model_id: str) -> list[str]:
    return list(
        session.scalars(
            select(DeploymentRow.name)
            .where(DeploymentRow.model_version_id == model_id)
            .order_by(DeploymentRow.name)
        )
    )


def stage_history(session: Session, project: str, number: int) -> list[StageChange]:
    row = _model_row(session, project, number)
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


def deploy(
    session: Session,
    project: str,
    name: str,
    number: int,
    *,
    confidence_threshold: float | Keep | None = KEEP,
    fallback_label: str | None = None,
    capture_percent: float | None = None,
) -> tuple[Deployment, bool]:
    """Point deployment ``name`` at model ``number`` (created when new); returns it and
    whether it is new. Options left as they are keep the deployment's current ones; a
    ``confidence_threshold`` of None stops abstaining."""
    check_name(name)
    threshold = confidence_threshold
    if isinstance(threshold, float | int) and not 0 < threshold < 1:
        raise InvalidInput(
            "confidence_threshold must be between 0 and 1", field="confidence_threshold"
        )
    model = _model_row(session, project, number)
    row = _deployment_row(session, project, name, missing_ok=True)
    created = row is None
    now = utcnow()
    if row is None:
        row = DeploymentRow(
            id=new_id(), project_id=model.project_id, name=name, created_at=now,
            fallback_label="unknown", capture_percent=100.0,
        )  # fmt: skip
        session.add(row)
    row.model_version_id = model.id
    if not isinstance(threshold, Keep):
        row.confidence_threshold = threshold
    if fallback_label is not None:
        row.fallback_label = fallback_label
    if capture_percent is not None:
        if not 0 <= capture_percent <= 100:
            raise InvalidInput("capture_percent must be from 0 to 100", field="capture_percent")
        row.capture_percent = capture_percent
    row.updated_at = now
    try:
        session.flush()
    except exc.IntegrityError as error:
        raise AlreadyExists(f"deployment {name!r} was created at the same time; retry") from error
    return _deployment(session, row, project), created


def get_deployment(session: Session, project: str, name: str) -> Deployment:
    row = _deployment_row(session, project, name)
    assert row is not None
    return _deployment(session, row, project)


def served(session: Session, project: str, name: str) -> tuple[Deployment, ModelVersion]:
    """A deployment and the model version it serves, in one lookup (the predict path)."""
    row = _deployment_row(session, project, name)
    assert row is not None
    model = session.get(ModelVersionRow, row.model_version_id)
    assert model is not None
    return _deployment(session, row, project), _model(model, project)


def list_deployments(session: Session, project: str) -> list[Deployment]:
    rows = session.scalars(
        select(DeploymentRow)
        .where(DeploymentRow.project_id == project_id(session, project))
        .order_by(DeploymentRow.name)
    )
    return [_deployment(session, r, project) for r in rows]


def delete_deployment(session: Session, project: str, name: str) -> None:
    row = _deployment_row(session, project, name)
    session.delete(row)
    session.flush()


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


def _model_row(session: Session, project: str, number: int) -> ModelVersionRow:
    row = session.scalar(
        select(ModelVersionRow).where(
            ModelVersionRow.project_id == project_id(session, project),
            ModelVersionRow.number == number,
        )
    )
    if row is None:
        raise NotFound(f"project {project!r} has no model version {number}", field="model")
    return row


def _deployment_row(
    session: Session, project: str, name: str, missing_ok: bool = False
) -> DeploymentRow | None:
    row = session.scalar(
        select(DeploymentRow).where(
            DeploymentRow.project_id == project_id(session, project), DeploymentRow.name == name
        )
    )
    if row is None and not missing_ok:
        raise NotFound(f"project {project!r} has no deployment {name!r}", field="deployment")
    return row


def _model(row: ModelVersionRow, project: str) -> ModelVersion:
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


def _deployment(session: Session, row: DeploymentRow, project: str) -> Deployment:
    model = session.get(ModelVersionRow, row.model_version_id)
    assert model is not None
    return Deployment(
        id=row.id,
        project=project,
        name=row.name,
        model=model.number,
        confidence_threshold=row.confidence_threshold,
        fallback_label=row.fallback_label,
        capture_percent=row.capture_percent,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def add_feedback(
    session: Session, project: str, deployment: str, prediction_id: str, label: str, author: str
) -> Feedback:
    """Record the true label of a prediction (telling it again replaces it)."""
    row = _deployment_row(session, project, deployment)
    assert row is not None
    found = session.get(FeedbackRow, prediction_id)
    if found is not None and found.deployment_id != row.id:
        raise Conflict(
            f"prediction {prediction_id} was made by another deployment", field="prediction_id"
        )
    if found is None:
        found = FeedbackRow(prediction_id=prediction_id, deployment_id=row.id)
        session.add(found)
    found.label, found.author, found.at = label, author, utcnow()
    session.flush()
    return Feedback(
        prediction_id=prediction_id, deployment=deployment, label=label, author=author,
        at=found.at,
    )  # fmt: skip


def list_feedback(session: Session, project: str, deployment: str) -> list[Feedback]:
    row = _deployment_row(session, project, deployment)
    assert row is not None
    rows = session.scalars(
        select(FeedbackRow).where(FeedbackRow.deployment_id == row.id).order_by(FeedbackRow.at)
    )
    return [
        Feedback(prediction_id=r.prediction_id, deployment=deployment, label=r.label,
                 author=r.author, at=r.at)
        for r in rows
    ]  # fmt: skip
