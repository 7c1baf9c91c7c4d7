"""The prediction routes answered before FastAPI routes the request.

A deployment answers the same small request thousands of times a second, and FastAPI's
routing, dependency solving and exception middleware cost more than the model does. The
lane checks the key with the route's own guard and answers with the route's own handler
(:func:`loopml.api.routers.predictions.respond`); errors become the same problem
responses. The route stays: it is what the OpenAPI document describes, and it answers
wherever the lane is not installed.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from loopml.api import auth, problems
from loopml.api.lookups import PREDICT_PATH
from loopml.api.routers import predictions
from loopml.core.errors import LoopmlError
from loopml.core.schemas import ApiKey


class PredictLane:
    """ASGI middleware answering ``POST .../deployments/{name}/predict`` (and
    ``/invocations``) itself.

    Parameters
    ----------
    app : ASGI app
        Where every other request goes.
    local_key : ApiKey, optional
        The key every request is taken to carry (the CLI's in-process app, which is never
        bound to a socket); None checks each request's own.
    """

    def __init__(self, app: ASGIApp, local_key: ApiKey | None = None) -> None:
        self.app = app
        self.local_key = local_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = None
        if scope["type"] == "http" and scope["method"] == "POST":
            found = PREDICT_PATH.match(scope["path"])
        if found is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        project, name = found["project"], found["name"]
        try:
            key = self.local_key
            if key is None:
                secret = auth.bearer_secret(request.headers.get("authorization"))
                key = await auth.verified_key(request.app.state.lookups, secret)
            predictions.GUARD.allows(key, project)
            response = await predictions.respond(request, project, name)
        except LoopmlError as exc:
            response = problems.error_response(exc, scope["path"])
        await response(scope, receive, send)
