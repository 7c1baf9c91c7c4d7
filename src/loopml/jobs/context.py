"""What a running job sees: its parameters, progress and log reporting, cancellation."""

from __future__ import annotations

from typing import Any

from loopml.core.errors import Conflict, JobCancelled
from loopml.core.schemas import Job
from loopml.store import jobs as job_store
from loopml.store.blobs import BlobStore
from loopml.store.db import Database


class JobContext:
    """Handed to every job handler as its first argument.

    Handlers call :meth:`progress` as they go; it raises :class:`JobCancelled` once a
    cancellation was requested, so cooperative handlers stop at the next step.
    """

    def __init__(
        self,
        job: Job,
        worker: str,
        db: Database,
        blobs: BlobStore,
        vision_backbone: str | None = None,
    ) -> None:
        self.job = job
        self.worker = worker
        self.db = db
        self.blobs = blobs
        self.vision_backbone = vision_backbone

    @property
    def params(self) -> dict[str, Any]:
        return self.job.params

    def progress(self, fraction: float, message: str = "") -> None:
        """Report progress in [0, 1] with a short message; raises if cancelled."""
        with self.db.session() as s:
            try:
                job_store.set_progress(s, self.job.id, self.worker, fraction, message)
            except Conflict as exc:
                raise JobCancelled(f"job {self.job.id} was taken from this worker") from exc
        self.check_cancelled()

    def log(self, message: str, level: str = "info") -> None:
        with self.db.session() as s:
            job_store.log(s, self.job.id, message, level)

    def check_cancelled(self) -> None:
        with self.db.session() as s:
            if job_store.get(s, self.job.id).cancel_requested:
                raise JobCancelled(f"job {self.job.id} was cancelled")
