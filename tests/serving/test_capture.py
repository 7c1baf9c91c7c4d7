"""Data capture: records go to hourly JSON-lines segments in SageMaker's format, written
off the request path; closing the writer loses nothing queued."""

from __future__ import annotations

import base64
import json
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from loopml.serving.capture import CaptureWriter, capture_record, read_captures
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

    deadline = time.monotonic() + 10
    while not list(blobs.list("captures")) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(list(read_captures(blobs, "p", "d"))) == 1
    writer.close()
    assert len(list(read_captures(blobs, "p", "d"))) == 1  # nothing written twice


def _keys(blobs: BlobStore) -> list[str]:
    return [b.key for b in blobs.list("captures")]


def test_records_put_are_on_disk_after_flush_and_not_before(tmp_path: Path) -> None:
    blobs = BlobStore((tmp_path / "blobs").as_uri())
    writer = CaptureWriter(blobs, flush_seconds=3600)  # the thread never writes here
    at = datetime(2026, 3, 1, 8, 30, tzinfo=timezone.utc)
    try:
        for i in range(3):
            writer.put("shop", "churn", at, {"x": i}, answer(i), 1.0)
        assert _keys(blobs) == []
        assert writer.flush() == 3
        records = list(read_captures(blobs, "shop", "churn"))
        assert [r["loopml"]["prediction_id"] for r in records] == ["p0", "p1", "p2"]
        assert writer.flush() == 0  # written once
        writer.put("shop", "churn", at, {"x": 3}, answer(3), 1.0)
        assert len(list(read_captures(blobs, "shop", "churn"))) == 3
    finally:
        writer.close()
    ids = [r["loopml"]["prediction_id"] for r in read_captures(blobs, "shop", "churn")]
    assert sorted(ids) == ["p0", "p1", "p2", "p3"]


def test_close_writes_everything_put(tmp_path: Path) -> None:
    blobs = BlobStore((tmp_path / "blobs").as_uri())
    writer = CaptureWriter(blobs, flush_seconds=3600)
    at = datetime(2026, 3, 1, 8, 30, tzinfo=timezone.utc)
    for i in range(40):
        writer.put("shop", "churn" if i % 2 else "fraud", at, {"x": i}, answer(i), 1.0)
    writer.reject("shop", "churn", at, status=422, message="bad", rows=2, column="x")
    assert _keys(blobs) == []
    writer.close()
    churn = [r["loopml"]["prediction_id"] for r in read_captures(blobs, "shop", "churn")]
    fraud = [r["loopml"]["prediction_id"] for r in read_captures(blobs, "shop", "fraud")]
    assert sorted(churn) == sorted(f"p{i}" for i in range(1, 40, 2))
    assert sorted(fraud) == sorted(f"p{i}" for i in range(0, 40, 2))
    rejected = [b.key for b in blobs.list("rejections/shop/churn")]
    assert len(rejected) == 1
    assert json.loads(blobs.get(rejected[0]))["status"] == 422


def test_rows_of_two_utc_hours_land_in_two_hour_folders(tmp_path: Path) -> None:
    blobs = BlobStore((tmp_path / "blobs").as_uri())
    writer = CaptureWriter(blobs, flush_seconds=3600)
    plus2, minus4 = timezone(timedelta(hours=2)), timezone(timedelta(hours=-4))
    times = [
        datetime(2026, 3, 1, 10, 30, tzinfo=plus2),  # 08:30 UTC
        datetime(2026, 3, 1, 9, 0, 1, tzinfo=timezone.utc),
        datetime(2026, 3, 1, 4, 59, 59, tzinfo=minus4),  # 08:59:59 UTC
        datetime(2026, 3, 1, 5, 15, tzinfo=minus4),  # 09:15 UTC
    ]
    for i, at in enumerate(times):
        writer.put("shop", "churn", at, {"x": i}, answer(i), 1.0)
    writer.close()
    by_folder: dict[str, list[str]] = {}
    for key in _keys(blobs):
        ids = [json.loads(line)["loopml"]["prediction_id"] for line in blobs.get(key).splitlines()]
        by_folder.setdefault(key.rsplit("/", 1)[0], []).extend(ids)
    assert {k: sorted(v) for k, v in by_folder.items()} == {
        "captures/shop/churn/2026/03/01/08": ["p0", "p2"],
        "captures/shop/churn/2026/03/01/09": ["p1", "p3"],
    }


