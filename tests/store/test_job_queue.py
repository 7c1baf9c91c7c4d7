"""The job queue in the metadata database (loopml.store.jobs)."""

from __future__ import annotations

import math
import multiprocessing
import threading
from datetime import timedelta
from typing import Any

import pytest

from loopml.core.enums import JobState
from loopml.core.errors import Conflict, InvalidInput, NotFound
from loopml.core.schemas import Job
from loopml.store import jobs, projects
from loopml.store.db import Database
from loopml.store.models import utcnow


def _claim(db: Database, worker: str = "w1", kinds: list[str] | None = None) -> Job:
    with db.session() as s:
        job = jobs.claim(s, worker, kinds)
    assert job is not None
    return job


def _get(db: Database, job_id: str) -> Job:
    with db.session() as s:
        return jobs.get(s, job_id)


def _stale(job: Job, seconds: float = 3600) -> Any:
    """A ``now`` that lies ``seconds`` after the job's last heartbeat."""
    assert job.heartbeat_at is not None
    return job.heartbeat_at + timedelta(seconds=seconds)


# --- enqueue and claim ------------------------------------------------------------


def test_enqueue_stores_a_queued_job(db: Database) -> None:
    with db.session() as s:
        projects.create(s, "p")
        job = jobs.enqueue(s, "train", {"lr": 0.1, "tags": ["a"]}, project="p", max_attempts=3)
    assert job.state is JobState.queued
    assert (job.kind, job.project, job.max_attempts, job.attempts) == ("train", "p", 3, 0)
    assert job.params == {"lr": 0.1, "tags": ["a"]}
    assert job.worker is None and job.started_at is None and not job.cancel_requested
    assert _get(db, job.id) == job
    with db.session() as s:
        assert jobs.count(s, JobState.queued) == 1
        assert [j.id for j in jobs.list_jobs(s, project="p")] == [job.id]


def test_enqueue_checks_its_input(db: Database) -> None:
    with pytest.raises(NotFound) as err, db.session() as s:
        jobs.enqueue(s, "train", project="ghost")
    assert err.value.field == "project"
    with pytest.raises(InvalidInput) as err2, db.session() as s:
        jobs.enqueue(s, "train", max_attempts=0)
    assert err2.value.field == "max_attempts"
    with db.session() as s:
        assert jobs.list_jobs(s) == []


def test_claim_takes_the_oldest_job_first(db: Database) -> None:
    with db.session() as s:
        made = [jobs.enqueue(s, "work", {"i": i}).id for i in range(10)]
    claimed = [_claim(db).id for _ in range(10)]
    assert claimed == made


def test_claim_returns_none_when_the_queue_is_empty(db: Database) -> None:
    with db.session() as s:
        assert jobs.claim(s, "w1") is None
        job = jobs.enqueue(s, "work")
    assert _claim(db).id == job.id
    with db.session() as s:
        assert jobs.claim(s, "w2") is None  # running jobs are not claimable


def test_claim_marks_the_job_running_for_the_worker(db: Database) -> None:
    with db.session() as s:
        job = jobs.enqueue(s, "work")
    claimed = _claim(db, "worker-7")
    assert claimed.id == job.id
    assert claimed.state is JobState.running
    assert claimed.worker == "worker-7"
    assert claimed.attempts == 1
    assert claimed.started_at is not None and claimed.heartbeat_at is not None
    assert claimed.started_at >= job.created_at
    assert _get(db, job.id) == claimed


def test_claim_filters_by_kinds(db: Database) -> None:
    with db.session() as s:
        train = jobs.enqueue(s, "train")
        predict = jobs.enqueue(s, "predict")
        monitor = jobs.enqueue(s, "monitor")
    with db.session() as s:
        assert jobs.claim(s, "w1", kinds=["nothing"]) is None
        assert jobs.claim(s, "w1", kinds=[]) is None
    assert _claim(db, kinds=["monitor", "predict"]).id == predict.id
    assert _claim(db, kinds=["monitor", "predict"]).id == monitor.id
    with db.session() as s:
        assert jobs.claim(s, "w1", kinds=["monitor", "predict"]) is None
    assert _get(db, train.id).state is JobState.queued
    assert _claim(db).id == train.id


