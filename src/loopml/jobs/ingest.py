"""The ``data.ingest`` job: a source becomes a dataset version, with progress."""

from __future__ import annotations

import time
from typing import Any

from loopml.data.ingest import ingest as ingest_source
from loopml.data.sources import UPLOAD
from loopml.jobs.context import JobContext

_PROGRESS_EVERY = 0.5  # seconds: staging reports every megabyte


def ingest(
    ctx: JobContext,
    *,
    dataset: str,
    source: str,
    max_bytes: int,
    max_expanded: int,
    read: dict[str, Any] | None = None,
    target: str | None = None,
    task: str | None = None,
    kinds: dict[str, str] | None = None,
    split: dict[str, Any] | None = None,
    description: str = "",
    storage_options: dict[str, Any] | None = None,
    shown_source: str | None = None,
) -> dict[str, Any]:
    """Read ``source`` into a new version of ``dataset`` (or find the one that holds it)."""
    last = [0.0]

    def on_progress(fraction: float, message: str) -> None:
        now = time.monotonic()
        if now - last[0] >= _PROGRESS_EVERY or fraction >= 1.0:
            last[0] = now
            ctx.progress(fraction, message)

    try:
        version, created = ingest_source(
            ctx.db,
            ctx.blobs,
            str(ctx.job.project),
            dataset,
            source,
            read=read,
            target=target,
            task=task,
            kinds=kinds,
            split=split,
            description=description,
            max_bytes=max_bytes,
            max_expanded=max_expanded,
            storage_options=storage_options,
            shown_source=shown_source,
            on_progress=on_progress,
        )
    finally:
        if source.startswith(UPLOAD):
            for blob in list(ctx.blobs.list(source.removeprefix(UPLOAD))):
                ctx.blobs.delete(blob.key)
    ctx.log(("new version " if created else "unchanged: ") + version.ref)
    return {
        "dataset": dataset,
        "version": version.number,
        "ref": version.ref,
        "created": created,
        "rows": version.rows,
        "content_hash": version.content_hash,
        "findings": len(version.quality),
    }
