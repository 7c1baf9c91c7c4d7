"""Feedback labels meet the captured predictions they were given for, whether the capture
lines were written compactly (orjson, today) or with spaces (json, earlier versions)."""

from __future__ import annotations

import json
from datetime import timedelta, timezone
from pathlib import Path

from loopml.core.ids import new_id
from loopml.monitoring.performance import id_time, labelled
from loopml.serving.capture import CaptureWriter, capture_record, segment_folder
from loopml.store.blobs import BlobStore


def _answer(prediction_id: str, label: str, version: int = 2) -> dict:
    return {"prediction_id": prediction_id, "label": label, "confidence": 0.8,
            "abstained": False, "model_version": version}  # fmt: skip


def test_labels_find_their_predictions_in_compact_and_spaced_capture_lines(
    tmp_path: Path,
) -> None:
    blobs = BlobStore((tmp_path / "blobs").as_uri())
    ids = [new_id() for _ in range(4)]
    at = id_time(ids[0])
    assert at is not None
    writer = CaptureWriter(blobs, flush_seconds=60)
    for i, prediction in enumerate(ids[:2]):
        writer.put("shop", "churn", at, {"x": i}, _answer(prediction, "yes"), 1.0)
    writer.put("shop", "churn", at, {"x": 9}, _answer(ids[3], "yes", version=1), 1.0)
    writer.close()
    # A segment as versions before orjson wrote it: json.dumps, ", " and ": " separators.
    old = capture_record({"x": 2}, _answer(ids[2], "no"), at, 1.0)
    blobs.put(f"{segment_folder('shop', 'churn', at)}/old.jsonl", (json.dumps(old) + "\n").encode())

    truth = {ids[0]: "yes", ids[1]: "no", ids[2]: "no", ids[3]: "yes"}
    found = labelled(blobs, "shop", "churn", 2, truth, at - timedelta(minutes=1),
                     at + timedelta(minutes=1))  # fmt: skip
    assert sorted((answer["prediction_id"], label) for _, answer, label in found) == sorted(
        [(ids[0], "yes"), (ids[1], "no"), (ids[2], "no")]
    )  # ids[3] was answered by another model version
    assert all(when.tzinfo is timezone.utc or when.utcoffset() == timedelta(0)
               for when, _, _ in found)  # fmt: skip


def test_labels_outside_the_window_are_left_out(tmp_path: Path) -> None:
    blobs = BlobStore((tmp_path / "blobs").as_uri())
    prediction = new_id()
    at = id_time(prediction)
    assert at is not None
    writer = CaptureWriter(blobs, flush_seconds=60)
    writer.put("shop", "churn", at, {"x": 1}, _answer(prediction, "yes"), 1.0)
    writer.close()
    later = at + timedelta(hours=3)
    assert (
        labelled(blobs, "shop", "churn", 2, {prediction: "yes"}, later, later + timedelta(hours=1))
        == []
    )
    assert (
        len(labelled(blobs, "shop", "churn", 2, {prediction: "yes"}, at, at + timedelta(seconds=1)))
        == 1
    )
