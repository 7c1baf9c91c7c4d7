"""Data capture: predicted rows written off the request path, in SageMaker's format.

Requests queue their rows, which are encoded as JSON lines a few dozen requests at a
time; a background thread writes them every ``flush_seconds`` as one segment per
deployment and hour under ``captures/{project}/{deployment}/{yyyy}/{mm}/{dd}/{hh}/``. A
clean shutdown writes what is held; a crash loses at most the last interval's records.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from itertools import repeat
from typing import Any

import orjson

from loopml.store.blobs import BlobStore

log = logging.getLogger("loopml.capture")
PREFIX = "captures"
# Rows held while the store fails (about 1 KB each), before the oldest are dropped.
_MAX_HELD = 200_000
REJECTIONS = "rejections"


def _plain(value: Any) -> Any:
    """JSON for what a row may hold beyond JSON: image bytes as base64, others as text."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return str(value)


# orjson: encoding is most of what capture costs, and it is 4x faster at it than json.
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def _row_json(row: dict[str, Any]) -> str:
    return orjson.dumps(row, default=_plain, option=_OPTIONS).decode()


def _answer_json(answer: dict[str, Any]) -> str:
    return orjson.dumps(answer, default=str, option=_OPTIONS).decode()


def _own_fields(
    answer: dict[str, Any], latency_ms: float, variant: str, shadow_of: str | None
) -> dict[str, Any]:
    """loopml's fields of a captured row (beside SageMaker's)."""
    mine: dict[str, Any] = {
        "prediction_id": answer["prediction_id"],
        "model_version": answer["model_version"],
        "variant": variant,
        "latency_ms": round(latency_ms, 3),
        "abstained": bool(answer.get("abstained", False)),
    }
    if shadow_of is not None:
        mine["shadow_of"] = shadow_of
    return mine


def capture_record(
    row: dict[str, Any],
    answer: dict[str, Any],
    at: datetime,
    latency_ms: float,
    variant: str = "production",
    shadow_of: str | None = None,
) -> dict[str, Any]:
    """One captured row: SageMaker's capture fields, plus loopml's own.

    ``variant`` says which model answered: ``production``, ``canary`` or ``shadow`` (an
    answer never returned, made for the request whose prediction id is ``shadow_of``).
    """
    mine = _own_fields(answer, latency_ms, variant, shadow_of)
    return {
        "captureData": {
            "endpointInput": {
                "observedContentType": "application/json",
                "mode": "INPUT",
                "data": _row_json(row),
                "encoding": "JSON",
            },
            "endpointOutput": {
                "observedContentType": "application/json",
                "mode": "OUTPUT",
                "data": _answer_json(answer),
                "encoding": "JSON",
            },
        },
        "eventMetadata": {"eventId": answer["prediction_id"], "inferenceTime": at.isoformat()},
        "eventVersion": "0",
        "loopml": mine,
    }


