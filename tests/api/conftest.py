"""Fixtures of the API tests: a live server with its worker per test module, and an
admin client of it. A module that needs other settings defines its own ``server``."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.api.support import client, serve
from tests.conftest import LiveServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve(tmp_path_factory) as live:
        yield live


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> Iterator[httpx.Client]:
    with client(server, server.admin_key) as http:
        yield http
