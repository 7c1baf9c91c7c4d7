"""What capture costs a prediction request, measured where a shared host's drift cannot
hide it: one loopml app in this process answers single-row requests to a deployment that
captures every row and to one that captures none, one after the other, request by request,
through the app's ASGI interface (no sockets). A request's time is taken on the caller's
side; the writer thread's CPU time (encoding left at a flush, and storing segments) is
added to the capturing side.

    .venv/bin/python -m benchmarks.serving.capture_cost [--requests 10000] [--rounds 3]

wrk (``run.sh``) measures the whole server, HTTP included; runs there drift by a fifth
from one to the next, more than capture costs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from loopml.api import app as app_module
from loopml.serving import capture
from loopml.settings import Settings

BASE = "/api/v1/projects/bench/deployments/"


class _Timed(capture.CaptureWriter):
    """The writer, counting the CPU time its thread spends in flushes."""

    cpu = 0.0

    def _write(self) -> int:
        start = time.thread_time()
        try:
            return super()._write()
        finally:
            _Timed.cpu += time.thread_time() - start


async def _call(app: Any, path: str, key: str, body: bytes) -> None:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
        "headers": [
            (b"host", b"bench"), (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {key}".encode()),
            (b"content-length", str(len(body)).encode()),
        ],
    }  # fmt: skip
    sent = False
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)  # no disconnect while the answer is written
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    if status != [200]:
        raise RuntimeError(f"{path} answered {status}")


async def _round(app: Any, key: str, body: bytes, requests: int) -> tuple[float, float, float]:
    """Mean µs per request without and with capture, and the writer's µs per request."""
    off, on = BASE + "nocapture/predict", BASE + "capture/predict"
    app.state.captures.flush()
    _Timed.cpu = 0.0
    without = with_ = 0.0
    clock = time.perf_counter
    for _ in range(requests):
        start = clock()
        await _call(app, off, key, body)
        middle = clock()
        await _call(app, on, key, body)
        without += middle - start
        with_ += clock() - middle
    app.state.captures.flush()
    return 1e6 * without / requests, 1e6 * with_ / requests, 1e6 * _Timed.cpu / requests


async def _measure(home: Path, body: bytes, requests: int, rounds: int) -> None:
    app_module.CaptureWriter = _Timed  # type: ignore[misc]  # the app's writer counts
    app = app_module.create_app(Settings(home=home), embedded_worker=False)
    key = (home / "admin.key").read_text().strip()
    async with app.router.lifespan_context(app):
        for _ in range(300):  # load the model, warm both paths
            await _call(app, BASE + "nocapture/predict", key, body)
            await _call(app, BASE + "capture/predict", key, body)
        costs = []
        for i in range(rounds):
            without, with_, writer = await _round(app, key, body, requests)
            cost = with_ - without + writer
            costs.append(100 * cost / without)
            print(
                f"round {i + 1}: capture off {without:.1f} µs a request, on {with_:.1f} µs "
                f"+ writer {writer:.1f} µs: capture costs {cost:.1f} µs, {costs[-1]:.1f}%"
            )
        print(f"median of {rounds} rounds: capture costs {statistics.median(costs):.1f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=10_000, help="pairs of requests a round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        home = Path(work) / "home"
        subprocess.run(
            [sys.executable, "-m", "benchmarks.serving.setup_model", str(home), work], check=True
        )
        body = json.dumps(json.loads((Path(work) / "row.json").read_text())).encode()
        asyncio.run(_measure(home, body, args.requests, args.rounds))


if __name__ == "__main__":
    main()
