"""Captured traffic hour by hour: an hour that is over is profiled once and kept, a
late segment makes it read again, and other model versions' records are left out."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.monitoring import profile, traffic
from loopml.serving.capture import CaptureWriter
from loopml.store.blobs import BlobStore

HOUR_START = datetime(2026, 3, 1, 10, tzinfo=timezone.utc)
LATER = HOUR_START + timedelta(hours=3)


def capture(blobs: BlobStore, rows: int, version: int = 1, minute: int = 5) -> None:
    writer = CaptureWriter(blobs, flush_seconds=3600)
    at = HOUR_START + timedelta(minutes=minute)
    for i in range(rows):
        answer = {"prediction_id": f"{i:026x}", "label": "yes", "confidence": 0.9,
                  "abstained": False, "model_version": version}  # fmt: skip
        writer.put("shop", "live", at, {"x": float(i)}, answer, 2.0)
    writer.close()


def test_a_settled_hour_is_kept_and_read_again_when_a_segment_comes_late(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blobs = BlobStore(f"file://{tmp_path}")
    reference = profile(pd.DataFrame({"x": np.arange(100.0)}))
    capture(blobs, 40)
    capture(blobs, 7, version=2)  # a canary's: not this model's traffic

    def hours() -> list[traffic.Hour]:
        end = HOUR_START + timedelta(hours=1)
        found = traffic.traffic_by_hour(blobs, "shop", "live", 1, reference, HOUR_START, end,
                                        now=LATER)  # fmt: skip
        return list(found)

    (first,) = hours()
    assert first.traffic.requests == 40
    read = traffic._profile_hour
    calls: list[str] = []
    monkeypatch.setattr(traffic, "_profile_hour", lambda *a: calls.append("read") or read(*a))
    (again,) = hours()
    assert calls == [] and again.traffic.requests == 40  # from the kept profile
    capture(blobs, 10, minute=50)  # flushed late, after the hour was kept
    (late,) = hours()
    assert calls == ["read"] and late.traffic.requests == 50


def test_an_hour_still_running_is_not_kept(tmp_path: Path) -> None:
    blobs = BlobStore(f"file://{tmp_path}")
    reference = profile(pd.DataFrame({"x": np.arange(100.0)}))
    capture(blobs, 5)
    now = HOUR_START + timedelta(minutes=30)
    (hour,) = traffic.traffic_by_hour(blobs, "shop", "live", 1, reference, HOUR_START,
                                      HOUR_START + timedelta(hours=1), now=now)  # fmt: skip
    assert hour.traffic.requests == 5
    assert list(blobs.list("monitoring/hours")) == []


def test_an_abstained_answer_counts_as_the_model_s_own_choice(tmp_path: Path) -> None:
    blobs = BlobStore(f"file://{tmp_path}")
    writer = CaptureWriter(blobs, flush_seconds=3600)
    at = HOUR_START + timedelta(minutes=1)
    for i, (label, abstained, chances) in enumerate([
        ("yes", False, {"no": 0.1, "yes": 0.9}),
        ("unknown", True, {"no": 0.55, "yes": 0.45}),  # the fallback label, not the model's
    ]):  # fmt: skip
        answer = {"prediction_id": f"{i:026x}", "label": label, "confidence": 0.9,
                  "probabilities": chances, "abstained": abstained, "model_version": 1}  # fmt: skip
        writer.put("shop", "live", at, {"x": 1.0}, answer, 1.0)
    writer.close()
    (segment,) = blobs.list("captures")
    read = traffic.read_segment(blobs.get(segment.key))
    assert read is not None
    assert read[1]["prediction"].tolist() == ["yes", "no"]
    assert read[1]["abstained"].tolist() == [False, True]
