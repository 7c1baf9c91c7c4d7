"""Every route of the API, generated from the app's route table, against every kind of key.

A route added without a ``Require`` guard fails ``test_route_is_guarded`` with its path
named; a guarded route is then exercised with no key, bad keys, a key one role too weak
and a key with exactly the role it asks for.
"""

from __future__ import annotations

import io
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
from loopml.core.schemas import Job
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


# Minimal valid requests of the routes that take a body: httpx keyword arguments (json=,
# files=, content=, params=) made in the world of the test. A new route taking a body must
# be added here (the tests say so).
IRIS_ROW = {
    "sepal length (cm)": 5.1,
    "sepal width (cm)": 3.5,
    "petal length (cm)": 1.4,
    "petal width (cm)": 0.2,
}
CSV_ROW = (",".join(IRIS_ROW) + "\n" + ",".join(map(str, IRIS_ROW.values())) + "\n").encode()
PASS_WORKFLOW = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
WAIT_WORKFLOW = {
    "StartAt": "Wait",
    "States": {"Wait": {"Type": "Wait", "Seconds": 600, "End": True}},
}
BODIES: dict[tuple[str, str], Callable[[World], dict[str, Any]]] = {
    ("POST", "/api/v1/projects"): lambda w: {"json": {"name": f"p-{uuid.uuid4().hex[:10]}"}},
    ("PATCH", "/api/v1/projects/{project}"): lambda w: {"json": {"description": "changed"}},
    ("POST", "/api/v1/keys"): lambda w: {"json": {"name": "made-by-matrix"}},
    ("PUT", "/api/v1/keys/{key_id}/roles/{project}"): lambda w: {"json": {"role": "viewer"}},
    ("POST", "/api/v1/projects/{project}/jobs"): lambda w: {"json": {"kind": "selfcheck"}},
    ("POST", "/api/v1/projects/{project}/trainings"): lambda w: {
        "json": {"dataset": "builtin:iris", "time_budget": 1, "max_trials": 1}
    },
    ("POST", "/api/v1/projects/{project}/datasets"): lambda w: {
        "json": {"name": "iris", "source": "builtin:iris"}
    },
    ("POST", "/api/v1/projects/{project}/datasets/{name}/uploads"): lambda w: {
        "files": [("files", ("tiny.csv", b"x,y\n1,a\n2,b\n3,a\n4,b\n", "text/csv"))],
        "data": {"options": "{}"},
    },
    ("POST", "/api/v1/projects/{project}/datasets/{name}/versions/{version}/derive"): lambda w: {
        "json": {"split": {"method": "random", "test_size": 0.3}}
    },
    ("POST", "/api/v1/projects/{project}/datasets/{name}/labels"): lambda w: {
        "json": {"labels": [w.item()]}
    },
    ("POST", "/api/v1/projects/{project}/datasets/{name}/labels/import"): lambda w: {
        "content": "item,label\n{item},{value}\n".format(**w.item()).encode(),
        "params": {"format": "csv"},
    },
    ("POST", "/api/v1/projects/{project}/datasets/{name}/labels/{label_id}/review"): lambda w: {
        "json": {"approve": True}
    },
    ("POST", "/api/v1/projects/{project}/models/{number}/stage"): lambda w: {
        "json": {"stage": "production", "reason": "checked by the matrix"}
    },
    ("PUT", "/api/v1/projects/{project}/deployments/{name}"): lambda w: {
        "json": {"model": w.model_number()}
    },
    ("PUT", "/api/v1/projects/{project}/deployments/{name}/challenger"): lambda w: {
        "json": {"model": w.challenger_number(), "mode": "shadow"}
    },
    ("POST", "/api/v1/projects/{project}/deployments/{name}/promote"): lambda w: {
        "json": {"reason": "checked by the matrix"}
    },
    ("POST", "/api/v1/projects/{project}/deployments/{name}/batch-predictions"): lambda w: {
        "json": {"source": "builtin:iris"}
    },
    ("POST", "/api/v1/projects/{project}/deployments/{name}/monitoring/runs"): lambda w: {
        "json": {"window": "1h"}
    },
    ("POST", "/api/v1/projects/{project}/alerts/{alert_id}/acknowledge"): lambda w: {"json": {}},
    ("POST", "/api/v1/projects/{project}/alerts/{alert_id}/resolve"): lambda w: {"json": {}},
    ("PUT", "/api/v1/projects/{project}/alert-settings"): lambda w: {"json": {}},
    ("POST", "/api/v1/projects/{project}/workflows/validate"): lambda w: {
        "json": {"definition": PASS_WORKFLOW}
    },
    ("PUT", "/api/v1/projects/{project}/workflows/{name}"): lambda w: {
        "json": {"definition": PASS_WORKFLOW}
    },
    ("PUT", "/api/v1/projects/{project}/workflows/{name}/triggers/{trigger}"): lambda w: {
        "json": {"kind": "schedule", "cron": "0 3 * * *"}
    },
    ("POST", "/api/v1/projects/{project}/workflows/{name}/executions"): lambda w: {
        "json": {"input": {"from": "the matrix"}}
    },
    # Predict reads its body itself (JSON records or CSV), so FastAPI sees no body field.
    (
        "POST",
        "/api/v1/projects/{project}/deployments/{name}/predictions/{prediction_id}/feedback",
    ): (lambda w: {"json": {"label": "setosa"}}),
    ("POST", "/api/v1/projects/{project}/deployments/{name}/predict"): lambda w: {
        "json": [IRIS_ROW]
    },
    ("POST", "/api/v1/projects/{project}/deployments/{name}/invocations"): lambda w: {
        "content": CSV_ROW,
        "headers": {"Content-Type": "text/csv"},
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
    "GET /api/v1/projects/{project}/datasets": "viewer",
    "POST /api/v1/projects/{project}/datasets": "maintainer",
    "GET /api/v1/projects/{project}/datasets/{name}": "viewer",
    "POST /api/v1/projects/{project}/datasets/{name}/uploads": "maintainer",
    "POST /api/v1/projects/{project}/datasets/{name}/sync": "maintainer",
    "GET /api/v1/projects/{project}/datasets/{name}/versions": "viewer",
    "GET /api/v1/projects/{project}/datasets/{name}/versions/{version}": "viewer",
    "GET /api/v1/projects/{project}/datasets/{name}/versions/{version}/quality": "viewer",
    "POST /api/v1/projects/{project}/datasets/{name}/versions/{version}/derive": "maintainer",
    "GET /api/v1/projects/{project}/datasets/{name}/versions/{version}/rows": "viewer",
    "GET /api/v1/projects/{project}/datasets/{name}/items": "viewer",
    "GET /api/v1/projects/{project}/datasets/{name}/images/{sha256}": "viewer",
    "GET /api/v1/projects/{project}/datasets/{name}/labels": "viewer",
    "GET /api/v1/projects/{project}/datasets/{name}/labels/export": "viewer",
    "POST /api/v1/projects/{project}/datasets/{name}/labels": "labeller",
    "POST /api/v1/projects/{project}/datasets/{name}/labels/import": "labeller",
    "POST /api/v1/projects/{project}/datasets/{name}/labels/{label_id}/review": "maintainer",
    "POST /api/v1/projects/{project}/datasets/{name}/labels/apply": "maintainer",
    "GET /api/v1/projects/{project}/models": "viewer",
    "GET /api/v1/projects/{project}/models/{number}": "viewer",
    "GET /api/v1/projects/{project}/models/{number}/history": "viewer",
    "GET /api/v1/projects/{project}/models/{number}/card": "viewer",
    "POST /api/v1/projects/{project}/models/{number}/stage": "maintainer",
    "GET /api/v1/projects/{project}/deployments": "viewer",
    "PUT /api/v1/projects/{project}/deployments/{name}": "maintainer",
    "GET /api/v1/projects/{project}/deployments/{name}": "viewer",
    "DELETE /api/v1/projects/{project}/deployments/{name}": "maintainer",
    "PUT /api/v1/projects/{project}/deployments/{name}/challenger": "maintainer",
    "DELETE /api/v1/projects/{project}/deployments/{name}/challenger": "maintainer",
    "POST /api/v1/projects/{project}/deployments/{name}/promote": "maintainer",
    "POST /api/v1/projects/{project}/deployments/{name}/predict": "viewer",
    "POST /api/v1/projects/{project}/deployments/{name}/invocations": "viewer",
    "POST /api/v1/projects/{project}/deployments/{name}/predictions/{prediction_id}/feedback": (
        "labeller"
    ),
    "GET /api/v1/projects/{project}/deployments/{name}/feedback": "viewer",
    "GET /api/v1/projects/{project}/deployments/{name}/captures": "viewer",
    "GET /api/v1/projects/{project}/deployments/{name}/openapi.json": "viewer",
    "POST /api/v1/projects/{project}/deployments/{name}/batch-predictions": "maintainer",
    "GET /api/v1/projects/{project}/deployments/{name}/batch-predictions": "viewer",
    "POST /api/v1/projects/{project}/deployments/{name}/monitoring/runs": "maintainer",
    "GET /api/v1/projects/{project}/alerts": "viewer",
    "GET /api/v1/projects/{project}/alerts/{alert_id}": "viewer",
    "POST /api/v1/projects/{project}/alerts/{alert_id}/acknowledge": "maintainer",
    "POST /api/v1/projects/{project}/alerts/{alert_id}/resolve": "maintainer",
    "GET /api/v1/projects/{project}/alert-settings": "maintainer",
    "GET /api/v1/projects/{project}/models/{number}/baseline": "viewer",
    "GET /api/v1/projects/{project}/models/{number}/baseline/statistics.json": "viewer",
    "GET /api/v1/projects/{project}/models/{number}/baseline/constraints.json": "viewer",
    "PUT /api/v1/projects/{project}/alert-settings": "maintainer",
    "GET /api/v1/projects/{project}/deployments/{name}/monitoring/runs": "viewer",
    "GET /api/v1/projects/{project}/deployments/{name}/monitoring/runs/{run_id}/report": "viewer",
    "GET /api/v1/projects/{project}/deployments/{name}/monitoring/runs/{run_id}/report.html": (
        "viewer"
    ),
    "GET /api/v1/projects/{project}/deployments/{name}/batch-predictions/{job_id}/output": (
        "viewer"
    ),
    "POST /api/v1/projects/{project}/workflows/validate": "viewer",
    "GET /api/v1/projects/{project}/workflows": "viewer",
    "PUT /api/v1/projects/{project}/workflows/{name}": "maintainer",
    "GET /api/v1/projects/{project}/workflows/{name}": "viewer",
    "DELETE /api/v1/projects/{project}/workflows/{name}": "maintainer",
    "POST /api/v1/projects/{project}/workflows/{name}/executions": "maintainer",
    "GET /api/v1/projects/{project}/workflows/{name}/executions": "viewer",
    "GET /api/v1/projects/{project}/workflows/{name}/executions/{execution}": "viewer",
    "GET /api/v1/projects/{project}/workflows/{name}/executions/{execution}/history": "viewer",
    "POST /api/v1/projects/{project}/workflows/{name}/executions/{execution}/stop": "maintainer",
    "PUT /api/v1/projects/{project}/workflows/{name}/triggers/{trigger}": "maintainer",
    "GET /api/v1/projects/{project}/workflows/{name}/triggers": "viewer",
    "GET /api/v1/projects/{project}/workflows/{name}/triggers/{trigger}": "viewer",
    "DELETE /api/v1/projects/{project}/workflows/{name}/triggers/{trigger}": "maintainer",
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
    batch: str | None = None  # a finished batch prediction of ``served``
    monitored: str | None = None  # a finished monitoring run of ``served``
    second_training: str | None = None  # another model of ``project``, to be a challenger
    ingested: str | None = None
    images: tuple[str, str] | None = None  # an image dataset and one of its images
    served: str | None = None  # a deployment serving the finished training's model
    executed: str | None = None  # an execution of the "passing" workflow

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
            job = self.run_job(r.json()["id"])
            assert job.state is JobState.succeeded, job.error
            self.finished_training = job.id
        return self.finished_training

    def challenger_training_id(self) -> str:
        """A second succeeded training in ``project`` (run once), whose model challenges
        the first one's."""
        if self.second_training is None:
            body = {"dataset": "builtin:iris", "time_budget": 1, "max_trials": 1, "seed": 1}
            r = self.admin.post(f"/projects/{self.project}/trainings", json=body)
            assert r.status_code == 202, r.text
            job = self.run_job(r.json()["id"])
            assert job.state is JobState.succeeded, job.error
            self.second_training = job.id
        return self.second_training

    def run_job(self, job_id: str) -> Job:
        """Run the queue (a worker thread) until job ``job_id`` ends; the server has none."""
        queue = Queue(self.server.settings.resolved_database_url)
        try:
            with worker_thread(self.server.settings):
                return queue.wait(job_id, timeout=120)
        finally:
            queue.close()

    def alert(self) -> str:
        """A fresh open alert of ``project``, as a monitoring run records one."""
        from datetime import timedelta

        from loopml.store import alerts
        from loopml.store.db import Database

        db = Database(self.server.settings.resolved_database_url)
        found = {"rule": "latency", "check": "latency_p99_ms", "subject": uuid.uuid4().hex,
                 "severity": "warning", "message": "slow", "details": {}}  # fmt: skip
        try:
            with db.session() as s:
                changes = alerts.record(s, self.project, "served", [found], run=None,
                                        cooldown=timedelta(0))  # fmt: skip
        finally:
            db.dispose()
        return changes[0].alert.id

    def dataset(self) -> str:
        """A dataset of ``project`` with a version, a source and an approved label
        (ingested once from builtin:iris), so that its versions can be read, derived and
        re-synced and its labels listed, reviewed and applied."""
        if self.ingested is None:
            body = {"name": "iris", "source": "builtin:iris"}
            r = self.admin.post(f"/projects/{self.project}/datasets", json=body)
            assert r.status_code == 202, r.text
            job = self.run_job(r.json()["id"])
            assert job.state is JobState.succeeded, job.error
            self.ingested = str(job.result["dataset"])
            review = f"/projects/{self.project}/datasets/iris/labels/{self.label_id()}/review"
            r = self.client(self.role_keys[Role.maintainer]).post(review, json={"approve": True})
            assert r.status_code == 200, r.text
        return self.ingested

    def item(self) -> dict[str, str]:
        """An item of the dataset and its current value: a label that is always valid."""
        r = self.admin.get(f"/projects/{self.project}/datasets/{self.dataset()}/items")
        assert r.status_code == 200, r.text
        first = r.json()[0]
        return {"item": first["item"], "value": first["value"]}

    def label_id(self) -> str:
        """A fresh label waiting for review, by the server's admin key (so that the
        maintainer key may review it: nobody reviews their own labels)."""
        path = f"/projects/{self.project}/datasets/{self.dataset()}/labels"
        r = self.admin.post(path, json={"labels": [self.item()]})
        assert r.status_code == 201, r.text
        (label,) = r.json()
        assert label["status"] == "pending_review", label
        return str(label["id"])

    def image_dataset(self) -> str:
        """A dataset of two uploaded images (once), for the routes that serve images."""
        if self.images is None:
            parts = [
                ("files", (f"{colour}/{colour}.png", png(colour), "image/png"))
                for colour in ("red", "blue")
            ]
            r = self.admin.post(f"/projects/{self.project}/datasets/pictures/uploads", files=parts)
            assert r.status_code == 202, r.text
            job = self.run_job(r.json()["id"])
            assert job.state is JobState.succeeded, job.error
            rows = self.admin.get(
                f"/projects/{self.project}/datasets/pictures/versions/latest/rows",
                params={"format": "json"},
            )
            self.images = ("pictures", str(rows.json()[0]["image"]))
        return self.images[0]

    def image(self) -> str:
        """The SHA-256 of an image of :meth:`image_dataset`."""
        self.image_dataset()
        assert self.images is not None
        return self.images[1]

    def model_number(self, training: str | None = None) -> int:
        """The model version the finished training (or ``training``) registered (other
        trainings queued by the matrix may have run first, so its number is looked up,
        not assumed)."""
        training = training or self.training_id()
        r = self.admin.get(f"/projects/{self.project}/models")
        assert r.status_code == 200, r.text
        (number,) = [m["number"] for m in r.json() if m["training"] == training]
        return int(number)

    def challenger_number(self) -> int:
        """The model version of the second training: never the one a deployment of the
        matrix serves, so it may always be a challenger."""
        return self.model_number(self.challenger_training_id())

    def deployment(self, fresh: bool = False) -> str:
        """A deployment serving :meth:`model_number` (a new one each time when ``fresh``,
        for the route that deletes it)."""
        if fresh or self.served is None:
            name = f"served-{uuid.uuid4().hex[:8]}" if fresh else "served"
            path = f"/projects/{self.project}/deployments/{name}"
            r = self.admin.put(path, json={"model": self.model_number()})
            assert r.status_code in (200, 201), r.text
            if fresh:
                return name
            self.served = name
        return self.served

    def batch_job(self) -> str:
        """A finished batch prediction of :meth:`deployment` (run once)."""
        if self.batch is None:
            path = f"/projects/{self.project}/deployments/{self.deployment()}/batch-predictions"
            r = self.admin.post(path, json={"source": "builtin:iris"})
            assert r.status_code == 202, r.text
            job = self.run_job(r.json()["id"])
            assert job.state is JobState.succeeded, job.error
            self.batch = job.id
        return self.batch

    def monitoring_run(self) -> str:
        """A finished monitoring run of :meth:`deployment` (run once)."""
        if self.monitored is None:
            path = f"/projects/{self.project}/deployments/{self.deployment()}/monitoring/runs"
            r = self.admin.post(path, json={"window": "1h"})
            assert r.status_code == 202, r.text
            job = self.run_job(r.json()["id"])
            assert job.state is JobState.succeeded, job.error
            self.monitored = job.id
        return self.monitored

    def challenged(self) -> str:
        """A fresh deployment serving :meth:`model_number` with :meth:`challenger_number`
        as its shadow challenger (for the routes that promote or remove a challenger)."""
        name = self.deployment(fresh=True)
        path = f"/projects/{self.project}/deployments/{name}/challenger"
        r = self.admin.put(path, json={"model": self.challenger_number(), "mode": "shadow"})
        assert r.status_code == 200, r.text
        return name

    def workflow(self, definition: dict[str, Any] | None = None, fresh: bool = False) -> str:
        """A saved workflow: "passing" (a Pass state), "waiting" (a ten-minute Wait), or
        a fresh one for the route that deletes it."""
        if fresh:
            name = f"flow-{uuid.uuid4().hex[:8]}"
        else:
            name = "waiting" if definition is WAIT_WORKFLOW else "passing"
        path = f"/projects/{self.project}/workflows/{name}"
        r = self.admin.put(path, json={"definition": definition or PASS_WORKFLOW})
        assert r.status_code in (200, 201), r.text
        return name

    def execution(self, running: bool = False) -> str:
        """A finished execution of "passing", or a fresh running one of "waiting"."""
        if running or self.executed is None:
            name = self.workflow(WAIT_WORKFLOW if running else None)
            r = self.admin.post(f"/projects/{self.project}/workflows/{name}/executions", json={})
            assert r.status_code == 202, r.text
            if running:
                return str(r.json()["id"])
            self.executed = str(r.json()["id"])
        return self.executed

    def trigger(self, fresh: bool = False) -> str:
        """A nightly schedule of "passing" (a fresh one for the route that deletes it)."""
        name = f"nightly-{uuid.uuid4().hex[:8]}" if fresh else "nightly"
        path = f"/projects/{self.project}/workflows/{self.workflow()}/triggers/{name}"
        r = self.admin.put(path, json={"kind": "schedule", "cron": "0 3 * * *"})
        assert r.status_code in (200, 201), r.text
        return name

    def url(self, endpoint: Endpoint) -> str:
        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name == "project":
                return self.project
            if name == "key_id":
                return self.key_id()
            if name == "run_id":
                return self.monitoring_run()
            if name == "alert_id":
                return self.alert()
            if name == "job_id" and "/batch-predictions/" in endpoint.path:
                return self.batch_job()
            if name == "job_id":
                return self.job_id()
            if name == "training_id":
                return self.training_id()
            if name == "name" and endpoint.path.endswith("/promote"):
                return self.challenged()
            if name == "name" and endpoint.path.endswith("/challenger"):
                return self.challenged() if endpoint.method == "DELETE" else self.deployment()
            if name == "name" and "/workflows/" in endpoint.path:
                if endpoint.path.endswith("/stop"):
                    return self.workflow(WAIT_WORKFLOW)
                if "/triggers" in endpoint.path:
                    return self.workflow()
                return self.workflow(fresh=endpoint.method == "DELETE")
            if name == "trigger":
                return self.trigger(fresh=endpoint.method == "DELETE")
            if name == "execution":
                return self.execution(running=endpoint.path.endswith("/stop"))
            if name == "name" and "/deployments/" in endpoint.path:
                return self.deployment(fresh=endpoint.method == "DELETE")
            if name == "name":
                return self.image_dataset() if "{sha256}" in endpoint.path else self.dataset()
            if name == "number":
                return str(self.model_number())
            if name == "prediction_id":
                return uuid.uuid4().hex[:26]
            if name == "sha256":
                return self.image()
            if name == "label_id":
                return self.label_id()
            if name == "version":
                self.dataset()
                return "1"
            pytest.fail(
                f"{endpoint.id}: no value for path parameter {{{name}}}; "
                "teach World.url in tests/api/test_auth_matrix.py to make one"
            )

        return re.sub(r"\{(\w+)(?::\w+)?\}", value, endpoint.path).removeprefix("/api/v1")

    def call(self, endpoint: Endpoint, key: str | None) -> httpx.Response:
        kwargs: dict[str, Any] = {}
        request = BODIES.get((endpoint.method, endpoint.path))
        if request is None and endpoint.has_body:
            pytest.fail(
                f"{endpoint.id} takes a body: add a minimal valid one to BODIES "
                "in tests/api/test_auth_matrix.py"
            )
        if request is not None:  # also routes that read their body themselves (predict)
            kwargs = request(self)
        return self.client(key).request(endpoint.method, self.url(endpoint), **kwargs)

    def client(self, key: str | None) -> httpx.Client:
        if key not in self.clients:
            self.clients[key] = client(self.server, key)
        return self.clients[key]


def png(colour: str) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), colour).save(buffer, format="PNG")
    return buffer.getvalue()


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
    # projects, keys, jobs, trainings, datasets, models, deployments: nothing vanished
    assert len(GUARDED) >= 55
    assert {e.id for e in GUARDED} >= set(POLICY)


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
