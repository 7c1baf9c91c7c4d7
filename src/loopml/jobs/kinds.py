"""The registry of job kinds: a name mapped to the ``module:function`` that runs it.

Kinds are named by import path, not by function object, so that a worker process,
a Ray task or another machine can import the handler by itself.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from typing import Any

from loopml.core.errors import InvalidInput

BUILTIN_KINDS: dict[str, str] = {
    "selfcheck": "loopml.jobs.builtin:selfcheck",
}

_TARGET_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class JobKinds:
    """Job kinds known to this installation: the built-ins plus ``extra`` ones.

    Parameters
    ----------
    extra : mapping of str to str, optional
        Additional kinds, name -> ``"package.module:function"`` (settings ``job_kinds``).
    """

    def __init__(self, extra: Mapping[str, str] | None = None) -> None:
        self.targets = {**BUILTIN_KINDS, **(extra or {})}
        for name, target in self.targets.items():
            if not _TARGET_RE.match(target):
                raise InvalidInput(
                    f"job kind {name!r} points at {target!r}, expected 'package.module:function'",
                    field="job_kinds",
                )

    def names(self) -> list[str]:
        return sorted(self.targets)

    def target(self, kind: str) -> str:
        try:
            return self.targets[kind]
        except KeyError:
            raise InvalidInput(
                f"unknown job kind {kind!r}; known kinds: {', '.join(self.names())}",
                field="kind",
            ) from None


def load_handler(target: str) -> Callable[..., Any]:
    """Import the function named by ``module:function``."""
    module_name, _, func_name = target.partition(":")
    module = importlib.import_module(module_name)
    handler = getattr(module, func_name)
    if not callable(handler):
        raise InvalidInput(f"{target} is not callable", field="kind")
    return handler
