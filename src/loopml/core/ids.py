"""Identifiers and names."""

from __future__ import annotations

import os
import re
import time

from loopml.core.errors import InvalidInput

_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def new_id() -> str:
    """Return a 26-character identifier that sorts by creation time.

    48 bits of milliseconds followed by 80 random bits, hex-encoded (ULID layout),
    so that ids created later sort later in indexes and listings.
    """
    millis = time.time_ns() // 1_000_000
    return f"{millis:012x}{os.urandom(10).hex()}"[:26]


def check_name(value: str, *, field: str = "name") -> str:
    """Validate a user-chosen name (projects, deployments, ...) used in URLs.

    Names are 1-63 characters of lowercase letters, digits and hyphens, starting and
    ending with a letter or digit, so that they are safe in URLs, paths and DNS labels.
    """
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise InvalidInput(
            f"{field} {value!r} is not a valid name: use 1-63 lowercase letters, digits "
            "and hyphens, starting and ending with a letter or digit",
            field=field,
        )
    return value
