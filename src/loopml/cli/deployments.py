"""``loopml deployments``: list and inspect deployments, try a challenger (shadow or
canary) and promote it, print a deployment's OpenAPI document, and batch predictions."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from loopml.cli.context import state
from loopml.cli.jobs import run_to_end
from loopml.cli.output import console, fields, print_json, table
from loopml.core.enums import ChallengerMode
from loopml.core.errors import InvalidInput
from loopml.core.schemas import Deployment

deployments_app = typer.Typer(
    help="Deployments: challengers, promotion, their OpenAPI schema, batch predictions.",
    no_args_is_help=True,
)
JSON = typer.Option(False, "--json", help="Print machine-readable JSON.")
TARGET = typer.Argument(..., metavar="PROJECT/DEPLOYMENT", help="e.g. shop/live")


def split_target(target: str) -> tuple[str, str]:
    project, _, name = target.partition("/")
    if not project or not name or "/" in name:
        raise InvalidInput(f"{target!r} is not PROJECT/DEPLOYMENT", field="deployment")
    return project, name


def show_deployment(d: Deployment) -> None:
    trial = d.challenger
    fields(
        f"{d.project}/{d.name}",
        {
            "model": f"v{d.model}",
            "challenger": f"v{trial.model} ({trial.mode.value}, {trial.percent:g}%)"
            if trial
            else "none",
            "confidence threshold": d.confidence_threshold,
            "fallback label": d.fallback_label,
            "capture": f"{d.capture_percent:g}%",
            "predict": f"POST /api/v1/projects/{d.project}/deployments/{d.name}/predict",
        },
    )


@deployments_app.command("list")
def list_deployments(
    ctx: typer.Context,
    project: str = typer.Option(..., "--project", "-p", help="Project."),
    as_json: bool = JSON,
) -> None:
    """The project's deployments and what they serve."""
    found = state(ctx).client().deployments.list(project)
    if as_json:
        print_json(found)
        return
    rows = []
    for d in found:
        trial = f"v{d.challenger.model} {d.challenger.mode.value}" if d.challenger else ""
        rows.append((d.name, f"v{d.model}", trial, f"{d.capture_percent:g}%"))
    table(f"deployments of {project}", ["name", "model", "challenger", "capture"], rows)


@deployments_app.command("show")
def show(ctx: typer.Context, target: str = TARGET, as_json: bool = JSON) -> None:
    """One deployment."""
    found = state(ctx).client().deployments.get(*split_target(target))
    print_json(found) if as_json else show_deployment(found)


@deployments_app.command("challenger")
def challenger(
    ctx: typer.Context,
    target: str = TARGET,
    model: int = typer.Option(None, "--model", "-m", help="Model version to try."),
    mode: ChallengerMode = typer.Option(ChallengerMode.shadow, help="shadow or canary."),
    percent: float = typer.Option(
        100.0, help="canary: share of requests it answers; shadow: share it sees a copy of."
    ),
    remove: bool = typer.Option(False, "--remove", help="Stop trying the challenger."),
    reason: str = typer.Option("", help="Kept in the model's stage history."),
    as_json: bool = JSON,
) -> None:
    """Try a model version beside the served one, or --remove the challenger."""
    project, name = split_target(target)
    client = state(ctx).client()
    if remove:
        done = client.deployments.clear_challenger(project, name)
    elif model is None:
        raise InvalidInput("give --model VERSION (or --remove)", field="model")
    else:
        done = client.deployments.set_challenger(
            project, name, model, mode=mode.value, percent=percent, reason=reason
        )
    print_json(done) if as_json else show_deployment(done)


@deployments_app.command("promote")
def promote(
    ctx: typer.Context,
    target: str = TARGET,
    reason: str = typer.Option("", help="Kept in the model's stage history."),
    as_json: bool = JSON,
) -> None:
    """Serve the challenger in place of the current model."""
    done = state(ctx).client().deployments.promote(*split_target(target), reason=reason)
    print_json(done) if as_json else show_deployment(done)


@deployments_app.command("schema")
def schema(ctx: typer.Context, target: str = TARGET) -> None:
    """Print the deployment's own OpenAPI document (its inputs and classes)."""
    print(json.dumps(state(ctx).client().deployments.openapi(*split_target(target)), indent=2))


@deployments_app.command("batch")
def batch(
    ctx: typer.Context,
    target: str = TARGET,
    dataset: str = typer.Option(None, help="A dataset of the project: name or name@VERSION."),
    source: str = typer.Option(None, help="Or a file or URL of CSV/Parquet/JSON/Feather."),
    part: str = typer.Option("all", help="Of a dataset version: all, train or test."),
    inputs: bool = typer.Option(True, "--inputs/--no-inputs", help="Write the input columns."),
    out: Path = typer.Option(None, "--out", "-o", help="Write the predictions here."),
    as_json: bool = JSON,
) -> None:
    """Predict a dataset version or a file as a job (progress shown); the output is
    Parquet, or CSV when --out ends in .csv."""
    project, name = split_target(target)
    cli = state(ctx)
    job = cli.client().deployments.batch_predict(
        project, name, dataset=dataset, source=source, part=part, include_inputs=inputs
    )
    job = run_to_end(cli, job, quiet=as_json)
    if job.state.value != "succeeded":
        console.print(f"[bold red]batch failed:[/] {job.error or job.state.value}", soft_wrap=True)
        raise typer.Exit(1)
    assert job.result is not None
    if out is not None:
        kind = "csv" if out.suffix.lower() == ".csv" else "parquet"
        out.write_bytes(cli.client().deployments.batch_output(project, name, job.id, kind))
    if as_json:
        print_json({**job.result, "job": job.id, "written": str(out) if out else None})
        return
    console.print(
        f"{job.result['rows']:,} rows predicted by v{job.result['model_version']} "
        f"({job.result['abstained']:,} abstained); job {job.id}"
        + (f"; written to {out}" if out else ""),
        soft_wrap=True,
    )
