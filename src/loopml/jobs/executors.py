"""Executors start a claimed job somewhere and let the worker watch and stop it."""

from __future__ import annotations

import multiprocessing
import os
from typing import Any, Protocol

from loopml.jobs.process import JobSpec, run_job


class Execution(Protocol):
    def exitcode(self) -> int | None:
        """None while running, else the exit status (0 for a clean finish)."""

    def stop(self, grace: float = 5.0) -> None:
        """Ask the job to stop, and force it after ``grace`` seconds."""


class ProcessExecution:
    def __init__(self, process: multiprocessing.process.BaseProcess) -> None:
        self.process = process

    def exitcode(self) -> int | None:
        return self.process.exitcode

    def stop(self, grace: float = 5.0) -> None:
        self.process.terminate()
        self.process.join(grace)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


def _noop() -> None:
    pass


def _start_method() -> Any:  # SpawnContext or ForkServerContext (POSIX only)
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        # Imported once in the fork server, so that a job's process starts in milliseconds
        # instead of importing loopml (and, under ``loopml worker``, the whole CLI) anew.
        context.set_forkserver_preload(["loopml.jobs.process"])
        return context
    return multiprocessing.get_context("spawn")


class LocalProcessExecutor:
    """Run each job in a fresh process on this machine.

    A process per job isolates crashes and memory of heavy training from the worker,
    and lets cancellation stop handlers that never check for it. Never plain ``fork``:
    the server that embeds a worker runs threads. ``forkserver`` forks from a
    single-threaded server process (``spawn`` where there is none); either way a job
    starts with the worker's current directory, ``sys.path`` and environment.
    """

    def __init__(self) -> None:
        self._mp = _start_method()

    def warm_up(self) -> None:
        """Start the fork server (and its imports) now, before any job is claimed, so that
        the first job start does not hold up the worker's heartbeats."""
        if self._mp.get_start_method() == "forkserver":
            process = self._mp.Process(target=_noop, name="loopml-job-warm-up")
            process.start()
            process.join()

    def start(self, spec: JobSpec) -> Execution:
        process = self._mp.Process(
            target=run_job,
            args=(spec, os.getpid(), dict(os.environ)),
            name=f"loopml-job-{spec.job_id}",
        )
        process.start()
        return ProcessExecution(process)
