"""``loopml data``: add sources as dataset versions and read what loopml knows about them."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import typer

from loopml.cli.context import CliState, state
from loopml.cli.jobs import run_to_end
from loopml.cli.output import console, err_console, fields, print_json, table
from loopml.core.errors import AlreadyExists, InvalidInput
from loopml.core.schemas import DatasetVersion, Job
from loopml.sdk import Client

data_app = typer.Typer(help="Datasets: add, list, inspect, split and export.", no_args_is_help=True)
JSON = typer.Option(False, "--json", help="Print machine-readable JSON.")
REF = typer.Argument(..., metavar="PROJECT/NAME[@VERSION]", help="e.g. shop/churn@2")
_SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


def parse_ref(ref: str) -> tuple[str, str, str]:
    """``project/name[@version]`` -> (project, name, version or 'latest')."""
    match = re.fullmatch(r"([^/@]+)/([^/@]+)(?:@(\d+|latest))?", ref)
    if match is None:
        raise InvalidInput(
            f"{ref!r} is not PROJECT/NAME or PROJECT/NAME@VERSION (e.g. shop/churn@2)",
            field="dataset",
        )
    return match.group(1), match.group(2), match.group(3) or "latest"


def _kinds(values: list[str]) -> dict[str, str]:
    kinds = {}
    for value in values:
        column, sep, kind = value.rpartition("=")
        if not sep or not column:
            raise InvalidInput(f"--kind {value!r}: expected COLUMN=KIND", field="--kind")
        kinds[column] = kind
    return kinds


def _split(
    method: str | None, test_size: float | None, column: str | None, seed: int | None
) -> dict[str, Any]:
    given = {"method": method, "test_size": test_size, "column": column, "seed": seed}
    return {k: v for k, v in given.items() if v is not None}


def _default_name(source: str) -> str:
    stem = source.rstrip("/").rsplit("/", 1)[-1].removeprefix("builtin:")
    for suffix in (".gz", ".bz2", ".zst", ".tar", ".csv", ".tsv", ".parquet", ".jsonl", ".json"):
        stem = stem.removesuffix(suffix)
    name = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")[:63].strip("-")
    if not name:
        raise InvalidInput(f"cannot name a dataset after {source!r}; pass --name", field="--name")
    return name


def _ensure_project(client: Client, project: str) -> None:
    try:
        client.projects.create(project)
        err_console.print(f"created project {project}")
    except AlreadyExists:
        pass


def _finish(cli: CliState, project: str, name: str, job: Job, wait: bool, as_json: bool) -> None:
    if not wait:
        print_json(job) if as_json else console.print(f"job {job.id} queued")
        return
    job = run_to_end(cli, job, quiet=as_json)
    if job.state.value != "succeeded":
        console.print(f"[bold red]ingest failed:[/] {job.error or job.state.value}", soft_wrap=True)
        raise typer.Exit(1)
    version = cli.client().datasets.version(project, name, job.result["version"])
    if as_json:
        print_json({"created": job.result["created"], "version": version})
        return
    if not job.result["created"]:
        console.print(
            f"unchanged: {project}/{version.ref} already holds this content (the dataset's "
            "current version)"
        )
    show_version(version)


def add(
    ctx: typer.Context,
    source: str = typer.Argument(
        ..., help="A file or folder, a URL (s3://, https://, ...), or builtin:NAME."
    ),
    project: str = typer.Option(..., "--project", "-p", help="Project (created if needed)."),
    name: str = typer.Option(None, "--name", "-n", help="Dataset name (default: from source)."),
    target: str = typer.Option(None, "--target", "-t", help="Target column."),
    task: str = typer.Option(None, help="binary, multiclass or regression."),
    kind: list[str] = typer.Option([], "--kind", help="COLUMN=KIND, e.g. zip=categorical."),
    split_method: str = typer.Option(
        None, "--split", help="auto, random, stratified, grouped, time, predefined."
    ),
    test_size: float = typer.Option(None, "--test-size", help="Share of rows held out (0.2)."),
    split_column: str = typer.Option(None, "--split-column", help="Group or time column."),
    seed: int = typer.Option(None, "--seed", help="Seed of the split."),
    fmt: str = typer.Option(None, "--format", help="csv, tsv, parquet, json, jsonl, feather."),
    delimiter: str = typer.Option(None, help="CSV delimiter (sniffed by default)."),
    decimal: str = typer.Option(None, help="CSV decimal mark, . or , (sniffed by default)."),
    encoding: str = typer.Option(None, help="Text encoding (sniffed by default)."),
    no_header: bool = typer.Option(False, "--no-header", help="The CSV's first line is data."),
    classes: str = typer.Option(None, help="CIFAR archives: class names, e.g. bicycle,motorcycle."),
    upload: bool = typer.Option(
        None, "--upload/--no-upload", help="Send local files to the server (default with --url)."
    ),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Follow the ingest to its end."),
    as_json: bool = JSON,
) -> None:
    """Add a source as a new version of a dataset (identical content adds nothing)."""
    cli = state(ctx)
    client = cli.client()
    name = name or _default_name(source)
    _ensure_project(client, project)
    given = {
        "format": fmt,
        "delimiter": delimiter,
        "decimal": decimal,
        "encoding": encoding,
        "classes": classes,
    }
    read: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    if no_header:
        read["header"] = False
    if read.get("classes"):
        read["classes"] = [c.strip() for c in str(read["classes"]).split(",") if c.strip()]
    options: dict[str, Any] = {
        "target": target,
        "task": task,
        "kinds": _kinds(kind),
        "split": _split(split_method, test_size, split_column, seed),
        "read": read,
    }
    local = Path(source).expanduser()
    is_local = "://" not in source and not source.startswith("builtin:")
    if is_local and not local.exists():
        raise InvalidInput(f"{source} does not exist", field="source")
    if is_local and (upload or (upload is None and cli.url)):
        job = client.datasets.upload(project, name, [local], **options)
    else:
        where = str(local.resolve()) if is_local else source
        job = client.datasets.ingest(project, name, where, **options)
    _finish(cli, project, name, job, wait, as_json)


def list_datasets(
    ctx: typer.Context,
    project: str = typer.Option(..., "--project", "-p"),
    as_json: bool = JSON,
) -> None:
    """The project's datasets."""
    found = state(ctx).client().datasets.list(project)
    if as_json:
        print_json(found)
        return
    rows = [
        (d.name, d.versions, d.source or "(uploads)", d.created_at.strftime("%Y-%m-%d %H:%M"))
        for d in found
    ]
    table(f"datasets of {project}", ["name", "versions", "source", "created"], rows)


