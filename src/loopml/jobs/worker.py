"""The worker loop: reap dead jobs, claim queued ones, run them, heartbeat, cancel."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass

from loopml.core.enums import JobState
from loopml.core.errors import Conflict, StorageError
from loopml.core.ids import new_id
from loopml.jobs.executors import Execution, LocalProcessExecutor
from loopml.jobs.kinds import JobKinds
from loopml.jobs.process import JobSpec
from loopml.settings import Settings
from loopml.store import jobs as job_store
from loopml.store.db import Database

log = logging.getLogger("loopml.worker")


@dataclass
class _Running:
    spec: JobSpec
    execution: Execution
    last_beat: float


class Worker:
    """Claims and runs jobs until stopped.

    Parameters
    ----------
    settings : Settings
        Database and storage URLs, concurrency, heartbeat interval and timeout.
    name : str, optional
        Worker identity recorded on the jobs it claims; host:pid:random by default.
    """

    def __init__(self, settings: Settings, *, name: str | None = None) -> None:
        self.settings = settings
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{new_id()[-6:]}"
        self.kinds = JobKinds(settings.job_kinds)
        self.executor = LocalProcessExecutor()
        self.db = Database(settings.resolved_database_url)
        self.running: dict[str, _Running] = {}

    def run(self, stop: threading.Event | None = None) -> None:
        """Loop until ``stop`` is set; running jobs are stopped and re-queued on exit."""
        stop = stop or threading.Event()
        log.info("worker %s started", self.name)
        try:
            self.executor.warm_up()
        except Exception as exc:  # the first job start will say what is wrong
            log.warning("worker %s: could not prepare job processes: %s", self.name, exc)
        try:
            while not stop.is_set():
                try:
                    self.step()
                except StorageError as exc:
                    log.warning("worker %s: %s; retrying", self.name, exc)
                except Exception:
                    # A dead worker thread would leave the server accepting jobs nobody runs.
                    log.exception("worker %s: unexpected error; continuing", self.name)
                stop.wait(self.settings.poll_interval)
        finally:
            self.shutdown()

    def step(self) -> None:
        """One pass: watch running jobs (heartbeats), reap, claim up to the concurrency limit."""
        # Heartbeats first: after a pass that stalled past the timeout (a slow job start, a
        # slow database), this worker must not reap its own jobs, which it knows are alive.
        self._watch()
        with self.db.session() as s:
            for job in job_store.reap(s, self.settings.heartbeat_timeout):
                log.warning("job %s reaped: now %s", job.id, job.state.value)
        while len(self.running) < self.settings.worker_concurrency:
            with self.db.session() as s:
                claimed = job_store.claim(s, self.name, self.kinds.names())
            if claimed is None:
                break
            job = claimed
            spec = JobSpec(
                job_id=job.id,
                worker=self.name,
                target=self.kinds.target(job.kind),
                database_url=self.settings.resolved_database_url,
                storage_url=self.settings.resolved_storage_url,
                storage_options=self.settings.storage_options,
                vision_backbone=None
                if self.settings.vision_backbone is None
                else str(self.settings.vision_backbone),
            )
            try:
                execution = self.executor.start(spec)
            except Exception as exc:
                self._finish(job.id, JobState.failed, f"could not start the job process: {exc}")
                continue
            # Heartbeat at the next watch: starting the process may have taken a while.
            self.running[job.id] = _Running(spec, execution, float("-inf"))
            log.info("job %s (%s) started", job.id, job.kind)

    def _watch(self) -> None:
        now = time.monotonic()
        for job_id, run in list(self.running.items()):
            code = run.execution.exitcode()
            if code is not None:
                del self.running[job_id]
                # A clean exit has recorded the outcome already (then this finds the job no
                # longer running and changes nothing); one that did not (sys.exit(0) in a
                # handler) must not be left running until the reaper blames this worker.
                reason = f"job process exited with code {code}"
                if code == 0:
                    reason += " without recording an outcome"
                self._finish(job_id, JobState.failed, reason)
                continue
            if now - run.last_beat < self.settings.heartbeat_interval:
                continue
            run.last_beat = now
            try:
                with self.db.session() as s:
                    cancel = job_store.heartbeat(s, job_id, self.name)
            except Conflict:
                with self.db.session() as s:
                    finished = job_store.get(s, job_id).state.finished
                # The job process may have recorded its outcome just before this beat.
                if not finished:
                    log.warning("job %s was taken from this worker; stopping it", job_id)
                run.execution.stop()
                del self.running[job_id]
                continue
            if cancel:
                run.execution.stop()
                del self.running[job_id]
                self._finish(job_id, JobState.cancelled, "cancelled on request")

    def _finish(self, job_id: str, state: JobState, error: str) -> None:
        try:
            with self.db.session() as s:
                job_store.finish(s, job_id, self.name, state, error=error)
                job_store.log(s, job_id, error, level="error")
        except Conflict:
            pass  # the job process recorded its own outcome first

    def shutdown(self) -> None:
        """Stop running jobs and give them back to the queue for another worker."""
        for job_id, run in list(self.running.items()):
            run.execution.stop()
            try:
                with self.db.session() as s:
                    job_store.requeue(s, job_id, self.name, "worker shut down")
            except Conflict:
                pass
        self.running.clear()
        self.db.dispose()
        log.info("worker %s stopped", self.name)