def test_image_bytes_are_captured_as_base64_text(tmp_path: Path) -> None:
    blobs = BlobStore((tmp_path / "blobs").as_uri())
    writer = CaptureWriter(blobs, flush_seconds=3600)
    image = b"\x89PNG\r\n\x1a\n\x00\xff" + bytes(range(256))
    writer.put("shop", "pets", datetime.now(timezone.utc), {"photo": image, "n": 1}, answer(0), 1)
    writer.close()
    (record,) = read_captures(blobs, "shop", "pets")
    row = json.loads(record["captureData"]["endpointInput"]["data"])
    assert isinstance(row["photo"], str)
    assert base64.b64decode(row["photo"], validate=True) == image
    assert row["n"] == 1


def test_numpy_numbers_are_captured_as_numbers(tmp_path: Path) -> None:
    blobs = BlobStore((tmp_path / "blobs").as_uri())
    writer = CaptureWriter(blobs, flush_seconds=3600)
    row = {"amount": np.float64(12.25), "count": np.int64(7), "small": np.int32(-3)}
    said = {**answer(0), "confidence": np.float64(0.75), "model_version": np.int64(3)}
    writer.put("shop", "churn", datetime.now(timezone.utc), row, said, np.float64(2.5))
    writer.close()
    (record,) = read_captures(blobs, "shop", "churn")
    data = record["captureData"]
    captured = json.loads(data["endpointInput"]["data"])
    assert captured == {"amount": 12.25, "count": 7, "small": -3}
    assert [type(v) for v in captured.values()] == [float, int, int]  # numbers, not text
    out = json.loads(data["endpointOutput"]["data"])
    assert (out["confidence"], out["model_version"]) == (0.75, 3)
    assert record["loopml"]["model_version"] == 3 and record["loopml"]["latency_ms"] == 2.5


@pytest.mark.parametrize(
    "row",
    [
        {"text": 'a "quoted" word', "path": "C:\\temp\\new", "line": "one\ntwo\tthree"},
        {"name": "Zoë 北京 🚲", "bell": "\x07", "nothing": None, "flag": True},
        {"x": float("nan"), "image": b"\x89PNG\r\n", 3: "a number as a key"},
    ],
    ids=["quotes-backslashes-newlines", "unicode-control-null", "nan-bytes-int-key"],
)
@pytest.mark.parametrize("shadow_of", [None, "p9"])
def test_a_written_line_is_the_capture_record(
    tmp_path: Path, row: dict, shadow_of: str | None
) -> None:
    """Lines are put together from pieces for speed: what is read back must be exactly the
    record ``capture_record`` describes, whatever the row's text holds."""
    blobs = BlobStore((tmp_path / "blobs").as_uri())
    writer = CaptureWriter(blobs, flush_seconds=3600)
    at = datetime(2026, 11, 28, 9, 30, tzinfo=timezone.utc)
    said = {**answer(1), "label": 'say "no"\\'}
    variant = "production" if shadow_of is None else "shadow"
    writer.put("shop", "churn", at, row, said, 0.25, variant, shadow_of)
    writer.close()
    (record,) = read_captures(blobs, "shop", "churn")
    expected = json.loads(
        json.dumps(
            capture_record(row, said, at, 0.25, variant, shadow_of),
            default=lambda v: base64.b64encode(v).decode(),
        )
    )
    assert record == expected
    if "image" in row:
        data = json.loads(record["captureData"]["endpointInput"]["data"])
        assert base64.b64decode(data["image"]) == row["image"]


class _FailingStore(BlobStore):
    """A blob store whose writes fail while ``down`` is set (a bucket out of reach)."""

    down = True

    def put(self, key: str, data: bytes):  # type: ignore[no-untyped-def]
        if self.down:
            raise OSError("the store is out of reach")
        return super().put(key, data)


def test_rows_a_failed_write_could_not_store_are_written_by_the_next(tmp_path: Path) -> None:
    blobs = _FailingStore((tmp_path / "blobs").as_uri())
    writer = CaptureWriter(blobs, flush_seconds=60)
    at = datetime(2026, 11, 28, 9, 30, tzinfo=timezone.utc)
    for i in range(3):
        writer.put("shop", "churn", at, {"x": i}, answer(i), 1.0)
    try:
        writer.flush()
    except OSError:
        pass
    else:
        raise AssertionError("the failing store should have failed the flush")
    writer.put("shop", "churn", at, {"x": 3}, answer(3), 1.0)
    blobs.down = False
    assert writer.flush() == 4
    writer.close()
    rows = [json.loads(r["captureData"]["endpointInput"]["data"])["x"]
            for r in read_captures(blobs, "shop", "churn")]  # fmt: skip
    assert rows == [0, 1, 2, 3]