# --- a running job: heartbeat, progress, logs, finish -----------------------------


def test_heartbeat_and_progress_of_the_owning_worker(db: Database) -> None:
    with db.session() as s:
        job = jobs.enqueue(s, "work")
    claimed = _claim(db)
    with db.session() as s:
        assert jobs.heartbeat(s, job.id, "w1") is False
        jobs.set_progress(s, job.id, "w1", 0.25, "a quarter")
    now = _get(db, job.id)
    assert (now.progress, now.message) == (0.25, "a quarter")
    assert now.heartbeat_at is not None and claimed.heartbeat_at is not None
    assert now.heartbeat_at >= claimed.heartbeat_at
    with db.session() as s:
        jobs.set_progress(s, job.id, "w1", 0.0)
        jobs.set_progress(s, job.id, "w1", 1.0, "x" * 5000)
    assert len(_get(db, job.id).message) == 1000


@pytest.mark.parametrize("fraction", [-0.01, 1.5, math.nan, math.inf])
def test_progress_outside_zero_to_one_is_invalid(db: Database, fraction: float) -> None:
    with db.session() as s:
        job = jobs.enqueue(s, "work")
    _claim(db)
    with db.session() as s:
        jobs.set_progress(s, job.id, "w1", 0.5, "half")
    with pytest.raises(InvalidInput) as err, db.session() as s:
        jobs.set_progress(s, job.id, "w1", fraction, "bad")
    assert err.value.field == "progress"
    assert (_get(db, job.id).progress, _get(db, job.id).message) == (0.5, "half")


def test_other_workers_cannot_write_to_a_job(db: Database) -> None:
    with db.session() as s:
        job = jobs.enqueue(s, "work")
    claimed = _claim(db, "w1")
    for call in (
        lambda s: jobs.heartbeat(s, job.id, "w2"),
        lambda s: jobs.set_progress(s, job.id, "w2", 0.5),
        lambda s: jobs.finish(s, job.id, "w2", JobState.succeeded),
        lambda s: jobs.requeue(s, job.id, "w2", "bye"),
    ):
        with pytest.raises(Conflict), db.session() as s:
            call(s)
    assert _get(db, job.id) == claimed


def test_finish_records_the_outcome(db: Database) -> None:
    with db.session() as s:
        ok = jobs.enqueue(s, "work")
        bad = jobs.enqueue(s, "work")
    _claim(db, "w1")
    _claim(db, "w2")
    with db.session() as s:
        done = jobs.finish(s, ok.id, "w1", JobState.succeeded, result={"score": 0.9})
        failed = jobs.finish(s, bad.id, "w2", JobState.failed, error="boom")
    assert done.state is JobState.succeeded and done.result == {"score": 0.9}
    assert (done.progress, done.error) == (1.0, None)
    assert done.finished_at is not None
    assert failed.state is JobState.failed and failed.error == "boom"
    assert _get(db, ok.id) == done and _get(db, bad.id) == failed
    # Finishing twice is a conflict and changes nothing.
    with pytest.raises(Conflict), db.session() as s:
        jobs.finish(s, ok.id, "w1", JobState.failed, error="late")
    assert _get(db, ok.id) == done
    with db.session() as s:
        assert jobs.count(s, JobState.succeeded) == 1
        assert [j.id for j in jobs.list_jobs(s, state=JobState.failed)] == [bad.id]


@pytest.mark.parametrize("state", [JobState.queued, JobState.running])
def test_finish_needs_a_final_state(db: Database, state: JobState) -> None:
    with db.session() as s:
        job = jobs.enqueue(s, "work")
    claimed = _claim(db)
    with pytest.raises(InvalidInput) as err, db.session() as s:
        jobs.finish(s, job.id, "w1", state)
    assert err.value.field == "state"
    assert _get(db, job.id) == claimed


