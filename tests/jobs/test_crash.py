"""Real ``loopml worker`` processes: killed mid-job, interrupted, and racing each other.

The issue's requirements: a worker killed with SIGKILL mid-job leaves the job re-queued
or failed with a reason after the heartbeat timeout, and two workers on PostgreSQL never
run the same job.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from loopml.core.enums import JobState
from tests.jobs.handlers import KINDS
from tests.jobs.support import REPO_ROOT, Queue, pid_gone, read_pid, wait_for

LOOPML = str(Path(sys.executable).with_name("loopml"))
HEARTBEAT_TIMEOUT = 2
OpenQueue = Callable[[str], Queue]
JOBS = 24  # each job is a fresh process (~1 s of CPU to start): enough to race, not too slow


class WorkerProcess:
    """``loopml worker`` as its own process, configured only through the environment."""

    def __init__(self, tmp_path: Path, database_url: str, name: str, concurrency: int = 2) -> None:
        self.log_path = tmp_path / f"{name}.log"
        self.cwd = tmp_path / f"{name}-cwd"
        self.cwd.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
        env.update(
            LOOPML_HOME=str(tmp_path / "home"),
            LOOPML_DATABASE_URL=database_url,
            LOOPML_HEARTBEAT_TIMEOUT=str(HEARTBEAT_TIMEOUT),
            LOOPML_HEARTBEAT_INTERVAL="0.2",
            LOOPML_POLL_INTERVAL="0.05",
            LOOPML_JOB_KINDS=json.dumps(KINDS),
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
            PYTHONUNBUFFERED="1",
            COLUMNS="250",
        )
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [LOOPML, "worker", "--concurrency", str(concurrency)],
                cwd=self.cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, as in its own terminal
            )

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_polling(self) -> None:
        def polling() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.output}")
            return " polling " in self.output

        wait_for("the worker to start polling", polling)

    def stop(self, sig: int = signal.SIGTERM, group: bool = False) -> int:
        if self.proc.poll() is None:
            if group:
                os.killpg(self.proc.pid, sig)
            else:
                self.proc.send_signal(sig)
        return self.proc.wait(60)

    def kill_all(self) -> None:
        """Clean-up after a failed test: the worker and anything left in its group."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(60)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.kill_all()


@pytest.fixture
def open_queue() -> Iterator[OpenQueue]:
    opened: list[Queue] = []

    def open_(url: str) -> Queue:
        opened.append(Queue(url))
        return opened[-1]

    yield open_
    for queue in opened:
        queue.close()


def start_worker(
    workers: list[WorkerProcess], tmp_path: Path, database_url: str, name: str, **kw: int
) -> WorkerProcess:
    worker = WorkerProcess(tmp_path, database_url, name, **kw)
    workers.append(worker)
    worker.wait_polling()
    return worker


def runs(marker: Path) -> list[str]:
    return marker.read_text().splitlines() if marker.exists() else []


def test_worker_killed_mid_job_gets_its_jobs_requeued_or_failed_with_a_reason(
    database_url: str, tmp_path: Path, workers: list[WorkerProcess], open_queue: OpenQueue
) -> None:
    queue = open_queue(database_url)
    release = tmp_path / "release"

    def submit_gated(name: str, max_attempts: int) -> tuple[str, Path, Path]:
        marker, pid_file = tmp_path / f"{name}.runs", tmp_path / f"{name}.pid"
        job_id = queue.submit(
            "gated",
            max_attempts=max_attempts,
            release=str(release),
            marker=str(marker),
            pid_file=str(pid_file),
        )
        return job_id, marker, pid_file

    retry, retry_runs, retry_pid = submit_gated("retry", max_attempts=2)
    once, once_runs, once_pid = submit_gated("once", max_attempts=1)

    first = start_worker(workers, tmp_path, database_url, "first")
    for job_id in (retry, once):
        queue.wait_running(job_id)
    job_pids = [read_pid(retry_pid), read_pid(once_pid)]
    dead = queue.get(retry).worker
    assert dead is not None and queue.get(once).worker == dead
    assert f"worker {dead} polling" in first.output

    first.stop(signal.SIGKILL)
    for pid in job_pids:  # each job process notices its worker is gone and exits
        wait_for(f"job process {pid} of the killed worker to exit", lambda p=pid: pid_gone(p))
    for job_id in (retry, once):  # nobody is left to notice: both still look running
        assert queue.get(job_id).state is JobState.running

    release.touch()  # from now on a run of either job finishes at once
    second = start_worker(workers, tmp_path, database_url, "second")
    retried = queue.wait(retry)
    failed = queue.wait(once)
    assert second.stop() == 0

    reason = f"worker {dead} stopped sending heartbeats at "
    timeout = f"(timeout {HEARTBEAT_TIMEOUT}s)"

    assert retried.state is JobState.succeeded, retried.error
    assert (retried.attempts, retried.max_attempts) == (2, 2)
    assert retried.worker not in (None, dead)
    assert retried.result == retried.worker
    retry_log = queue.log_text(retry)
    assert reason in retry_log and timeout in retry_log
    assert "during attempt 1 of 2" in retry_log
    assert [line.split()[1] for line in runs(retry_runs)] == [dead, retried.worker]

    assert failed.state is JobState.failed
    assert failed.error is not None
    assert failed.error.startswith(reason) and timeout in failed.error
    assert "during attempt 1 of 1" in failed.error
    assert (failed.attempts, failed.max_attempts) == (1, 1)
    assert len(runs(once_runs)) == 1  # never run again


def test_ctrl_c_on_a_worker_gives_its_job_back_to_the_queue(
    sqlite_url: str, tmp_path: Path, workers: list[WorkerProcess], open_queue: OpenQueue
) -> None:
    queue = open_queue(sqlite_url)
    release, marker, pid_file = tmp_path / "go", tmp_path / "runs", tmp_path / "job.pid"
    job_id = queue.submit("gated", release=str(release), marker=str(marker), pid_file=str(pid_file))
    worker = start_worker(workers, tmp_path, sqlite_url, "interrupted")
    queue.wait_running(job_id)
    pid = read_pid(pid_file)

    # Ctrl-C in a terminal signals the whole foreground process group, job processes too.
    assert worker.stop(signal.SIGINT, group=True) == 0
    wait_for("the job process to end", lambda: pid_gone(pid))
    job = queue.get(job_id)
    assert job.state is JobState.queued
    assert job.attempts == 0
    assert job.message == "re-queued: worker shut down"
    assert "Traceback" not in worker.output, worker.output


def test_two_workers_on_postgres_never_run_the_same_job(
    postgres_url: str, tmp_path: Path, workers: list[WorkerProcess], open_queue: OpenQueue
) -> None:
    queue = open_queue(postgres_url)
    marker = tmp_path / "runs.txt"
    pair = [start_worker(workers, tmp_path, postgres_url, f"w{i}", concurrency=3) for i in (1, 2)]
    job_ids = [queue.submit("marker", path=str(marker), pause=0.05) for _ in range(JOBS)]
    finished = [queue.wait(job_id) for job_id in job_ids]
    for worker in pair:
        assert worker.stop() == 0

    assert [job.state for job in finished] == [JobState.succeeded] * JOBS
    assert all(job.attempts == 1 for job in finished)
    executions = Counter(line.split()[0] for line in runs(marker))
    assert executions == Counter({job_id: 1 for job_id in job_ids})
    # both workers took part, so the test did exercise concurrent claiming
    assert len({job.worker for job in finished}) == 2
    assert {line.split()[1] for line in runs(marker)} == {job.worker for job in finished}
