"""The app factory."""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from loopml import __version__
from loopml.api import auth, problems
from loopml.api.limits import BodySizeLimit
from loopml.api.lookups import ForgetOnWrite, Lookups
from loopml.api.predict_lane import PredictLane
from loopml.api.routers import (
    alerts,
    baselines,
    batch,
    datasets,
    deployments,
    ingest,
    jobs,
    keys,
    labels,
    models,
    monitoring,
    predictions,
    projects,
    system,
    trainings,
    workflow_triggers,
    workflows,
)
from loopml.api.workflow_host import workflow_service
from loopml.core.enums import Role
from loopml.core.schemas import ApiKey
from loopml.home import open_home
from loopml.jobs.kinds import JobKinds
from loopml.jobs.worker import Worker
from loopml.serving.batching import Batcher
from loopml.serving.capture import CaptureWriter
from loopml.serving.models import ModelCache
from loopml.serving.shadow import ShadowRunner
from loopml.settings import Settings

log = logging.getLogger("loopml.api")

PUBLIC_PATHS = frozenset({"/api/v1/health", "/api/v1/version"})

LOCAL_ADMIN = ApiKey(
    id="local",
    name="local (direct access to the home directory)",
    prefix="-",
    global_role=Role.admin,
    created_at="1970-01-01T00:00:00Z",  # type: ignore[arg-type]
)


def create_app(
    settings: Settings,
    *,
    embedded_worker: bool | None = None,
    trusted_local: bool = False,
    announce: Callable[[str], None] | None = None,
) -> FastAPI:
    """Build the loopml API.

    Parameters
    ----------
    settings : Settings
        The installation to serve.
    embedded_worker : bool, optional
        Run a job worker inside the server; ``settings.embedded_worker`` when None.
    trusted_local : bool
        Treat every request as the admin. Only for the CLI's in-process client, which
        is never bound to a socket: whoever can open the home directory owns it anyway.
    announce : callable, optional
        Receives the one-time message with the admin key on first start.
    """
    run_worker = settings.embedded_worker if embedded_worker is None else embedded_worker

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.home = open_home(settings, announce=announce)
        app.state.models = ModelCache(app.state.home.blobs)
        app.state.batcher = Batcher()
        app.state.captures = CaptureWriter(app.state.home.blobs, settings.capture_flush_seconds)
        app.state.shadows = ShadowRunner(app.state.models, app.state.captures)
        app.state.lookups = Lookups(app.state.home.db, settings.lookup_cache_seconds)
        app.state.workflows = workflow_service(app, settings, local=trusted_local)
        # The CLI's in-process app lives for one command: it must not adopt executions
        # that a stopped server handed back, only to hand them back again a moment later.
        app.state.workflows.open(take_over=not trusted_local)
        stop = threading.Event()
        thread = None
        if run_worker:
            worker = Worker(settings)
            thread = threading.Thread(target=worker.run, args=(stop,), name="loopml-worker")
            thread.start()
        if not trusted_local:
            # What lives as long as the server (modules, the app) is kept out of the
            # collector's full passes, which otherwise scan it all and stop every request
            # for 50-150 ms under load. The CLI's one-command app skips the collect.
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if not trusted_local:
                gc.unfreeze()
            stop.set()
            if thread is not None:
                thread.join(timeout=30)
            app.state.workflows.close()  # its predictions go to shadows and captures
            app.state.lookups.close()
            app.state.shadows.close()  # its answers go to captures: close it first
            app.state.captures.close()
            app.state.home.close()

    app = FastAPI(
        title="loopml",
        version=__version__,
        description="Data, labels, AutoML, deployment, workflows and monitoring.",
        lifespan=lifespan,
        openapi_url="/openapi.json",
        telemetry=None
        if settings.opentelemetry
        else {"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.job_kinds = JobKinds(settings.job_kinds)
    problems.install(app)
    # Innermost of the three: the body size limit applies to predictions too.
    app.add_middleware(PredictLane, local_key=LOCAL_ADMIN if trusted_local else None)
    app.add_middleware(ForgetOnWrite, lookups=lambda: getattr(app.state, "lookups", None))
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_request_bytes,
        upload_bytes=settings.max_upload_bytes,
    )
    for router in (
        predictions.router,  # first: the hot path, matched before every other route
        system.router,
        projects.router,
        keys.router,
        jobs.router,
        jobs.admin_router,
        trainings.router,
        datasets.router,
        ingest.router,
        labels.router,
        models.router,
        deployments.router,
        batch.router,
        monitoring.router,
        alerts.router,
        baselines.router,
        workflows.router,
        workflow_triggers.router,
    ):
        app.include_router(router, prefix="/api/v1")
    if trusted_local:
        app.dependency_overrides[auth.current_key] = lambda: LOCAL_ADMIN
    return app