def show_version(version: DatasetVersion) -> None:
    """The version's summary, schema and most important findings."""
    schema = version.data_schema
    split = version.split
    counts = {s: sum(f.severity.value == s for f in version.quality) for s in _SEVERITY_STYLE}
    fields(
        f"{version.project}/{version.ref}",
        {
            "rows": f"{version.rows:,}",
            "target": f"{schema.target} ({schema.task.value if schema.task else 'no task'})",
            "split": f"{split.get('method')}: {split.get('train_rows'):,} train / "
            f"{split.get('test_rows'):,} frozen test",
            "quality": ", ".join(f"{n} {s}" for s, n in counts.items()),
            "content hash": version.content_hash[:16],
            "parent": version.parent,
            "source": version.source,
        },
    )
    rows = [
        (
            c.name,
            c.kind.value + (" (set)" if c.inferred else ""),
            c.dtype,
            c.missing,
            f"≈{c.unique:,}" if c.unique_estimated else c.unique,
        )
        for c in schema.columns
    ]
    table("columns", ["column", "kind", "type", "missing", "unique"], rows)
    _print_findings([f for f in version.quality if f.severity.value != "info"][:10])


def _print_findings(findings: list[Any]) -> None:
    for f in findings:
        style = _SEVERITY_STYLE[f.severity.value]
        console.print(f"[{style}]{f.severity.value:>7}[/] {f.check}: {f.message}", soft_wrap=True)


def show(ctx: typer.Context, ref: str = REF, as_json: bool = JSON) -> None:
    """A dataset version: rows, target, split, columns and the main quality findings."""
    project, name, version = parse_ref(ref)
    found = state(ctx).client().datasets.version(project, name, version)
    print_json(found) if as_json else show_version(found)


