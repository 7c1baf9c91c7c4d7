"""The REST API end to end over loopback: health, OpenAPI, projects, keys, jobs."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from loopml import __version__
from loopml.api.app import PUBLIC_PATHS
from loopml.store.migrate import head_revision
from tests.api.routes import endpoints
from tests.api.support import assert_problem, client, serve
from tests.conftest import LiveServer, free_port, make_settings, wait_for


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # One job at a time, so that a second job demonstrably waits in the queue.
    with serve(tmp_path_factory, worker_concurrency=1) as srv:
        yield srv


def new_key(http: httpx.Client, name: str, **body: Any) -> dict[str, Any]:
    r = http.post("/keys", json={"name": name, **body})
    assert r.status_code == 201, r.text
    return dict(r.json())


def new_project(admin: httpx.Client, name: str) -> None:
    r = admin.post("/projects", json={"name": name})
    assert r.status_code == 201, r.text


# --- health, version, OpenAPI --------------------------------------------------------


def test_health_is_public_and_reports_database_and_schema(server: LiveServer) -> None:
    r = httpx.get(server.url + "/api/v1/health")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {
        "status": "ok",
        "database": "ok",
        "schema_revision": head_revision(),
        "version": __version__,
    }
    assert head_revision()


def test_version_is_public(server: LiveServer) -> None:
    r = httpx.get(server.url + "/api/v1/version")
    assert r.status_code == 200
    assert r.json() == {"version": __version__, "api": "v1"}


def test_openapi_lists_every_route_and_the_bearer_scheme(server: LiveServer) -> None:
    r = httpx.get(server.url + "/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    assert spec["info"]["version"] == __version__
    schemes = spec["components"]["securitySchemes"]
    bearer = [name for name, s in schemes.items() if s == {**s, "type": "http", "scheme": "bearer"}]
    assert len(bearer) == 1, schemes
    routes = endpoints(server.app)
    assert len(routes) >= 18
    for endpoint in routes:
        operation = spec["paths"].get(endpoint.path, {}).get(endpoint.method.lower())
        assert operation is not None, f"{endpoint.id} is missing from /openapi.json"
        security = operation.get("security", [])
        if endpoint.path in PUBLIC_PATHS:
            assert security == [], endpoint.id
        else:
            assert {bearer[0]: []} in security, f"{endpoint.id} does not declare bearer auth"
    # and nothing documented that is not served
    documented = {(p, m.upper()) for p, ops in spec["paths"].items() for m in ops}
    assert documented == {(e.path, e.method) for e in routes}


# --- projects ---------------------------------------------------------------------------


def test_project_lifecycle(admin: httpx.Client) -> None:
    r = admin.post("/projects", json={"name": "life", "description": "first"})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["name"] == "life" and created["description"] == "first"
    assert created["id"] and created["created_at"]

    assert admin.get("/projects/life").json() == created
    assert created in admin.get("/projects").json()

    r = admin.patch("/projects/life", json={"description": "second"})
    assert r.status_code == 200, r.text
    assert r.json() == {**created, "description": "second"}
    assert admin.get("/projects/life").json()["description"] == "second"
    assert admin.get("/projects/life/jobs").json() == []


def test_viewer_lists_only_its_projects_admin_lists_all(
    server: LiveServer, admin: httpx.Client
) -> None:
    for name in ("see-a", "see-b", "see-c"):
        new_project(admin, name)
    key = new_key(admin, "partial", roles={"see-a": "viewer", "see-c": "maintainer"})
    nobody = new_key(admin, "nobody")
    with client(server, key["secret"]) as viewer, client(server, nobody["secret"]) as none:
        assert [p["name"] for p in viewer.get("/projects").json()] == ["see-a", "see-c"]
        assert none.get("/projects").json() == []
        assert_problem(viewer.get("/projects/see-b"), 403, field="Authorization")
    everything = [p["name"] for p in admin.get("/projects").json()]
    assert {"see-a", "see-b", "see-c"} <= set(everything)
    assert everything == sorted(everything)


def test_concurrent_creates_of_one_project_make_exactly_one(
    server: LiveServer, admin: httpx.Client
) -> None:
    def create(_: int) -> httpx.Response:
        with client(server, server.admin_key) as http:
            return http.post("/projects", json={"name": "contended"})

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(create, range(12)))
    assert sorted(r.status_code for r in answers) == [201] + [409] * 11
    for r in answers:
        if r.status_code == 409:
            assert_problem(r, 409, field="name", code="already-exists")
    assert [p["name"] for p in admin.get("/projects").json()].count("contended") == 1


# --- keys and roles ---------------------------------------------------------------------


def test_project_admin_grants_roles_in_its_own_project_only(
    server: LiveServer, admin: httpx.Client
) -> None:
    new_project(admin, "own")
    new_project(admin, "other")
    boss = new_key(admin, "boss", roles={"own": "admin"})
    target = new_key(admin, "target")
    tid = target["key"]["id"]
    with client(server, boss["secret"]) as b, client(server, target["secret"]) as t:
        assert_problem(t.get("/projects/own"), 403)

        r = b.put(f"/keys/{tid}/roles/own", json={"role": "maintainer"})
        assert r.status_code == 200, r.text
        assert r.json()["project_roles"] == {"own": "maintainer"}
        assert t.get("/projects/own").status_code == 200
        assert t.patch("/projects/own", json={"description": "by target"}).status_code == 200
        assert t.get("/keys/me").json()["project_roles"] == {"own": "maintainer"}

        assert_problem(b.put(f"/keys/{tid}/roles/other", json={"role": "viewer"}), 403)
        assert_problem(b.delete(f"/keys/{tid}/roles/other"), 403)
        assert_problem(t.get("/projects/other"), 403)
        # a project admin is not an installation admin
        assert_problem(b.post("/keys", json={"name": "minted", "admin": True}), 403)
        assert_problem(b.post(f"/keys/{tid}/revoke"), 403)

        r = b.delete(f"/keys/{tid}/roles/own")
        assert r.status_code == 200 and r.json()["project_roles"] == {}
        assert_problem(t.get("/projects/own"), 403)
    names = [k["name"] for k in admin.get("/keys").json()]
    assert "minted" not in names


def test_key_secrets_are_shown_once_and_never_listed(
    server: LiveServer, admin: httpx.Client
) -> None:
    made = new_key(admin, "secretive", roles={})
    secret = made["secret"]
    assert secret.startswith(made["key"]["prefix"] + "_")
    digest = hashlib.sha256(secret.encode()).hexdigest()
    body = admin.get("/keys").text
    listed = admin.get("/keys").json()
    assert made["key"]["id"] in body
    for entry in listed:
        assert set(entry) == set(made["key"]), entry  # no secret or hash field
    with client(server, secret) as own:
        me = own.get("/keys/me")
    for text in (body, me.text, admin.get("/keys", params={"include_revoked": False}).text):
        assert secret not in text
        assert secret.removeprefix(made["key"]["prefix"] + "_") not in text
        assert digest not in text
    assert me.json()["id"] == made["key"]["id"]


def test_revoked_keys_stop_working_and_the_last_admin_key_cannot_go(
    live_server: LiveServer,
) -> None:
    first = live_server.admin_key
    with client(live_server, first) as a:
        first_id = a.get("/keys/me").json()["id"]
        r = a.post(f"/keys/{first_id}/revoke")
        problem = assert_problem(r, 409, field="key_id", code="conflict")
        assert "last admin" in problem["detail"]
        assert a.get("/keys/me").status_code == 200  # still works

        second = new_key(a, "second admin", admin=True)
    with client(live_server, second["secret"]) as b:
        r = b.post(f"/keys/{first_id}/revoke")
        assert r.status_code == 200, r.text
        assert r.json()["revoked_at"] is not None
        with client(live_server, first) as a:
            assert_problem(a.get("/keys/me"), 401, field="Authorization")
        assert_problem(b.post(f"/keys/{second['key']['id']}/revoke"), 409, field="key_id")
        assert b.get("/keys/me").status_code == 200
        listed = {k["id"]: k for k in b.get("/keys").json()}
        assert listed[first_id]["revoked_at"] is not None
        active = b.get("/keys", params={"include_revoked": False}).json()
        assert [k["id"] for k in active] == [second["key"]["id"]]


# --- jobs -------------------------------------------------------------------------------


def test_selfcheck_job_runs_to_success_with_progress_and_logs(admin: httpx.Client) -> None:
    new_project(admin, "jobs-ok")
    r = admin.post("/projects/jobs-ok/jobs", json={"kind": "selfcheck", "params": {}})
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["state"] == "queued" and job["project"] == "jobs-ok"
    url = f"/projects/jobs-ok/jobs/{job['id']}"

    done = wait_for(
        check=lambda: (
            (j := admin.get(url).json())["state"] in ("succeeded", "failed", "cancelled") and j
        ),
        what="the selfcheck job to finish",
    )
    assert done["state"] == "succeeded", done
    assert done["progress"] == 1.0
    assert done["result"]["ok"] is True
    assert set(done["result"]["milliseconds"]) == {
        "database",
        "blob write",
        "blob read",
        "blob delete",
    }
    assert done["attempts"] == 1 and done["error"] is None
    assert done["started_at"] and done["finished_at"]

    logs = admin.get(f"{url}/logs").json()
    assert [line["message"].split(":")[0] for line in logs] == [
        "database",
        "blob write",
        "blob read",
        "blob delete",
    ]
    assert all("ok" in line["message"] for line in logs)
    seqs = [line["seq"] for line in logs]
    assert seqs == sorted(seqs)
    assert admin.get(f"{url}/logs", params={"after": seqs[1]}).json() == logs[2:]
    listed = admin.get("/projects/jobs-ok/jobs", params={"state": "succeeded"}).json()
    assert [j["id"] for j in listed] == [job["id"]]
    assert admin.get("/projects/jobs-ok/jobs", params={"state": "queued"}).json() == []


def test_cancelling_a_queued_job_and_a_running_one(admin: httpx.Client) -> None:
    new_project(admin, "jobs-cancel")
    base = "/projects/jobs-cancel/jobs"
    # with one worker slot, the long job holds the worker and the next one stays queued
    blocker = admin.post(base, json={"kind": "selfcheck", "params": {"pause": 5}}).json()
    wait_for(
        check=lambda: admin.get(f"{base}/{blocker['id']}").json()["state"] == "running",
        what="the first job to start",
    )
    queued = admin.post(base, json={"kind": "selfcheck"}).json()
    assert admin.get(f"{base}/{queued['id']}").json()["state"] == "queued"

    r = admin.post(f"{base}/{queued['id']}/cancel")
    assert r.status_code == 200, r.text
    cancelled = r.json()
    assert cancelled["state"] == "cancelled" and cancelled["finished_at"]

    r = admin.post(f"{base}/{blocker['id']}/cancel")
    assert r.status_code == 200, r.text
    assert r.json()["cancel_requested"] is True
    stopped = wait_for(
        check=lambda: (
            (j := admin.get(f"{base}/{blocker['id']}").json())["state"] != "running" and j
        ),
        timeout=15,
        what="the running job to stop",
    )
    assert stopped["state"] == "cancelled", stopped
    # the cancelled queued job never ran, even once the worker was free
    time.sleep(0.3)
    never = admin.get(f"{base}/{queued['id']}").json()
    assert never["state"] == "cancelled" and never["attempts"] == 0 and never["started_at"] is None


# --- health when the database is gone -------------------------------------------------


class TcpProxy:
    """Forwards a loopback port to ``target``; stopping it cuts every connection, which
    is what a database server going away looks like to its clients."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        listener.settimeout(0.05)
        self._stop.clear()
        self._thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._thread.start()

    def _accept(self, listener: socket.socket) -> None:
        with listener:
            while not self._stop.is_set():
                try:
                    downstream, _ = listener.accept()
                except TimeoutError:
                    continue
                downstream.settimeout(None)
                upstream = socket.create_connection(self.target)
                self._sockets += [downstream, upstream]
                for src, dst in ((downstream, upstream), (upstream, downstream)):
                    threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._sockets.clear()


