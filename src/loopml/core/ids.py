"""Identifiers and names."""

from __future__ import annotations

import os
import re
import threading
import time

from loopml.core.errors import InvalidInput

_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")

_RANDOM_BITS = 56
_id_lock = threading.Lock()
_last: tuple[int, int] = (-1, 0)


def new_id() -> str:
    """Return a 26-character identifier that sorts by creation time.

    48 bits of milliseconds followed by 56 bits drawn at random (ULID layout, hex-encoded),
    so that ids created later sort later in indexes and listings. Within one process the
    order is strict: an id made in the same millisecond as the previous one (or after the
    clock stepped back) counts up from it instead of drawing new random bits.
    """
    global _last
    with _id_lock:
        millis = time.time_ns() // 1_000_000
        last_millis, last_rand = _last
        if millis <= last_millis:
            millis, rand = last_millis, last_rand + 1
            if rand >> _RANDOM_BITS:  # random part exhausted: move to the next millisecond
                millis, rand = millis + 1, int.from_bytes(os.urandom(7), "big") >> 1
        else:
            # One bit short of the full width leaves room to count up within the millisecond.
            rand = int.from_bytes(os.urandom(7), "big") >> 1
        _last = (millis, rand)
    return f"{millis:012x}{rand:014x}"


def _forget_last() -> None:
    # A forked child must not continue its parent's sequence (both would make the same ids).
    global _last
    _last = (-1, 0)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_last)


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
