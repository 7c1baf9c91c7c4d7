"""What a server gives its workflows: deployments to call, and the tasks that need the
server (``predict``), on top of the tasks every runner has."""

from __future__ import annotations

import base64
import importlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from loopml.api.lookups import Lookups
from loopml.api.routers.predictions import answer_rows, capture_rows, choose_variant
from loopml.api.workflow_tasks import add_server_tasks
from loopml.core.errors import InvalidInput, NotFound
from loopml.home import Home
from loopml.serving.capture import CaptureWriter
from loopml.serving.models import ModelCache
from loopml.serving.shadow import ShadowRunner
from loopml.settings import Settings
from loopml.store import datasets
from loopml.workflow import builtin
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
    ``workflow_task_modules`` registered) plus the tasks that need the server: ``predict``,
    ``serialize_image`` of a dataset's image, ``train``, ``evaluate``, ``deploy`` and
    ``batch_predict``."""
    tasks = DEFAULT_TASKS.copy()

    def predict(data: Any, context: TaskContext) -> Any:
        """``{"deployment": name, "record": {...}}`` (or ``records``/``instances``)."""
        if not isinstance(data, dict) or not isinstance(data.get("deployment"), str):
            raise InvalidInput(
                'predict takes {"deployment": name, "record": {...}} or "records": [...]',
                field="deployment",
            )
        rest = {k: v for k, v in data.items() if k != "deployment"}
        # With "record" beside other fields, the record still is what is predicted (not
        # the whole object, whose unknown keys would make a silent all-missing record).
        payload = rest.get("record", rest)
        return caller(context.project, data["deployment"], payload, context)

    def serialize_image(data: Any, context: TaskContext) -> Any:
        """Also ``{"dataset": name, "image": sha256}``: an image of a dataset version."""
        if not isinstance(data, dict) or "dataset" not in data:
            return builtin.serialize_image(data, context)
        return dataset_image(context.services.home, context.project, data)

    tasks.add("predict", predict, replace=True)
    tasks.add("serialize_image", serialize_image, replace=True)
    add_server_tasks(tasks, caller.models)
    return tasks


def dataset_image(home: Home, project: str, data: dict[str, Any]) -> dict[str, Any]:
    name, digest = data.get("dataset"), data.get("image")
    if not isinstance(name, str) or not isinstance(digest, str):
        raise InvalidInput(
            'serialize_image takes {"dataset": name, "image": sha256}', field="image"
        )
    dataset, number = datasets.parse_ref(name)
    with home.db.session() as s:
        version = datasets.get_version(s, project, dataset, number)
    prefix = (version.manifest.get("images") or {}).get("prefix")
    if prefix is None or len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
        raise NotFound(f"{project}/{name} has no image {digest!r}", field="image")
    raw = home.blobs.get(f"{prefix}/{digest}", sha256=digest)
    kind = "image/png" if raw.startswith(b"\x89PNG") else "image/jpeg"
    return {
        "image": base64.b64encode(raw).decode("ascii"),
        "content_type": kind,
        "dataset": name,
        "sha256": digest,
    }


@dataclass(frozen=True)
class ServerServices:
    """``context.services`` for tasks run by a server."""

    home: Home
    allow_local_files: bool = False


def workflow_service(app: FastAPI, settings: Settings, *, local: bool = False) -> WorkflowService:
    """The server's workflow service, its tasks and deployments wired to ``app.state``.

    ``local`` (the CLI's in-process server, run by the owner of the files) lets tasks read
    and write local files, as ``settings.workflow_local_files`` does for a real server.
    """
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
        services=ServerServices(state.home, local or settings.workflow_local_files),
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
