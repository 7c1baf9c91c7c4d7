"""The Python SDK against a live server over loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from loopml import __version__
from loopml.core import errors
from loopml.core.enums import JobState, Role
from loopml.core.schemas import ApiKey, Job, JobLogLine, NewApiKey, Project
from loopml.sdk import ApiError, Client
from loopml.store.migrate import head_revision
from tests.api.support import serve
from tests.conftest import LiveServer

LIMIT = 16 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve(tmp_path_factory, max_request_bytes=LIMIT) as srv:
        with Client(srv.url, srv.admin_key) as admin:
            admin.projects.create("sdk", "for the SDK tests")
        yield srv


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> Iterator[Client]:
    with Client(server.url, server.admin_key) as c:
        yield c


@pytest.fixture(scope="module")
def viewer(server: LiveServer, admin: Client) -> Iterator[Client]:
    made = admin.keys.create("sdk viewer", roles={"sdk": Role.viewer})
    with Client(server.url, made.secret) as c:
        yield c


# --- system -----------------------------------------------------------------------------


def test_health_and_version(server: LiveServer) -> None:
    with Client(server.url) as anonymous:  # both are public
        health = anonymous.health()
        assert health["status"] == "ok" and health["database"] == "ok"
        assert health["schema_revision"] == head_revision()
        assert anonymous.version() == __version__


# --- projects ---------------------------------------------------------------------------


def test_projects(admin: Client, viewer: Client) -> None:
    created = admin.projects.create("sdk-projects", "before")
    assert isinstance(created, Project)
    assert created.name == "sdk-projects" and created.description == "before"

    fetched = admin.projects.get("sdk-projects")
    assert isinstance(fetched, Project) and fetched == created

    listed = admin.projects.list()
    assert all(isinstance(p, Project) for p in listed)
    assert created in listed
    assert [p.name for p in viewer.projects.list()] == ["sdk"]

    updated = admin.projects.update("sdk-projects", "after")
    assert isinstance(updated, Project)
    assert updated.description == "after" and updated.id == created.id
    assert admin.projects.get("sdk-projects").description == "after"


# --- keys -------------------------------------------------------------------------------


def test_keys(server: LiveServer, admin: Client) -> None:
    me = admin.keys.me()
    assert isinstance(me, ApiKey) and me.global_role is Role.admin

    made = admin.keys.create("sdk key", roles={"sdk": "labeller"})
    assert isinstance(made, NewApiKey) and isinstance(made.key, ApiKey)
    assert made.key.project_roles == {"sdk": Role.labeller}
    assert made.secret.startswith(made.key.prefix + "_")

    with Client(server.url, made.secret) as theirs:
        assert theirs.keys.me().id == made.key.id

        granted = admin.keys.grant(made.key.id, "sdk", Role.maintainer)
        assert isinstance(granted, ApiKey)
        assert granted.project_roles == {"sdk": Role.maintainer}
        assert theirs.projects.update("sdk", "for the SDK tests").name == "sdk"

        ungranted = admin.keys.ungrant(made.key.id, "sdk")
        assert isinstance(ungranted, ApiKey) and ungranted.project_roles == {}
        with pytest.raises(errors.Forbidden):
            theirs.projects.get("sdk")

        listed = admin.keys.list()
        assert all(isinstance(k, ApiKey) for k in listed)
        assert made.key.id in [k.id for k in listed]
        assert made.secret not in repr(listed)

        revoked = admin.keys.revoke(made.key.id)
        assert isinstance(revoked, ApiKey) and revoked.revoked_at is not None
        assert made.key.id in [k.id for k in admin.keys.list()]
        assert made.key.id not in [k.id for k in admin.keys.list(include_revoked=False)]
        with pytest.raises(errors.Unauthenticated):
            theirs.keys.me()


# --- jobs -------------------------------------------------------------------------------


def test_job_runs_and_wait_reports_progress(admin: Client) -> None:
    job = admin.jobs.submit("sdk", "selfcheck", {"pause": 0.2})
    assert isinstance(job, Job)
    assert job.state is JobState.queued and job.kind == "selfcheck"
    assert job.params == {"pause": 0.2} and job.project == "sdk"

    seen: list[Job] = []
    done = admin.jobs.wait("sdk", job.id, timeout=60, poll=0.05, on_update=seen.append)
    assert isinstance(done, Job)
    assert done.state is JobState.succeeded, done.error
    assert done.progress == 1.0 and done.result["ok"] is True

    assert all(isinstance(j, Job) and j.id == job.id for j in seen)
    assert seen[-1] == done
    progress = [j.progress for j in seen]
    assert progress == sorted(progress)
    assert any(0.0 < p < 1.0 for p in progress), progress  # saw it part-way
    assert any(j.state is JobState.running for j in seen)

    assert admin.jobs.get("sdk", job.id) == done
    logs = admin.jobs.logs("sdk", job.id)
    assert len(logs) == 4 and all(isinstance(line, JobLogLine) for line in logs)
    assert logs[0].message.startswith("database: ok")
    assert admin.jobs.logs("sdk", job.id, after=logs[1].seq) == logs[2:]

    succeeded = admin.jobs.list("sdk", state="succeeded")
    assert all(isinstance(j, Job) for j in succeeded)
    assert job.id in [j.id for j in succeeded]
    assert job.id not in [j.id for j in admin.jobs.list("sdk", state=JobState.failed)]
    assert len(admin.jobs.list("sdk", limit=1)) == 1


def test_wait_times_out_and_cancel_stops_the_job(admin: Client) -> None:
    job = admin.jobs.submit("sdk", "selfcheck", {"pause": 5})
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=job.id):
        admin.jobs.wait("sdk", job.id, timeout=0.3, poll=0.05)
    assert time.monotonic() - started < 5

    cancelled = admin.jobs.cancel("sdk", job.id)
    assert isinstance(cancelled, Job)
    assert cancelled.state is JobState.cancelled or cancelled.cancel_requested
    final = admin.jobs.wait("sdk", job.id, timeout=20, poll=0.05)
    assert final.state is JobState.cancelled
    with pytest.raises(errors.Conflict) as raised:
        admin.jobs.cancel("sdk", job.id)
    assert raised.value.field == "job_id" and raised.value.status == 409  # type: ignore[attr-defined]


# --- errors -----------------------------------------------------------------------------


def _bad_key(server: LiveServer) -> Client:
    return Client(server.url, "lml_00000000_not-a-real-secret")


CASES: list[tuple[str, Callable[[LiveServer, Client, Client], Any], type, int, str]] = [
    ("unknown project", lambda s, a, v: a.projects.get("nope"), errors.NotFound, 404, "project"),
    ("unknown job", lambda s, a, v: a.jobs.get("sdk", "0" * 26), errors.NotFound, 404, "job_id"),
    ("unknown key", lambda s, a, v: a.keys.revoke("nope"), errors.NotFound, 404, "key_id"),
    ("duplicate", lambda s, a, v: a.projects.create("sdk"), errors.AlreadyExists, 409, "name"),
    (
        "too weak",
        lambda s, a, v: v.projects.update("sdk", "x"),
        errors.Forbidden,
        403,
        "Authorization",
    ),
    (
        "admin only",
        lambda s, a, v: v.keys.create("escalate", admin=True),
        errors.Forbidden,
        403,
        "Authorization",
    ),
    (
        "bad key",
        lambda s, a, v: _bad_key(s).projects.list(),
        errors.Unauthenticated,
        401,
        "Authorization",
    ),
    (
        "no key",
        lambda s, a, v: Client(s.url).keys.me(),
        errors.Unauthenticated,
        401,
        "Authorization",
    ),
    ("bad name", lambda s, a, v: a.projects.create("Bad Name"), errors.InvalidInput, 422, "name"),
    (
        "unknown kind",
        lambda s, a, v: a.jobs.submit("sdk", "no-such-kind"),
        errors.InvalidInput,
        422,
        "kind",
    ),
    (
        "out of range",
        lambda s, a, v: a.jobs.submit("sdk", "selfcheck", max_attempts=0),
        errors.InvalidInput,
        422,
        "body.max_attempts",
    ),
    (
        "too large",
        lambda s, a, v: a.jobs.submit("sdk", "selfcheck", {"x": "y" * LIMIT}),
        errors.PayloadTooLarge,
        413,
        "body",
    ),
]


@pytest.mark.parametrize(
    ("call", "cls", "status", "field"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_server_errors_come_back_as_core_errors(
    server: LiveServer,
    admin: Client,
    viewer: Client,
    call: Callable[[LiveServer, Client, Client], Any],
    cls: type,
    status: int,
    field: str,
) -> None:
    jobs_before = admin.jobs.list("sdk")
    with pytest.raises(errors.LoopmlError) as raised:
        call(server, admin, viewer)
    error = raised.value
    assert type(error) is cls, f"{type(error).__name__}: {error}"
    assert error.field == field
    assert error.status == status  # type: ignore[attr-defined]
    assert str(error)  # the server's detail, for the user to read
    assert admin.jobs.list("sdk") == jobs_before


def test_validation_errors_carry_every_field(admin: Client) -> None:
    with pytest.raises(errors.InvalidInput) as raised:
        admin.request("POST", "/projects", json={"name": 1, "description": 2})
    fields = [e["field"] for e in raised.value.extra["errors"]]
    assert fields == ["body.name", "body.description"]


def test_http_errors_without_a_core_class_are_api_errors(admin: Client) -> None:
    with pytest.raises(ApiError) as raised:
        admin.request("DELETE", "/projects")
    assert raised.value.status == 405  # type: ignore[attr-defined]
    assert "DELETE" in str(raised.value)


# --- the client itself ------------------------------------------------------------------


def test_client_over_a_preconfigured_httpx_client(server: LiveServer) -> None:
    seen: list[str] = []
    http = httpx.Client(
        base_url=server.url + "/",
        event_hooks={"request": [lambda request: seen.append(request.url.path)]},
    )
    with Client(api_key=server.admin_key, http=http) as c:
        assert c.projects.get("sdk").name == "sdk"
    assert seen == ["/api/v1/projects/sdk"]
    assert http.is_closed
    with pytest.raises(RuntimeError):
        c.projects.get("sdk")


@pytest.fixture
def gateway() -> Iterator[tuple[str, dict[str, tuple[int, str, bytes]]]]:
    """A plain HTTP server standing where loopml should be (a proxy, a gateway):
    maps a path to (status, content type, body)."""
    answers: dict[str, tuple[int, str, bytes]] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, kind, body = answers.get(self.path, (404, "text/plain", b"no"))
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", answers
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("text/html", b"<html><body>502 Bad Gateway</body></html>"),
        ("application/json", b'["upstream", "down"]'),
        ("application/json", b'"upstream down"'),
    ],
    ids=["html", "json-list", "json-string"],
)
def test_errors_from_something_else_than_loopml_are_api_errors(
    gateway: tuple[str, dict[str, tuple[int, str, bytes]]], kind: str, body: bytes
) -> None:
    url, answers = gateway
    answers["/api/v1/projects"] = (502, kind, body)
    with Client(url, "lml_x_y") as c, pytest.raises(ApiError) as raised:
        c.projects.list()
    assert raised.value.status == 502  # type: ignore[attr-defined]
    assert body.decode() in str(raised.value)


def test_a_problems_details_come_back_as_the_errors_details(
    gateway: tuple[str, dict[str, tuple[int, str, bytes]]],
) -> None:
    url, answers = gateway
    problem = {
        "type": "urn:loopml:problem:invalid-input", "title": "Invalid input", "status": 422,
        "detail": "a.csv: line 4 has 3 fields", "field": "source", "line": 4, "column": "age",
    }  # fmt: skip
    answers["/api/v1/projects"] = (422, "application/problem+json", json.dumps(problem).encode())
    with Client(url, "lml_x_y") as c, pytest.raises(errors.InvalidInput) as raised:
        c.projects.list()
    assert raised.value.field == "source"
    assert (raised.value.extra["line"], raised.value.extra["column"]) == (4, "age")


def test_health_returns_the_report_when_the_server_is_unhealthy(
    gateway: tuple[str, dict[str, tuple[int, str, bytes]]],
) -> None:
    url, answers = gateway
    report = {"status": "unavailable", "database": "error: OperationalError"}
    answers["/api/v1/health"] = (503, "application/json", json.dumps(report).encode())
    with Client(url) as c:
        assert c.health() == report
