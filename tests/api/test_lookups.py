"""The predict path trusts a verified key and a looked-up deployment for a moment: changes
made through the server apply to the next request, changes made elsewhere within
``lookup_cache_seconds``, and never an old state kept past a change."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from loopml.api.lookups import _Recent
from loopml.store import keys
from loopml.store.db import Database
from tests.api.support import client, serve
from tests.conftest import LiveServer


def _new_key(admin: httpx.Client) -> tuple[str, str]:
    r = admin.post("/keys", json={"name": "short-lived", "admin": True})
    assert r.status_code == 201, r.text
    return r.json()["key"]["id"], r.json()["secret"]


def _status(server: LiveServer, secret: str) -> int:
    with client(server, secret) as http:
        return http.get("/projects").status_code


@pytest.fixture(scope="module")
def cached(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve(tmp_path_factory, lookup_cache_seconds=2.0) as live:
        yield live


@pytest.fixture(scope="module")
def uncached(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve(tmp_path_factory, lookup_cache_seconds=0) as live:
        yield live


def _revoke_elsewhere(server: LiveServer, key_id: str) -> None:
    """Revoke as another process would: straight in the database, not through the server."""
    db = Database(server.settings.resolved_database_url)
    try:
        with db.session() as s:
            keys.revoke(s, key_id)
    finally:
        db.dispose()


def test_a_key_revoked_through_the_server_fails_the_next_request(cached: LiveServer) -> None:
    with client(cached, cached.admin_key) as admin:
        key_id, secret = _new_key(admin)
        assert _status(cached, secret) == 200  # now verified and trusted for 2 s
        assert admin.post(f"/keys/{key_id}/revoke").status_code == 200
    assert _status(cached, secret) == 401


def test_a_key_revoked_elsewhere_fails_within_the_cache_time(cached: LiveServer) -> None:
    with client(cached, cached.admin_key) as admin:
        key_id, secret = _new_key(admin)
    assert _status(cached, secret) == 200
    revoked_at = time.monotonic()
    _revoke_elsewhere(cached, key_id)
    statuses = []
    while time.monotonic() - revoked_at < 4.0:
        statuses.append(_status(cached, secret))
        if statuses[-1] == 401:
            break
        time.sleep(0.1)
    assert statuses[-1] == 401, statuses
    assert time.monotonic() - revoked_at < 2.0 + 0.5  # the cache time, and a request's time


def test_without_a_cache_a_key_revoked_elsewhere_fails_at_once(uncached: LiveServer) -> None:
    with client(uncached, uncached.admin_key) as admin:
        key_id, secret = _new_key(admin)
    assert _status(uncached, secret) == 200
    _revoke_elsewhere(uncached, key_id)
    assert _status(uncached, secret) == 401


def test_unknown_keys_are_never_trusted(cached: LiveServer) -> None:
    with client(cached, cached.admin_key) as admin:
        key_id, secret = _new_key(admin)
    _revoke_elsewhere(cached, key_id)  # revoked before it was ever seen: nothing cached
    assert _status(cached, secret) == 401


def test_a_lookup_that_overlaps_a_change_is_not_kept() -> None:
    loading, changed = threading.Event(), threading.Event()
    state = ["old"]

    def read(key: str) -> str:
        if state[0] == "old":  # a slow read of the old state
            loading.set()
            changed.wait(5)
            return "old"
        return state[0]

    recent: _Recent[str, str] = _Recent(ttl=60, load=read)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(recent.get("k")))
    reader.start()
    loading.wait(5)
    state[0] = "new"
    recent.forget()  # the change lands while the read is under way
    changed.set()
    reader.join(5)
    assert got == ["old"]  # that request saw the old state...
    assert recent.get("k") == "new"  # ...but the next one looks again


def test_values_expire_after_the_ttl() -> None:
    calls = iter(range(10))
    recent: _Recent[str, int] = _Recent(ttl=0.2, load=lambda key: next(calls))
    first = recent.get("k")
    assert recent.get("k") == first  # trusted
    assert recent.fresh("k") == first
    time.sleep(0.25)
    assert recent.fresh("k") is None
    assert recent.get("k") == first + 1


def test_writes_to_things_named_predict_are_applied_at_once(cached: LiveServer) -> None:
    """Only the prediction routes skip emptying the cache, not every path that ends in
    "predict" (a deployment, or a project, may be named so)."""
    with client(cached, cached.admin_key) as admin:
        r = admin.post("/keys", json={"name": "predictor"})
        key_id, secret = r.json()["key"]["id"], r.json()["secret"]
        assert admin.post("/projects", json={"name": "predict"}).status_code == 201
        grant = admin.put(f"/keys/{key_id}/roles/predict", json={"role": "viewer"})
        assert grant.status_code == 200, grant.text
        with client(cached, secret) as http:
            assert http.get("/projects/predict/deployments").status_code == 200  # trusted now
            # a path that ends in "predict", but no prediction
            assert admin.delete(f"/keys/{key_id}/roles/predict").status_code == 200
            assert http.get("/projects/predict/deployments").status_code == 403


def test_the_cache_skips_only_posts_to_prediction_routes() -> None:
    from loopml.api.lookups import PREDICT_PATH

    assert PREDICT_PATH.match("/api/v1/projects/p/deployments/d/predict")
    assert PREDICT_PATH.match("/api/v1/projects/p/deployments/d/invocations")
    assert not PREDICT_PATH.match("/api/v1/projects/p/deployments/predict")
    assert not PREDICT_PATH.match("/api/v1/keys/k/roles/predict")
    assert not PREDICT_PATH.match("/api/v1/projects/predict")
