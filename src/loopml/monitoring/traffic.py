"""Served traffic as profiles: captured records of a deployment, hour by hour, sketched
against the model version's reference.

An hour that is over is profiled once and its profile kept in the blob store, so a
window of any length is a merge of hourly profiles: reading it costs the new hours only,
and memory does not grow with the traffic.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from loopml.monitoring.profile import Profile, as_table, profile
from loopml.monitoring.reference import CONFIDENCE, PREDICTION
from loopml.monitoring.sketch import NumericSketch
from loopml.serving.capture import rejection_folder, segment_folder
from loopml.store.blobs import BlobStore

HOUR = timedelta(hours=1)
SETTLED = timedelta(minutes=2)  # after this, no record of an hour is still being written
LATENCY_EDGES = np.logspace(-2, 5, 141)  # 0.01 ms to 100 s, 20 bins a decade
_CACHE = "monitoring/hours"
_CACHE_FORMAT = 2
BATCH_BYTES = 16 * 2**20  # segments parsed together, at most about this much at once


def latency_sketch() -> NumericSketch:
    k = LATENCY_EDGES.size + 1
    return NumericSketch(LATENCY_EDGES, np.zeros(k, np.int64), np.zeros(k))


@dataclass
class Traffic:
    """What a deployment's model version served in a window."""

    profile: Profile
    latency: NumericSketch = field(default_factory=latency_sketch)
    requests: int = 0  # predictions answered (rows)
    abstained: int = 0
    rejected: dict[str, Any] = field(default_factory=dict)  # see Rejections

    def merge(self, other: Traffic) -> Traffic:
        return Traffic(
            self.profile.merge(other.profile),
            self.latency.merge(other.latency),
            self.requests + other.requests,
            self.abstained + other.abstained,
            merge_rejections(self.rejected, other.rejected),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": _CACHE_FORMAT,
            "profile": self.profile.to_dict(),
            "latency": self.latency.to_dict(),
            "requests": self.requests,
            "abstained": self.abstained,
            "rejected": self.rejected,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Traffic:
        return cls(
            Profile.from_dict(data["profile"]),
            NumericSketch.from_dict(data["latency"]),
            int(data["requests"]),
            int(data["abstained"]),
            dict(data.get("rejected") or {}),
        )


@dataclass
class Hour:
    start: datetime
    traffic: Traffic


def hours(start: datetime, end: datetime) -> Iterator[datetime]:
    """The starts of the hours that overlap ``[start, end)``."""
    at = start.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
    while at < end:
        yield at
        at += HOUR


def traffic_by_hour(
    blobs: BlobStore,
    project: str,
    deployment: str,
    model_version: int,
    reference: Profile,
    start: datetime,
    end: datetime,
    *,
    now: datetime | None = None,
    progress: Callable[[float], None] | None = None,
    cache_as: str | None = None,
) -> Iterator[Hour]:
    """Each hour of ``[start, end)`` that has traffic of ``model_version``, profiled, one
    at a time (a caller that keeps only totals keeps memory flat however long the window).

    Records of other model versions (a canary, a shadow, an earlier production model)
    are left out: they answer to another reference.
    """
    now = now or datetime.now(timezone.utc)
    every = list(hours(start, end))
    for done, at in enumerate(every):
        if progress is not None:
            progress(done / len(every))
        whole = start <= at and at + HOUR <= end
        settled = at + HOUR + SETTLED <= now
        tag = cache_as or f"v{model_version}"
        key = f"{_CACHE}/{project}/{deployment}/{tag}/{at:%Y/%m/%d/%H}.json"
        listing = _listing(blobs, project, deployment, at) if whole and settled else None
        if listing is not None and blobs.exists(key):
            cached = json.loads(blobs.get(key))
            # Kept only while the hour's files are the ones it was made from: a segment
            # flushed late (a slow writer, a store outage) makes the hour read again.
            if cached.get("format") == _CACHE_FORMAT and cached.get("files") == listing:
                traffic = Traffic.from_dict(cached)
                if traffic.requests or traffic.rejected:
                    yield Hour(at, traffic)
                continue
        lo, hi = max(start, at), min(end, at + HOUR)
        traffic = _profile_hour(blobs, segment_folder(project, deployment, at), model_version,
                                reference, lo, hi)  # fmt: skip
        traffic.rejected = rejections(blobs, rejection_folder(project, deployment, at), lo, hi)
        if listing is not None:
            blobs.put(key, json.dumps({**traffic.to_dict(), "files": listing}).encode())
        if traffic.requests or traffic.rejected:
            yield Hour(at, traffic)


def _listing(blobs: BlobStore, project: str, deployment: str, at: datetime) -> str:
    """A digest of the names and sizes of an hour's capture and rejection files."""
    folders = segment_folder(project, deployment, at), rejection_folder(project, deployment, at)
    digest = hashlib.sha256()
    for folder in folders:
        for info in blobs.list(folder):
            digest.update(f"{info.key}\x1f{info.size}\n".encode())
    return digest.hexdigest()


def _profile_hour(
    blobs: BlobStore,
    folder: str,
    model_version: int,
    reference: Profile,
    start: datetime,
    end: datetime,
) -> Traffic:
    total = Traffic(Profile())
    for data in _batches(blobs, folder):
        rows = read_segment(data)
        if rows is None:
            continue
        inputs, meta = rows
        keep = (meta["model_version"] == model_version) & (meta["at"] >= start) & (meta["at"] < end)
        if not keep.any():
            continue
        total = total.merge(_traffic(inputs.filter(pa.array(keep)), meta[keep], reference))
    return total


def _batches(blobs: BlobStore, folder: str) -> Iterator[bytes]:
    """An hour's segments, joined into batches of about ``BATCH_BYTES``: a writer that
    flushes every second leaves thousands of small segments, each costing a parse."""
    parts: list[bytes] = []
    size = 0
    for info in blobs.list(folder):
        data = blobs.get(info.key)
        parts.append(data if data.endswith(b"\n") else data + b"\n")
        size += len(data)
        if size >= BATCH_BYTES:
            yield b"".join(parts)
            parts, size = [], 0
    if parts:
        yield b"".join(parts)


def _traffic(inputs: pa.Table, meta: pd.DataFrame, reference: Profile) -> Traffic:
    answers = pd.DataFrame(
        {name: meta[name] for name in (PREDICTION, CONFIDENCE) if meta[name].notna().any()}
    )
    latency = latency_sketch()
    latency.update(meta["latency_ms"].to_numpy(dtype=float))
    return Traffic(
        profile(inputs, reference, outputs=answers if len(answers.columns) else None),
        latency,
        len(meta),
        int(meta["abstained"].sum()),
    )


def read_segment(data: bytes) -> tuple[pa.Table, pd.DataFrame] | None:
    """A capture segment's inputs (one column per field) and what was answered: the
    model version, time, latency, abstained, prediction and confidence per record.

    Arrow's JSON reader parses the records, and then the input and answer documents
    they hold as text, so a segment costs no Python loop per record.
    """
    if not data or data.isspace():
        return None
    records = _json_rows(data)
    capture = records.column("captureData").combine_chunks()
    mine = records.column("loopml").combine_chunks()
    sent = capture.field("endpointInput").field("data")
    answered = _json_rows(_lines(capture.field("endpointOutput").field("data")))
    times = records.column("eventMetadata").combine_chunks().field("inferenceTime")
    meta = pd.DataFrame(
        {
            "model_version": mine.field("model_version").to_numpy(zero_copy_only=False),
            "at": _times(times),
            "latency_ms": mine.field("latency_ms").to_numpy(zero_copy_only=False),
            "abstained": _field(mine, "abstained", False),
        }
    )
    meta[PREDICTION] = _predictions(answered)
    meta[CONFIDENCE] = _column(answered, "confidence")
    return _json_rows(_lines(sent)), meta


def _lines(texts: pa.Array) -> pa.Buffer:
    """JSON documents held as text, as JSON lines, without a Python string per record:
    each gets a newline, and the array's character buffer is the lines, in order."""
    lined = pc.binary_join_element_wise(texts, pa.scalar(""), "\n")
    wide = pa.types.is_large_string(lined.type) or pa.types.is_large_binary(lined.type)
    offsets = np.frombuffer(lined.buffers()[1], dtype=np.int64 if wide else np.int32)
    offsets = offsets[lined.offset : lined.offset + len(lined) + 1]
    return lined.buffers()[2][int(offsets[0]) : int(offsets[-1])]


def _times(values: pa.Array) -> pd.DatetimeIndex:
    """Capture times (ISO 8601 text, or times Arrow's reader already parsed) in UTC."""
    if not pa.types.is_timestamp(values.type):
        values = pc.cast(values, pa.timestamp("us", tz="UTC"))
    elif values.type.tz is None:
        values = pc.assume_timezone(values, "UTC")
    return pd.DatetimeIndex(values.to_pandas())


def _json_rows(raw: bytes | pa.Buffer) -> pa.Table:
    """JSON lines as a table: Arrow's reader when the lines agree on types, pandas (as
    text where a column mixes types) when they do not."""
    try:
        return pj.read_json(pa.BufferReader(raw))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        text = raw.to_pybytes() if isinstance(raw, pa.Buffer) else raw
        rows = [json.loads(line) for line in text.decode().splitlines() if line.strip()]
        return as_table(pd.DataFrame(rows))


def _field(struct: pa.StructArray, name: str, default: Any) -> np.ndarray:
    if struct.type.get_field_index(name) < 0:
        return np.full(len(struct), default)
    return np.asarray(struct.field(name).fill_null(default).to_numpy(zero_copy_only=False))


def _column(table: pa.Table, name: str) -> np.ndarray:
    if name not in table.column_names:
        return np.full(table.num_rows, np.nan)
    return np.asarray(table.column(name).to_numpy(), dtype=float)


def _predictions(answers: pa.Table) -> list[Any]:
    """The value, or the label as text. An abstained answer carries the fallback label:
    the model's own choice is read from its probabilities instead, as the reference's
    out-of-fold labels were chosen (abstaining is the deployment's, not the model's)."""
    if "value" in answers.column_names:
        return answers.column("value").to_pylist()
    labels = answers.column("label").to_pylist() if "label" in answers.column_names else []
    if "abstained" not in answers.column_names:
        return [None if v is None else str(v) for v in labels]
    abstained = answers.column("abstained").to_pylist()
    chances = answers.column("probabilities") if "probabilities" in answers.column_names else None
    out = []
    for i, (label, held) in enumerate(zip(labels, abstained, strict=True)):
        if held:
            shares = chances[i].as_py() if chances is not None else None
            label = max(shares, key=lambda k: shares[k]) if shares else None
        out.append(None if label is None else str(label))
    return out


def rejections(blobs: BlobStore, folder: str, start: datetime, end: datetime) -> dict[str, Any]:
    """Requests the deployment refused or failed in ``[start, end)``: how many, their
    rows, by status, and the columns named as wrong (schema violations)."""
    out: dict[str, Any] = {}
    for info in blobs.list(folder):
        for line in blobs.get(info.key).decode().splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            if not start <= datetime.fromisoformat(item["at"]) < end:
                continue
            out = merge_rejections(out, {
                "requests": 1, "rows": int(item.get("rows") or 0),
                "status": {str(item["status"]): 1},
                "columns": {item["column"]: 1} if item.get("column") else {},
                "example": item.get("message"),
            })  # fmt: skip
    return out


def merge_rejections(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    if not a or not b:
        return dict(a or b)

    def add(x: dict[str, int], y: dict[str, int]) -> dict[str, int]:
        return {k: x.get(k, 0) + y.get(k, 0) for k in set(x) | set(y)}

    return {
        "requests": a["requests"] + b["requests"],
        "rows": a["rows"] + b["rows"],
        "status": add(a["status"], b["status"]),
        "columns": add(a["columns"], b["columns"]),
        "example": b.get("example") or a.get("example"),
    }