def test_text_orjson_refuses_is_still_captured(tmp_path: Path) -> None:
    """A lone surrogate (which Python's json reads from a request body, and orjson cannot
    write) must not turn an answered prediction into an error: it is captured escaped."""
    blobs = BlobStore((tmp_path / "blobs").as_uri())
    writer = CaptureWriter(blobs, flush_seconds=3600)
    row = {"name": "half \ud800 a pair", "n": 2}
    writer.put("shop", "churn", datetime.now(timezone.utc), row, answer(0), 1.0)
    writer.close()
    (record,) = read_captures(blobs, "shop", "churn")
    assert json.loads(record["captureData"]["endpointInput"]["data"]) == row


def test_rows_put_from_many_threads_are_each_captured_once(tmp_path: Path) -> None:
    """Requests are encoded in batches by whichever request fills one: none may be lost
    or doubled, whatever the threads' interleaving."""
    blobs = BlobStore((tmp_path / "blobs").as_uri())
    writer = CaptureWriter(blobs, flush_seconds=0.01)  # flushes race the batches too

    def serve(thread: int) -> None:
        for i in range(150):
            n = thread * 1000 + i
            rows = [{"x": n, "part": k} for k in range(1 + n % 3)]
            said = [answer(n) | {"prediction_id": f"p{n}-{k}"} for k in range(len(rows))]
            writer.put_many("shop", "churn", None, rows, said, 0.2)

    threads = [threading.Thread(target=serve, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.close()
    ids = [r["loopml"]["prediction_id"] for r in read_captures(blobs, "shop", "churn")]
    expected = [f"p{t * 1000 + i}-{k}" for t in range(6) for i in range(150)
                for k in range(1 + (t * 1000 + i) % 3)]  # fmt: skip
    assert len(ids) == len(expected)
    assert sorted(ids) == sorted(expected)


def test_rows_stamped_now_carry_the_utc_time_and_land_in_its_hour(tmp_path: Path) -> None:
    blobs = BlobStore((tmp_path / "blobs").as_uri())
    writer = CaptureWriter(blobs, flush_seconds=3600)
    before = datetime.now(timezone.utc)
    writer.put_many("shop", "churn", None, [{"x": 1}], [answer(1)], 0.2)
    after = datetime.now(timezone.utc)
    writer.close()
    (record,) = read_captures(blobs, "shop", "churn")
    at = datetime.fromisoformat(record["eventMetadata"]["inferenceTime"])
    assert at.utcoffset() == timedelta(0)
    assert before - timedelta(microseconds=1) <= at <= after
    (key,) = _keys(blobs)
    assert key.startswith(f"captures/shop/churn/{at:%Y/%m/%d/%H}/")


def test_a_row_that_cannot_be_encoded_costs_no_other_capture(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no text for this value")

    blobs = BlobStore((tmp_path / "blobs").as_uri())
    writer = CaptureWriter(blobs, flush_seconds=3600)
    for i in range(70):  # past two batches, the odd one inside the first
        row = {"x": Unprintable() if i == 5 else i}
        writer.put_many("shop", "churn", None, [row], [answer(i)], 0.2)
    writer.put_many("shop", "alone", None, [{"x": Unprintable()}], [answer(0)], 0.2)
    writer.close()
    ids = sorted(r["loopml"]["prediction_id"] for r in read_captures(blobs, "shop", "churn"))
    assert ids == sorted(f"p{i}" for i in range(70) if i != 5)
    assert "could not be captured" in caplog.text
    assert list(blobs.list("captures/shop/alone")) == []  # no empty segment


def test_captures_read_back_in_the_order_they_were_put(tmp_path: Path) -> None:
    """Batches and flushes interleave; readers that page by time rely on the order."""
    blobs = BlobStore((tmp_path / "blobs").as_uri())
    writer = CaptureWriter(blobs, flush_seconds=0.001)
    for i in range(400):
        writer.put_many("shop", "churn", None, [{"x": i}], [answer(i)], 0.2)
        if i % 50 == 0:
            time.sleep(0.005)  # let the writer flush between batches
    writer.close()
    ids = [r["loopml"]["prediction_id"] for r in read_captures(blobs, "shop", "churn")]
    assert ids == [f"p{i}" for i in range(400)]
    assert len(_keys(blobs)) > 1  # the order held across segments


def test_answers_and_rows_must_pair_up(tmp_path: Path) -> None:
    writer = CaptureWriter(BlobStore((tmp_path / "blobs").as_uri()), flush_seconds=3600)
    with pytest.raises(ValueError, match="one answer"):
        writer.put_many("shop", "churn", None, [{"x": 1}, {"x": 2}], [answer(1)], 0.2)
    with pytest.raises(ValueError, match="one answer"):
        writer.put_many("shop", "churn", None, [{"x": 1}], [answer(1)], 0.2, shadow_of=[])
    writer.close()
