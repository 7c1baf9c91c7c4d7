"""Job kinds for the tests, imported by module path in each job's own (spawned) process."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from loopml.jobs import JobContext

KINDS = {
    "slow": "tests.jobs.handlers:slow",
    "boom": "tests.jobs.handlers:boom",
    "stubborn": "tests.jobs.handlers:stubborn",
    "marker": "tests.jobs.handlers:marker",
    "die": "tests.jobs.handlers:die",
    "nonjson": "tests.jobs.handlers:nonjson",
    "quiet_exit": "tests.jobs.handlers:quiet_exit",
    "gated": "tests.jobs.handlers:gated",
    "surroundings": "tests.jobs.handlers:surroundings",
}


def _note_pid(pid_file: str | None) -> None:
    if pid_file:
        tmp = Path(pid_file + ".tmp")
        tmp.write_text(str(os.getpid()))
        tmp.replace(pid_file)


def slow(
    ctx: JobContext,
    *,
    steps: int = 5,
    pause: float = 0.2,
    marker: str | None = None,
    pid_file: str | None = None,
) -> dict[str, Any]:
    """Report progress in ``steps`` steps, sleeping ``pause`` seconds after each."""
    _note_pid(pid_file)
    if marker:
        with open(marker, "a") as fh:
            fh.write(f"{ctx.job.id} {ctx.worker}\n")
    for i in range(steps):
        ctx.progress(i / steps, f"step {i + 1} of {steps}")
        ctx.log(f"step {i + 1} done")
        time.sleep(pause)
    return {"steps": steps, "worker": ctx.worker}


def boom(ctx: JobContext, *, message: str = "the flux capacitor broke") -> None:
    """Fail from a nested call so that the traceback has something to show."""
    ctx.log("about to fail")
    _explode(message)


def _explode(message: str) -> None:
    raise ValueError(message)


def stubborn(ctx: JobContext, *, pid_file: str | None = None) -> None:
    """Never checks for cancellation; sleeps until killed."""
    _note_pid(pid_file)
    ctx.log("sleeping forever")
    while True:
        time.sleep(0.1)


def marker(ctx: JobContext, *, path: str, pause: float = 0.0) -> str:
    """Append one line per execution to ``path`` (O_APPEND: concurrent writers stay whole)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{ctx.job.id} {ctx.worker}\n".encode())
    finally:
        os.close(fd)
    time.sleep(pause)
    return ctx.job.id


def die(ctx: JobContext, *, code: int = 3, pid_file: str | None = None, wait: bool = False) -> None:
    """Exit the job's process without recording anything; with ``wait``, sleep until killed."""
    _note_pid(pid_file)
    if wait:
        while True:
            time.sleep(0.1)
    os._exit(code)


def nonjson(ctx: JobContext) -> object:
    """Return something that cannot be stored as a JSON result."""
    return {"when": object()}


def quiet_exit(ctx: JobContext) -> None:
    """Leave the process with status 0 without recording an outcome."""
    raise SystemExit(0)


def gated(
    ctx: JobContext, *, release: str, marker: str | None = None, pid_file: str | None = None
) -> str:
    """Record the run in ``marker``, then report progress until the file ``release`` exists."""
    if marker:
        with open(marker, "a") as fh:
            fh.write(f"{ctx.job.id} {ctx.worker}\n")
    _note_pid(pid_file)
    while not Path(release).exists():
        ctx.progress(0.5, "waiting for release")
        time.sleep(0.05)
    return ctx.worker


def surroundings(ctx: JobContext, *, variable: str) -> dict[str, Any]:
    """What the job's process was started with: one environment variable, its directory."""
    return {"value": os.environ.get(variable), "cwd": os.getcwd()}
