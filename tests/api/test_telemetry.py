"""FastAPI's OpenTelemetry instrumentation: off unless the ``opentelemetry`` setting asks.

Each case runs in a fresh interpreter: a process has one global tracer provider.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("opentelemetry.sdk", reason="pip install opentelemetry-sdk (the dev extra)")

SCRIPT = """
import sys
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from loopml.api.app import create_app
from loopml.settings import Settings

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
settings = Settings(home=sys.argv[1], opentelemetry=sys.argv[2] == "on")
with TestClient(create_app(settings, embedded_worker=False)) as client:
    assert client.get("/api/v1/health").status_code == 200
print(sorted({span.name for span in exporter.get_finished_spans()}))
"""


def _spans(home: Path, setting: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(home), setting],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_requests_are_traced_only_when_the_setting_asks(tmp_path: Path) -> None:
    assert _spans(tmp_path / "off", "off") == "[]"
    traced = _spans(tmp_path / "on", "on")
    assert "/api/v1/health" in traced, traced