@pytest.mark.postgres
def test_health_is_503_while_the_database_is_unreachable(postgres_url: str, tmp_path: Path) -> None:
    url = make_url(postgres_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    proxy.start()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    settings = make_settings(tmp_path / "home", proxied, embedded_worker=False)
    try:
        with LiveServer(settings) as server:
            health = server.url + "/api/v1/health"
            assert httpx.get(health).status_code == 200

            proxy.stop()
            r = httpx.get(health, timeout=30)
            assert r.status_code == 503, r.text
            body = r.json()
            assert body["status"] == "unavailable"
            assert body["database"].startswith("error")
            assert body["version"] == __version__
            # other requests fail as problems too, not as hangs or bare 500 pages
            with client(server, server.admin_key) as api:
                r = api.get("/projects")
            assert r.status_code >= 500
            assert r.headers["content-type"].startswith("application/problem+json")

            proxy.start()  # the database is back: so is the server, without a restart
            r = wait_for(
                check=lambda: (h := httpx.get(health)).status_code == 200 and h,
                timeout=10,
                what="health to recover",
            )
            assert r.json()["database"] == "ok"
    finally:
        proxy.stop()


@pytest.mark.postgres
def test_health_is_503_when_the_schema_is_gone(postgres_url: str, tmp_path: Path) -> None:
    import psycopg

    url = make_url(postgres_url)
    schema = str(url.query["options"]).split("search_path=")[1]
    conninfo = url.set(query={}, drivername="postgresql").render_as_string(hide_password=False)
    settings = make_settings(tmp_path / "home", postgres_url, embedded_worker=False)
    with LiveServer(settings) as server:
        health = server.url + "/api/v1/health"
        assert httpx.get(health).json()["schema_revision"] == head_revision()
        with psycopg.connect(conninfo, autocommit=True) as conn:  # someone wipes the database
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
            conn.execute(f'CREATE SCHEMA "{schema}"')
        r = httpx.get(health)
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["status"] == "unavailable"
        assert body["schema_revision"] is None
        assert head_revision() in body["database"]
