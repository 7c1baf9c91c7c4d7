"""Monitoring a deployment's captured traffic at scale: seconds and peak memory of a
monitoring run (``loopml.monitoring.run.monitor``) over 24 hours of N captured records,
cold (every hour read from its capture segments) and warm (hour profiles cached).

The data is a file blob store holding a binary classifier's reference profile (200,000
training rows, 15 numeric and 5 categorical columns, ``make_data.frame``) and N records
in SageMaker's capture format, written as ``CaptureWriter`` writes them: one JSON line
per record (``capture_record`` then ``json.dumps(..., default=str)``), about 10,000
records a segment, under ``segment_folder()`` for each of 24 settled hours. The lines
are built column-wise with Arrow; sampled records are checked byte for byte against
``json.dumps(capture_record(...))`` and each hour's first segment is read back with
``read_segment``. The captured rows drift in the planted columns (``make_data.PLANTED``:
num_3, num_9, cat_2), which the report must find.

Run::

    .venv/bin/python -m benchmarks.monitoring.capture_scale --rows 1000000 --out /tmp/cap-1m
    .venv/bin/python -m benchmarks.monitoring.capture_scale --measure /tmp/cap-1m

``--measure`` runs each monitoring run in a fresh subprocess (``--run cold|warm DIR``),
so that one run's peak resident memory does not carry over to the next; it prints the
seconds, the peak RSS (and the peak as each hour started: flat when memory does not grow
with the traffic) and the drifted columns. ``--segment 116`` writes segments as
CaptureWriter does at 10 M records a day (one segment a second) instead of 10,000.
Run from the repository root; delete DIR afterwards (about 1.15 GB per million records).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from benchmarks.monitoring.make_data import PLANTED, frame
from loopml.core.schemas import Deployment, ModelVersion
from loopml.monitoring.profile import profile
from loopml.monitoring.reference import CONFIDENCE, PREDICTION, answers
from loopml.serving.capture import capture_record, segment_folder
from loopml.store.blobs import BlobStore

PROJECT, DEPLOYMENT = "bench", "churn"
CLASSES = ["no", "yes"]
THRESHOLD = 0.5  # the model's decision threshold on P(yes)
CONFIDENCE_THRESHOLD = 0.55  # the deployment's: below it an answer abstains
FALLBACK = "unknown"
HOURS = 24
SEGMENT = 10_000  # records a segment (CaptureWriter: those of one flush, 1 s)
REFERENCE_ROWS = 200_000
DECIMALS = 4  # what a client sends: numbers with a few decimals
CHECKED = 3  # records of a segment checked against json.dumps(capture_record(...))
META = "bench.json"


def _hex(values: np.ndarray, width: int) -> pa.Array:
    """Non-negative integers as zero-padded lowercase hex of ``width`` digits (<= 16)."""
    text = np.asarray(values, dtype=">u8").tobytes().hex().encode()
    whole = pa.array(np.frombuffer(text, dtype="S16").astype(object), pa.binary())
    return pc.utf8_slice_codeunits(whole.cast(pa.string()), 16 - width, 16)


def _floats(values: np.ndarray) -> pa.Array:
    """Floats as ``json.dumps`` writes them (Python's repr), NaN as ``null``.

    Arrow's cast writes the same shortest round-trip digits except that whole numbers
    lack ".0" and it never uses an exponent below 1e16; those few are fixed here.
    """
    values = np.asarray(values, dtype=float)
    text = pc.cast(pa.array(values, from_pandas=True), pa.string())
    whole = pc.invert(pc.match_substring_regex(text, r"[.en]"))
    text = pc.if_else(whole, pc.binary_join_element_wise(text, ".0", ""), text)
    size = np.abs(values)
    odd = np.flatnonzero(np.isfinite(values) & (values != 0) & ((size < 1e-4) | (size >= 1e15)))
    if odd.size:
        fixed = text.to_pylist()
        for i in odd:
            fixed[i] = repr(float(values[i]))
        text = pa.array(fixed, pa.string())
    return text.fill_null("null")


def _quoted(values: pa.Array, escaped: bool) -> list[Any]:
    q = '\\"' if escaped else '"'
    return [q, values, q]


def _segment_lines(
    rows: pd.DataFrame, ids: pa.Array, times: pa.Array, p_yes: np.ndarray, latency: np.ndarray
) -> tuple[bytes, dict[str, np.ndarray]]:
    """A segment's JSON lines (each ending in a newline) and the answers they hold."""
    codes = (p_yes >= THRESHOLD).astype(np.int64)
    confidence = np.where(codes == 1, p_yes, 1.0 - p_yes)
    abstained = confidence < CONFIDENCE_THRESHOLD
    label = np.where(abstained, FALLBACK, np.asarray(CLASSES, dtype=object)[codes])
    flags = pa.array(np.where(abstained, "true", "false"), pa.string())
    # The request row as json.dumps(row) writes it, escaped as a string inside the line.
    sent: list[Any] = ["{"]
    for i, name in enumerate(rows.columns):
        sent.append(("" if i == 0 else ", ") + f'\\"{name}\\": ')
        column = rows[name].to_numpy()
        if column.dtype.kind == "f":
            sent.append(_floats(column))
        else:
            sent += _quoted(pa.array(column.astype(str), pa.string()), escaped=True)
    sent.append("}")
    said = [
        '{\\"prediction_id\\": \\"', ids, '\\", \\"label\\": \\"',
        pa.array(label.astype(str), pa.string()),
        f'\\", \\"probabilities\\": {{\\"{CLASSES[0]}\\": ', _floats(1.0 - p_yes),
        f', \\"{CLASSES[1]}\\": ', _floats(p_yes),
        '}, \\"confidence\\": ', _floats(confidence),
        ', \\"abstained\\": ', flags, ', \\"model_version\\": 1}',
    ]  # fmt: skip
    pieces = [
        '{"captureData": {"endpointInput": {"observedContentType": "application/json", '
        '"mode": "INPUT", "data": "', *sent,
        '", "encoding": "JSON"}, "endpointOutput": {"observedContentType": '
        '"application/json", "mode": "OUTPUT", "data": "', *said,
        '", "encoding": "JSON"}}, "eventMetadata": {"eventId": "', ids,
        '", "inferenceTime": "', times,
        '"}, "eventVersion": "0", "loopml": {"prediction_id": "', ids,
        '", "model_version": 1, "variant": "production", "latency_ms": ', _floats(latency),
        ', "abstained": ', flags, "}}\n",
    ]  # fmt: skip
    lines = pc.binary_join_element_wise(*pieces, "")
    assert lines.null_count == 0 and lines.offset == 0
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[: len(lines) + 1]
    data = lines.buffers()[2].to_pybytes()[offsets[0] : offsets[-1]]
    said_as = {"label": label, "confidence": confidence, "abstained": abstained}
    return data, said_as


def _record(
    rows: pd.DataFrame, i: int, pid: str, at: datetime, p: float, latency: float
) -> dict[str, Any]:
    """Record ``i`` as serving would capture it: the request row and the answer."""
    row = {
        name: (None if isinstance(v, float) and np.isnan(v) else v)
        for name, v in zip(rows.columns, rows.iloc[i].tolist(), strict=True)
    }
    code = int(p >= THRESHOLD)
    confidence = p if code else 1.0 - p
    abstained = bool(confidence < CONFIDENCE_THRESHOLD)
    answer = {
        "prediction_id": pid,
        "label": FALLBACK if abstained else CLASSES[code],
        "probabilities": {CLASSES[0]: float(1.0 - p), CLASSES[1]: float(p)},
        "confidence": float(confidence),
        "abstained": abstained,
        "model_version": 1,
    }
    return capture_record(row, answer, at, latency)


def _probabilities(rng: np.random.Generator, n: int) -> np.ndarray:
    """P(yes) of a plausible binary classifier: mostly sure, sometimes not."""
    return rng.beta(0.9, 1.3, n)


def _reference(blobs: BlobStore, prefix: str) -> str:
    rows = frame(REFERENCE_ROWS, seed=1, drifted=False)
    p_yes = _probabilities(np.random.default_rng(7), REFERENCE_ROWS)
    oof = np.column_stack([1.0 - p_yes, p_yes])
    made = profile(rows, outputs=answers("binary", oof, CLASSES, THRESHOLD))
    made.metrics = {"accuracy": 0.84, "f1_macro": 0.83}
    key = f"{prefix}/reference_profile.json"
    blobs.put(key, json.dumps(made.to_dict()).encode())
    return key


def _entities(key: str, at: datetime) -> tuple[Deployment, ModelVersion]:
    rows = frame(1, seed=1, drifted=False)
    inputs = [
        {"name": c, "kind": "numeric" if rows[c].dtype.kind == "f" else "categorical"}
        for c in rows.columns
    ]
    model = ModelVersion.model_validate(
        {
            "id": uuid.uuid4().hex[:26], "project": PROJECT, "number": 1,
            "stage": "production", "task": "binary", "metric": "roc_auc", "score": 0.91,
            "training": "bench-training", "dataset": "bench-dataset",
            "artifact": f"models/{PROJECT}/bench-training/model.zip",
            "artifact_sha256": "0" * 64, "content_hash": "0" * 64, "size_bytes": 1_000_000,
            "predict_seconds_per_1000": 0.002, "classes": CLASSES, "inputs": inputs,
            "reference_profile": key, "created_at": at,
        }
    )  # fmt: skip
    deployment = Deployment.model_validate(
        {
            "id": uuid.uuid4().hex[:26], "project": PROJECT, "name": DEPLOYMENT, "model": 1,
            "confidence_threshold": CONFIDENCE_THRESHOLD, "fallback_label": FALLBACK,
            "created_at": at, "updated_at": at,
        }
    )  # fmt: skip
    return deployment, model


def _read_back(
    data: bytes, rows: pd.DataFrame, said: dict[str, np.ndarray], moments: np.ndarray
) -> None:
    """A segment read by ``read_segment`` holds the rows and answers it was made of."""
    from loopml.monitoring.traffic import read_segment

    found = read_segment(data)
    assert found is not None
    inputs, meta = found
    assert inputs.num_rows == len(rows) and inputs.column_names == list(rows.columns)
    for name in rows.columns:
        got = inputs.column(name).to_pandas()
        assert got.equals(rows[name]) or np.allclose(
            got.to_numpy(float), rows[name].to_numpy(float), equal_nan=True
        ), name
    assert (meta["model_version"] == 1).all()
    assert (meta["abstained"].to_numpy() == said["abstained"]).all()
    assert np.array_equal(meta[CONFIDENCE].to_numpy(), said["confidence"])
    want = [None if a else v for v, a in zip(said["label"], said["abstained"], strict=True)]
    assert [None if pd.isna(v) else v for v in meta[PREDICTION]] == want
    at = meta["at"].dt.tz_convert(None).to_numpy().astype("datetime64[us]")
    assert (at == moments).all()


def generate(total: int, out: Path, segment: int = SEGMENT) -> None:
    """Write the store: reference profile, entities, ``total`` captured records."""
    started = time.perf_counter()
    if out.exists():
        shutil.rmtree(out)
    blobs = BlobStore(f"file://{out.resolve()}")
    now = datetime.now(timezone.utc)
    end = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    start = end - timedelta(hours=HOURS)
    key = _reference(blobs, f"models/{PROJECT}/bench-training")
    deployment, model = _entities(key, start - timedelta(days=1))
    rng = np.random.default_rng(2)
    per_hour = np.full(HOURS, total // HOURS)
    per_hour[: total % HOURS] += 1
    segments = checked = 0
    for h in range(HOURS):
        hour = start + timedelta(hours=h)
        n = int(per_hour[h])
        # Times in the hour, in order, to the microsecond (never .000000: isoformat drops it).
        micros = np.sort(rng.integers(0, 3_600_000_000, n))
        micros[micros % 1_000_000 == 0] += 1
        base = np.datetime64(hour.replace(tzinfo=None), "us")
        moments = base + micros.astype("timedelta64[us]")
        millis = (moments.astype("datetime64[ms]").astype(np.int64)).astype(np.uint64)
        draws = rng.integers(0, 2**55, n, dtype=np.uint64)
        for first in range(0, n, segment):
            last = min(first + segment, n)
            m = last - first
            rows = frame(m, seed=1000 + segments, drifted=True).round(DECIMALS)
            ids = pc.binary_join_element_wise(
                _hex(millis[first:last], 12), _hex(draws[first:last], 14), ""
            )
            stamps = np.datetime_as_string(moments[first:last], unit="us")
            times = pa.array(np.char.add(stamps, "+00:00"), pa.string())
            p_yes = _probabilities(rng, m)
            latency = np.round(rng.lognormal(np.log(2.0), 0.6, m), 3)
            data, said = _segment_lines(rows, ids, times, p_yes, latency)
            written = hour + timedelta(microseconds=int(micros[last - 1]) + 1_000_000)
            folder = segment_folder(PROJECT, DEPLOYMENT, hour)
            name = f"{written:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.jsonl"
            blobs.put(f"{folder}/{name}", data)
            # The lines are CaptureWriter's, byte for byte.
            lines = data.decode().split("\n")
            assert len(lines) == m + 1 and lines[-1] == ""
            every = segments == 0  # the first segment whole, then a few records of each
            for i in range(m) if every else rng.choice(m, min(CHECKED, m), replace=False):
                at = datetime.fromisoformat(times[i].as_py())
                record = _record(rows, i, ids[i].as_py(), at, p_yes[i], latency[i])
                assert json.dumps(record, default=str) == lines[i], (lines[i], record)
                checked += 1
            if first == 0:  # and they read back as loopml reads them
                _read_back(data, rows, said, moments[first:last])
            segments += 1
    meta = {
        "rows": total,
        "segments": segments,
        "segment": segment,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "deployment": deployment.model_dump(mode="json"),
        "model": model.model_dump(mode="json"),
        "planted": list(PLANTED),
    }
    (out / META).write_text(json.dumps(meta, indent=1))
    size = sum(f.stat().st_size for f in (out / "captures").rglob("*.jsonl"))
    print(
        f"wrote {out}: {total:,} records in {segments} segments over {HOURS} hours "
        f"({start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC), {size / 1e6:,.0f} MB; "
        f"{checked} records checked against json.dumps(capture_record(...)); "
        f"{time.perf_counter() - started:.0f} s"
    )


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_once(mode: str, out: Path) -> dict[str, Any]:
    """One monitoring run over the whole window (in this process)."""
    from loopml.monitoring.run import monitor

    meta = json.loads((out / META).read_text())
    if mode == "cold":
        shutil.rmtree(out / "monitoring", ignore_errors=True)
    blobs = BlobStore(f"file://{out.resolve()}")
    deployment = Deployment.model_validate(meta["deployment"])
    model = ModelVersion.model_validate(meta["model"])
    start, end = datetime.fromisoformat(meta["start"]), datetime.fromisoformat(meta["end"])
    before = _peak_mb()
    peaks: list[float] = []  # the peak so far as each hour starts: flat when memory is
    began = time.perf_counter()
    report = monitor(
        blobs, deployment, model, start, end, progress=lambda _: peaks.append(_peak_mb())
    )
    seconds = time.perf_counter() - began
    drift = report["drift"]
    return {
        "mode": mode,
        "seconds": round(seconds, 2),
        "peak_mb": round(_peak_mb(), 1),
        "start_mb": round(before, 1),
        "peak_after_hour_mb": [round(p) for p in peaks[1:]],
        "requests": report["service"]["requests"],
        "hours": len(report["over_time"]),
        "dataset_drifted": drift["dataset_drifted"],
        "drifted_columns": drift["drifted_columns"],
        "drifted_outputs": [o.get("column") for o in drift.get("outputs", []) if o.get("drifted")],
        "abstain_rate": round(report["service"]["abstain_rate"], 4),
    }


def measure(out: Path) -> None:
    meta = json.loads((out / META).read_text())
    size = sum(f.stat().st_size for f in (out / "captures").rglob("*.jsonl"))
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"{meta['rows']:,} records, {meta['segments']:,} segments of up to "
          f"{meta.get('segment', SEGMENT):,}, {size / 1e6:,.0f} MB; "
          f"load {' '.join(load)}; planted: {', '.join(meta['planted'])}")  # fmt: skip
    for mode in ("cold", "warm"):
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.monitoring.capture_scale", "--run", mode, str(out)],
            check=True,
            capture_output=True,
            cwd=Path(__file__).resolve().parents[2],
            text=True,
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
        found = result["drifted_columns"]
        print(
            f"{mode}: {result['seconds']:8.2f} s  peak {result['peak_mb']:7.0f} MB "
            f"(before the run {result['start_mb']:.0f} MB)  requests {result['requests']:,}  "
            f"drifted: {', '.join(found)}  outputs drifted: "
            f"{', '.join(result['drifted_outputs']) or '-'}  "
            f"planted found: {set(meta['planted']) <= set(found)}"
        )
        print("  " + json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, help="generate this many captured records")
    parser.add_argument("--out", type=Path, help="where to generate the blob store")
    parser.add_argument(
        "--segment", type=int, default=SEGMENT, help=f"records a segment (default {SEGMENT:,})"
    )
    parser.add_argument("--measure", type=Path, help="measure cold and warm runs on a store")
    parser.add_argument("--run", nargs=2, metavar=("MODE", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        print(json.dumps(run_once(args.run[0], Path(args.run[1]))))
    elif args.measure:
        measure(args.measure)
    elif args.rows and args.out:
        generate(args.rows, args.out, args.segment)
    else:
        parser.error("give --rows N --out DIR, or --measure DIR")


if __name__ == "__main__":
    main()
