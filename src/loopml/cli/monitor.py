"""``loopml monitor``: drift and data-quality reports.

``loopml monitor drift`` compares two files directly, with no server, deployment or home:
for people who only want the drift report.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import typer
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from loopml.cli.context import CliState, state
from loopml.cli.deployments import TARGET, split_target
from loopml.cli.jobs import run_to_end
from loopml.cli.output import console, err_console, print_json, table
from loopml.core.errors import InvalidInput

monitor_app = typer.Typer(help="Monitoring: drift and data quality.", no_args_is_help=True)


def _thresholds(pairs: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for pair in pairs:
        test, sep, value = pair.partition("=")
        try:
            if not sep:
                raise ValueError
            out[test.strip()] = float(value)
        except ValueError:
            raise InvalidInput(
                f"--threshold {pair!r} is not TEST=NUMBER (e.g. wasserstein=0.2)", field="threshold"
            ) from None
    return out


def _read(path: Path, columns: list[str] | None) -> pa.Table:
    from loopml.data.tabular import read_table

    if not path.is_file():
        raise InvalidInput(f"{path} is not a file", field="path")
    table_ = read_table(path, path.name)
    missing = [c for c in columns or [] if c not in table_.column_names]
    if missing:
        raise InvalidInput(f"{path.name} has no column(s) {', '.join(missing)}", field="columns")
    return table_.select(columns) if columns else table_


_TESTS = "ks, wasserstein, psi, jensenshannon, chisquare, ztest"
REFERENCE = typer.Option(
    ..., "--reference", "-r", help="Reference file (CSV, TSV, Parquet, JSON lines, Feather)."
)
CURRENT = typer.Option(..., "--current", "-c", help="Current file, compared with the reference.")
COLUMNS = typer.Option(None, "--columns", help="Only these columns, comma-separated.")
METHOD = typer.Option(
    None, "--method", help=f"One test for every column: {_TESTS} (default: chosen per column)."
)
THRESHOLD = typer.Option([], "--threshold", help="TEST=VALUE, e.g. wasserstein=0.2 (repeatable).")
DRIFT_SHARE = typer.Option(
    0.5, "--drift-share", help="Share of drifted columns that makes the dataset drifted."
)
HTML = typer.Option(None, "--html", help="Also write a self-contained HTML report with plots here.")
FAIL = typer.Option(False, "--fail-on-drift", help="Exit with status 3 when the dataset drifted.")


@monitor_app.command("drift")
def drift(
    reference: Path = REFERENCE,
    current: Path = CURRENT,
    columns: str = COLUMNS,
    method: str = METHOD,
    threshold: list[str] = THRESHOLD,
    drift_share: float = DRIFT_SHARE,
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    html: Path = HTML,
    fail_on_drift: bool = FAIL,
) -> None:
    """Compare two files: drift per column and for the dataset, and data quality."""
    from loopml.monitoring import DriftOptions, drift_report, profile

    options = DriftOptions(
        method=method, thresholds=_thresholds(threshold), drift_share=drift_share
    ).check()
    names = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
        console=err_console, transient=True, disable=as_json,
    ) as progress:  # fmt: skip
        step = progress.add_task(f"reading {reference.name}", total=4)
        ref = profile(_read(reference, names))
        progress.update(step, advance=1, description=f"reading {current.name}")
        cur = profile(_read(current, names), ref)
        progress.update(step, advance=1, description="comparing")
        report = drift_report(
            ref, cur, options, reference_name=reference.name, current_name=current.name
        )
        progress.update(step, advance=1, description="writing")
        if html is not None:
            from loopml.monitoring.report_html import render

            html.write_text(render(report), encoding="utf-8")
    if as_json:
        print_json(report)
    else:
        _print(report)
        if html is not None:
            console.print(f"HTML report: {escape(str(html))}", soft_wrap=True)
    if fail_on_drift and report["drift"]["dataset_drifted"]:
        raise typer.Exit(3)


def _print(report: dict[str, object]) -> None:
    drift_ = report["drift"]
    assert isinstance(drift_, dict)
    ordered = sorted(drift_["columns"], key=lambda c: not c["drifted"])
    rows = [
        (c["column"], c["test"] or "-", _fmt(c["statistic"]), c["threshold"], _yes(c["drifted"]))
        for c in ordered
    ]
    table("Drift per column", ["column", "test", "value", "threshold", "drifted"], rows)
    style = "bold red" if drift_["dataset_drifted"] else "bold green"
    console.print(f"[{style}]{escape(drift_['message'])}[/]")
    for column in drift_["columns"]:
        if column["drifted"]:
            console.print(f"  {escape(column['message'])}")
    findings = report["quality"]
    assert isinstance(findings, list)
    for finding in findings:
        console.print(f"[yellow]{finding['severity']}:[/] {escape(finding['message'])}")


def _yes(value: object) -> str:
    return "yes" if value else "no"


def _fmt(value: object) -> str:
    return "-" if value is None else f"{value:.4g}"


WINDOW = typer.Option("24h", "--window", "-w", help="The last 30m, 1h, 24h, 7d ... of traffic.")


@monitor_app.command("run")
def run(
    ctx: typer.Context,
    target: str = TARGET,
    window: str = WINDOW,
    start: str = typer.Option(None, help="Or from this ISO 8601 time ..."),
    end: str = typer.Option(None, help="... to this one (default: now)."),
    model: int = typer.Option(None, "--model", help="Model version (default: the served one)."),
    method: str = METHOD,
    threshold: list[str] = THRESHOLD,
    drift_share: float = typer.Option(
        None,
        "--drift-share",
        help="Share of drifted columns that makes the dataset drifted "
        "(default: the project's alert settings).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    html: Path = HTML,
    fail_on_drift: bool = FAIL,
) -> None:
    """Monitor a deployment's captured traffic against its model's training data (as a
    job, progress shown): drift, data quality, prediction drift and latency."""
    project, name = split_target(target)
    cli = state(ctx)
    job = cli.client().monitoring.start(
        project, name, window=window, start=start, end=end, model_version=model,
        method=method, thresholds=_thresholds(threshold) or None, drift_share=drift_share,
    )  # fmt: skip
    job = run_to_end(cli, job, quiet=as_json)
    if job.state.value != "succeeded":
        err_console.print(f"[bold red]monitoring failed:[/] {job.error or job.state.value}")
        raise typer.Exit(1)
    _show(cli, project, name, job.id, as_json, html)
    if fail_on_drift and job.result and job.result["dataset_drifted"]:
        raise typer.Exit(3)


@monitor_app.command("runs")
def runs(
    ctx: typer.Context,
    target: str = TARGET,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """A deployment's monitoring runs, newest first."""
    project, name = split_target(target)
    found = state(ctx).client().monitoring.runs(project, name)
    if as_json:
        print_json(found)
        return
    rows = []
    for job in found:
        result = job.result or {}
        drifted = result.get("drifted_columns")
        rows.append((
            job.id, job.created_at.isoformat(timespec="seconds"), job.state.value,
            result.get("model_version", ""), result.get("requests", ""),
            ", ".join(drifted) if drifted else ("none" if drifted == [] else ""),
        ))  # fmt: skip
    table(f"Monitoring runs of {project}/{name}", ["run", "created", "state", "model",
          "requests", "drifted"], rows)  # fmt: skip


