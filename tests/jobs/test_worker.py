"""The worker loop, in this process: running, failing, cancelling, stopping jobs."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from loopml.core.enums import JobState
from loopml.jobs import Worker
from loopml.jobs.executors import Execution
from loopml.jobs.process import JobSpec
from loopml.settings import Settings
from tests.conftest import make_settings
from tests.jobs.handlers import KINDS
from tests.jobs.support import Queue, pid_gone, read_pid, wait_for, worker_thread


@pytest.fixture
def database_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    """SQLite unless a test asks for both backends with ``@both_backends``."""
    if getattr(request, "param", "sqlite") == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return sqlite_url


both_backends = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path / "home", database_url, job_kinds=KINDS)


@pytest.fixture
def queue(settings: Settings) -> Iterator[Queue]:
    q = Queue(settings.resolved_database_url)
    yield q
    q.close()


@both_backends
def test_job_runs_to_success_with_its_result_stored(settings: Settings, queue: Queue) -> None:
    job_id = queue.submit("slow", steps=2, pause=0)
    with worker_thread(settings, name="w-success") as worker:
        job = queue.wait(job_id)
    assert job.state is JobState.succeeded, job.error
    assert job.result == {"steps": 2, "worker": worker.name}
    assert job.progress == 1.0
    assert job.error is None
    assert job.worker == "w-success"
    assert job.attempts == 1
    assert job.started_at is not None and job.finished_at is not None
    assert job.finished_at >= job.started_at
    assert [line.message for line in queue.logs(job_id)] == ["step 1 done", "step 2 done"]


def test_progress_and_logs_are_visible_while_the_job_runs(settings: Settings, queue: Queue) -> None:
    job_id = queue.submit("slow", steps=200, pause=0.05)

    def mid_run() -> object:
        job = queue.get(job_id)
        assert not job.state.finished, f"job ended before it was seen running: {job.state}"
        logs = queue.logs(job_id)
        return (job, logs) if job.progress >= 0.01 and len(logs) >= 2 else None

    with worker_thread(settings):
        job, logs = wait_for("progress and logs of the running job", mid_run)
        assert job.state is JobState.running
        assert 0 < job.progress < 1
        assert job.message.startswith("step ") and job.message.endswith(" of 200")
        assert [line.message for line in logs[:2]] == ["step 1 done", "step 2 done"]
        queue.cancel(job_id)
        assert queue.wait(job_id).state is JobState.cancelled


def test_raising_handler_fails_with_error_and_traceback(settings: Settings, queue: Queue) -> None:
    job_id = queue.submit("boom", message="the flux capacitor broke")
    with worker_thread(settings):
        job = queue.wait(job_id)
    assert job.state is JobState.failed
    assert job.error == "ValueError: the flux capacitor broke"
    assert job.result is None
    logs = queue.logs(job_id)
    assert logs[0].message == "about to fail"
    errors = [line for line in logs if line.level == "error"]
    assert len(errors) == 1
    assert errors[0].message.startswith("Traceback (most recent call last):")
    assert "in _explode" in errors[0].message  # the frame that raised, not just the message
    assert "ValueError: the flux capacitor broke" in errors[0].message


def test_wrong_params_fail_with_a_clear_error(settings: Settings, queue: Queue) -> None:
    unknown = queue.submit("slow", steps=1, bogus=1)
    missing = queue.submit("marker")  # needs path=
    with worker_thread(settings):
        unknown_job = queue.wait(unknown)
        missing_job = queue.wait(missing)
    assert unknown_job.state is JobState.failed
    assert "'bogus'" in unknown_job.error
    assert "unknown parameter" in unknown_job.error
    assert "steps, pause, marker, pid_file" in unknown_job.error  # what it does accept
    assert missing_job.state is JobState.failed
    assert "missing required parameter(s) 'path'" in missing_job.error
    # the handler never ran: no step was logged, only the reason
    assert queue.log_text(unknown) == unknown_job.error
    # kept whole, so that a client waiting on the job is told which field is wrong
    assert unknown_job.problem is not None
    assert (unknown_job.problem["type"], unknown_job.problem["field"]) == ("InvalidInput", "params")


def test_result_that_is_not_json_fails_with_a_clear_error(settings: Settings, queue: Queue) -> None:
    job_id = queue.submit("nonjson")
    with worker_thread(settings):
        job = queue.wait(job_id)
    assert job.state is JobState.failed
    assert "cannot be stored as JSON" in job.error
    assert "exited with code" not in job.error


@both_backends
def test_cancelling_a_cooperative_job_stops_it(
    settings: Settings, queue: Queue, tmp_path: Path
) -> None:
    pid_file = tmp_path / "slow.pid"
    job_id = queue.submit("slow", steps=1000, pause=0.05, pid_file=str(pid_file))
    with worker_thread(settings):
        queue.wait_running(job_id)
        requested = queue.cancel(job_id)
        assert requested.state is JobState.running and requested.cancel_requested
        job = queue.wait(job_id)
        pid = read_pid(pid_file)
        wait_for("the job's process to end", lambda: pid_gone(pid))
    assert job.state is JobState.cancelled
    assert "cancel" in job.error
    assert job.progress < 1.0
    assert "step 1000 done" not in queue.log_text(job_id)


@both_backends
def test_cancelling_a_job_that_ignores_cancellation_terminates_it(
    settings: Settings, queue: Queue, tmp_path: Path
) -> None:
    pid_file = tmp_path / "stubborn.pid"
    job_id = queue.submit("stubborn", pid_file=str(pid_file))
    with worker_thread(settings):
        queue.wait(job_id, JobState.running)
        pid = read_pid(pid_file)
        queue.cancel(job_id)
        job = queue.wait(job_id)
        assert job.state is JobState.cancelled
        assert job.error == "cancelled on request"
        wait_for("the stubborn job's process to be terminated", lambda: pid_gone(pid))


def test_cancelling_a_queued_job_means_it_never_runs(
    settings: Settings, queue: Queue, tmp_path: Path
) -> None:
    marker = tmp_path / "runs.txt"
    job_id = queue.submit("marker", path=str(marker))
    assert queue.cancel(job_id).state is JobState.cancelled
    after = queue.submit("slow", steps=1, pause=0)
    with worker_thread(settings):
        assert queue.wait(after).state is JobState.succeeded
    assert queue.get(job_id).state is JobState.cancelled
    assert not marker.exists()


@both_backends
def test_shutdown_requeues_the_running_job_without_using_an_attempt(
    settings: Settings, queue: Queue, tmp_path: Path
) -> None:
    release, marker, pid_file = tmp_path / "go", tmp_path / "runs.txt", tmp_path / "job.pid"
    job_id = queue.submit("gated", release=str(release), marker=str(marker), pid_file=str(pid_file))
    with worker_thread(settings, name="w-leaving"):
        assert queue.wait_running(job_id).attempts == 1
        pid = read_pid(pid_file)
    # the worker is stopped (the block above waited for its thread)
    job = queue.get(job_id)
    assert job.state is JobState.queued
    assert job.attempts == 0
    assert job.message == "re-queued: worker shut down"
    assert pid_gone(pid), "the worker left its job's process running"
    assert any(
        line.level == "warning" and line.message == "re-queued: worker shut down"
        for line in queue.logs(job_id)
    )
    release.touch()
    with worker_thread(settings, name="w-next"):
        job = queue.wait(job_id)
    # max_attempts is 1: the interrupted run did not count, so the job could run again
    assert job.state is JobState.succeeded, job.error
    assert job.result == "w-next"
    assert (job.attempts, job.max_attempts) == (1, 1)
    assert len(marker.read_text().splitlines()) == 2


def test_job_process_that_exits_is_failed_with_its_exit_code(
    settings: Settings, queue: Queue
) -> None:
    job_id = queue.submit("die", code=3)
    with worker_thread(settings):
        job = queue.wait(job_id)
    assert job.state is JobState.failed
    assert job.error == "job process exited with code 3"
    assert "job process exited with code 3" in queue.log_text(job_id)


def test_job_process_killed_with_sigkill_is_failed(
    settings: Settings, queue: Queue, tmp_path: Path
) -> None:
    pid_file = tmp_path / "victim.pid"
    job_id = queue.submit("die", wait=True, pid_file=str(pid_file))
    with worker_thread(settings):
        os.kill(read_pid(pid_file), signal.SIGKILL)
        job = queue.wait(job_id)
    assert job.state is JobState.failed
    assert job.error == f"job process exited with code {-signal.SIGKILL}"


def test_job_process_that_exits_cleanly_without_an_outcome_is_failed_at_once(
    settings: Settings, queue: Queue
) -> None:
    # sys.exit(0) in a handler: nothing recorded. The job must not stay "running" until
    # the reaper blames a worker that is alive and well.
    job_id = queue.submit("quiet_exit")
    with worker_thread(settings):
        job = queue.wait(job_id)
    assert job.state is JobState.failed
    assert job.error == "job process exited with code 0 without recording an outcome"
    assert "heartbeat" not in queue.log_text(job_id)


def test_worker_leaves_kinds_it_does_not_know_in_the_queue(
    settings: Settings, queue: Queue
) -> None:
    foreign = queue.submit("trains-on-the-gpu-box")
    mine = queue.submit("slow", steps=1, pause=0)
    with worker_thread(settings):
        assert queue.wait(mine).state is JobState.succeeded
        assert queue.get(foreign).state is JobState.queued
    job = queue.get(foreign)
    assert (job.state, job.attempts, job.worker) == (JobState.queued, 0, None)


def test_worker_runs_at_most_its_concurrency(
    settings: Settings, queue: Queue, tmp_path: Path
) -> None:
    one_at_a_time = settings.model_copy(update={"worker_concurrency": 1})
    release = tmp_path / "go"
    first = queue.submit("gated", release=str(release))
    second = queue.submit("gated", release=str(release))
    with worker_thread(one_at_a_time):
        queue.wait_running(first)
        assert queue.get(second).state is JobState.queued
        release.touch()
        assert queue.wait(first).state is JobState.succeeded
        assert queue.wait(second).state is JobState.succeeded


def test_heartbeats_keep_a_silent_job_from_being_reaped(
    settings: Settings, queue: Queue, tmp_path: Path
) -> None:
    # The stubborn job never reports progress; only its worker's heartbeats show it is
    # alive. A second worker reaping the queue must leave it alone past the timeout.
    job_id = queue.submit("stubborn", max_attempts=3)
    with worker_thread(settings, name="w-owner"), worker_thread(settings, name="w-other"):
        started = queue.wait(job_id, JobState.running)

        def beyond_timeout() -> object:
            job = queue.get(job_id)
            assert job.heartbeat_at is not None and started.started_at is not None
            age = (job.heartbeat_at - started.started_at).total_seconds()
            return job if age > settings.heartbeat_timeout + 0.5 else None

        job = wait_for("heartbeats beyond the timeout", beyond_timeout)
        assert job.state is JobState.running
        assert (job.worker, job.attempts) == (started.worker, 1)
        assert "heartbeat" not in queue.log_text(job_id)
        queue.cancel(job_id)
        assert queue.wait(job_id).state is JobState.cancelled


def test_a_stalled_worker_does_not_reap_its_own_running_jobs(
    settings: Settings, queue: Queue
) -> None:
    # Starting the second job takes longer than the heartbeat timeout (as a first start,
    # a slow disk or a busy machine can). Its first job, silent but alive, must survive.
    worker = Worker(settings, name="w-stalled")
    start = worker.executor.start
    first = queue.submit("stubborn")

    def slow_start(spec: JobSpec) -> Execution:
        if spec.job_id != first:
            time.sleep(settings.heartbeat_timeout + 1)
        return start(spec)

    worker.executor.start = slow_start  # type: ignore[method-assign]
    with worker_thread(settings, worker=worker):
        queue.wait(first, JobState.running)
        second = queue.submit("slow", steps=1, pause=0)
        assert queue.wait(second).state is JobState.succeeded
        job = queue.get(first)
        assert (job.state, job.attempts, job.error) == (JobState.running, 1, None)
        assert "heartbeat" not in queue.log_text(first)
        queue.cancel(first)
        assert queue.wait(first).state is JobState.cancelled


def test_jobs_start_with_the_workers_current_environment_and_directory(
    settings: Settings, queue: Queue, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Credentials in the environment (AWS_*, ...) must reach jobs, however long the worker
    # (and whatever it keeps around to start processes) has been running.
    with worker_thread(settings):
        warm = queue.submit("slow", steps=1, pause=0)
        assert queue.wait(warm).state is JobState.succeeded
        monkeypatch.setenv("JOB_TEST_TOKEN", "set-after-the-worker-started")
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        monkeypatch.chdir(elsewhere)
        job_id = queue.submit("surroundings", variable="JOB_TEST_TOKEN")
        job = queue.wait(job_id)
    assert job.state is JobState.succeeded, job.error
    assert job.result == {"value": "set-after-the-worker-started", "cwd": str(elsewhere)}
