"""The built-in tasks that need a server: ``train``, ``evaluate``, ``deploy``,
``batch_predict`` and ``monitor``. Each calls what the matching REST route calls, with
the same checks; ``train``, ``batch_predict`` and ``monitor`` queue a job and wait for
it (within the Task's ``TimeoutSeconds``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from loopml.api.routers.batch import BatchRequest, queue_batch
from loopml.api.routers.deployments import DeployRequest, serve_model
from loopml.api.routers.monitoring import MonitoringRequest, queue_run
from loopml.api.routers.trainings import TrainingRequest, queue_training
from loopml.core.enums import JobState
from loopml.core.errors import InvalidInput, StatesError
from loopml.core.schemas import Job
from loopml.home import Home
from loopml.serving.models import ModelCache
from loopml.store import jobs, registry
from loopml.workflow.tasks import TaskContext, TaskRegistry

_POLL = 0.5


def add_server_tasks(tasks: TaskRegistry, models: ModelCache) -> None:
    """Register ``train``, ``evaluate``, ``deploy``, ``batch_predict`` and ``monitor``."""

    def train(data: Any, context: TaskContext) -> dict[str, Any]:
        """An AutoML training (the body of ``POST .../trainings``); waits for its model."""
        home: Home = context.services.home
        job = _wait(
            home,
            queue_training(home, context.project, _body(TrainingRequest, data)),
            context,
            "loopml.TrainingFailed",
        )
        result = dict(job.result or {})
        keep = ("metric", "score", "test_score", "beats_baselines", "gates", "deployed_to")
        return {"training": job.id, "model": result.get("model_version"),
                **{k: result[k] for k in keep if k in result}}  # fmt: skip

    def evaluate(data: Any, context: TaskContext) -> dict[str, Any]:
        """A model version's scores and gate verdicts: ``{"model": 3}``."""
        number = data.get("model") if isinstance(data, dict) else None
        if isinstance(number, bool) or not isinstance(number, int):
            raise InvalidInput('evaluate takes {"model": <version number>}', field="model")
        with context.services.home.db.session() as s:
            version = registry.get_model(s, context.project, number)
        return version.model_dump(mode="json", include={
            "number", "stage", "task", "metric", "score", "test_score", "beats_baselines",
            "gates", "dataset", "training",
            "predict_seconds_per_1000", "size_bytes"})  # fmt: skip

    def deploy(data: Any, context: TaskContext) -> dict[str, Any]:
        """Serve a model version: ``{"deployment": name, "model": 3, ...}`` as PUT does."""
        if not isinstance(data, dict) or not isinstance(data.get("deployment"), str):
            raise InvalidInput(
                'deploy takes {"deployment": name, "model": number}', field="deployment"
            )
        body = _body(DeployRequest, {k: v for k, v in data.items() if k != "deployment"})
        actor = f"workflow execution {context.execution_id}"
        deployment, created = serve_model(
            context.services.home, models, context.project, data["deployment"], body, actor
        )
        return {**deployment.model_dump(mode="json"), "created": created}

    def batch_predict(data: Any, context: TaskContext) -> dict[str, Any]:
        """``{"deployment": name, "dataset": "name[@v]", "part": "test"}``; waits for it."""
        if not isinstance(data, dict) or not isinstance(data.get("deployment"), str):
            raise InvalidInput(
                'batch_predict takes {"deployment": name, "dataset": ...}', field="deployment"
            )
        body = _body(BatchRequest, {k: v for k, v in data.items() if k != "deployment"})
        if body.dataset is None:
            raise InvalidInput(
                "a workflow predicts a dataset of the project, not a source", field="dataset"
            )
        home: Home = context.services.home
        queued = queue_batch(
            home, context.project, data["deployment"], body.model_dump(exclude_none=True)
        )
        job = _wait(home, queued, context, "loopml.BatchPredictionFailed")
        return {"job": job.id, **dict(job.result or {})}

    def monitor(data: Any, context: TaskContext) -> dict[str, Any]:
        """A monitoring run, ``{"deployment": name, "window": "24h", ...}`` (the body of
        ``POST .../monitoring/runs``); waits for it. The output says whether the data
        drifted, which columns, and what alerts it raised, for a Choice to act on."""
        if not isinstance(data, dict) or not isinstance(data.get("deployment"), str):
            raise InvalidInput(
                'monitor takes {"deployment": name, "window": "24h", ...}', field="deployment"
            )
        body = _body(MonitoringRequest, {k: v for k, v in data.items() if k != "deployment"})
        home: Home = context.services.home
        queued = queue_run(home, context.project, data["deployment"], body)
        job = _wait(home, queued, context, "loopml.MonitoringFailed")
        return {"run": job.id, **dict(job.result or {})}

    for function in (train, evaluate, deploy, batch_predict, monitor):
        tasks.add(function.__name__, function, replace=True)


def _body(model: type[BaseModel], data: Any) -> Any:
    if not isinstance(data, dict):
        raise InvalidInput(
            f"the task takes an object like the body of its REST route ({model.__name__})",
            field="input",
        )
    try:
        return model(**data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "input"
        raise InvalidInput(f"{where}: {first['msg']}", field=where) from None


def _wait(
    home: Home,
    job: Job,
    context: TaskContext,
    error: str,
    sleep: Callable[[float], None] = time.sleep,
) -> Job:
    """Poll the job until it ends; its failure is the task's, named ``error``."""
    while True:
        with home.db.session() as s:
            job = jobs.get(s, job.id)
        if job.state in (JobState.succeeded, JobState.failed, JobState.cancelled):
            break
        if context.deadline is not None and time.monotonic() >= context.deadline:
            raise StatesError("States.Timeout", f"job {job.id} is still {job.state.value}")
        sleep(_POLL)
    if job.state is not JobState.succeeded:
        raise StatesError(error, f"job {job.id} {job.state.value}: {job.error or ''}".strip())
    return job
