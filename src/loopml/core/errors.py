"""Error types raised by every layer.

Each error carries a stable ``code`` (used as the problem type in the REST API and
mapped back to the same class by the SDK) and, where one input is to blame, the
``field`` that names it. HTTP status codes are assigned once, in ``loopml.api``.
"""

from __future__ import annotations

from typing import Any


class LoopmlError(Exception):
    """Base class of every error loopml raises on purpose."""

    code = "error"

    def __init__(self, message: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra

    def __str__(self) -> str:
        return self.message


class InvalidInput(LoopmlError):
    """A value supplied by the caller is malformed or out of range."""

    code = "invalid-input"


class NotFound(LoopmlError):
    """The named object does not exist (or the caller may not know it exists)."""

    code = "not-found"


class AlreadyExists(LoopmlError):
    """An object with the same unique name already exists."""

    code = "already-exists"


class Conflict(LoopmlError):
    """The request is valid but the object's current state does not allow it."""

    code = "conflict"


class Unauthenticated(LoopmlError):
    """No credentials, unknown credentials, or revoked credentials."""

    code = "unauthenticated"


class Forbidden(LoopmlError):
    """The credentials are valid but their role is too weak for the action."""

    code = "forbidden"


class PayloadTooLarge(LoopmlError):
    """A request body or upload exceeds the configured size limit."""

    code = "payload-too-large"


class IntegrityError(LoopmlError):
    """Stored content does not match its recorded content hash."""

    code = "integrity-error"


class StorageError(LoopmlError):
    """The metadata database or the blob store could not complete an operation."""

    code = "storage-error"


class JobCancelled(LoopmlError):
    """Raised inside a running job when a cancellation was requested."""

    code = "job-cancelled"


ERRORS_BY_CODE: dict[str, type[LoopmlError]] = {
    cls.code: cls
    for cls in (
        LoopmlError,
        InvalidInput,
        NotFound,
        AlreadyExists,
        Conflict,
        Unauthenticated,
        Forbidden,
        PayloadTooLarge,
        IntegrityError,
        StorageError,
        JobCancelled,
    )
}
