"""How a command reaches loopml: a server named by ``--url``, or the home directory."""

from __future__ import annotations

from dataclasses import dataclass, field

import typer

from loopml.cli.output import err_console
from loopml.core.errors import Unauthenticated
from loopml.home import read_admin_key
from loopml.sdk import Client
from loopml.settings import Settings


@dataclass
class CliState:
    url: str | None = None
    key: str | None = None
    _client: Client | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        return Settings()

    def client(self) -> Client:
        """The SDK client for this invocation, opened on first use."""
        if self._client is None:
            self._client = self._open()
        return self._client

    def _open(self) -> Client:
        if self.url:
            key = self.key or read_admin_key(self.settings())
            if not key:
                raise Unauthenticated("no API key: pass --key or set LOOPML_API_KEY", field="--key")
            return Client(self.url, key)
        from loopml.cli.local import connect_local

        return connect_local(self.settings(), announce=err_console.print)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    assert isinstance(obj, CliState)
    return obj