def test_logs_keep_their_order_and_page_with_after(db: Database) -> None:
    with db.session() as s:
        job = jobs.enqueue(s, "work")
        other = jobs.enqueue(s, "work")
        jobs.log(s, job.id, "one")
        jobs.log(s, other.id, "elsewhere")
        jobs.log(s, job.id, "two", level="warning")
    with db.session() as s:
        jobs.log(s, job.id, "three", level="error")
        jobs.log(s, job.id, "y" * 20_000)
    with db.session() as s:
        lines = jobs.logs(s, job.id)
    assert [line.message for line in lines][:3] == ["one", "two", "three"]
    assert [line.level for line in lines] == ["info", "warning", "error", "info"]
    assert len(lines[3].message) == 10_000
    seqs = [line.seq for line in lines]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4
    with db.session() as s:
        assert [line.message for line in jobs.logs(s, job.id, after=lines[0].seq)][:2] == [
            "two",
            "three",
        ]
        assert jobs.logs(s, job.id, after=lines[-1].seq) == []
        assert [line.message for line in jobs.logs(s, other.id)] == ["elsewhere"]
        with pytest.raises(NotFound):
            jobs.logs(s, "nope")


def test_unknown_job_is_not_found(db: Database) -> None:
    for call in (
        lambda s: jobs.get(s, "nope"),
        lambda s: jobs.cancel(s, "nope"),
        lambda s: jobs.log(s, "nope", "hello"),
    ):
        with pytest.raises(NotFound) as err, db.session() as s:
            call(s)
        assert err.value.field == "job_id"


# --- cancel ------------------------------------------------------------------------


def test_cancelling_a_queued_job_cancels_it_at_once(db: Database) -> None:
    with db.session() as s:
        job = jobs.enqueue(s, "work")
        cancelled = jobs.cancel(s, job.id)
    assert cancelled.state is JobState.cancelled
    assert cancelled.finished_at is not None
    with db.session() as s:
        assert jobs.claim(s, "w1") is None
    assert _get(db, job.id).state is JobState.cancelled


def test_cancelling_a_running_job_asks_its_worker(db: Database) -> None:
    with db.session() as s:
        job = jobs.enqueue(s, "work")
    _claim(db)
    with db.session() as s:
        asked = jobs.cancel(s, job.id)
    assert asked.state is JobState.running and asked.cancel_requested
    with db.session() as s:
        assert jobs.heartbeat(s, job.id, "w1") is True
        done = jobs.finish(s, job.id, "w1", JobState.cancelled, error="stopped on request")
    assert done.state is JobState.cancelled


@pytest.mark.parametrize("state", [JobState.succeeded, JobState.failed, JobState.cancelled])
def test_cancelling_a_finished_job_is_a_conflict(db: Database, state: JobState) -> None:
    with db.session() as s:
        job = jobs.enqueue(s, "work")
    _claim(db)
    with db.session() as s:
        finished = jobs.finish(s, job.id, "w1", state)
    with pytest.raises(Conflict) as err, db.session() as s:
        jobs.cancel(s, job.id)
    assert err.value.field == "job_id"
    assert _get(db, job.id) == finished


# --- reaping jobs of dead workers ---------------------------------------------------


def test_reap_leaves_jobs_with_fresh_heartbeats_alone(db: Database) -> None:
    with db.session() as s:
        queued = jobs.enqueue(s, "work")
        job = jobs.enqueue(s, "work")
    with db.session() as s:
        jobs.cancel(s, queued.id)
    claimed = _claim(db)
    with db.session() as s:
        assert jobs.reap(s, 30, now=_stale(claimed, 29)) == []
        assert jobs.reap(s, 30) == []
    assert _get(db, job.id) == claimed


