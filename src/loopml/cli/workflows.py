"""``loopml workflow``: validate, save, run and watch Amazon States Language workflows.

``run`` executes a definition file here, in this process (nothing is recorded), calling
deployments through the client; ``start`` starts a saved workflow on the server, which
records every execution and its history.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from loopml.cli.context import state
from loopml.cli.output import console, err_console, fields, print_json, table
from loopml.core.errors import InvalidInput
from loopml.core.schemas import WorkflowExecution

workflow_app = typer.Typer(
    help="Workflows: Amazon States Language state machines, run and recorded.",
    no_args_is_help=True,
)
JSON = typer.Option(False, "--json", help="Print machine-readable JSON.")
TARGET = typer.Argument(..., metavar="PROJECT/WORKFLOW", help="e.g. shop/classify")
INPUT = typer.Option(None, "--input", "-i", help="The execution's input: JSON text, or @file.json.")
TASKS = typer.Option(
    [], "--tasks", help="A Python module to import first; its @task functions can be called."
)


def split_target(target: str) -> tuple[str, str]:
    project, _, name = target.partition("/")
    if not project or not name or "/" in name:
        raise InvalidInput(f"{target!r} is not PROJECT/WORKFLOW", field="workflow")
    return project, name


def read_definition(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}", field="DEFINITION") from None


def read_input(text: str | None) -> Any:
    if text is None:
        return {}
    if text.startswith("@"):
        text = read_definition(Path(text[1:]))
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"--input is not JSON: {exc}", field="--input") from None


def import_tasks(modules: list[str]) -> None:
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise InvalidInput(f"cannot import {module!r}: {exc}", field="--tasks") from None


@workflow_app.command("validate")
def validate(
    ctx: typer.Context,
    definition: Path = typer.Argument(..., help="ASL definition, JSON or YAML."),
    project: str | None = typer.Option(
        None, "--project", "-p", help="Check against this server's tasks (else: locally)."
    ),
    tasks: list[str] = TASKS,
) -> None:
    """Check a definition; every problem is listed with the state and field at fault."""
    text = read_definition(definition)
    if project is not None:
        result = state(ctx).client().workflows.validate(project, text)
        states, resources = result["states"], result["resources"]
    else:
        from loopml.workflow import DEFAULT_TASKS, compile_definition

        import_tasks(tasks)
        machine = compile_definition(text, known_task=DEFAULT_TASKS.__contains__)
        states, resources = len(machine.states), sorted(machine.resources)
    console.print(f"[green]valid[/]: {states} states; calls {', '.join(resources) or 'nothing'}")


@workflow_app.command("run")
def run(
    ctx: typer.Context,
    definition: Path = typer.Argument(..., help="ASL definition, JSON or YAML."),
    input_: str | None = INPUT,
    project: str | None = typer.Option(
        None, "--project", "-p", help="The project whose deployments loopml:deployment: calls."
    ),
    tasks: list[str] = TASKS,
    as_json: bool = typer.Option(
        False, "--json", help="Print status, output or error as JSON (nothing else)."
    ),
) -> None:
    """Run a definition file here and print how it ended; exit 1 unless it succeeded."""
    from loopml.workflow import DEFAULT_TASKS, Runner, compile_definition

    import_tasks(tasks)
    machine = compile_definition(read_definition(definition), known_task=DEFAULT_TASKS.__contains__)
    data = read_input(input_)
    cli = state(ctx)

    def deployment(name: str, value: Any, context: Any) -> Any:
        if project is None:
            raise InvalidInput(
                f"{name}: name the project of its deployments with --project", field="--project"
            )
        # As on a server: a record, a list of records, or an object with records/instances.
        if isinstance(value, dict):
            many = [value[k] for k in ("records", "instances") if isinstance(value.get(k), list)]
            value = many[0] if many else value
        if isinstance(value, list):
            return cli.client().deployments.predict(project, name, value)
        if not isinstance(value, dict):
            raise InvalidInput(
                "a deployment takes a record (an object) or a list of records", field="input"
            )
        return cli.client().deployments.predict(project, name, [value])["predictions"][0]

    def show(event: dict[str, Any]) -> None:
        if not as_json and event["type"].endswith("StateEntered"):
            err_console.print(f"[dim]→ {escape(event['stateEnteredEventDetails']['name'])}[/]")

    result = Runner(DEFAULT_TASKS, deployment, _LocalServices(), project or "").run(
        machine, data, name=definition.stem, sink=show
    )
    if as_json:
        print_json(result.as_dict())
    elif result.status == "SUCCEEDED":
        console.print(f"[green]SUCCEEDED[/] in {len(result.events)} events")
        console.print_json(json.dumps(result.output))
    else:
        err_console.print(
            f"[bold red]{result.status}[/]: {escape(result.error or '')}: "
            f"{escape(result.cause or '')}",
            soft_wrap=True,
        )
    if result.status != "SUCCEEDED":
        raise typer.Exit(1)


class _LocalServices:
    """``context.services`` of a CLI run: the user's own files are theirs to read."""

    allow_local_files = True


