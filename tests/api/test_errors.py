"""Bad input gets a 4xx problem+json naming the offending field, and changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from loopml.api.problems import error_response
from loopml.core.errors import InvalidInput, StorageError
from tests.api.support import assert_problem, client, serve
from tests.conftest import LiveServer

LIMIT = 1024
JOBS = "/projects/alpha/jobs"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # No worker: queued jobs stay queued, so job listings are stable between snapshots.
    with serve(tmp_path_factory, embedded_worker=False, max_request_bytes=LIMIT) as srv:
        with client(srv, srv.admin_key) as admin:
            for name in ("alpha", "beta"):
                assert admin.post("/projects", json={"name": name}).status_code == 201
                r = admin.post(f"/projects/{name}/jobs", json={"kind": "selfcheck"})
                assert r.status_code == 202
            r = admin.post("/keys", json={"name": "viewer", "roles": {"alpha": "viewer"}})
            assert r.status_code == 201
        yield srv


@pytest.fixture(scope="module")
def api(server: LiveServer) -> Iterator[httpx.Client]:
    with client(server, server.admin_key) as http:
        yield http


def _stored(api: httpx.Client) -> dict[str, Any]:
    keys = api.get("/keys").json()
    for key in keys:
        key.pop("last_used_at")  # bumped by using a key, at most once a minute
    return {
        "projects": api.get("/projects").json(),
        "keys": keys,
        "jobs": api.get("/jobs").json(),
    }


@pytest.fixture
def unchanged(api: httpx.Client) -> Iterator[None]:
    """Fails the test if projects, keys or jobs differ afterwards."""
    before = _stored(api)
    assert before["projects"] and before["keys"] and before["jobs"]
    yield
    assert _stored(api) == before


@pytest.fixture
def ids(api: httpx.Client) -> dict[str, str]:
    jobs = {j["project"]: j["id"] for j in api.get("/jobs").json()}
    viewer = next(k for k in api.get("/keys").json() if k["name"] == "viewer")
    return {"alpha_job": jobs["alpha"], "beta_job": jobs["beta"], "viewer_key": viewer["id"]}


def _assert_invalid(r: httpx.Response, field: str) -> None:
    body = assert_problem(r, 422, field=field, code="invalid-input")
    assert field in [e["field"] for e in body["errors"]], body
    assert field in body["detail"]


# --- malformed JSON ----------------------------------------------------------------------

MALFORMED_TARGETS = [
    ("POST", "/projects"),
    ("PATCH", "/projects/alpha"),
    ("POST", "/keys"),
    ("PUT", "/keys/{viewer_key}/roles/alpha"),
    ("POST", "/projects/alpha/jobs"),
]


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(("method", "path"), MALFORMED_TARGETS)
@pytest.mark.parametrize("text", ['{"name": "x",', "{'name': 'x'}", "not json at all"])
def test_malformed_json_is_400(
    api: httpx.Client, ids: dict[str, str], method: str, path: str, text: str
) -> None:
    r = api.request(
        method,
        path.format(**ids),
        content=text.encode(),
        headers={"Content-Type": "application/json"},
    )
    body = assert_problem(r, 400, field="body", code="malformed-json")
    assert "JSON" in body["detail"]


# --- wrong types and missing fields -------------------------------------------------------


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/projects", {"name": 123}, "body.name"),
        ("POST", "/projects", {"name": "ok", "description": ["x"]}, "body.description"),
        ("PATCH", "/projects/alpha", {"description": 5}, "body.description"),
        ("POST", JOBS, {"kind": "selfcheck", "max_attempts": "x"}, "body.max_attempts"),
        ("POST", JOBS, {"kind": "selfcheck", "max_attempts": 0}, "body.max_attempts"),
        ("POST", JOBS, {"kind": "selfcheck", "params": [1]}, "body.params"),
        ("PUT", "/keys/{viewer_key}/roles/alpha", {"role": "boss"}, "body.role"),
        ("POST", "/keys", {"name": "k", "roles": {"alpha": "boss"}}, "body.roles.alpha"),
        ("POST", "/keys", {"name": "k", "admin": "maybe"}, "body.admin"),
        ("POST", "/keys", {"name": ""}, "body.name"),
    ],
)
def test_wrong_type_is_422_naming_the_field(
    api: httpx.Client, ids: dict[str, str], method: str, path: str, body: Any, field: str
) -> None:
    _assert_invalid(api.request(method, path.format(**ids), json=body), field)


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/projects", {"description": "no name"}, "body.name"),
        ("PATCH", "/projects/alpha", {}, "body"),
        ("POST", "/keys", {"admin": True}, "body.name"),
        ("PUT", "/keys/{viewer_key}/roles/alpha", {}, "body.role"),
        ("POST", "/projects/alpha/jobs", {"params": {}}, "body.kind"),
    ],
)
def test_missing_field_is_422_naming_it(
    api: httpx.Client, ids: dict[str, str], method: str, path: str, body: Any, field: str
) -> None:
    _assert_invalid(api.request(method, path.format(**ids), json=body), field)


@pytest.mark.usefixtures("unchanged")
def test_missing_body_is_422(api: httpx.Client) -> None:
    _assert_invalid(api.post("/projects"), "body")


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "query.limit"),
        ({"limit": "many"}, "query.limit"),
        ({"state": "x"}, "query.state"),
    ],
)
def test_bad_query_parameter_is_422(api: httpx.Client, params: dict[str, Any], field: str) -> None:
    _assert_invalid(api.get("/projects/alpha/jobs", params=params), field)


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("name", ["Upper", "has space", "-edge", "x" * 64, "ünï"])
def test_invalid_project_name_is_422(api: httpx.Client, name: str) -> None:
    body = assert_problem(api.post("/projects", json={"name": name}), 422, field="name")
    assert "name" in body["detail"]


@pytest.mark.usefixtures("unchanged")
def test_unknown_job_kind_is_422(api: httpx.Client) -> None:
    r = api.post("/projects/alpha/jobs", json={"kind": "no-such-kind"})
    body = assert_problem(r, 422, field="kind", code="invalid-input")
    assert "selfcheck" in body["detail"]  # tells the caller what exists


# --- request body size ------------------------------------------------------------------


def _big_project(size: int) -> bytes:
    """A valid project body of about ``size`` bytes: stored if the limit were not enforced."""
    body = json.dumps({"name": "too-big", "description": "x" * size}).encode()
    assert len(body) > LIMIT
    return body


@pytest.mark.usefixtures("unchanged")
def test_body_over_limit_with_content_length_is_413(api: httpx.Client) -> None:
    body = _big_project(2 * LIMIT)
    r = api.post("/projects", content=body, headers={"Content-Type": "application/json"})
    assert r.request.headers["content-length"] == str(len(body))
    problem = assert_problem(r, 413, field="body", code="payload-too-large")
    assert str(LIMIT) in problem["detail"]


@pytest.mark.usefixtures("unchanged")
def test_body_over_limit_streamed_in_chunks_is_413(api: httpx.Client) -> None:
    body = _big_project(4 * LIMIT)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 256):
            yield body[start : start + 256]

    r = api.post("/projects", content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in r.request.headers
    assert r.request.headers["transfer-encoding"] == "chunked"
    assert_problem(r, 413, field="body", code="payload-too-large")
    # the server is still serving after cutting that request off
    assert api.get("/projects/alpha").status_code == 200


@pytest.mark.usefixtures("unchanged")
def test_oversized_body_is_refused_before_authentication(server: LiveServer) -> None:
    with client(server) as anonymous:
        r = anonymous.post("/projects", content=_big_project(2 * LIMIT))
    assert_problem(r, 413, field="body")


def test_body_under_limit_is_accepted(api: httpx.Client) -> None:
    body = json.dumps({"name": "fits", "description": "x" * (LIMIT - 100)}).encode()
    assert len(body) <= LIMIT

    def chunks() -> Iterator[bytes]:
        yield body[:500]
        yield body[500:]

    r = api.post("/projects", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    assert api.get("/projects/fits").json()["description"] == "x" * (LIMIT - 100)


# --- things that do not exist -------------------------------------------------------------


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/projects/nope", None),
        ("PATCH", "/projects/nope", {"description": "d"}),
        ("GET", "/projects/nope/jobs", None),
        ("POST", "/projects/nope/jobs", {"kind": "selfcheck"}),
        ("GET", "/projects/nope/jobs/{alpha_job}", None),
        ("POST", "/projects/nope/jobs/{alpha_job}/cancel", None),
        ("GET", "/projects/nope/jobs/{alpha_job}/logs", None),
        ("PUT", "/keys/{viewer_key}/roles/nope", {"role": "viewer"}),
        ("DELETE", "/keys/{viewer_key}/roles/nope", None),
        ("POST", "/keys", {"name": "k", "roles": {"nope": "viewer"}}),
    ],
)
def test_unknown_project_is_404_naming_project(
    api: httpx.Client, ids: dict[str, str], method: str, path: str, body: Any
) -> None:
    r = api.request(method, path.format(**ids), json=body)
    problem = assert_problem(r, 404, field="project", code="not-found")
    assert "nope" in problem["detail"]


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("job", ["0" * 26, "{beta_job}"], ids=["unknown", "other-project"])
@pytest.mark.parametrize(("method", "suffix"), [("GET", ""), ("GET", "/logs"), ("POST", "/cancel")])
def test_unknown_or_foreign_job_is_404(
    api: httpx.Client, ids: dict[str, str], job: str, method: str, suffix: str
) -> None:
    job_id = job.format(**ids)
    r = api.request(method, f"/projects/alpha/jobs/{job_id}{suffix}")
    problem = assert_problem(r, 404, field="job_id", code="not-found")
    assert job_id in problem["detail"]


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/keys/nope/revoke", None),
        ("PUT", "/keys/nope/roles/alpha", {"role": "viewer"}),
        ("DELETE", "/keys/nope/roles/alpha", None),
    ],
)
def test_unknown_key_is_404(api: httpx.Client, method: str, path: str, body: Any) -> None:
    assert_problem(api.request(method, path, json=body), 404, field="key_id", code="not-found")


@pytest.mark.usefixtures("unchanged")
def test_duplicate_project_is_409(api: httpx.Client) -> None:
    r = api.post("/projects", json={"name": "alpha", "description": "second"})
    problem = assert_problem(r, 409, field="name", code="already-exists")
    assert "alpha" in problem["detail"]


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v2/projects", "/nope"])
def test_unknown_route_is_404_problem(server: LiveServer, path: str) -> None:
    for key in (server.admin_key, None):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        r = httpx.get(server.url + path, headers=headers)
        problem = assert_problem(r, 404, code="not-found")
        assert path in problem["detail"]


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/projects", {"GET", "POST"}),
        ("PUT", "/projects/alpha", {"GET", "PATCH"}),
        ("GET", "/keys/{viewer_key}/revoke", {"POST"}),
        ("DELETE", "/projects/alpha/jobs/{alpha_job}", {"GET"}),
    ],
)
def test_wrong_method_is_405_problem(
    api: httpx.Client, ids: dict[str, str], method: str, path: str, allowed: set[str]
) -> None:
    r = api.request(method, path.format(**ids))
    assert_problem(r, 405, code="method-not-allowed")
    assert {m.strip() for m in r.headers["allow"].split(",")} == allowed


def test_cancelling_a_finished_job_is_409(api: httpx.Client) -> None:
    job = api.post("/projects/alpha/jobs", json={"kind": "selfcheck"}).json()
    assert api.post(f"/projects/alpha/jobs/{job['id']}/cancel").json()["state"] == "cancelled"
    before = api.get(f"/projects/alpha/jobs/{job['id']}").json()
    r = api.post(f"/projects/alpha/jobs/{job['id']}/cancel")
    assert_problem(r, 409, field="job_id", code="conflict")
    assert api.get(f"/projects/alpha/jobs/{job['id']}").json() == before


# --- what else a problem names ------------------------------------------------------------


def test_a_callers_problem_carries_its_details_as_members() -> None:
    error = InvalidInput(
        "a.csv: line 4 has 3 fields", field="source", line=4, column="age",
        errors="not a list", detail="not the detail", limit=float("nan"),
    )  # fmt: skip
    body = json.loads(bytes(error_response(error, "/api/v1/x").body))
    assert (body["field"], body["line"], body["column"]) == ("source", 4, "age")
    assert body["detail"] == "a.csv: line 4 has 3 fields"  # RFC 9457's members are its own
    assert "errors" not in body and "limit" not in body  # nor JSON's NaN


def test_a_servers_own_failure_shows_no_details() -> None:
    body = json.loads(bytes(error_response(StorageError("disk full", bucket="b1"), "/x").body))
    assert body["status"] == 503 and "bucket" not in body
