"""``loopml jobs``: submit, follow, list and cancel jobs."""

from __future__ import annotations

import json
import threading

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from loopml.cli.context import CliState, state
from loopml.cli.output import console, err_console, fields, print_json, table
from loopml.core.enums import JobState
from loopml.core.errors import InvalidInput
from loopml.core.schemas import Job
from loopml.sdk import Client

jobs_app = typer.Typer(help="Submit, follow, list and cancel jobs.", no_args_is_help=True)
JSON = typer.Option(False, "--json", help="Print machine-readable JSON.")


def _params(values: list[str]) -> dict[str, object]:
    params: dict[str, object] = {}
    for value in values:
        name, sep, raw = value.partition("=")
        if not sep or not name:
            raise InvalidInput(f"--param {value!r}: expected NAME=VALUE", field="--param")
        try:
            params[name] = json.loads(raw)
        except ValueError:
            params[name] = raw
    return params


def follow(client: Client, job: Job, *, quiet: bool = False) -> Job:
    """Wait for a job with a progress bar (on stderr, so ``--json`` output stays clean)."""
    if quiet:
        return client.jobs.wait(job.project or "", job.id)
    columns = (
        TextColumn("[bold]{task.fields[kind]}[/]"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
    )
    with Progress(*columns, console=err_console, transient=False) as bar:
        task = bar.add_task(job.state.value, total=1.0, kind=job.kind)

        def update(current: Job) -> None:
            text = current.message or current.state.value
            bar.update(task, completed=current.progress, description=text)

        return client.jobs.wait(job.project or "", job.id, on_update=update, poll=0.3)


def run_to_end(cli: CliState, job: Job, *, quiet: bool = False) -> Job:
    """Follow a job to its end; without a server, work the home's queue meanwhile.

    (A ``loopml server`` or ``loopml worker`` on the same home may take the job first.)
    """
    client = cli.client()
    if cli.url:
        return follow(client, job, quiet=quiet)
    from loopml.jobs import Worker

    err_console.print("[dim]running the queue of this home until the job ends[/]")
    stop = threading.Event()
    thread = threading.Thread(target=Worker(cli.settings()).run, args=(stop,), daemon=True)
    thread.start()
    try:
        return follow(client, job, quiet=quiet)
    finally:
        stop.set()
        thread.join(60)


def _summary(job: Job) -> dict[str, object]:
    return {
        "id": job.id,
        "project": job.project,
        "kind": job.kind,
        "state": job.state.value,
        "progress": f"{job.progress:.0%}",
        "message": job.message,
        "attempts": f"{job.attempts}/{job.max_attempts}",
        "error": job.error,
        "result": json.dumps(job.result) if job.result is not None else None,
    }


@jobs_app.command("submit")
def submit(
    ctx: typer.Context,
    project: str,
    kind: str,
    param: list[str] = typer.Option([], "--param", "-p", help="NAME=VALUE (JSON), repeatable."),
    max_attempts: int = typer.Option(1, help="Re-queue this often if a worker dies."),
    wait: bool = typer.Option(False, "--wait", help="Follow the job to its end."),
    as_json: bool = JSON,
) -> None:
    """Queue a job of KIND in PROJECT."""
    client = state(ctx).client()
    job = client.jobs.submit(project, kind, _params(param), max_attempts=max_attempts)
    if wait:
        job = follow(client, job, quiet=as_json)
    if as_json:
        print_json(job)
    else:
        fields(f"job {job.id}", _summary(job))
    if wait and job.state.value != "succeeded":
        raise typer.Exit(1)


@jobs_app.command("list")
def list_jobs(
    ctx: typer.Context,
    project: str,
    job_state: JobState = typer.Option(None, "--state", help="Only jobs in this state."),
    as_json: bool = JSON,
) -> None:
    """List a project's jobs, newest first."""
    items = state(ctx).client().jobs.list(project, state=job_state)
    if as_json:
        print_json(items)
        return
    rows = [
        (
            j.id,
            j.kind,
            j.state.value,
            f"{j.progress:.0%}",
            j.message,
            j.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
        for j in items
    ]
    table(f"jobs in {project}", ["id", "kind", "state", "progress", "message", "created"], rows)


@jobs_app.command("show")
def show(ctx: typer.Context, project: str, job_id: str, as_json: bool = JSON) -> None:
    """Show a job's state, progress, result or error."""
    job = state(ctx).client().jobs.get(project, job_id)
    if as_json:
        print_json(job)
    else:
        fields(f"job {job.id}", _summary(job))


@jobs_app.command("wait")
def wait_job(ctx: typer.Context, project: str, job_id: str, as_json: bool = JSON) -> None:
    """Follow a job with a progress bar until it ends."""
    client = state(ctx).client()
    job = follow(client, client.jobs.get(project, job_id), quiet=as_json)
    if as_json:
        print_json(job)
    else:
        fields(f"job {job.id}", _summary(job))
    if job.state.value != "succeeded":
        raise typer.Exit(1)


@jobs_app.command("cancel")
def cancel(ctx: typer.Context, project: str, job_id: str, as_json: bool = JSON) -> None:
    """Cancel a queued job, or ask the worker running it to stop."""
    job = state(ctx).client().jobs.cancel(project, job_id)
    if as_json:
        print_json(job)
    elif job.state.finished:
        console.print(f"job {job.id} cancelled")
    else:
        console.print(f"job {job.id}: cancellation requested; its worker stops it shortly")


@jobs_app.command("logs")
def logs(ctx: typer.Context, project: str, job_id: str, as_json: bool = JSON) -> None:
    """Print a job's log lines."""
    lines = state(ctx).client().jobs.logs(project, job_id)
    if as_json:
        print_json(lines)
        return
    for line in lines:
        console.print(f"{line.at:%H:%M:%S} {line.level:<7} {line.message}", markup=False)
