"""Executors start a claimed job somewhere and let the worker watch and stop it."""

from __future__ import annotations

import multiprocessing
import os
from typing import Protocol

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


class LocalProcessExecutor:
    """Run each job in a fresh process on this machine.

    A process per job isolates crashes and memory of heavy training from the worker,
    and lets cancellation stop handlers that never check for it. ``spawn`` (not ``fork``)
    because the server that embeds a worker runs threads.
    """

    def __init__(self) -> None:
        self._mp = multiprocessing.get_context("spawn")

    def start(self, spec: JobSpec) -> Execution:
        process = self._mp.Process(
            target=run_job, args=(spec, os.getpid()), name=f"loopml-job-{spec.job_id}"
        )
        process.start()
        return ProcessExecution(process)