@workflow_app.command("create")
def create(
    ctx: typer.Context,
    target: str = TARGET,
    definition: Path = typer.Argument(..., help="ASL definition, JSON or YAML."),
    kind: str = typer.Option(
        "standard",
        "--type",
        help="standard (a durable checkpoint after each Task) or express "
        "(faster; after a crash a Task may run again).",
    ),
) -> None:
    """Save a workflow (or replace its definition)."""
    project, name = split_target(target)
    saved = (
        state(ctx).client().workflows.save(project, name, read_definition(definition), kind.upper())
    )
    console.print(f"saved {project}/{name} ({saved.type.lower()}, revision {saved.revision})")


@workflow_app.command("start")
def start(
    ctx: typer.Context,
    target: str = TARGET,
    input_: str | None = INPUT,
    name: str | None = typer.Option(None, "--name", help="Execution name (unique)."),
    wait: bool = typer.Option(
        False, "--wait", help="Wait for it to end; exit 1 unless it succeeded."
    ),
    as_json: bool = JSON,
) -> None:
    """Start an execution of a saved workflow on the server."""
    project, workflow = split_target(target)
    client = state(ctx).client()
    execution = client.workflows.start(project, workflow, read_input(input_), execution=name)
    if wait:
        execution = client.workflows.wait(project, workflow, execution.id)
    if as_json:
        print_json(execution)
    else:
        show_execution(execution)
    if wait and execution.status != "SUCCEEDED":
        raise typer.Exit(1)


@workflow_app.command("list")
def list_workflows(
    ctx: typer.Context,
    project: str = typer.Option(..., "--project", "-p", help="Project."),
    as_json: bool = JSON,
) -> None:
    """The project's workflows."""
    found = state(ctx).client().workflows.list(project)
    if as_json:
        print_json(found)
        return
    rows = [(w.name, w.revision, len(w.definition.get("States", {})), w.updated_at) for w in found]
    table(f"workflows of {project}", ["name", "revision", "states", "updated"], rows)


@workflow_app.command("executions")
def executions(
    ctx: typer.Context,
    target: str = TARGET,
    status: str | None = typer.Option(None, help="Only RUNNING, SUCCEEDED, FAILED, …"),
    as_json: bool = JSON,
) -> None:
    """A workflow's executions, newest first."""
    project, workflow = split_target(target)
    found = state(ctx).client().workflows.executions(project, workflow, status=status)
    if as_json:
        print_json(found)
        return
    rows = [
        (e.id, e.name if e.name != e.id else "", e.status, e.started_at, e.error or "")
        for e in found
    ]
    table(f"executions of {project}/{workflow}", ["id", "name", "status", "started", "error"], rows)


@workflow_app.command("show")
def show(
    ctx: typer.Context,
    target: str = TARGET,
    execution: str | None = typer.Argument(None, help="An execution id (else: the workflow)."),
    as_json: bool = JSON,
) -> None:
    """A workflow's definition, or one execution."""
    project, workflow = split_target(target)
    client = state(ctx).client()
    if execution is None:
        found: Any = client.workflows.get(project, workflow)
        if not as_json:
            console.print_json(json.dumps(found.definition))
            return
    else:
        found = client.workflows.execution(project, workflow, execution)
        if not as_json:
            show_execution(found)
            return
    print_json(found)


@workflow_app.command("history")
def history(
    ctx: typer.Context,
    target: str = TARGET,
    execution: str = typer.Argument(..., help="The execution id."),
    as_json: bool = JSON,
) -> None:
    """An execution's events, in Step Functions' order and shape."""
    project, workflow = split_target(target)
    events = state(ctx).client().workflows.history(project, workflow, execution)
    if as_json:
        print_json(events)
        return
    rows = []
    for event in events:
        details: dict[str, Any] = next(
            (v for k, v in event.items() if k.endswith("EventDetails")), {}
        )
        what = details.get("name") or details.get("error") or details.get("resource") or ""
        rows.append((event["id"], event["timestamp"], event["type"], what))
    table(f"history of {execution}", ["id", "at", "event", "state / error"], rows)


@workflow_app.command("stop")
def stop(
    ctx: typer.Context,
    target: str = TARGET,
    execution: str = typer.Argument(..., help="The execution id."),
) -> None:
    """Stop a running execution (it ends ABORTED at its next state)."""
    project, workflow = split_target(target)
    state(ctx).client().workflows.stop(project, workflow, execution)
    console.print(f"stopping {execution}")


def show_execution(e: WorkflowExecution) -> None:
    values: dict[str, Any] = {
        "workflow": f"{e.project}/{e.workflow} (revision {e.revision})",
        "status": e.status,
        "started": e.started_at,
        "stopped": e.stopped_at or "",
        "events": e.events,
        "input": json.dumps(e.input),
    }
    if e.status == "SUCCEEDED":
        values["output"] = json.dumps(e.output)
    if e.error:
        values["error"] = f"{e.error}: {e.cause or ''}"
    fields(f"execution {e.id}", values)