def test_reap_requeues_when_attempts_are_left(db: Database) -> None:
    with db.session() as s:
        job = jobs.enqueue(s, "work", max_attempts=2)
    claimed = _claim(db, "w-dead")
    with db.session() as s:
        reaped = jobs.reap(s, 30, now=_stale(claimed, 31))
    assert [r.id for r in reaped] == [job.id]
    assert reaped[0].state is JobState.queued
    assert "w-dead" in reaped[0].message and "30s" in reaped[0].message
    with db.session() as s:
        assert any("w-dead" in line.message for line in jobs.logs(s, job.id))
    again = _claim(db, "w-new")
    assert (again.id, again.attempts, again.worker) == (job.id, 2, "w-new")


def test_reap_fails_the_job_when_out_of_attempts(db: Database) -> None:
    with db.session() as s:
        job = jobs.enqueue(s, "work", max_attempts=1)
    claimed = _claim(db, "w-dead")
    with db.session() as s:
        reaped = jobs.reap(s, 45, now=_stale(claimed))
    assert [r.state for r in reaped] == [JobState.failed]
    failed = _get(db, job.id)
    assert failed.state is JobState.failed and failed.finished_at is not None
    assert failed.error is not None
    assert "w-dead" in failed.error and "timeout 45s" in failed.error
    with db.session() as s:
        assert jobs.claim(s, "w2") is None
        assert jobs.reap(s, 45, now=_stale(claimed, 7200)) == []


def test_reap_cancels_stale_jobs_whose_cancellation_was_requested(db: Database) -> None:
    with db.session() as s:
        job = jobs.enqueue(s, "work", max_attempts=5)
    claimed = _claim(db)
    with db.session() as s:
        jobs.cancel(s, job.id)
    with db.session() as s:
        reaped = jobs.reap(s, 30, now=_stale(claimed))
    assert [r.state for r in reaped] == [JobState.cancelled]
    assert _get(db, job.id).state is JobState.cancelled
    with db.session() as s:
        assert jobs.claim(s, "w2") is None


@pytest.mark.parametrize("max_attempts", [1, 2])
def test_a_reaped_worker_can_no_longer_touch_its_job(db: Database, max_attempts: int) -> None:
    with db.session() as s:
        job = jobs.enqueue(s, "work", max_attempts=max_attempts)
    claimed = _claim(db, "w-old")
    with db.session() as s:
        jobs.reap(s, 30, now=_stale(claimed))
    after_reap = _get(db, job.id)
    assert after_reap.state is (JobState.queued if max_attempts > 1 else JobState.failed)

    def old_worker_calls() -> None:
        for call in (
            lambda s: jobs.heartbeat(s, job.id, "w-old"),
            lambda s: jobs.set_progress(s, job.id, "w-old", 0.9, "still going"),
            lambda s: jobs.finish(s, job.id, "w-old", JobState.succeeded, result=1),
            lambda s: jobs.requeue(s, job.id, "w-old", "shutting down"),
        ):
            with pytest.raises(Conflict) as err, db.session() as s:
                call(s)
            assert err.value.field == "job_id"

    old_worker_calls()
    assert _get(db, job.id) == after_reap
    if max_attempts > 1:
        # Not even once the job runs again elsewhere.
        rerun = _claim(db, "w-new")
        old_worker_calls()
        assert _get(db, job.id) == rerun
        with db.session() as s:
            assert jobs.finish(s, job.id, "w-new", JobState.succeeded).state is JobState.succeeded


def test_requeue_of_a_job_whose_cancellation_was_requested_cancels_it(db: Database) -> None:
    with db.session() as s:
        job = jobs.enqueue(s, "work", max_attempts=3)
    _claim(db, "w1")
    with db.session() as s:
        jobs.cancel(s, job.id)
    with db.session() as s:
        jobs.requeue(s, job.id, "w1", "worker shut down")
    stopped = _get(db, job.id)
    assert stopped.state is JobState.cancelled
    assert stopped.finished_at is not None and stopped.started_at is not None
    assert stopped.started_at <= stopped.finished_at <= utcnow()
    assert stopped.finished_at.utcoffset() == timedelta(0)
    with db.session() as s:
        assert jobs.claim(s, "w2") is None  # the user asked to stop it: it must not run again


