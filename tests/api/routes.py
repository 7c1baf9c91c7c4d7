"""The API's route table, read the way FastAPI serves it: full paths, every guard."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from loopml.api import auth


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    guards: tuple[auth.Require, ...]
    has_body: bool

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def guard(self) -> auth.Require | None:
        """The strictest guard on the route (the one that decides)."""
        if not self.guards:
            return None
        return max(self.guards, key=lambda g: -1 if g.role is None else g.role.rank)


def _guards(dependant: Any) -> Iterator[auth.Require]:
    for dep in dependant.dependencies:
        if isinstance(dep.call, auth.Require):
            yield dep.call
        yield from _guards(dep)


def _route_entries(app: FastAPI) -> Iterator[Any]:
    """Every route with its effective path and dependency tree (prefixes and router-level
    dependencies applied), on FastAPI versions with and without lazily included routers."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI before included routers became lazy
        yield from (r for r in app.routes if isinstance(r, APIRoute))
        return
    for ctx in iter_route_contexts(app.routes):
        if isinstance(ctx.original_route, APIRoute):
            yield ctx


def endpoints(app: FastAPI) -> list[Endpoint]:
    """One entry per (method, path) of every ``/api/v1`` route of ``app``."""
    found = []
    for route in _route_entries(app):
        if not route.path.startswith("/api/v1"):
            continue
        guards = tuple(_guards(route.dependant))
        has_body = getattr(route, "body_field", None) is not None
        for method in sorted(route.methods):
            found.append(Endpoint(method, route.path, guards, has_body))
    return found
