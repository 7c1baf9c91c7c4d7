"""Workflows: save, validate, start, watch and stop executions."""

from __future__ import annotations

import builtins
import time
from typing import Any

from loopml.core.schemas import Workflow, WorkflowExecution, WorkflowTrigger
from loopml.sdk.resource import Resource

ENDED = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


class Workflows(Resource):
    def validate(self, project: str, definition: dict[str, Any] | str) -> dict[str, Any]:
        """Check a definition (a dict, or JSON or YAML text) without saving it."""
        path = f"/projects/{project}/workflows/validate"
        result: dict[str, Any] = self._call("POST", path, json={"definition": definition})
        return result

    def save(
        self, project: str, name: str, definition: dict[str, Any] | str, type: str = "STANDARD"
    ) -> Workflow:
        """Create workflow ``name`` or replace its definition; ``type`` is ``STANDARD``
        (a durable checkpoint after each Task) or ``EXPRESS`` (faster; a crash may run a
        Task again)."""
        path = f"/projects/{project}/workflows/{name}"
        return self._call("PUT", path, Workflow, json={"definition": definition, "type": type})

    def list(self, project: str) -> builtins.list[Workflow]:
        return self._call("GET", f"/projects/{project}/workflows", list[Workflow])

    def get(self, project: str, name: str) -> Workflow:
        return self._call("GET", f"/projects/{project}/workflows/{name}", Workflow)

    def delete(self, project: str, name: str) -> None:
        self._client.raw("DELETE", f"/projects/{project}/workflows/{name}")

    def start(
        self, project: str, name: str, input: Any = None, *, execution: str | None = None
    ) -> WorkflowExecution:
        """Start an execution (named ``execution``, to make retries start it once)."""
        body: dict[str, Any] = {"input": input}
        if execution is not None:
            body["name"] = execution
        path = f"/projects/{project}/workflows/{name}/executions"
        return self._call("POST", path, WorkflowExecution, json=body)

    def executions(
        self, project: str, name: str, *, status: str | None = None, limit: int = 100
    ) -> builtins.list[WorkflowExecution]:
        params: dict[str, Any] = {"limit": limit}
        if status:
            params["status"] = status
        path = f"/projects/{project}/workflows/{name}/executions"
        return self._call("GET", path, list[WorkflowExecution], params=params)

    def execution(self, project: str, name: str, execution: str) -> WorkflowExecution:
        path = f"/projects/{project}/workflows/{name}/executions/{execution}"
        return self._call("GET", path, WorkflowExecution)

    def history(
        self, project: str, name: str, execution: str, *, after: int = 0
    ) -> builtins.list[dict[str, Any]]:
        """Events in Step Functions' shape, oldest first (only those after ``after``)."""
        path = f"/projects/{project}/workflows/{name}/executions/{execution}/history"
        events: builtins.list[dict[str, Any]] = []
        while True:
            page = self._call("GET", path, params={"after": after, "limit": 10_000})["events"]
            events.extend(page)
            if len(page) < 10_000:
                return events
            after = page[-1]["id"]

    def stop(self, project: str, name: str, execution: str) -> WorkflowExecution:
        path = f"/projects/{project}/workflows/{name}/executions/{execution}/stop"
        return self._call("POST", path, WorkflowExecution)

    def wait(
        self,
        project: str,
        name: str,
        execution: str,
        *,
        timeout: float | None = None,
        poll: float = 0.2,
    ) -> WorkflowExecution:
        """Poll until the execution ends; ``TimeoutError`` after ``timeout`` seconds."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            found = self.execution(project, name, execution)
            if found.status in ENDED:
                return found
            if end is not None and time.monotonic() > end:
                raise TimeoutError(f"execution {execution} still {found.status} after {timeout} s")
            time.sleep(poll)

    def set_trigger(
        self,
        project: str,
        name: str,
        trigger: str,
        kind: str,
        *,
        input: Any = None,
        enabled: bool = True,
        **spec: Any,
    ) -> WorkflowTrigger:
        """Start the workflow by itself: ``kind="schedule", cron="0 3 * * *"``,
        ``kind="dataset", dataset="orders"`` or ``kind="source", url="s3://in/"``."""
        body = {"kind": kind, "input": input, "enabled": enabled, **spec}
        path = f"/projects/{project}/workflows/{name}/triggers/{trigger}"
        return self._call("PUT", path, WorkflowTrigger, json=body)

    def triggers(self, project: str, name: str) -> builtins.list[WorkflowTrigger]:
        path = f"/projects/{project}/workflows/{name}/triggers"
        return self._call("GET", path, list[WorkflowTrigger])

    def delete_trigger(self, project: str, name: str, trigger: str) -> None:
        self._client.raw("DELETE", f"/projects/{project}/workflows/{name}/triggers/{trigger}")