class CaptureWriter:
    """Queues captured records and writes them to the blob store in the background.

    Parameters
    ----------
    blobs : BlobStore
        Where segments go.
    flush_seconds : float
        How often queued records are written.
    """

    def __init__(self, blobs: BlobStore, flush_seconds: float = 1.0) -> None:
        self.blobs = blobs
        self.flush_seconds = flush_seconds
        self._lines: defaultdict[str, list[bytes]] = defaultdict(list)
        self._pending: list[_Request] = []
        self._folders: dict[tuple[str, str, int], str] = {}
        self._clock = _Clock()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loopml-capture", daemon=True)
        self._thread.start()

    def put(
        self,
        project: str,
        deployment: str,
        at: datetime,
        row: dict[str, Any],
        answer: dict[str, Any],
        latency_ms: float,
        variant: str = "production",
        shadow_of: str | None = None,
    ) -> None:
        """Encode one predicted row for the next write (see :meth:`put_many`)."""
        shadows = None if shadow_of is None else [shadow_of]
        self.put_many(project, deployment, at, [row], [answer], latency_ms, variant, shadows)

    def put_many(
        self,
        project: str,
        deployment: str,
        at: datetime | None,
        rows: Sequence[dict[str, Any]],
        answers: Sequence[dict[str, Any]],
        latency_ms: float,
        variant: str = "production",
        shadow_of: Sequence[str] | None = None,
    ) -> None:
        """Queue the predicted rows of one request (answered ``at``, now when None) for
        the next write; ``shadow_of`` holds, per row, the prediction id a shadow's answer
        pairs with. The rows and answers must not change afterwards.

        Every ``_BATCH``-th request encodes the queue: in a batch a row costs about half
        of what it costs alone between two requests (cold caches), and encoding in the
        writer thread cost more again in handing the interpreter lock back and forth.
        """
        if len(answers) != len(rows) or (shadow_of is not None and len(shadow_of) != len(rows)):
            raise ValueError("one answer (and shadow pair) per row")
        if at is None:
            stamp, hour = self._clock.now()
        else:
            stamp, hour = at.isoformat(), int(at.timestamp()) // 3600
        folder = self._folders.get((project, deployment, hour))
        if folder is None:
            if len(self._folders) > 256:
                self._folders.clear()
            start = datetime.fromtimestamp(hour * 3600, timezone.utc)
            folder = self._folders[project, deployment, hour] = segment_folder(
                project, deployment, start
            )
        with self._lock:
            self._pending.append((folder, stamp, latency_ms, variant, rows, answers, shadow_of))
            if len(self._pending) >= _BATCH:
                # Under the lock: a flush never misses a batch in the making, and lines
                # keep their order. Other requests are on the event loop's thread anyway.
                _encode(self._pending, self._lines)
                self._pending = []

    def reject(
        self,
        project: str,
        deployment: str,
        at: datetime,
        *,
        status: int,
        message: str,
        rows: int,
        column: str | None = None,
    ) -> None:
        """Record a request the deployment refused (bad input) or failed, so that
        monitoring counts it: one JSON line under ``rejections/`` beside the captures."""
        line = json.dumps(
            {"at": at.isoformat(), "status": status, "rows": rows, "column": column,
             "message": message[:500]}
        )  # fmt: skip
        with self._lock:
            self._lines[rejection_folder(project, deployment, at)].append(line.encode() + b"\n")

    def close(self) -> None:
        """Write everything queued, then stop."""
        self._stop.set()
        self._thread.join(timeout=30)
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            try:
                self._write()
            except Exception:  # a failing store must not stop later flushes
                log.exception("capture flush failed")

    def _write(self) -> int:
        with self._lock:
            lines, self._lines = self._lines, defaultdict(list)
            pending, self._pending = self._pending, []
        _encode(pending, lines)
        lines = defaultdict(list, {folder: rows for folder, rows in lines.items() if rows})
        for written, (folder, segment) in enumerate(lines.items()):
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
            key = f"{folder}/{stamp}-{uuid.uuid4().hex[:8]}.jsonl"
            try:
                self.blobs.put(key, b"".join(segment))
            except Exception:
                self._keep_unwritten(lines, after=written)
                raise
        return sum(len(segment) for segment in lines.values())

    def _keep_unwritten(self, lines: dict[str, list[bytes]], after: int) -> None:
        """Put the segments a failed write did not store back, ahead of newer lines, for
        the next flush; past ``_MAX_HELD`` lines the oldest are dropped (and logged)."""
        with self._lock:
            for folder, segment in list(lines.items())[after:]:
                self._lines[folder][:0] = segment
            held = sum(len(segment) for segment in self._lines.values())
            for segment in self._lines.values():
                if held <= _MAX_HELD:
                    break
                drop = min(len(segment), held - _MAX_HELD)
                del segment[:drop]
                held -= drop
                log.warning("capture store failing: %d captured rows dropped", drop)

    def flush(self) -> int:
        """Write the records put so far now; returns how many."""
        return self._write()


# What a request hands the writer: folder, time, latency, variant, rows, answers, pairs.
_Request = tuple[
    str, str, float, str, Sequence[dict[str, Any]], Sequence[dict[str, Any]], Sequence[str] | None
]
_BATCH = 32  # requests encoded together: about 0.2 ms, a fraction of a request's p99


