"""Enumerations shared by every layer."""

from __future__ import annotations

from enum import Enum


class Role(str, Enum):
    """A key's role in a project; each role includes the rights of those below it."""

    viewer = "viewer"
    labeller = "labeller"
    maintainer = "maintainer"
    admin = "admin"

    @property
    def rank(self) -> int:
        return _ROLE_RANK[self]

    def includes(self, other: Role) -> bool:
        """Whether this role grants everything ``other`` grants."""
        return self.rank >= other.rank


_ROLE_RANK = {Role.viewer: 0, Role.labeller: 1, Role.maintainer: 2, Role.admin: 3}


class JobState(str, Enum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.succeeded, JobState.failed, JobState.cancelled)


class TaskType(str, Enum):
    binary = "binary"
    multiclass = "multiclass"
    regression = "regression"


class Stage(str, Enum):
    candidate = "candidate"
    staging = "staging"
    production = "production"
    archived = "archived"


class ChallengerMode(str, Enum):
    """How a deployment's challenger model meets traffic."""

    shadow = "shadow"  # predicts a copy of every request; answers captured, never returned
    canary = "canary"  # answers a weighted share of requests itself


class ColumnKind(str, Enum):
    """What a dataset column holds, as far as learning from it is concerned."""

    numeric = "numeric"
    integer = "integer"
    boolean = "boolean"
    categorical = "categorical"
    datetime = "datetime"
    text = "text"
    identifier = "identifier"
    image = "image"


class Severity(str, Enum):
    """How urgently a data-quality finding needs a person's attention."""

    info = "info"
    warning = "warning"
    error = "error"


class LabelSource(str, Enum):
    """Where a label came from."""

    human = "human"
    import_ = "import"
    model = "model"
    feedback = "feedback"


class LabelStatus(str, Enum):
    pending_review = "pending_review"
    approved = "approved"
    rejected = "rejected"
