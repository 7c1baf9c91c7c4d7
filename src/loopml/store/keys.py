"""API keys: created once with their secret shown, stored as a SHA-256 hash, revocable.

A key is ``lml_<prefix>_<secret>``. The prefix is stored in clear to find the row; the
whole key is hashed. Keys carry 192 random bits, so a fast hash is safe here (a slow
password hash would only slow every request without adding security).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from loopml.core.enums import Role
from loopml.core.errors import InvalidInput, NotFound, Unauthenticated
from loopml.core.ids import new_id
from loopml.core.schemas import ApiKey, NewApiKey
from loopml.store.models import ApiKeyRow, ProjectRoleRow, ProjectRow, utcnow

KEY_PREFIX = "lml_"
# last_used_at is written at most this often per key, to keep reads read-only.
_TOUCH_EVERY = timedelta(minutes=1)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create(
    session: Session,
    name: str,
    *,
    global_role: Role | None = None,
    project_roles: dict[str, Role] | None = None,
) -> NewApiKey:
    """Create a key; the returned secret is never retrievable again."""
    if not name or len(name) > 200:
        raise InvalidInput("key name must be 1-200 characters", field="name")
    prefix = secrets.token_hex(4)
    secret = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(24)}"
    row = ApiKeyRow(
        id=new_id(),
        name=name,
        prefix=prefix,
        secret_hash=_hash(secret),
        global_role=global_role.value if global_role else None,
    )
    session.add(row)
    session.flush()
    for project, role in (project_roles or {}).items():
        set_role(session, row.id, project, role)
    return NewApiKey(key=_entity(session, row), secret=secret)


def authenticate(session: Session, secret: str) -> ApiKey:
    """Return the key for ``secret``; raise :class:`Unauthenticated` if unknown or revoked."""
    parts = secret.split("_")
    if len(parts) < 3 or not secret.startswith(KEY_PREFIX):
        raise Unauthenticated("malformed API key", field="Authorization")
    row = session.scalar(select(ApiKeyRow).where(ApiKeyRow.prefix == parts[1]))
    if row is None or not hmac.compare_digest(row.secret_hash, _hash(secret)):
        raise Unauthenticated("unknown API key", field="Authorization")
    if row.revoked_at is not None:
        raise Unauthenticated(
            f"API key {row.name!r} was revoked at {row.revoked_at.isoformat()}",
            field="Authorization",
        )
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > _TOUCH_EVERY:
        row.last_used_at = now
    return _entity(session, row)


def set_role(session: Session, key_id: str, project: str, role: Role | None) -> ApiKey:
    """Grant ``role`` in ``project`` to a key, or take its role away when ``role`` is None."""
    row = _row(session, key_id)
    project_row = session.scalar(select(ProjectRow).where(ProjectRow.name == project))
    if project_row is None:
        raise NotFound(f"project {project!r} does not exist", field="project")
    grant = session.get(ProjectRoleRow, (row.id, project_row.id))
    if role is None:
        if grant is not None:
            session.delete(grant)
    elif grant is None:
        session.add(ProjectRoleRow(key_id=row.id, project_id=project_row.id, role=role.value))
    else:
        grant.role = role.value
    session.flush()
    return _entity(session, row)


def revoke(session: Session, key_id: str) -> ApiKey:
    row = _row(session, key_id)
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
    return _entity(session, row)


def get(session: Session, key_id: str) -> ApiKey:
    return _entity(session, _row(session, key_id))


def list_all(session: Session, *, include_revoked: bool = True) -> list[ApiKey]:
    query = select(ApiKeyRow).order_by(ApiKeyRow.created_at)
    if not include_revoked:
        query = query.where(ApiKeyRow.revoked_at.is_(None))
    return [_entity(session, r) for r in session.scalars(query)]


def count_admins(session: Session) -> int:
    query = select(ApiKeyRow.id).where(
        ApiKeyRow.global_role == Role.admin.value, ApiKeyRow.revoked_at.is_(None)
    )
    return len(session.scalars(query).all())


def _row(session: Session, key_id: str) -> ApiKeyRow:
    row = session.get(ApiKeyRow, key_id)
    if row is None:
        raise NotFound(f"API key {key_id!r} does not exist", field="key_id")
    return row


def _entity(session: Session, row: ApiKeyRow) -> ApiKey:
    grants = session.execute(
        select(ProjectRow.name, ProjectRoleRow.role)
        .join(ProjectRow, ProjectRow.id == ProjectRoleRow.project_id)
        .where(ProjectRoleRow.key_id == row.id)
    )
    return ApiKey(
        id=row.id,
        name=row.name,
        prefix=f"{KEY_PREFIX}{row.prefix}",
        global_role=Role(row.global_role) if row.global_role else None,
        project_roles={name: Role(role) for name, role in grants},
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )
