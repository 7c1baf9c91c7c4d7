"""Talking to a home directory in-process, through the same API the server exposes.

The CLI without ``--url`` runs the app in this process behind an httpx transport, so
that every command has one code path (CLI -> SDK -> API -> services) whether or not a
server is running.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio.from_thread
import httpx
from fastapi import FastAPI

from loopml.sdk import Client
from loopml.settings import Settings


def connect_local(
    settings: Settings | None = None,
    *,
    worker: bool = False,
    announce: Callable[[str], None] | None = None,
) -> Client:
    """An SDK client for the home directory of ``settings``, served in this process.

    What the CLI uses without ``--url``; scripts use it the same way::

        client = connect_local(worker=True)  # a worker thread runs the jobs it queues
        client.projects.list()
        client.close()
    """
    from loopml.api import create_app

    app = create_app(
        settings or Settings(), embedded_worker=worker, trusted_local=True, announce=announce
    )
    transport = InProcessTransport(app)
    return Client(http=httpx.Client(transport=transport, base_url="http://loopml.local"))


class InProcessTransport(httpx.BaseTransport):
    """A synchronous httpx transport that calls an ASGI app with its lifespan running."""

    def __init__(self, app: FastAPI) -> None:
        self._asgi = httpx.ASGITransport(app=app)
        self._portal_cm = anyio.from_thread.start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        self._lifespan = self._portal.wrap_async_context_manager(app.router.lifespan_context(app))
        try:
            self._lifespan.__enter__()
        except BaseException:
            self._portal_cm.__exit__(None, None, None)
            raise

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()

        async def call() -> httpx.Response:
            forwarded = httpx.Request(
                request.method, request.url, headers=request.headers, content=body
            )
            response = await self._asgi.handle_async_request(forwarded)
            content = await response.aread()
            return httpx.Response(
                response.status_code, headers=response.headers, content=content, request=request
            )

        return self._portal.call(call)

    def close(self) -> None:
        try:
            self._lifespan.__exit__(None, None, None)
        finally:
            self._portal_cm.__exit__(None, None, None)
