"""The entry point of a job's own process: run one handler and record its outcome."""

from __future__ import annotations

import os
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from loopml.core.enums import JobState
from loopml.core.errors import Conflict, JobCancelled
from loopml.jobs.context import JobContext
from loopml.jobs.kinds import load_handler
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


def _exit_with_parent(parent_pid: int) -> None:
    # A job whose worker died must stop too: its job is about to be re-queued elsewhere.
    while True:
        time.sleep(1.0)
        if os.getppid() != parent_pid:
            os._exit(70)


def run_job(spec: JobSpec, parent_pid: int | None = None) -> None:
    """Run the job described by ``spec`` to completion and record success or failure."""
    if parent_pid is not None:
        threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()
    db = Database(spec.database_url)
    try:
        with db.session() as s:
            job = job_store.get(s, spec.job_id)
        ctx = JobContext(job, spec.worker, db, BlobStore(spec.storage_url, spec.storage_options))
        state, result, error = JobState.succeeded, None, None
        try:
            handler = load_handler(spec.target)
            result = handler(ctx, **job.params)
        except JobCancelled as exc:
            state, error = JobState.cancelled, str(exc)
        except Exception as exc:
            state, error = JobState.failed, f"{type(exc).__name__}: {exc}"
            ctx.log(traceback.format_exc(), level="error")
        try:
            with db.session() as s:
                job_store.finish(s, spec.job_id, spec.worker, state, result=result, error=error)
        except Conflict:
            pass  # reaped while we ran: the new owner of the job decides its outcome
    finally:
        db.dispose()
