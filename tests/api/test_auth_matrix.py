"""Every route of the API, generated from the app's route table, against every kind of key.

A route added without a ``Require`` guard fails ``test_route_is_guarded`` with its path
named; a guarded route is then exercised with no key, bad keys, a key one role too weak
and a key with exactly the role it asks for.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI

from loopml.api import auth
from loopml.api.app import PUBLIC_PATHS, create_app
from loopml.core.enums import JobState, Role
from loopml.settings import Settings
from tests.api.routes import Endpoint, endpoints
from tests.api.support import assert_problem, client, serve
from tests.conftest import LiveServer
from tests.jobs.support import Queue, worker_thread

ROLES = sorted(Role, key=lambda r: r.rank)  # viewer < labeller < maintainer < admin


# The route table, read from an app built (not started) at collection time so that each
# route gets its own test ids; test_route_table_is_the_served_one checks it is the same
# table the live server serves.
_APP = create_app(Settings.model_construct(home=Path("never-opened")))
ALL = endpoints(_APP)
GUARDED = [e for e in ALL if e.path not in PUBLIC_PATHS]
WITH_ROLE = [e for e in GUARDED if e.guard is not None and e.guard.role is not None]


def ids(items: list[Endpoint]) -> list[str]:
    return [e.id for e in items]


# Minimal valid bodies; a new route taking a body must be added here (the tests say so).
BODIES: dict[tuple[str, str], Callable[[], dict[str, Any]]] = {
    ("POST", "/api/v1/projects"): lambda: {"name": f"p-{uuid.uuid4().hex[:10]}"},
    ("PATCH", "/api/v1/projects/{project}"): lambda: {"description": "changed"},
    ("POST", "/api/v1/keys"): lambda: {"name": "made-by-matrix"},
    ("PUT", "/api/v1/keys/{key_id}/roles/{project}"): lambda: {"role": "viewer"},
    ("POST", "/api/v1/projects/{project}/jobs"): lambda: {"kind": "selfcheck"},
    ("POST", "/api/v1/projects/{project}/trainings"): lambda: {
        "dataset": "builtin:iris",
        "time_budget": 1,
        "max_trials": 1,
    },
}


# Who may call what: a weakened (or strengthened) guard fails test_guard_follows_policy.
# "any": any valid key; a role name: at least that role in the {project}; "global admin":
# an admin key (admin in every project).
POLICY: dict[str, str] = {
    "GET /api/v1/projects": "any",
    "POST /api/v1/projects": "global admin",
    "GET /api/v1/projects/{project}": "viewer",
    "PATCH /api/v1/projects/{project}": "maintainer",
    "GET /api/v1/keys/me": "any",
    "GET /api/v1/keys": "global admin",
    "POST /api/v1/keys": "global admin",
    "POST /api/v1/keys/{key_id}/revoke": "global admin",
    "PUT /api/v1/keys/{key_id}/roles/{project}": "admin",
    "DELETE /api/v1/keys/{key_id}/roles/{project}": "admin",
    "GET /api/v1/projects/{project}/jobs": "viewer",
    "POST /api/v1/projects/{project}/jobs": "maintainer",
    "GET /api/v1/projects/{project}/jobs/{job_id}": "viewer",
    "POST /api/v1/projects/{project}/jobs/{job_id}/cancel": "maintainer",
    "GET /api/v1/projects/{project}/jobs/{job_id}/logs": "viewer",
    "GET /api/v1/jobs": "global admin",
    "GET /api/v1/projects/{project}/trainings": "viewer",
    "POST /api/v1/projects/{project}/trainings": "maintainer",
    "GET /api/v1/projects/{project}/trainings/{training_id}": "viewer",
    "GET /api/v1/projects/{project}/trainings/{training_id}/leaderboard": "viewer",
    "GET /api/v1/projects/{project}/trainings/{training_id}/report": "viewer",
    "GET /api/v1/projects/{project}/trainings/{training_id}/trials": "viewer",
    "GET /api/v1/projects/{project}/trainings/{training_id}/report.html": "viewer",
    "GET /api/v1/projects/{project}/trainings/{training_id}/model": "viewer",
}


def describe(guard: auth.Require) -> str:
    if guard.role is None:
        return "any"
    return f"global {guard.role.value}" if guard.scope == "global" else guard.role.value


# --- the world every request runs in ------------------------------------------------


@dataclass
class World:
    server: LiveServer
    admin: httpx.Client
    project: str  # where the role keys hold their roles
    role_keys: dict[Role, str]  # a key holding exactly that role in ``project``
    outsider: str  # admin of another project, no role in ``project``
    nobody: str  # a valid key without any role
    revoked: str  # a revoked global admin key
    forged: str  # a real key's prefix with the wrong secret
    clients: dict[str | None, httpx.Client] = field(default_factory=dict)
    finished_training: str | None = None

    def key_id(self) -> str:
        """A fresh key to revoke or grant roles to."""
        r = self.admin.post("/keys", json={"name": "target"})
        assert r.status_code == 201, r.text
        return str(r.json()["key"]["id"])

    def job_id(self) -> str:
        """A fresh queued job in ``project`` (this server runs no worker)."""
        r = self.admin.post(f"/projects/{self.project}/jobs", json={"kind": "selfcheck"})
        assert r.status_code == 202, r.text
        return str(r.json()["id"])

    def training_id(self) -> str:
        """A training in ``project`` that has succeeded (run once by a worker thread)."""
        if self.finished_training is None:
            body = {"dataset": "builtin:iris", "time_budget": 1, "max_trials": 1}
            r = self.admin.post(f"/projects/{self.project}/trainings", json=body)
            assert r.status_code == 202, r.text
            queue = Queue(self.server.settings.resolved_database_url)
            with worker_thread(self.server.settings):
                job = queue.wait(r.json()["id"], timeout=120)
            queue.close()
            assert job.state is JobState.succeeded, job.error
            self.finished_training = job.id
        return self.finished_training

    def url(self, endpoint: Endpoint) -> str:
        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name == "project":
                return self.project
            if name == "key_id":
                return self.key_id()
            if name == "job_id":
                return self.job_id()
            if name == "training_id":
                return self.training_id()
            pytest.fail(
                f"{endpoint.id}: no value for path parameter {{{name}}}; "
                "teach World.url in tests/api/test_auth_matrix.py to make one"
            )

        return re.sub(r"\{(\w+)(?::\w+)?\}", value, endpoint.path).removeprefix("/api/v1")

    def call(self, endpoint: Endpoint, key: str | None) -> httpx.Response:
        kwargs: dict[str, Any] = {}
        if endpoint.has_body:
            body = BODIES.get((endpoint.method, endpoint.path))
            if body is None:
                pytest.fail(
                    f"{endpoint.id} takes a body: add a minimal valid one to BODIES "
                    "in tests/api/test_auth_matrix.py"
                )
            kwargs["json"] = body()
        url = self.url(endpoint)
        if key not in self.clients:
            self.clients[key] = client(self.server, key)
        return self.clients[key].request(endpoint.method, url, **kwargs)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with (
        serve(tmp_path_factory, embedded_worker=False) as server,
        client(server, server.admin_key) as admin,
    ):

        def new_key(name: str, **body: Any) -> dict[str, Any]:
            r = admin.post("/keys", json={"name": name, **body})
            assert r.status_code == 201, r.text
            return dict(r.json())

        for name in ("alpha", "beta"):
            assert admin.post("/projects", json={"name": name}).status_code == 201
        role_keys = {
            role: new_key(f"{role.value}-of-alpha", roles={"alpha": role.value})["secret"]
            for role in Role
        }
        revoked = new_key("revoked-admin", admin=True)
        assert admin.post(f"/keys/{revoked['key']['id']}/revoke").status_code == 200
        real = role_keys[Role.admin]
        prefix = real.rsplit("_", 1)[0]
        world = World(
            server=server,
            admin=admin,
            project="alpha",
            role_keys=role_keys,
            outsider=new_key("admin-of-beta", roles={"beta": "admin"})["secret"],
            nobody=new_key("no-roles")["secret"],
            revoked=revoked["secret"],
            forged=f"{prefix}_{'A' * 32}",
        )
        yield world
        for http in world.clients.values():
            http.close()


def allowed_key(world: World, guard: auth.Require) -> str:
    """A key holding exactly the role ``guard`` asks for, and nothing more."""
    if guard.role is None:
        return world.nobody
    if guard.scope == "global":
        return world.server.admin_key
    return world.role_keys[guard.role]


def too_weak_key(world: World, guard: auth.Require) -> str:
    """A key one step below what ``guard`` asks for."""
    assert guard.role is not None
    if guard.scope == "global":
        return world.role_keys[Role.admin]  # the strongest project role is not global
    below = [r for r in ROLES if r.rank == guard.role.rank - 1]
    return world.role_keys[below[0]] if below else world.outsider


# --- the route table itself ----------------------------------------------------------


def test_route_table_is_the_served_one(world: World) -> None:
    served = {(e.method, e.path) for e in endpoints(world.server.app)}
    assert served == {(e.method, e.path) for e in ALL}
    assert len(GUARDED) >= 16  # projects, keys, jobs: nothing silently vanished


@pytest.mark.parametrize("endpoint", GUARDED, ids=ids(GUARDED))
def test_route_is_guarded(endpoint: Endpoint) -> None:
    assert endpoint.guards, (
        f"{endpoint.id} has no loopml.api.auth.Require guard in its dependencies: "
        "add one (e.g. dependencies=[Depends(auth.viewer)]) or, if it must be public, "
        "add it to loopml.api.app.PUBLIC_PATHS"
    )
    guard = endpoint.guard
    assert guard is not None
    if guard.scope == "project" and guard.role is not None:
        assert "{project}" in endpoint.path, (
            f"{endpoint.id} uses a project-scoped guard ({guard!r}) but has no {{project}} "
            "path parameter, so only global roles could ever pass it"
        )


@pytest.mark.parametrize("endpoint", GUARDED, ids=ids(GUARDED))
def test_guard_follows_policy(endpoint: Endpoint) -> None:
    assert endpoint.id in POLICY, (
        f"{endpoint.id} is new: decide who may call it and add it to POLICY "
        "in tests/api/test_auth_matrix.py"
    )
    assert endpoint.guard is not None, f"{endpoint.id} is unguarded"
    assert describe(endpoint.guard) == POLICY[endpoint.id]


def test_public_paths_are_routes_and_answer_without_a_key(world: World) -> None:
    public = [e for e in ALL if e.path in PUBLIC_PATHS]
    assert {e.path for e in public} == set(PUBLIC_PATHS)
    for endpoint in public:
        r = world.call(endpoint, None)
        assert r.status_code == 200, (endpoint.id, r.text)


def test_the_guard_finder_sees_nested_guards_and_missing_ones() -> None:
    app = FastAPI()

    def needs_viewer(key: Any = Depends(auth.viewer)) -> Any:
        return key

    @app.get("/api/v1/open")
    def open_route() -> None: ...

    @app.get("/api/v1/projects/{project}/nested")
    def nested(project: str, key: Any = Depends(needs_viewer)) -> None: ...

    found = {e.path: e for e in endpoints(app)}
    assert found["/api/v1/open"].guards == ()
    assert found["/api/v1/projects/{project}/nested"].guard is auth.viewer


# --- the matrix ------------------------------------------------------------------------


def assert_unauthenticated(r: httpx.Response) -> None:
    assert_problem(r, 401, field="Authorization", code="unauthenticated")
    assert r.headers.get("www-authenticate") == "Bearer"


@pytest.mark.parametrize("endpoint", GUARDED, ids=ids(GUARDED))
def test_no_key_is_401(world: World, endpoint: Endpoint) -> None:
    assert_unauthenticated(world.call(endpoint, None))


@pytest.mark.parametrize("which", ["revoked", "malformed", "unknown", "forged"])
@pytest.mark.parametrize("endpoint", GUARDED, ids=ids(GUARDED))
def test_bad_key_is_401(world: World, endpoint: Endpoint, which: str) -> None:
    key = {
        "revoked": world.revoked,
        "malformed": "not-a-loopml-key",
        "unknown": f"lml_{uuid.uuid4().hex[:8]}_{uuid.uuid4().hex}",
        "forged": world.forged,
    }[which]
    assert_unauthenticated(world.call(endpoint, key))


@pytest.mark.parametrize("endpoint", WITH_ROLE, ids=ids(WITH_ROLE))
def test_one_role_too_weak_is_403(world: World, endpoint: Endpoint) -> None:
    assert endpoint.guard is not None
    r = world.call(endpoint, too_weak_key(world, endpoint.guard))
    assert_problem(r, 403, field="Authorization", code="forbidden")


@pytest.mark.parametrize("endpoint", GUARDED, ids=ids(GUARDED))
def test_exactly_the_required_role_is_let_in(world: World, endpoint: Endpoint) -> None:
    assert endpoint.guard is not None, f"{endpoint.id} is unguarded"
    r = world.call(endpoint, allowed_key(world, endpoint.guard))
    assert r.status_code not in (401, 403), (endpoint.id, r.text)
    assert r.is_success, (endpoint.id, r.text)
