"""Job queue throughput: one enqueue + claim + finish cycle, on SQLite and PostgreSQL.

Run: ``make benchmark`` (or ``.venv/bin/pytest benchmarks/test_job_queue.py --benchmark-only``).
"""

from __future__ import annotations

import pytest

from loopml.core.enums import JobState
from loopml.store import jobs
from loopml.store.db import Database


@pytest.fixture(params=["sqlite", "postgres"])
def queue_db(request: pytest.FixtureRequest):
    url = request.getfixturevalue("postgres_url" if request.param == "postgres" else "sqlite_url")
    db = Database(url)
    db.upgrade()
    yield db
    db.dispose()


def test_enqueue_claim_finish(benchmark, queue_db: Database) -> None:
    def cycle() -> None:
        with queue_db.session() as s:
            job = jobs.enqueue(s, "selfcheck")
        with queue_db.session() as s:
            claimed = jobs.claim(s, "bench")
        assert claimed is not None and claimed.id == job.id
        with queue_db.session() as s:
            jobs.finish(s, job.id, "bench", JobState.succeeded, result={"ok": True})

    benchmark(cycle)


def test_claim_from_deep_queue(benchmark, queue_db: Database) -> None:
    """Claim latency with 5,000 jobs waiting (the index on state, created_at must hold)."""
    with queue_db.session() as s:
        for _ in range(5000):
            jobs.enqueue(s, "selfcheck")

    def claim() -> None:
        with queue_db.session() as s:
            assert jobs.claim(s, "bench") is not None

    benchmark.pedantic(claim, rounds=200, iterations=1)
