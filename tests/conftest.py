"""Shared fixtures: isolated homes, SQLite and PostgreSQL databases, moto's S3 server,
and a live loopml server on a loopback port."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from loopml.settings import Settings
from loopml.store.db import Database

PG_URL = os.environ.get(
    "LOOPML_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
PG_HOWTO = (
    "PostgreSQL not reachable at {url} ({error}); start one or point "
    "LOOPML_TEST_POSTGRES_URL at a database you may create schemas in"
)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's LOOPML_* variables or loopml.toml."""
    for name in list(os.environ):
        if name.startswith("LOOPML_") and name != "LOOPML_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


# --- databases ---------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    import psycopg

    conninfo = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    try:
        psycopg.connect(conninfo, connect_timeout=3).close()
    except Exception as exc:
        pytest.skip(PG_HOWTO.format(url=PG_URL, error=type(exc).__name__))
    return PG_URL


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A PostgreSQL URL whose connections use a fresh, empty schema (dropped afterwards)."""
    import psycopg

    schema = f"loopml_test_{uuid.uuid4().hex[:12]}"
    conninfo = postgres_server_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in postgres_server_url else "?"
    yield f"{postgres_server_url}{sep}options=-csearch_path%3D{schema}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'meta' / 'loopml.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return str(request.getfixturevalue("sqlite_url"))


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.upgrade()
    yield database
    database.dispose()


# --- blob storage --------------------------------------------------------------


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 server as a separate process: a real HTTP S3 endpoint on loopback."""
    pytest.importorskip("moto", reason="moto's S3 server needs: pip install 'loopml[dev]'")
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    exe = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [exe, "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT
        )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(endpoint + "/moto-api/", timeout=1)
            break
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"moto_server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
    yield endpoint
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def s3_storage(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, dict[str, Any]]:
    """(storage_url, storage_options) for a fresh bucket on the moto server."""
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bucket = f"loopml-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(
        Bucket=bucket
    )
    options = {
        "endpoint_url": s3_endpoint,
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"region_name": "us-east-1"},
    }
    return f"s3://{bucket}/loopml", options


# --- settings and servers ----------------------------------------------------


def make_settings(home: Path, database_url: str | None = None, **overrides: Any) -> Settings:
    """Settings for tests: fast polling and heartbeats so failures show in seconds."""
    values: dict[str, Any] = {
        "home": home,
        "database_url": database_url,
        "poll_interval": 0.05,
        "heartbeat_interval": 0.2,
        "heartbeat_timeout": 2.0,
        "port": free_port(),
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Embedded defaults (SQLite, file blobs) in a fresh home."""
    return make_settings(tmp_path / "home")


class LiveServer:
    """A loopml API served by uvicorn on a loopback port, in a thread of this process."""

    def __init__(self, settings: Settings, **app_kwargs: Any) -> None:
        import uvicorn

        from loopml.api import create_app

        self.settings = settings
        self.app = create_app(settings, **app_kwargs)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=settings.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{settings.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("loopml test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)

    @property
    def admin_key(self) -> str:
        return self.settings.admin_key_path.read_text().strip()


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    """A running server on SQLite with its embedded worker."""
    with LiveServer(settings) as server:
        yield server
