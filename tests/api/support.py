"""Helpers for the API and SDK tests: module-scoped live servers, problem+json checks."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer, make_settings

PROBLEM = "application/problem+json"


@contextmanager
def serve(tmp_path_factory: pytest.TempPathFactory, **overrides: Any) -> Iterator[LiveServer]:
    """A live server in its own home, built without the developer's LOOPML_* variables
    or loopml.toml (the autouse isolation fixture only covers function scope)."""
    base = tmp_path_factory.mktemp("server")
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("LOOPML_") and name != "LOOPML_TEST_POSTGRES_URL":
                mp.delenv(name)
        (base / "cwd").mkdir()
        mp.chdir(base / "cwd")
        settings = make_settings(base / "home", **overrides)
    with LiveServer(settings) as server:
        yield server


def client(server: LiveServer, key: str | None = None) -> httpx.Client:
    """An httpx client for ``/api/v1`` of ``server``, signed with ``key`` when given."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=server.url + "/api/v1", headers=headers, timeout=30)


def assert_problem(
    response: httpx.Response, status: int, field: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """``response`` is an RFC 9457 problem with ``status`` naming ``field``; returns the body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body = response.json()
    assert body["type"].startswith("urn:loopml:problem:"), body
    if code is not None:
        assert body["type"] == "urn:loopml:problem:" + code, body
    assert body["title"] and isinstance(body["title"], str), body
    assert body["status"] == status, body
    assert body["detail"] and isinstance(body["detail"], str), body
    if field is not None:
        assert body.get("field") == field, body
    return body
