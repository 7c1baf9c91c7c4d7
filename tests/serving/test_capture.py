"""Data capture: records go to hourly JSON-lines segments in SageMaker's format, written
off the request path; closing the writer loses nothing queued."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from loopml.serving.capture import CaptureWriter, read_captures
from loopml.store.blobs import BlobStore


def answer(i: int) -> dict:
    return {"prediction_id": f"p{i}", "label": "yes", "confidence": 0.9, "abstained": i == 2,
            "model_version": 3}  # fmt: skip


def test_records_are_sagemaker_capture_lines_in_hourly_segments(tmp_path: Path) -> None:
    blobs = BlobStore((tmp_path / "blobs").as_uri())
    writer = CaptureWriter(blobs, flush_seconds=60)  # only close() writes in this test
    first = datetime(2026, 11, 28, 9, 59, 59, tzinfo=timezone.utc)
    for i, at in enumerate([first, first, first + timedelta(seconds=2)]):
        writer.put("shop", "churn", at, {"x": i}, answer(i), 1.5)
    assert list(blobs.list("captures")) == []  # nothing written until a flush
    writer.close()
    keys = [b.key for b in blobs.list("captures")]
    assert [k.rsplit("/", 1)[0] for k in keys] == [
        "captures/shop/churn/2026/11/28/09",
        "captures/shop/churn/2026/11/28/10",
    ]
    records = list(read_captures(blobs, "shop", "churn"))
    assert len(records) == 3
    one = records[0]
    inp, out = one["captureData"]["endpointInput"], one["captureData"]["endpointOutput"]
    assert (inp["mode"], inp["encoding"], json.loads(inp["data"])) == ("INPUT", "JSON", {"x": 0})
    assert out["mode"] == "OUTPUT" and json.loads(out["data"])["prediction_id"] == "p0"
    assert one["eventMetadata"] == {"eventId": "p0", "inferenceTime": first.isoformat()}
    assert one["loopml"] == {
        "prediction_id": "p0", "model_version": 3, "variant": "production",
        "latency_ms": 1.5, "abstained": False,
    }  # fmt: skip
    later = list(read_captures(blobs, "shop", "churn", since=first + timedelta(seconds=1)))
    assert [r["loopml"]["prediction_id"] for r in later] == ["p2"]


def test_the_background_thread_flushes_on_its_interval(tmp_path: Path) -> None:
    blobs = BlobStore((tmp_path / "blobs").as_uri())
    writer = CaptureWriter(blobs, flush_seconds=0.05)
    at = datetime.now(timezone.utc)
    writer.put("p", "d", at, {"x": 1}, answer(1), 0.1)
    import time

    deadline = time.monotonic() + 10
    while not list(blobs.list("captures")) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(list(read_captures(blobs, "p", "d"))) == 1
    writer.close()
    assert len(list(read_captures(blobs, "p", "d"))) == 1  # nothing written twice
