"""Datasets and their immutable, numbered versions in the metadata database.

A version row is written once and never changed; its ``content_hash`` identifies what
it holds, so recording the same content twice returns the version already there. The
dataset's ``current`` version is what its name alone means: the newest, or an earlier one
when the source goes back to that version's content (a file removed after it was added);
``source_version`` is the version the source last gave, so that reading an unchanged
source again leaves alone the versions derived since (a new target, applied labels).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exc, func, select
from sqlalchemy.orm import Session

from loopml.core.errors import AlreadyExists, InvalidInput, NotFound
from loopml.core.ids import check_name, new_id
from loopml.core.schemas import Dataset, DatasetSchema, DatasetVersion
from loopml.store.models import DatasetRow, DatasetVersionRow, utcnow
from loopml.store.projects import project_id


def create(
    session: Session,
    project: str,
    name: str,
    *,
    description: str = "",
    source: str | None = None,
    options: dict[str, Any] | None = None,
) -> Dataset:
    check_name(name)
    pid = project_id(session, project)
    taken = AlreadyExists(f"dataset {name!r} already exists in {project!r}", field="name")
    if _find(session, pid, name) is not None:
        raise taken
    row = DatasetRow(
        id=new_id(),
        project_id=pid,
        name=name,
        description=description,
        source=source,
        options=options or {},
        created_at=utcnow(),
    )
    session.add(row)
    try:
        session.flush()
    except exc.IntegrityError as error:
        raise taken from error
    return _dataset(session, row, project)


def get(session: Session, project: str, name: str) -> Dataset:
    return _dataset(session, _row(session, project, name), project)


def list_all(session: Session, project: str) -> list[Dataset]:
    pid = project_id(session, project)
    rows = session.scalars(
        select(DatasetRow).where(DatasetRow.project_id == pid).order_by(DatasetRow.name)
    )
    return [_dataset(session, r, project) for r in rows]


def set_source(
    session: Session, project: str, name: str, source: str | None, options: dict[str, Any]
) -> Dataset:
    """Remember where the dataset's next re-sync reads from."""
    row = _row(session, project, name)
    row.source, row.options = source, dict(options)
    session.flush()
    return _dataset(session, row, project)


def find_version(
    session: Session, project: str, name: str, content_hash: str
) -> DatasetVersion | None:
    """The version of a dataset holding ``content_hash``; None also when there is no dataset."""
    row = _find(session, project_id(session, project), name)
    if row is None:
        return None
    version = session.scalar(
        select(DatasetVersionRow).where(
            DatasetVersionRow.dataset_id == row.id,
            DatasetVersionRow.content_hash == content_hash,
        )
    )
    return None if version is None else _version(version, project, name)


def add_version(
    session: Session,
    project: str,
    name: str,
    *,
    content_hash: str,
    rows: int,
    data_schema: dict[str, Any],
    source: str | None = None,
    quality: list[Any] | None = None,
    split: dict[str, Any] | None = None,
    changes: dict[str, Any] | None = None,
    manifest: dict[str, Any] | None = None,
) -> tuple[DatasetVersion, bool]:
    """Record a version; returns it and whether it is new.

    Content already recorded for this dataset returns that version unchanged.
    """
    existing = find_version(session, project, name, content_hash)
    if existing is not None:
        return existing, False
    dataset = _row(session, project, name)
    latest = _latest_number(session, dataset.id)
    row = DatasetVersionRow(
        id=new_id(),
        dataset_id=dataset.id,
        number=latest + 1,
        content_hash=content_hash,
        parent=dataset.current or latest or None,
        rows=rows,
        source=source,
        data_schema=data_schema,
        quality=quality or [],
        split=split or {},
        changes=changes or {},
        manifest=manifest or {},
        created_at=utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(row)
    except exc.IntegrityError as error:
        # A concurrent ingest recorded the same content (or took the number) first.
        again = find_version(session, project, name, content_hash)
        if again is not None:
            return again, False
        raise AlreadyExists(
            f"another version of {project}/{name} was recorded at the same time; retry",
            field="dataset",
        ) from error
    dataset.current = row.number
    return _version(row, project, name), True


def read_from_source(session: Session, project: str, name: str, number: int) -> bool:
    """Record that the dataset's source now holds version ``number``'s content; when
    that is not what it last held, the version becomes current. Returns whether it did."""
    dataset = _row(session, project, name)
    get_version(session, project, name, number)  # it exists
    moved = dataset.source_version is not None and dataset.source_version != number
    if moved:
        dataset.current = number
    dataset.source_version = number
    return moved


def get_version(
    session: Session, project: str, name: str, number: int | None = None
) -> DatasetVersion:
    """Version ``number`` of a dataset, or its current one when ``number`` is None."""
    dataset = _row(session, project, name)
    query = select(DatasetVersionRow).where(DatasetVersionRow.dataset_id == dataset.id)
    if number is None and dataset.current is not None:
        query = query.where(DatasetVersionRow.number == dataset.current)
    elif number is None:
        query = query.order_by(DatasetVersionRow.number.desc()).limit(1)
    else:
        query = query.where(DatasetVersionRow.number == number)
    row = session.scalar(query)
    if row is None:
        what = "has no versions yet" if number is None else f"has no version {number}"
        raise NotFound(f"dataset {project}/{name} {what}", field="version")
    return _version(row, project, name)


def list_versions(session: Session, project: str, name: str) -> list[DatasetVersion]:
    dataset = _row(session, project, name)
    rows = session.scalars(
        select(DatasetVersionRow)
        .where(DatasetVersionRow.dataset_id == dataset.id)
        .order_by(DatasetVersionRow.number)
    )
    return [_version(r, project, name) for r in rows]


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``name`` or ``name@N`` -> (name, N or None for the current version)."""
    name, _, number = ref.partition("@")
    if not number:
        return name, None
    if not number.isdigit() or int(number) < 1:
        raise InvalidInput(
            f"dataset reference {ref!r}: the version after '@' must be a number from 1",
            field="dataset",
        )
    return name, int(number)


def dataset_id(session: Session, project: str, name: str) -> str:
    return _row(session, project, name).id


def _latest_number(session: Session, dataset_id: str) -> int:
    value = session.scalar(
        select(func.max(DatasetVersionRow.number)).where(DatasetVersionRow.dataset_id == dataset_id)
    )
    return int(value or 0)


def _find(session: Session, pid: str, name: str) -> DatasetRow | None:
    return session.scalar(
        select(DatasetRow).where(DatasetRow.project_id == pid, DatasetRow.name == name)
    )


def _row(session: Session, project: str, name: str) -> DatasetRow:
    row = _find(session, project_id(session, project), name)
    if row is None:
        raise NotFound(f"dataset {name!r} does not exist in project {project!r}", field="dataset")
    return row


def _dataset(session: Session, row: DatasetRow, project: str) -> Dataset:
    return Dataset(
        id=row.id,
        project=project,
        name=row.name,
        description=row.description,
        source=row.source,
        options=row.options or {},
        created_at=row.created_at,
        versions=(versions := _latest_number(session, row.id)),
        current=row.current or versions or None,
    )


def _version(row: DatasetVersionRow, project: str, name: str) -> DatasetVersion:
    return DatasetVersion(
        id=row.id,
        project=project,
        dataset=name,
        number=row.number,
        content_hash=row.content_hash,
        parent=row.parent,
        rows=row.rows,
        source=row.source,
        data_schema=DatasetSchema.model_validate(row.data_schema),
        quality=row.quality or [],
        split=row.split or {},
        changes=row.changes or {},
        manifest=row.manifest or {},
        created_at=row.created_at,
    )
