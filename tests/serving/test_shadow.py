"""Shadow predictions without a server: a challenger answers copies of requests in the
background, its answers captured beside the ones the callers got; copies beyond what it
can keep up with are dropped and counted, and a failing challenger is counted, never
raised."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from loopml.automl import AutoML
from loopml.core.schemas import ModelVersion
from loopml.serving.capture import CaptureWriter, read_captures
from loopml.serving.models import ModelCache
from loopml.serving.predict import answer, check_rows
from loopml.serving.shadow import ShadowRunner
from loopml.store.blobs import BlobStore
from tests.conftest import wait_for
from tests.serving.test_predict import FAST, deployment, records, register, reviews

LIVE = deployment()


@dataclass
class Models:
    blobs: BlobStore
    served: ModelVersion  # v1, what the callers get answers from
    challenger: ModelVersion  # v2: it also reads a numeric column "score"
    served_model: AutoML


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    blobs = BlobStore(tmp_path_factory.mktemp("blobs").as_uri())
    X, y = reviews()
    fast = {**FAST, "max_trials": 1, "learners": ["linear"]}
    served = AutoML(**fast).fit(X, y)
    scored = X.assign(score=np.random.default_rng(1).normal(size=len(X)))
    challenger = AutoML(**fast).fit(scored, y)
    return Models(
        blobs=blobs,
        served=register(served, blobs, "served", number=1),
        challenger=register(challenger, blobs, "challenger", number=2),
        served_model=served,
    )


class GatedCache(ModelCache):
    """A real model cache whose ``get`` waits until the test opens its gate, so that the
    shadow thread is held busy for as long as the test needs."""

    def __init__(self, blobs: BlobStore) -> None:
        super().__init__(blobs)
        self.gate = threading.Event()
        self.entered = threading.Event()

    def get(self, version: ModelVersion) -> AutoML:
        self.entered.set()
        assert self.gate.wait(60), "the test never opened the gate"
        return super().get(version)


@pytest.fixture
def writer(models: Models, tmp_path: Path) -> Iterator[CaptureWriter]:
    # captures go to a fresh store per test; only flush() and close() write them
    captures = CaptureWriter(BlobStore(tmp_path.as_uri()), flush_seconds=3600)
    yield captures
    captures.close()


def request(models: Models, n: int, start: int = 0) -> tuple[list[dict], list[dict]]:
    """``n`` request rows and the answers the served model gave the caller."""
    X, _ = reviews(n=start + n, seed=2)
    rows = records(X.iloc[start:])
    for i, row in enumerate(rows):
        row["score"] = float(i) / 10
    said = answer(models.served_model, check_rows(rows, models.served), models.served, LIVE)
    return rows, said


def shadows(writer: CaptureWriter) -> list[dict[str, Any]]:
    writer.flush()
    found = list(read_captures(writer.blobs, "p", "live"))
    assert all(r["loopml"]["variant"] == "shadow" for r in found), found
    return found


def test_the_challenger_answers_copies_captured_beside_the_served_answers(
    models: Models, writer: CaptureWriter
) -> None:
    runner = ShadowRunner(ModelCache(models.blobs), writer)
    try:
        first, said_first = request(models, 3)
        second, said_second = request(models, 2, start=3)
        assert runner.submit(LIVE, models.challenger, first, None, said_first)
        assert runner.submit(LIVE, models.challenger, second, None, said_second)
        runner.wait()
    finally:
        runner.close()
    assert (runner.dropped, runner.failed) == (0, 0)
    found = shadows(writer)
    rows, said = first + second, said_first + said_second
    assert len(found) == len(rows)
    by_request = {r["loopml"]["shadow_of"]: r for r in found}
    assert set(by_request) == {a["prediction_id"] for a in said}
    for row, theirs in zip(rows, said, strict=True):
        mine = by_request[theirs["prediction_id"]]
        assert json.loads(mine["captureData"]["endpointInput"]["data"]) == row
        out = json.loads(mine["captureData"]["endpointOutput"]["data"])
        assert out["model_version"] == mine["loopml"]["model_version"] == 2
        assert set(out["probabilities"]) == {"no", "yes"}
        # the shadow's answer has its own id: the caller's id is only in shadow_of
        assert mine["loopml"]["prediction_id"] == out["prediction_id"]
        assert out["prediction_id"] != theirs["prediction_id"]
        assert mine["eventMetadata"]["eventId"] == out["prediction_id"]


def test_copies_beyond_max_waiting_are_dropped_and_counted(
    models: Models, writer: CaptureWriter
) -> None:
    cache = GatedCache(models.blobs)
    runner = ShadowRunner(cache, writer, max_waiting=1)
    try:
        copies = [request(models, 1, start=i) for i in range(5)]
        assert runner.submit(LIVE, models.challenger, *_copy(copies[0]))
        # the thread took the first copy off the queue and is held in the cache...
        assert cache.entered.wait(30)
        # ...so one more copy waits, and the rest are dropped rather than queued
        assert runner.submit(LIVE, models.challenger, *_copy(copies[1]))
        accepted = [runner.submit(LIVE, models.challenger, *_copy(c)) for c in copies[2:]]
        assert accepted == [False, False, False]
        assert runner.dropped == 3
        cache.gate.set()
        runner.wait()
        # it keeps up again: a copy sent now is taken
        assert runner.submit(LIVE, models.challenger, *_copy(copies[4]))
        runner.wait()
    finally:
        cache.gate.set()
        runner.close()
    assert (runner.dropped, runner.failed) == (3, 0)
    got = [r["loopml"]["shadow_of"] for r in shadows(writer)]
    assert sorted(got) == sorted(copies[i][1][0]["prediction_id"] for i in (0, 1, 4))


def _copy(copy: tuple[list[dict], list[dict]]) -> tuple[list[dict], None, list[dict]]:
    rows, said = copy
    return rows, None, said


def test_a_failing_challenger_is_counted_and_never_raised(
    models: Models, writer: CaptureWriter, caplog: pytest.LogCaptureFixture
) -> None:
    runner = ShadowRunner(ModelCache(models.blobs), writer)
    try:
        # "score" is a column only the challenger reads: the served model ignored it
        rows, said = request(models, 2)
        rows[1]["score"] = "high"
        assert runner.submit(LIVE, models.challenger, rows, None, said)
        # a challenger whose artifact is gone fails to load
        gone = models.challenger.model_copy(
            update={"artifact": "models/gone/model.zip", "content_hash": "0" * 64}
        )
        good, good_said = request(models, 1, start=2)
        assert runner.submit(LIVE, gone, good, None, good_said)
        # CSV copies name file lines (the thread checks rows as the request did)
        csv_rows = [{**good[0], "score": "n/a"}]
        assert runner.submit(LIVE, models.challenger, csv_rows, 2, good_said)
        runner.wait()
        assert runner.failed == 3
        # the thread is still there: the next copy is answered
        assert runner.submit(LIVE, models.challenger, good, None, good_said)
        runner.wait()
    finally:
        runner.close()
    assert (runner.failed, runner.dropped) == (3, 0)
    (only,) = shadows(writer)
    assert only["loopml"]["shadow_of"] == good_said[0]["prediction_id"]
    failures = [r for r in caplog.records if r.name == "loopml.shadow"]
    assert len(failures) == 3
    assert "'score' must be a number, got 'high'" in str(failures[0].exc_info[1])
    assert "line 2: 'score'" in str(failures[2].exc_info[1])


def test_closing_predicts_what_is_queued(models: Models, writer: CaptureWriter) -> None:
    cache = GatedCache(models.blobs)
    runner = ShadowRunner(cache, writer, max_waiting=8)
    copies = [request(models, 2, start=2 * i) for i in range(4)]
    for copy in copies:
        assert runner.submit(LIVE, models.challenger, *_copy(copy))
    wait_for("the shadow thread to take a copy", cache.entered.is_set)
    cache.gate.set()
    runner.close()
    assert (runner.dropped, runner.failed) == (0, 0)
    got = sorted(r["loopml"]["shadow_of"] for r in shadows(writer))
    assert got == sorted(a["prediction_id"] for _, said in copies for a in said)
