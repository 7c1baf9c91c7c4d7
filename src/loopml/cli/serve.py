"""``loopml server``, ``loopml worker`` and ``loopml db``."""

from __future__ import annotations

import logging
import signal
import socket
import threading
from collections.abc import Callable
from typing import Any

import typer
import uvicorn

from loopml.cli.output import console, err_console, fields, print_json
from loopml.core.errors import Conflict
from loopml.home import open_home
from loopml.jobs import Worker
from loopml.settings import Settings
from loopml.store.migrate import current_revision, head_revision

db_app = typer.Typer(help="Metadata database migrations.", no_args_is_help=True)


def check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise Conflict(
                f"cannot listen on {host}:{port} ({exc.strerror}); pass --port or set LOOPML_PORT",
                field="--port",
            ) from None


def build_server(settings: Settings, announce: Callable[[str], None]) -> uvicorn.Server:
    from loopml.api import create_app

    app = create_app(settings, announce=announce)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning")
    return uvicorn.Server(config)


def server(
    host: str = typer.Option(None, help="Address to listen on (default 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default 8000)."),
    worker: bool = typer.Option(True, "--worker/--no-worker", help="Run a job worker inside."),
) -> None:
    """Serve the API (with an embedded job worker) until interrupted."""
    overrides: dict[str, Any] = {
        k: v for k, v in {"host": host, "port": port}.items() if v is not None
    }
    settings = Settings(**overrides, embedded_worker=worker)
    check_port_free(settings.host, settings.port)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    srv = build_server(settings, lambda msg: console.print(f"[bold yellow]{msg}[/]"))
    console.print(
        f"loopml serving on [bold]{settings.base_url}[/] (API docs: {settings.base_url}/docs, "
        f"home {settings.home.resolve()}, worker {'on' if worker else 'off'})"
    )
    srv.run()


def worker(
    concurrency: int = typer.Option(None, min=1, help="Jobs to run at once (default 2)."),
) -> None:
    """Run a job worker alone (start several, on several machines, to scale out)."""
    overrides: dict[str, Any] = {"worker_concurrency": concurrency} if concurrency else {}
    settings = Settings(**overrides)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    home = open_home(settings, announce=err_console.print)
    home.close()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    w = Worker(settings)
    console.print(f"worker {w.name} polling {settings.resolved_database_url.split('@')[-1]}")
    w.run(stop)


@db_app.command("upgrade")
def db_upgrade(as_json: bool = typer.Option(False, "--json")) -> None:
    """Apply pending migrations to the metadata database."""
    settings = Settings()
    home = open_home(settings, announce=err_console.print)
    revision = current_revision(home.db.engine)
    home.close()
    if as_json:
        print_json({"revision": revision})
    else:
        console.print(f"database at revision {revision}")


@db_app.command("status")
def db_status(as_json: bool = typer.Option(False, "--json")) -> None:
    """Show the database's schema revision and the newest one this loopml knows."""
    from loopml.store.db import Database

    settings = Settings()
    db = Database(settings.resolved_database_url)
    info: dict[str, Any] = {
        "database": db.engine.url.render_as_string(hide_password=True),
        "revision": current_revision(db.engine),
        "head": head_revision(),
    }
    db.dispose()
    info["up_to_date"] = info["revision"] == info["head"]
    if as_json:
        print_json(info)
    else:
        fields("metadata database", info)
