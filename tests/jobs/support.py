"""Helpers shared by the job and CLI tests: waiting for states, watching processes."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from loopml.core.enums import JobState
from loopml.core.schemas import Job, JobLogLine
from loopml.jobs import Worker
from loopml.settings import Settings
from loopml.store import jobs as job_store
from loopml.store.db import Database
from tests.conftest import wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def pid_gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie waiting for its reaper counts as ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


def read_pid(path: Path) -> int:
    """The pid a test handler wrote to ``path`` (written atomically once it runs)."""
    wait_for(f"the job to write its pid to {path.name}", path.exists)
    return int(path.read_text())


class Queue:
    """The job queue of one metadata database, read the way a user of the API sees it."""

    def __init__(self, database_url: str) -> None:
        self.db = Database(database_url)
        self.db.upgrade()

    def submit(self, kind: str, max_attempts: int = 1, **params: object) -> str:
        with self.db.session() as s:
            return job_store.enqueue(s, kind, params, max_attempts=max_attempts).id

    def get(self, job_id: str) -> Job:
        with self.db.session() as s:
            return job_store.get(s, job_id)

    def logs(self, job_id: str) -> list[JobLogLine]:
        with self.db.session() as s:
            return job_store.logs(s, job_id)

    def log_text(self, job_id: str) -> str:
        return "\n".join(line.message for line in self.logs(job_id))

    def cancel(self, job_id: str) -> Job:
        with self.db.session() as s:
            return job_store.cancel(s, job_id)

    def wait(self, job_id: str, *states: JobState, timeout: float = 30.0) -> Job:
        """Wait until the job is in one of ``states`` (any final state when none given)."""

        def check() -> Job | None:
            job = self.get(job_id)
            done = job.state in states if states else job.state.finished
            return job if done else None

        wanted = "/".join(s.value for s in states) or "a final state"
        return wait_for(f"job {job_id} to be {wanted}", check, timeout)

    def wait_running(self, job_id: str, timeout: float = 30.0) -> Job:
        """Wait until the job runs and has reported progress (its handler is executing)."""

        def check() -> Job | None:
            job = self.get(job_id)
            if job.state.finished:
                raise AssertionError(f"job {job_id} ended ({job.state.value}: {job.error})")
            return job if job.state is JobState.running and job.progress > 0 else None

        return wait_for(f"job {job_id} to report progress", check, timeout)

    def close(self) -> None:
        self.db.dispose()


@contextmanager
def worker_thread(
    settings: Settings, name: str | None = None, worker: Worker | None = None
) -> Iterator[Worker]:
    """A :class:`Worker` looping in a thread of this process; stopped when the block ends."""
    worker = worker or Worker(settings, name=name)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), name=f"worker-{worker.name}")
    thread.start()
    try:
        yield worker
    finally:
        stop.set()
        thread.join(60)
        assert not thread.is_alive(), "the worker did not stop"
