"""Deployments: named endpoints serving a model version, their challengers, and feedback
on their predictions."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import exc, select
from sqlalchemy.orm import Session

from loopml.core.enums import ChallengerMode
from loopml.core.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from loopml.core.ids import check_name, new_id
from loopml.core.schemas import Challenger, Deployment, Feedback, ModelVersion
from loopml.store.models import DeploymentRow, FeedbackRow, ModelVersionRow, utcnow
from loopml.store.projects import project_id
from loopml.store.registry import model_entity, model_row


class Keep:
    """Marks an option to leave as it is."""


KEEP = Keep()


class Served(NamedTuple):
    """What answers a deployment's requests."""

    deployment: Deployment
    model: ModelVersion
    challenger: ModelVersion | None


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
    model = model_row(session, project, number)
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
    if row.challenger_version_id == model.id:  # the challenger won: it is served now
        _clear(row)
    elif row.challenger_version_id is not None:
        trial = session.get(ModelVersionRow, row.challenger_version_id)
        if trial is None or trial.details.get("task") != model.details.get("task"):
            _clear(row)  # a challenger of another task cannot share the traffic
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


def served(session: Session, project: str, name: str) -> Served:
    """A deployment, the model version it serves and its challenger (the predict path)."""
    row = _deployment_row(session, project, name)
    assert row is not None
    deployment = _deployment(session, row, project)
    model = session.get(ModelVersionRow, row.model_version_id)
    assert model is not None
    challenger = None
    if row.challenger_version_id is not None:
        found = session.get(ModelVersionRow, row.challenger_version_id)
        assert found is not None
        challenger = model_entity(found, project)
    return Served(deployment, model_entity(model, project), challenger)


def set_challenger(
    session: Session, project: str, name: str, number: int, mode: ChallengerMode, percent: float
) -> Deployment:
    """Try model ``number`` on deployment ``name`` beside the model it serves.

    ``shadow``: it predicts a copy of ``percent`` % of the requests, its answers are
    captured and never returned. ``canary``: it answers ``percent`` % of the requests.
    """
    row = _deployment_row(session, project, name)
    assert row is not None
    model = model_row(session, project, number)
    served_model = session.get(ModelVersionRow, row.model_version_id)
    assert served_model is not None
    if model.id == served_model.id:
        raise Conflict(f"{name} already serves v{number}; pick another version", field="model")
    if model.details.get("task") != served_model.details.get("task"):
        raise InvalidInput(
            f"v{number} is a {model.details.get('task')} model and {name} serves a "
            f"{served_model.details.get('task')} one (v{served_model.number})",
            field="model",
        )
    shadow = mode is ChallengerMode.shadow
    if not (0 < percent <= 100 if shadow else 0 < percent < 100):
        rule = "at most 100" if shadow else "below 100 (deploy it to send it everything)"
        raise InvalidInput(
            f"percent must be above 0 and {rule} for a {mode.value} challenger", field="percent"
        )
    row.challenger_version_id = model.id
    row.challenger_mode = mode.value
    row.challenger_percent = float(percent)
    row.updated_at = utcnow()
    session.flush()
    return _deployment(session, row, project)


def clear_challenger(session: Session, project: str, name: str) -> Deployment:
    """Stop trying a challenger on ``name`` (nothing changes when there is none)."""
    row = _deployment_row(session, project, name)
    assert row is not None
    if row.challenger_version_id is not None:
        _clear(row)
        row.updated_at = utcnow()
        session.flush()
    return _deployment(session, row, project)


def challenger_number(session: Session, project: str, name: str) -> int:
    """The model version number of ``name``'s challenger; a Conflict when it has none."""
    row = _deployment_row(session, project, name)
    assert row is not None
    if row.challenger_version_id is None:
        raise Conflict(f"deployment {name!r} has no challenger to promote", field="challenger")
    model = session.get(ModelVersionRow, row.challenger_version_id)
    assert model is not None
    return model.number


def _clear(row: DeploymentRow) -> None:
    row.challenger_version_id = None
    row.challenger_mode = None
    row.challenger_percent = 0.0


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
        challenger=_challenger(session, row),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _challenger(session: Session, row: DeploymentRow) -> Challenger | None:
    if row.challenger_version_id is None or row.challenger_mode is None:
        return None
    model = session.get(ModelVersionRow, row.challenger_version_id)
    assert model is not None
    return Challenger(
        model=model.number, mode=ChallengerMode(row.challenger_mode),
        percent=row.challenger_percent,
    )  # fmt: skip


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