@monitor_app.command("report")
def report(
    ctx: typer.Context,
    target: str = TARGET,
    run_id: str = typer.Argument(..., metavar="RUN", help="A run id (loopml monitor runs)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    html: Path = HTML,
) -> None:
    """Show a finished monitoring run's report, or write it as an HTML page."""
    project, name = split_target(target)
    _show(state(ctx), project, name, run_id, as_json, html)


def _show(
    cli: CliState, project: str, name: str, run_id: str, as_json: bool, html: Path | None
) -> None:
    client = cli.client()
    found = client.monitoring.report(project, name, run_id)
    if html is not None:
        html.write_text(client.monitoring.report_html(project, name, run_id), encoding="utf-8")
    if as_json:
        print_json(found)
        return
    _print(found)
    console.print(escape(found["service"]["message"]))
    if html is not None:
        console.print(f"HTML report: {escape(str(html))}", soft_wrap=True)


@monitor_app.command("schedule")
def schedule(
    ctx: typer.Context,
    target: str = TARGET,
    cron: str = typer.Option("0 * * * *", help="When, in cron syntax (default: hourly)."),
    window: str = WINDOW,
    timezone: str = typer.Option("UTC", help="The schedule's time zone."),
    retrain: str = typer.Option(
        None,
        "--retrain-on-drift",
        metavar="DATASET",
        help="When the dataset drifted, train on this dataset (name or name@VERSION) and "
        "deploy the result if it passes the project's gates.",
    ),
    budget: float = typer.Option(300, "--budget", help="Seconds for that retraining."),
    off: bool = typer.Option(False, "--off", help="Remove the schedule."),
) -> None:
    """Monitor a deployment on a schedule: a workflow ``monitor-DEPLOYMENT`` (a monitor
    task, and with --retrain-on-drift a Choice that retrains) with a cron trigger."""
    project, name = split_target(target)
    client = state(ctx).client()
    flow = f"monitor-{name}"
    if off:
        client.workflows.delete(project, flow)
        console.print(f"removed workflow {flow} and its schedule")
        return
    client.workflows.save(project, flow, monitoring_workflow(name, window, retrain, budget))
    saved = client.workflows.set_trigger(
        project, flow, "schedule", "schedule", cron=cron, timezone=timezone
    )
    console.print(
        f"{project}/{name} is monitored over the last {window} at {cron!r} ({timezone}) by "
        f"workflow {flow}; next run {saved.due_at}"
        + (f"; a drift retrains on {retrain}" if retrain else "")
    )


def monitoring_workflow(
    deployment: str, window: str, retrain: str | None, budget: float
) -> dict[str, object]:
    """The workflow ``loopml monitor schedule`` saves."""
    monitor = {
        "Type": "Task", "Resource": "loopml:task:monitor",
        "Parameters": {"deployment": deployment, "window": window},
    }  # fmt: skip
    if retrain is None:
        return {"Comment": f"Monitor {deployment}", "StartAt": "Monitor",
                "States": {"Monitor": {**monitor, "End": True}}}  # fmt: skip
    return {
        "Comment": f"Monitor {deployment}; retrain on {retrain} when the data drifted",
        "StartAt": "Monitor",
        "States": {
            "Monitor": {**monitor, "Next": "Drifted?"},
            "Drifted?": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.dataset_drifted", "BooleanEquals": True,
                             "Next": "Retrain"}],
                "Default": "Steady",
            },
            "Retrain": {
                "Type": "Task", "Resource": "loopml:task:train",
                "Parameters": {"dataset": retrain, "time_budget": budget,
                               "deploy": deployment},
                "End": True,
            },
            "Steady": {"Type": "Succeed"},
        },
    }  # fmt: skip


@monitor_app.command("baseline")
def baseline(
    ctx: typer.Context,
    project: str = typer.Option(..., "--project", "-p", help="Project."),
    model: int = typer.Option(..., "--model", "-m", help="Model version."),
    out: Path = typer.Option(Path("."), "--out", "-o", help="Folder for the files."),
) -> None:
    """Write a model version's monitoring baseline: its reference profile and, for
    SageMaker Model Monitor, statistics.json and constraints.json."""
    client = state(ctx).client()
    out.mkdir(parents=True, exist_ok=True)
    for kind, name in (("profile", "reference_profile.json"), ("statistics", "statistics.json"),
                       ("constraints", "constraints.json")):  # fmt: skip
        found = client.monitoring.baseline(project, model, kind)
        (out / name).write_text(json.dumps(found, indent=2), encoding="utf-8")
        console.print(f"wrote {escape(str(out / name))}")
