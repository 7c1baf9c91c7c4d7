"""How a failed job records its exception, and which of those are the caller's to fix.

A job records ``"<type>: <message>"``; the errors of loopml's own that a caller causes
(bad data, a missing source) can be raised again from that record, so that a request that
waited for the job answers as any request would.
"""

from __future__ import annotations

from loopml.core.errors import (
    AlreadyExists,
    Conflict,
    Forbidden,
    InvalidInput,
    LoopmlError,
    NotFound,
    PayloadTooLarge,
)

# Others (a storage outage, a database's own IntegrityError of the same name) stay a
# failed job.
_CALLERS = {
    kind.__name__: kind
    for kind in (InvalidInput, NotFound, AlreadyExists, Conflict, PayloadTooLarge, Forbidden)
}


def recorded(exc: BaseException) -> str:
    """The text a failed job keeps of ``exc``."""
    return f"{type(exc).__name__}: {exc}"


def callers_error(record: str | None, job_id: str) -> LoopmlError | None:
    """The caller's error a job failed with, named with the job, or None."""
    name, _, message = (record or "").partition(": ")
    kind = _CALLERS.get(name)
    return kind(f"{message} (job {job_id})") if kind is not None and message else None