def test_requeue_does_not_use_up_an_attempt(db: Database) -> None:
    with db.session() as s:
        job = jobs.enqueue(s, "work", max_attempts=2)
    _claim(db, "w1")
    with db.session() as s:
        jobs.requeue(s, job.id, "w1", "worker shut down")
    requeued = _get(db, job.id)
    assert requeued.state is JobState.queued and requeued.attempts == 0
    assert "worker shut down" in requeued.message
    with db.session() as s:
        assert any(
            line.level == "warning" and "worker shut down" in line.message
            for line in jobs.logs(s, job.id)
        )
    claimed = _claim(db, "w2")
    assert claimed.attempts == 1
    # The interrupted run did not count: a stale job is re-queued, not failed.
    with db.session() as s:
        assert [r.state for r in jobs.reap(s, 30, now=_stale(claimed))] == [JobState.queued]


# --- concurrency: no job is ever claimed twice --------------------------------------

N_JOBS = 200


def _claim_until_empty(url: str, worker: str, start: Any = None) -> list[str]:
    database = Database(url)
    claimed: list[str] = []
    try:
        if start is not None:
            start.wait(60)
        while True:
            with database.session() as s:
                job = jobs.claim(s, worker)
            if job is None:
                return claimed
            assert job.worker == worker
            claimed.append(job.id)
    finally:
        database.dispose()


def _claim_in_process(url: str, worker: str, start: Any, results: Any) -> None:
    """Runs in a spawned process: claim until the queue is empty, report what it got."""
    try:
        results.put((worker, _claim_until_empty(url, worker, start)))
    except BaseException as exc:
        results.put((worker, repr(exc)))
        raise


def _check_each_claimed_once(db: Database, made: list[str], got: dict[str, list[str]]) -> None:
    everything = [job_id for ids in got.values() for job_id in ids]
    assert len(everything) == len(set(everything)), "a job was claimed twice"
    assert sorted(everything) == sorted(made)
    with db.session() as s:
        assert jobs.count(s, JobState.queued) == 0
        rows = {j.id: j for j in jobs.list_jobs(s, limit=N_JOBS + 1)}
    for worker, ids in got.items():
        for job_id in ids:
            assert rows[job_id].worker == worker
            assert rows[job_id].attempts == 1
            assert rows[job_id].state is JobState.running


def _enqueue_many(db: Database) -> list[str]:
    with db.session() as s:
        return [jobs.enqueue(s, "work", {"i": i}).id for i in range(N_JOBS)]


@pytest.mark.parametrize("n_threads", [4, 8])
def test_concurrent_claimers_never_claim_the_same_job(
    db: Database, database_url: str, n_threads: int
) -> None:
    made = _enqueue_many(db)
    start = threading.Barrier(n_threads)
    got: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def run(worker: str) -> None:
        try:
            got[worker] = _claim_until_empty(database_url, worker, start)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f"t{i}",)) for i in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    _check_each_claimed_once(db, made, got)


@pytest.mark.postgres
def test_two_worker_processes_on_postgres_never_run_the_same_job(postgres_url: str) -> None:
    db = Database(postgres_url)
    try:
        db.upgrade()
        made = _enqueue_many(db)
        ctx = multiprocessing.get_context("spawn")
        start = ctx.Barrier(2)
        results = ctx.Queue()
        procs = [
            ctx.Process(target=_claim_in_process, args=(postgres_url, f"proc{i}", start, results))
            for i in range(2)
        ]
        for proc in procs:
            proc.start()
        got = dict(results.get(timeout=120) for _ in procs)
        for proc in procs:
            proc.join(60)
            assert proc.exitcode == 0
        assert all(isinstance(ids, list) for ids in got.values()), got
        _check_each_claimed_once(db, made, got)
    finally:
        db.dispose()
