"""Built-in job kinds."""

from __future__ import annotations

import os
import time
from typing import Any

from loopml.core.errors import IntegrityError
from loopml.jobs.context import JobContext
from loopml.store import jobs as job_store


def selfcheck(ctx: JobContext, *, pause: float = 0.0) -> dict[str, Any]:
    """Check that a worker can reach the metadata database and the blob store.

    Writes a blob, reads it back with its hash checked, deletes it, and reports timings.
    ``pause`` (seconds) between steps makes the progress visible in demos.
    """
    timings: dict[str, float] = {}
    steps = ["database", "blob write", "blob read", "blob delete"]
    payload = os.urandom(64 * 1024)
    key = f"selfcheck/{ctx.job.id}.bin"
    info = None
    for i, step in enumerate(steps):
        ctx.progress(i / len(steps), f"checking {step}")
        started = time.perf_counter()
        if step == "database":
            with ctx.db.session() as s:
                job_store.get(s, ctx.job.id)
        elif step == "blob write":
            info = ctx.blobs.put(key, payload)
        elif step == "blob read":
            assert info is not None
            if ctx.blobs.get(key, sha256=info.sha256) != payload:
                raise IntegrityError("blob store returned different bytes than were written")
        else:
            ctx.blobs.delete(key)
        timings[step] = round((time.perf_counter() - started) * 1000, 3)
        ctx.log(f"{step}: ok in {timings[step]} ms")
        time.sleep(pause)
    return {"ok": True, "milliseconds": timings, "storage": ctx.blobs.url, "pid": os.getpid()}
