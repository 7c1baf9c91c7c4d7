"""Authentication (Bearer API keys) and role guards.

Every route under ``/api/v1`` except the public ones depends on a :class:`Require`
guard; the test suite walks the route table and fails on any route without one.
"""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from loopml.api.lookups import Lookups
from loopml.core.enums import Role
from loopml.core.errors import Forbidden, Unauthenticated
from loopml.core.schemas import ApiKey
from loopml.home import Home

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer lml_...`")


async def get_home(request: Request) -> Home:
    home: Home = request.app.state.home
    return home


async def current_key(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
) -> ApiKey:
    """The API key that signed the request; 401 when missing, unknown or revoked."""
    secret = None if credentials is None else credentials.credentials
    return await verified_key(request.app.state.lookups, secret)


def bearer_secret(authorization: str | None) -> str | None:
    """The key in an ``Authorization: Bearer <key>`` header, as ``HTTPBearer`` reads it."""
    scheme, _, secret = (authorization or "").partition(" ")
    return secret if scheme.lower() == "bearer" and secret else None


async def verified_key(lookups: Lookups, secret: str | None) -> ApiKey:
    """The key for ``secret``; 401 when there is none, or it is unknown or revoked.

    Async, so that it runs on the event loop: only a database lookup (a key not seen in
    the last moments) goes to a thread.
    """
    if secret is None:
        raise Unauthenticated(
            "missing API key: send 'Authorization: Bearer <key>'", field="Authorization"
        )
    found = lookups.fresh_key(secret)
    return found if found is not None else await run_in_threadpool(lookups.key, secret)


class Require:
    """A guard: the caller's key must hold at least ``role``.

    Parameters
    ----------
    role : Role or None
        Weakest role allowed; None admits any valid key.
    scope : {"project", "global"}
        ``project`` reads the project from the ``{project}`` path parameter;
        ``global`` requires the role in every project (as admin keys have).
    """

    def __init__(self, role: Role | None, scope: str = "project") -> None:
        if scope not in ("project", "global"):
            raise ValueError("scope must be 'project' or 'global'")
        self.role = role
        self.scope = scope

    async def __call__(self, request: Request, key: ApiKey = Depends(current_key)) -> ApiKey:
        return self.allows(key, request.path_params.get("project"))

    def allows(self, key: ApiKey, project: str | None) -> ApiKey:
        """``key`` if it holds the role (in ``project``, for a project guard); else 403."""
        if self.role is None:
            return key
        project = project if self.scope == "project" else None
        held = key.role_in(project)
        if held is None or not held.includes(self.role):
            where = f"project {project!r}" if project else "this installation"
            has = f"role {held.value!r}" if held else "no role"
            raise Forbidden(
                f"key {key.name!r} has {has} in {where}; this needs {self.role.value!r}",
                field="Authorization",
            )
        return key

    def __repr__(self) -> str:
        return f"Require({self.role}, scope={self.scope!r})"


any_key = Require(None)
viewer = Require(Role.viewer)
labeller = Require(Role.labeller)
maintainer = Require(Role.maintainer)
project_admin = Require(Role.admin)
admin = Require(Role.admin, scope="global")
