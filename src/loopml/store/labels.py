"""Labels on dataset items in the metadata database: added, reviewed, marked applied.

What an item is and which values a dataset accepts is decided in ``loopml.labels``;
this module only records labels and moves them through their review.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from loopml.core.enums import LabelSource, LabelStatus
from loopml.core.errors import Conflict, NotFound
from loopml.core.ids import new_id
from loopml.core.schemas import Label
from loopml.store.datasets import dataset_id
from loopml.store.models import LabelRow, utcnow


def add(
    session: Session,
    project: str,
    dataset: str,
    labels: Sequence[tuple[str, str]],
    *,
    source: LabelSource,
    author: str,
    author_key: str,
    status: LabelStatus,
) -> list[Label]:
    """Record ``(item, value)`` labels by ``author`` (a key's name) with key ``author_key``."""
    owner = dataset_id(session, project, dataset)
    now = utcnow()
    rows = [
        LabelRow(
            id=new_id(),
            dataset_id=owner,
            item=item,
            value=value,
            source=source.value,
            status=status.value,
            author=author,
            author_key=author_key,
            created_at=now,
            reviewer=author if status is LabelStatus.approved else None,
            reviewed_at=now if status is LabelStatus.approved else None,
            note="",
        )
        for item, value in labels
    ]
    session.add_all(rows)
    session.flush()
    return [_entity(r, project, dataset) for r in rows]


def list_labels(
    session: Session,
    project: str,
    dataset: str,
    *,
    status: LabelStatus | None = None,
    item: str | None = None,
    unapplied: bool = False,
    limit: int | None = None,
) -> list[Label]:
    """Labels of a dataset, oldest first."""
    query = select(LabelRow).where(LabelRow.dataset_id == dataset_id(session, project, dataset))
    if status is not None:
        query = query.where(LabelRow.status == status.value)
    if item is not None:
        query = query.where(LabelRow.item == item)
    if unapplied:
        query = query.where(LabelRow.applied_in.is_(None))
    query = query.order_by(LabelRow.created_at, LabelRow.id)
    if limit is not None:
        query = query.limit(limit)
    return [_entity(r, project, dataset) for r in session.scalars(query)]


def review(
    session: Session,
    project: str,
    dataset: str,
    label_id: str,
    *,
    approve: bool,
    reviewer: str,
    reviewer_key: str,
    note: str = "",
) -> Label:
    """Approve or reject a pending label; no key reviews the labels it made."""
    row = _label(session, project, dataset, label_id)
    if row.status != LabelStatus.pending_review.value:
        raise Conflict(f"label {label_id} was already {row.status}", field="label_id")
    if row.author_key == reviewer_key:
        raise Conflict(
            f"label {label_id} was made with this key ({reviewer}): another key must review "
            "it (a maintainer's key; or turn review off: loopml projects set P "
            "--no-label-review)",
            field="label_id",
        )
    row.status = (LabelStatus.approved if approve else LabelStatus.rejected).value
    row.reviewer, row.reviewed_at, row.note = reviewer, utcnow(), note
    session.flush()
    return _entity(row, project, dataset)


def mark_applied(session: Session, label_ids: Iterable[str], version: int) -> None:
    ids = list(label_ids)
    for row in session.scalars(select(LabelRow).where(LabelRow.id.in_(ids))):
        if row.applied_in is None:
            row.applied_in = version
    session.flush()


def _label(session: Session, project: str, dataset: str, label_id: str) -> LabelRow:
    owner = dataset_id(session, project, dataset)
    row = session.get(LabelRow, label_id)
    if row is None or row.dataset_id != owner:
        raise NotFound(
            f"label {label_id!r} does not exist in {project}/{dataset}", field="label_id"
        )
    return row


def _entity(row: LabelRow, project: str, dataset: str) -> Label:
    return Label(
        id=row.id,
        project=project,
        dataset=dataset,
        item=row.item,
        value=row.value,
        source=LabelSource(row.source),
        status=LabelStatus(row.status),
        author=row.author,
        author_key=row.author_key,
        created_at=row.created_at,
        reviewer=row.reviewer,
        reviewed_at=row.reviewed_at,
        note=row.note,
        applied_in=row.applied_in,
    )
