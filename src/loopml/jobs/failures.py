"""How a failed job records its exception, and which of those are the caller's to fix.

A job records ``"<type>: <message>"``; an error of loopml's own that a caller causes (bad
data, a missing source) is also kept whole as the job's ``problem`` (type, message, field
and details), so that a request that waited for the job answers as any request would.
Only that record is trusted: the text of another library's error of the same name is not.
"""

from __future__ import annotations

import json
from typing import Any

from loopml.core.errors import (
    AlreadyExists,
    Conflict,
    Forbidden,
    InvalidInput,
    LoopmlError,
    NotFound,
    PayloadTooLarge,
)
from loopml.core.schemas import Job

# Others (a storage outage, a database's own IntegrityError of the same name) stay a
# failed job.
_CALLERS = {
    kind.__name__: kind
    for kind in (InvalidInput, NotFound, AlreadyExists, Conflict, PayloadTooLarge, Forbidden)
}


def recorded(exc: BaseException) -> str:
    """The text a failed job keeps of ``exc``."""
    return f"{type(exc).__name__}: {exc}"


def problem(exc: BaseException) -> dict[str, Any] | None:
    """``exc`` whole, when it is the caller's error (None for any other)."""
    if not isinstance(exc, LoopmlError) or _CALLERS.get(type(exc).__name__) is not type(exc):
        return None
    return {
        "type": type(exc).__name__,
        "message": exc.message,
        "field": exc.field,
        "details": _plain(exc.extra),
    }


def callers_error(job: Job) -> LoopmlError | None:
    """The caller's error ``job`` failed with, named with the job, or None."""
    found = job.problem or {}
    kind = _CALLERS.get(found.get("type", ""))
    if kind is None or not found.get("message"):
        return None
    details = found.get("details") or {}
    return kind(f"{found['message']} (job {job.id})", field=found.get("field"), **details)


def _plain(extra: dict[str, Any]) -> dict[str, Any]:
    """The extras that survive strict JSON as they are (a line number, a column's name;
    not infinity, which a PostgreSQL JSON column refuses)."""
    kept = {}
    for key, value in extra.items():
        try:
            if json.loads(json.dumps(value, allow_nan=False)) == value:
                kept[key] = value
        except (TypeError, ValueError):
            continue
    return kept
