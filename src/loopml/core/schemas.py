"""Entities passed between layers and returned by the REST API.

Stores return these plain objects, never ORM rows, so that nothing above ``store``
depends on how a thing is persisted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from loopml.core.enums import JobState, Role


class Entity(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)


class Project(Entity):
    id: str
    name: str
    description: str = ""
    created_at: datetime


class ApiKey(Entity):
    """An API key as others may see it: never the secret, never its hash."""

    id: str
    name: str
    prefix: str = Field(description="First characters of the key, to recognise it.")
    global_role: Role | None = Field(
        default=None, description="Role in every project (admin keys have admin here)."
    )
    project_roles: dict[str, Role] = Field(
        default_factory=dict, description="Role per project name."
    )
    created_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    def role_in(self, project: str | None) -> Role | None:
        """The strongest role this key holds in ``project`` (or globally when None)."""
        roles = [r for r in (self.global_role, self.project_roles.get(project or "")) if r]
        return max(roles, key=lambda r: r.rank) if roles else None


class NewApiKey(BaseModel):
    """A freshly created key: the only time the secret is ever shown."""

    key: ApiKey
    secret: str


class Job(Entity):
    id: str
    project: str | None = None
    kind: str
    params: dict[str, Any] = Field(default_factory=dict)
    state: JobState
    progress: float = 0.0
    message: str = ""
    result: Any = None
    error: str | None = None
    attempts: int = 0
    max_attempts: int = 1
    worker: str | None = None
    cancel_requested: bool = False
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None


class JobLogLine(Entity):
    seq: int
    at: datetime
    level: str
    message: str


class BlobInfo(Entity):
    key: str
    size: int
    sha256: str | None = None
