"""The entry point of a job's own process: run one handler and record its outcome."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from loopml.core.enums import JobState
from loopml.core.errors import Conflict, JobCancelled
from loopml.jobs.context import JobContext
from loopml.jobs.failures import problem, recorded
from loopml.jobs.kinds import check_params, load_handler
from loopml.store import jobs as job_store
from loopml.store.blobs import BlobStore
from loopml.store.db import Database


@dataclass(frozen=True)
class JobSpec:
    """Everything a process (or a Ray task) needs to run one claimed job; plain values only."""

    job_id: str
    worker: str
    target: str
    database_url: str
    storage_url: str
    storage_options: dict[str, Any] = field(default_factory=dict)
    vision_backbone: str | None = None  # the server's pretrained weights for image trainings


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _exit_with_parent(worker_pid: int, parent_pid: int) -> None:
    # A job whose worker died must stop too: its job is about to be re-queued elsewhere.
    # The parent is the worker (spawn) or the fork server, which exits with the worker.
    while True:
        time.sleep(1.0)
        if os.getppid() != parent_pid or not _alive(worker_pid):
            os._exit(70)


def _json_problem(result: Any) -> str | None:
    try:
        json.dumps(result, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return f"the job's result cannot be stored as JSON: {exc}"
    return None


def run_job(
    spec: JobSpec, worker_pid: int | None = None, environ: dict[str, str] | None = None
) -> None:
    """Run the job described by ``spec`` to completion and record success or failure.

    Parameters
    ----------
    spec : JobSpec
        The claimed job.
    worker_pid : int, optional
        The worker's process; this process exits when that one is gone.
    environ : dict, optional
        The worker's environment when it started the job (a fork server's is older).
    """
    if environ is not None:
        os.environ.clear()
        os.environ.update(environ)
    if worker_pid is not None:
        # Ctrl-C in a terminal reaches the whole process group: leave stopping this job to
        # its worker, which re-queues it, instead of dying with a KeyboardInterrupt.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        threading.Thread(
            target=_exit_with_parent, args=(worker_pid, os.getppid()), daemon=True
        ).start()
    db = Database(spec.database_url)
    try:
        with db.session() as s:
            job = job_store.get(s, spec.job_id)
        blobs = BlobStore(spec.storage_url, spec.storage_options)
        ctx = JobContext(job, spec.worker, db, blobs, vision_backbone=spec.vision_backbone)
        state, result, error, caller = JobState.succeeded, None, None, None
        try:
            handler = load_handler(spec.target)
            check_params(handler, job.kind, job.params)
        except Exception as exc:
            state, error, caller = JobState.failed, recorded(exc), problem(exc)
            ctx.log(error, level="error")
        else:
            try:
                result = handler(ctx, **job.params)
            except JobCancelled as exc:
                state, error = JobState.cancelled, str(exc)
            except Exception as exc:
                state, error, caller = JobState.failed, recorded(exc), problem(exc)
                ctx.log(traceback.format_exc(), level="error")
            else:
                error = _json_problem(result)
                if error is not None:
                    state, result = JobState.failed, None
                    ctx.log(error, level="error")
        try:
            with db.session() as s:
                job_store.finish(
                    s, spec.job_id, spec.worker, state, result=result, error=error, problem=caller
                )
        except Conflict:
            pass  # reaped while we ran: the new owner of the job decides its outcome
    finally:
        db.dispose()
