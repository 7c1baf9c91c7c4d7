"""``loopml workflow trigger|triggers|untrigger``: start a workflow by itself, on a cron
schedule, on each new version of a dataset, or on each new file under a source prefix."""

from __future__ import annotations

from pathlib import Path

import typer

from loopml.cli.context import state
from loopml.cli.deployments import split_target
from loopml.cli.output import console, print_json, table
from loopml.cli.workflows import INPUT, JSON, TARGET, read_input, workflow_app
from loopml.core.errors import InvalidInput


@workflow_app.command("trigger")
def trigger(
    ctx: typer.Context,
    target: str = TARGET,
    name: str = typer.Argument(..., help="The trigger's name."),
    cron: str | None = typer.Option(None, help='A cron schedule, e.g. "0 3 * * *".'),
    timezone: str = typer.Option("UTC", help="The schedule's time zone."),
    dataset: str | None = typer.Option(None, help="Fire on each new version of it."),
    source: str | None = typer.Option(None, help="Fire on each new file under this URL."),
    alert: bool = typer.Option(False, "--alert", help="Fire on each new monitoring alert."),
    alert_deployment: str | None = typer.Option(None, help="--alert: of this deployment only."),
    alert_rule: str | None = typer.Option(None, help="--alert: of this rule only."),
    alert_severity: str = typer.Option("warning", help="--alert: the least severe that fires."),
    every: float | None = typer.Option(None, help="Seconds between looks (dataset, source)."),
    input_: str | None = INPUT,
    disabled: bool = typer.Option(False, "--disabled", help="Save it without firing."),
) -> None:
    """Create or replace a trigger; it fires for what comes after it is made."""
    project, workflow = split_target(target)
    given = [
        k for k, v in (("cron", cron), ("dataset", dataset), ("source", source), ("alert", alert))
        if v
    ]  # fmt: skip
    if len(given) != 1:
        raise InvalidInput("give one of --cron, --dataset, --source and --alert", field="--cron")
    spec: dict[str, object] = {}
    if cron:
        kind, spec = "schedule", {"cron": cron, "timezone": timezone}
    elif alert:
        kind, spec = "alert", {"severity": alert_severity}
        if alert_deployment:
            spec["deployment"] = alert_deployment
        if alert_rule:
            spec["rule"] = alert_rule
    elif dataset:
        kind, spec = "dataset", {"dataset": dataset}
    else:
        assert source is not None
        if "://" not in source and not state(ctx).url:
            # The in-process server would keep "./in" as given, and a server started in
            # another folder would watch another "./in": keep the folder meant here.
            source = str(Path(source).expanduser().resolve())
        kind, spec = "source", {"url": source}
    if every is not None:
        spec["every"] = every
    saved = state(ctx).client().workflows.set_trigger(
        project, workflow, name, kind, input=read_input(input_) if input_ else None,
        enabled=not disabled, **spec,
    )  # fmt: skip
    console.print(
        f"trigger {saved.name} ({saved.kind}) of {project}/{workflow}: next "
        f"{'fires' if saved.kind == 'schedule' else 'looks'} at {saved.due_at}"
    )


@workflow_app.command("triggers")
def triggers(ctx: typer.Context, target: str = TARGET, as_json: bool = JSON) -> None:
    """A workflow's triggers, when each is next due and how often it fired."""
    project, workflow = split_target(target)
    found = state(ctx).client().workflows.triggers(project, workflow)
    if as_json:
        print_json(found)
        return
    rows = [(t.name, t.kind, ", ".join(f"{k}={v}" for k, v in t.spec.items()),
             "yes" if t.enabled else "no", t.due_at, t.fired, t.last_error or "")
            for t in found]  # fmt: skip
    table(
        f"triggers of {project}/{workflow}",
        ["name", "kind", "spec", "enabled", "due", "fired", "last error"],
        rows,
    )


@workflow_app.command("untrigger")
def untrigger(
    ctx: typer.Context, target: str = TARGET, name: str = typer.Argument(..., help="Trigger.")
) -> None:
    """Delete a trigger."""
    project, workflow = split_target(target)
    state(ctx).client().workflows.delete_trigger(project, workflow, name)
    console.print(f"deleted trigger {name} of {project}/{workflow}")
