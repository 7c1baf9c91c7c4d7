"""Projects: the unit of ownership for data, models, deployments and access."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exc, select
from sqlalchemy.orm import Session

from loopml.core.errors import AlreadyExists, NotFound
from loopml.core.ids import check_name, new_id
from loopml.core.schemas import Project
from loopml.store.models import ProjectRow


def create(session: Session, name: str, description: str = "") -> Project:
    check_name(name)
    taken = AlreadyExists(f"project {name!r} already exists", field="name")
    if session.scalar(select(ProjectRow.id).where(ProjectRow.name == name)):
        raise taken
    row = ProjectRow(id=new_id(), name=name, description=description)
    session.add(row)
    try:
        session.flush()
    except exc.IntegrityError as error:
        # Another session created the same name between the check above and this insert.
        raise taken from error
    return Project.model_validate(row)


def get(session: Session, name: str) -> Project:
    return Project.model_validate(_row(session, name))


def list_all(session: Session, names: set[str] | None = None) -> list[Project]:
    """All projects by name, or only those in ``names`` when given."""
    query = select(ProjectRow).order_by(ProjectRow.name)
    if names is not None:
        query = query.where(ProjectRow.name.in_(names))
    return [Project.model_validate(r) for r in session.scalars(query)]


def update(
    session: Session,
    name: str,
    description: str | None = None,
    *,
    label_review: bool | None = None,
    gates: dict[str, Any] | None = None,
) -> Project:
    """Change what is given; None leaves a field as it is."""
    row = _row(session, name)
    if gates is not None:
        row.gates = dict(gates)
    if description is not None:
        row.description = description
    if label_review is not None:
        row.label_review = label_review
    session.flush()
    return Project.model_validate(row)


def delete(session: Session, name: str) -> None:
    session.delete(_row(session, name))
    session.flush()


def project_id(session: Session, name: str) -> str:
    return _row(session, name).id


def _row(session: Session, name: str) -> ProjectRow:
    row = session.scalar(select(ProjectRow).where(ProjectRow.name == name))
    if row is None:
        raise NotFound(f"project {name!r} does not exist", field="project")
    return row