def _encode(pending: list[_Request], into: defaultdict[str, list[bytes]]) -> None:
    """Encode queued requests' rows as lines, appended per folder."""
    for folder, stamp, latency, variant, rows, answers, pairs in pending:
        when = b"".join((_TIME, stamp.encode(), _MINE))  # the same for the request's rows
        shadows = repeat(None) if pairs is None else pairs
        try:
            lines = [
                _line(row, said, when, latency, variant, pair)
                for row, said, pair in zip(rows, answers, shadows, strict=False)  # see put
            ]
        except Exception:  # one odd request must not cost the others their captures
            log.exception("a request's %d rows could not be captured", len(rows))
            continue
        into[folder].extend(lines)


# The fixed parts of a capture line, in capture_record's order: a line is these around
# the parts that vary, which halves encoding against dumping the record's nested dicts.
_INPUT = (
    b'{"captureData":{"endpointInput":{"observedContentType":"application/json",'
    b'"mode":"INPUT","data":"'
)
_OUTPUT = (
    b'","encoding":"JSON"},"endpointOutput":{"observedContentType":"application/json",'
    b'"mode":"OUTPUT","data":"'
)
_EVENT = b'","encoding":"JSON"}},"eventMetadata":{"eventId":'
_TIME = b',"inferenceTime":"'
_MINE = b'"},"eventVersion":"0","loopml":'
_END = b"}\n"


def _json(value: dict[str, Any], default: Callable[[Any], Any]) -> bytes:
    """``value`` as JSON; keys that are not text (rare) cost a slower second try, and
    what orjson refuses (a lone surrogate, which Python's json reads) a third, in ASCII."""
    try:
        return orjson.dumps(value, default=default, option=orjson.OPT_SERIALIZE_NUMPY)
    except orjson.JSONEncodeError:
        pass
    try:
        return orjson.dumps(value, default=default, option=_OPTIONS)
    except orjson.JSONEncodeError:
        return json.dumps(value, default=_text, ensure_ascii=True).encode()


def _text(value: Any) -> Any:
    plain = _plain(value)
    return plain.item() if hasattr(plain, "item") else plain


def _in_string(text: bytes) -> bytes:
    """JSON text as the inside of a JSON string (without its quotes)."""
    return orjson.dumps(text.decode())[1:-1]


def _line(
    row: dict[str, Any],
    answer: dict[str, Any],
    when: bytes,
    latency: float,
    variant: str,
    shadow_of: str | None,
) -> bytes:
    """:func:`capture_record` as one JSON line; ``when`` is ``_TIME``, the inference time
    in ISO 8601 and ``_MINE``."""
    mine = _own_fields(answer, latency, variant, shadow_of)
    return b"".join(
        (
            _INPUT, _in_string(_json(row, _plain)), _OUTPUT, _in_string(_json(answer, str)),
            _EVENT, orjson.dumps(mine["prediction_id"], default=str), when,
            orjson.dumps(mine, default=str, option=_OPTIONS), _END,
        )
    )  # fmt: skip


class _Clock:
    """Capture times as ISO 8601 text with their UTC hour. Making and formatting a
    datetime cost a busy server about 7 µs a request; this formats once a second."""

    def __init__(self) -> None:
        self._second: tuple[int, str] = (-1, "")

    def now(self) -> tuple[str, int]:
        t = time.time()
        second = int(t)
        cached, prefix = self._second  # one tuple: threads never see a torn pair
        if cached != second:
            prefix = datetime.fromtimestamp(second, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = (second, prefix)
        return f"{prefix}.{int((t - second) * 1_000_000):06d}+00:00", second // 3600


def segment_folder(project: str, deployment: str, at: datetime) -> str:
    at = at.astimezone(timezone.utc)
    return f"{PREFIX}/{project}/{deployment}/{at:%Y/%m/%d/%H}"


def rejection_folder(project: str, deployment: str, at: datetime) -> str:
    at = at.astimezone(timezone.utc)
    return f"{REJECTIONS}/{project}/{deployment}/{at:%Y/%m/%d/%H}"


def read_captures(
    blobs: BlobStore, project: str, deployment: str, *, since: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """Captured records of a deployment, oldest segment first."""
    for info in blobs.list(f"{PREFIX}/{project}/{deployment}"):
        for line in blobs.get(info.key).decode().splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            if since is not None:
                at = datetime.fromisoformat(record["eventMetadata"]["inferenceTime"])
                if at < since:
                    continue
            yield record
