"""What a server gives its workflows: deployments to call, and the tasks that need the
server (``predict``), on top of the tasks every runner has."""

from __future__ import annotations

import importlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from loopml.api.lookups import Lookups
from loopml.api.routers.predictions import answer_rows, capture_rows, choose_variant
from loopml.core.errors import InvalidInput
from loopml.home import Home
from loopml.serving.capture import CaptureWriter
from loopml.serving.models import ModelCache
from loopml.serving.shadow import ShadowRunner
from loopml.settings import Settings
from loopml.workflow.service import WorkflowService
from loopml.workflow.tasks import DEFAULT_TASKS, TaskContext, TaskRegistry

log = logging.getLogger("loopml.workflow")


class DeploymentCaller:
    """Predicts with a project's deployment as ``POST .../predict`` does: the same model
    choice (canary, shadow), the same input checks, and the same capture.

    A record (an object) gives one prediction; a list of records, or an object with
    ``records`` or ``instances``, gives ``{"model_version": n, "predictions": [...]}``.
    """

    def __init__(
        self, lookups: Lookups, models: ModelCache, captures: CaptureWriter, shadows: ShadowRunner
    ) -> None:
        self.lookups = lookups
        self.models = models
        self.captures = captures
        self.shadows = shadows

    def __call__(self, project: str, name: str, data: Any, context: TaskContext | None) -> Any:
        started = time.perf_counter()
        records, single = _records(data)
        served = self.lookups.served(project, name)
        version, variant, shadow = choose_variant(served)
        try:
            answers, _ = answer_rows(None, served, version, records, None, self.models)
        except Exception:
            if variant != "canary":
                raise
            log.warning(
                "canary v%s failed; the served model answers", version.number, exc_info=True
            )
            version, variant = served.model, "production"
            answers, _ = answer_rows(None, served, version, records, None, self.models)
        seconds = time.perf_counter() - started
        capture_rows(
            self.captures, served.deployment, records, answers, seconds, variant, every=shadow
        )
        if shadow:
            assert served.challenger is not None
            self.shadows.submit(served.deployment, served.challenger, records, None, answers)
        if single:
            return answers[0]
        return {"model_version": version.number, "predictions": answers}


def server_tasks(caller: DeploymentCaller) -> TaskRegistry:
    """The registry a server's workflows use: the default one (the built-ins and what
    ``workflow_task_modules`` registered) plus ``predict``."""
    tasks = DEFAULT_TASKS.copy()

    def predict(data: Any, context: TaskContext) -> Any:
        """``{"deployment": name, "record": {...}}`` (or ``records``/``instances``)."""
        if not isinstance(data, dict) or not isinstance(data.get("deployment"), str):
            raise InvalidInput(
                'predict takes {"deployment": name, "record": {...}} or "records": [...]',
                field="deployment",
            )
        rest = {k: v for k, v in data.items() if k != "deployment"}
        payload = rest["record"] if set(rest) == {"record"} else rest
        return caller(context.project, data["deployment"], payload, context)

    tasks.add("predict", predict, replace=True)
    return tasks


@dataclass(frozen=True)
class ServerServices:
    """``context.services`` for tasks run by a server."""

    home: Home
    allow_local_files: bool = False


def workflow_service(app: FastAPI, settings: Settings) -> WorkflowService:
    """The server's workflow service, its tasks and deployments wired to ``app.state``."""
    for module in settings.workflow_task_modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise InvalidInput(
                f"workflow task module {module!r} cannot be imported: {exc}",
                field="workflow_task_modules",
            ) from exc
    state = app.state
    caller = DeploymentCaller(state.lookups, state.models, state.captures, state.shadows)
    return WorkflowService(
        state.home.db,
        tasks=server_tasks(caller),
        deployments=caller,
        services=ServerServices(state.home),
        threads=settings.workflow_threads,
        heartbeat_interval=settings.heartbeat_interval,
        heartbeat_timeout=settings.heartbeat_timeout,
    )


def _records(data: Any) -> tuple[list[Any], bool]:
    if isinstance(data, list):
        return data, False
    if isinstance(data, dict):
        for key in ("records", "instances"):
            if key in data and isinstance(data[key], list):
                return data[key], False
        return [data], True
    raise InvalidInput(
        "a deployment takes a record (an object) or a list of records", field="input"
    )
