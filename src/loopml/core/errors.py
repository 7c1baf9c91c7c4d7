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


class InvalidDefinition(InvalidInput):
    """A workflow definition breaks the States Language; ``problems`` lists every break.

    Each problem is ``(where, message)``, ``where`` naming the state and field, such as
    ``States.Classify.Next``.
    """

    code = "invalid-definition"

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        lines = "; ".join(f"{where}: {message}" for where, message in problems)
        super().__init__(
            f"the workflow definition is invalid: {lines}",
            field=problems[0][0] if problems else None,
            problems=[{"field": where, "message": message} for where, message in problems],
        )
        self.problems = problems


class StatesError(LoopmlError):
    """A workflow state failed with a named error, as the States Language names them.

    A task raises it to fail with a chosen name (``StatesError("ConfidenceThresholdNotMet",
    "0.81 < 0.93")``); any other exception a task raises fails it with the exception's
    class name as the error.
    """

    code = "states-error"

    def __init__(self, error: str, cause: str = "") -> None:
        super().__init__(f"{error}: {cause}" if cause else error)
        self.error = error
        self.cause = cause


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
# Rebuilt from a problem answer, an invalid definition is the input error it derives from.
ERRORS_BY_CODE[InvalidDefinition.code] = InvalidInput
