"""The registry of job kinds: a name mapped to the ``module:function`` that runs it.

Kinds are named by import path, not by function object, so that a worker process,
a Ray task or another machine can import the handler by itself.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any

from loopml.core.errors import InvalidInput

BUILTIN_KINDS: dict[str, str] = {
    "selfcheck": "loopml.jobs.builtin:selfcheck",
    "automl.train": "loopml.jobs.training:train",
    "data.ingest": "loopml.jobs.ingest:ingest",
    "serving.batch_predict": "loopml.jobs.batch:batch_predict",
    "monitoring.run": "loopml.jobs.monitoring:run_monitoring",
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

    def validate(self, kind: str, params: dict[str, Any]) -> None:
        """Check, before queueing, that ``kind`` exists, loads, and takes ``params``."""
        try:
            handler = load_handler(self.target(kind))
        except (ImportError, AttributeError) as exc:
            raise InvalidInput(f"job kind {kind!r} cannot be loaded: {exc}", field="kind") from exc
        check_params(handler, kind, params)

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


def check_params(handler: Any, kind: str, params: dict[str, Any]) -> None:
    """Raise :class:`InvalidInput` naming the parameters a handler does not take or misses.

    Checked before the call, so that a ``TypeError`` raised inside the handler is never
    mistaken for (or reported as) a wrong parameter.
    """
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError):  # builtins without a signature: let the call decide
        return
    named = list(signature.parameters.values())[1:]  # the first one receives the context
    by_name = [p for p in named if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown: list[str] = []
    if not any(p.kind is p.VAR_KEYWORD for p in named):
        unknown = sorted(set(params) - {p.name for p in by_name})
    missing = [p.name for p in by_name if p.default is p.empty and p.name not in params]
    problems = []
    if unknown:
        problems.append(f"unknown parameter(s) {', '.join(map(repr, unknown))}")
    if missing:
        problems.append(f"missing required parameter(s) {', '.join(map(repr, missing))}")
    if problems:
        takes = ", ".join(p.name for p in by_name) or "no parameters"
        raise InvalidInput(
            f"job kind {kind!r}: {'; '.join(problems)} (it accepts: {takes})", field="params"
        )