def versions(ctx: typer.Context, ref: str = REF, as_json: bool = JSON) -> None:
    """Every version of a dataset, oldest first, with what changed and which is current."""
    project, name, _ = parse_ref(ref)
    client = state(ctx).client()
    found = client.datasets.versions(project, name)
    if as_json:
        print_json(found)
        return
    current = client.datasets.get(project, name).current
    rows = []
    for v in found:
        change = v.changes
        what = (
            "first version"
            if change.get("first")
            else ", ".join(
                f"{k.replace('_', ' ')}: {_plain(val)}"
                for k, val in change.items()
                if val not in ([], None, False) and k not in ("rows_before", "same_data")
            )
        )
        rows.append(
            (
                f"{v.number} (current)" if v.number == current else v.number,
                f"{v.rows:,}",
                v.data_schema.target,
                v.split.get("method"),
                v.created_at.strftime("%Y-%m-%d %H:%M"),
                what,
            )
        )
    table(
        f"versions of {project}/{name}",
        ["#", "rows", "target", "split", "created", "changes"],
        rows,
    )


def _plain(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def quality(
    ctx: typer.Context,
    ref: str = REF,
    severity: str = typer.Option(None, help="Only info, warning or error findings."),
    as_json: bool = JSON,
) -> None:
    """The quality report of a version: every finding, most severe first."""
    project, name, version = parse_ref(ref)
    found = state(ctx).client().datasets.quality(project, name, version, severity)
    if as_json:
        print_json(found)
    elif not found:
        console.print("no findings")
    else:
        _print_findings(found)


def split(
    ctx: typer.Context,
    ref: str = REF,
    method: str = typer.Option(
        "auto", "--method", help="auto, random, stratified, grouped, time, predefined."
    ),
    test_size: float = typer.Option(0.2, "--test-size"),
    column: str = typer.Option(None, "--column", help="Group or time column."),
    seed: int = typer.Option(0, "--seed"),
    target: str = typer.Option(None, "--target", "-t", help="Also set the target."),
    task: str = typer.Option(None, help="Also set the task."),
    kind: list[str] = typer.Option([], "--kind", help="Also set COLUMN=KIND."),
    as_json: bool = JSON,
) -> None:
    """A new version with the same rows and another frozen test split (or target, kinds)."""
    project, name, version = parse_ref(ref)
    made = state(ctx).client().datasets.derive(
        project, name, version,
        target=target, task=task, kinds=_kinds(kind),
        split=_split(method, test_size, column, seed),
    )  # fmt: skip
    print_json(made) if as_json else show_version(made)


def sync(
    ctx: typer.Context,
    ref: str = REF,
    wait: bool = typer.Option(True, "--wait/--no-wait"),
    as_json: bool = JSON,
) -> None:
    """Read the dataset's source again; new or changed files make a new version."""
    project, name, _ = parse_ref(ref)
    cli = state(ctx)
    _finish(cli, project, name, cli.client().datasets.sync(project, name), wait, as_json)


def rows(
    ctx: typer.Context,
    ref: str = REF,
    part: str = typer.Option("all", help="all, train, or test (the frozen test split)."),
    fmt: str = typer.Option("csv", "--format", help="csv, parquet or json."),
    limit: int = typer.Option(None, help="At most this many rows."),
    output: Path = typer.Option(None, "--output", "-o", help="File to write (default stdout)."),
) -> None:
    """Export a version's rows."""
    project, name, version = parse_ref(ref)
    body = (
        state(ctx)
        .client()
        .datasets.rows(project, name, version, part=part, format=fmt, limit=limit)
    )
    if output is None:
        sys.stdout.buffer.write(body)
    else:
        output.write_bytes(body)
        err_console.print(f"wrote {len(body):,} bytes to {output}", soft_wrap=True)


for command, command_name in (
    (add, "add"),
    (list_datasets, "list"),
    (show, "show"),
    (versions, "versions"),
    (quality, "quality"),
    (split, "split"),
    (sync, "sync"),
    (rows, "rows"),
):
    data_app.command(command_name)(command)
