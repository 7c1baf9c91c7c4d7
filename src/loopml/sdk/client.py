"""An httpx client mirroring the REST API; returns ``core.schemas`` entities.

Errors come back as the same ``core.errors`` types the server raised (matched by the
problem ``type``), so ``except NotFound`` works the same locally and over HTTP.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from pydantic import TypeAdapter

from loopml.core.enums import JobState, Role
from loopml.core.schemas import ApiKey, Job, JobLogLine, NewApiKey, Project
from loopml.sdk.datasets import Datasets
from loopml.sdk.labels import Labels
from loopml.sdk.models import Deployments, Models
from loopml.sdk.monitoring import Alerts, Monitoring
from loopml.sdk.resource import ApiError, Resource, raise_for
from loopml.sdk.workflows import Workflows

__all__ = ["ApiError", "Client"]


class Projects(Resource):
    def list(self) -> list[Project]:
        return self._call("GET", "/projects", list[Project])

    def create(self, name: str, description: str = "") -> Project:
        body = {"name": name, "description": description}
        return self._call("POST", "/projects", Project, json=body)

    def get(self, name: str) -> Project:
        return self._call("GET", f"/projects/{name}", Project)

    def update(
        self,
        name: str,
        description: str | None = None,
        *,
        label_review: bool | None = None,
        gates: Mapping[str, Any] | None = None,
    ) -> Project:
        """Change what is given: description, label review, quality gates."""
        given = {
            "description": description,
            "label_review": label_review,
            "gates": None if gates is None else dict(gates),
        }
        body = {k: v for k, v in given.items() if v is not None}
        return self._call("PATCH", f"/projects/{name}", Project, json=body)


class Keys(Resource):
    def me(self) -> ApiKey:
        return self._call("GET", "/keys/me", ApiKey)

    def list(self, include_revoked: bool = True) -> list[ApiKey]:
        params = {"include_revoked": include_revoked}
        return self._call("GET", "/keys", list[ApiKey], params=params)

    def create(
        self, name: str, *, admin: bool = False, roles: Mapping[str, Role | str] | None = None
    ) -> NewApiKey:
        body = {
            "name": name,
            "admin": admin,
            "roles": {p: str(Role(r).value) for p, r in (roles or {}).items()},
        }
        return self._call("POST", "/keys", NewApiKey, json=body)

    def revoke(self, key_id: str) -> ApiKey:
        return self._call("POST", f"/keys/{key_id}/revoke", ApiKey)

    def grant(self, key_id: str, project: str, role: Role | str) -> ApiKey:
        body = {"role": Role(role).value}
        return self._call("PUT", f"/keys/{key_id}/roles/{project}", ApiKey, json=body)

    def ungrant(self, key_id: str, project: str) -> ApiKey:
        return self._call("DELETE", f"/keys/{key_id}/roles/{project}", ApiKey)


class Jobs(Resource):
    def submit(
        self,
        project: str,
        kind: str,
        params: dict[str, Any] | None = None,
        *,
        max_attempts: int = 1,
    ) -> Job:
        body = {"kind": kind, "params": params or {}, "max_attempts": max_attempts}
        return self._call("POST", f"/projects/{project}/jobs", Job, json=body)

    def list(
        self, project: str, *, state: JobState | str | None = None, limit: int = 100
    ) -> builtins.list[Job]:
        params: dict[str, Any] = {"limit": limit}
        if state is not None:
            params["state"] = JobState(state).value
        return self._call("GET", f"/projects/{project}/jobs", list[Job], params=params)

    def get(self, project: str, job_id: str) -> Job:
        return self._call("GET", f"/projects/{project}/jobs/{job_id}", Job)

    def cancel(self, project: str, job_id: str) -> Job:
        return self._call("POST", f"/projects/{project}/jobs/{job_id}/cancel", Job)

    def logs(self, project: str, job_id: str, after: int = 0) -> builtins.list[JobLogLine]:
        path = f"/projects/{project}/jobs/{job_id}/logs"
        return self._call("GET", path, list[JobLogLine], params={"after": after})

    def wait(
        self,
        project: str,
        job_id: str,
        *,
        timeout: float | None = None,
        poll: float = 0.5,
        on_update: Callable[[Job], None] | None = None,
    ) -> Job:
        """Poll until the job finishes; ``on_update`` sees every poll (for progress bars).

        Raises ``TimeoutError`` when ``timeout`` seconds pass first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get(project, job_id)
            if on_update:
                on_update(job)
            if job.state.finished:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job.state.value} after {timeout}s")
            time.sleep(poll)


class Trainings(Resource):
    """AutoML trainings: a job of kind ``automl.train`` with its stored artifacts."""

    def start(
        self,
        project: str,
        dataset: str,
        *,
        target: str | None = None,
        time_budget: float = 60.0,
        metric: str = "auto",
        task: str = "auto",
        seed: int = 0,
        max_trials: int | None = None,
        cost_matrix: Mapping[str, float] | None = None,
        confidence_threshold: float | None = None,
        deploy: str | None = None,
    ) -> Job:
        """Queue a training; follow it with :meth:`wait`. With ``deploy``, a model that
        passes the project's gates is deployed under that name."""
        body = {
            "dataset": dataset,
            "target": target,
            "time_budget": time_budget,
            "metric": metric,
            "task": task,
            "seed": seed,
            "max_trials": max_trials,
            "cost_matrix": dict(cost_matrix) if cost_matrix is not None else None,
            "confidence_threshold": confidence_threshold,
            "deploy": deploy,
        }
        body = {k: v for k, v in body.items() if v is not None}
        return self._call("POST", f"/projects/{project}/trainings", Job, json=body)

    def list(self, project: str, *, state: JobState | str | None = None) -> builtins.list[Job]:
        params = {} if state is None else {"state": JobState(state).value}
        return self._call("GET", f"/projects/{project}/trainings", list[Job], params=params)

    def get(self, project: str, training_id: str) -> Job:
        return self._call("GET", f"/projects/{project}/trainings/{training_id}", Job)

    def wait(self, project: str, training_id: str, **kwargs: Any) -> Job:
        """As :meth:`Jobs.wait`: poll until the training finishes."""
        return self._client.jobs.wait(project, training_id, **kwargs)

    def leaderboard(self, project: str, training_id: str) -> builtins.list[dict[str, Any]]:
        path = f"/projects/{project}/trainings/{training_id}/leaderboard"
        return self._call("GET", path, builtins.list[dict[str, Any]])

    def report(self, project: str, training_id: str) -> dict[str, Any]:
        return self._call("GET", f"/projects/{project}/trainings/{training_id}/report", dict)

    def report_html(self, project: str, training_id: str) -> str:
        """The report as a self-contained HTML page with plots."""
        path = f"/projects/{project}/trainings/{training_id}/report.html"
        return self._client.raw("GET", path).text

    def trials(self, project: str, training_id: str) -> builtins.list[dict[str, Any]]:
        path = f"/projects/{project}/trainings/{training_id}/trials"
        return self._call("GET", path, builtins.list[dict[str, Any]])

    def download_model(self, project: str, training_id: str, path: str) -> str:
        """Save the model artifact to ``path``; return its content hash (for ``AutoML.load``)."""
        response = self._client.raw("GET", f"/projects/{project}/trainings/{training_id}/model")
        with open(path, "wb") as fh:
            fh.write(response.content)
        return response.headers["X-Loopml-Content-Hash"]


class Client:
    """A loopml API client.

    Parameters
    ----------
    base_url : str
        Server address, e.g. ``http://127.0.0.1:8000``.
    api_key : str, optional
        Sent as ``Authorization: Bearer <api_key>``.
    http : httpx.Client, optional
        A preconfigured client (custom transport, proxies, TLS); ``base_url`` and
        ``timeout`` are then taken from it.
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        http: httpx.Client | None = None,
    ) -> None:
        self._http = http or httpx.Client(base_url=base_url, timeout=timeout)
        if api_key:
            self._http.headers["Authorization"] = f"Bearer {api_key}"
        self.projects = Projects(self)
        self.keys = Keys(self)
        self.jobs = Jobs(self)
        self.trainings = Trainings(self)
        self.datasets = Datasets(self)
        self.labels = Labels(self)
        self.models = Models(self)
        self.deployments = Deployments(self)
        self.workflows = Workflows(self)
        self.monitoring = Monitoring(self)
        self.alerts = Alerts(self)

    def request(self, method: str, path: str, model: Any = None, **kwargs: Any) -> Any:
        response = self._http.request(method, "/api/v1" + path, **kwargs)
        raise_for(response)
        if model is None:
            return response.json()
        return TypeAdapter(model).validate_python(response.json())

    def raw(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The checked response itself, for bodies that are not JSON (model files)."""
        response = self._http.request(method, "/api/v1" + path, **kwargs)
        raise_for(response)
        return response

    def health(self) -> dict[str, Any]:
        response = self._http.get("/api/v1/health")
        if response.status_code not in (200, 503):
            raise_for(response)
        return response.json()

    def version(self) -> str:
        return str(self.request("GET", "/version")["version"])

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
