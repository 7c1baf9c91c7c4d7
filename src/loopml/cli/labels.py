"""``loopml data labels``: label a dataset's items, review labels, apply them as a version."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from loopml.cli.context import state
from loopml.cli.data import JSON, REF, parse_ref, show_version
from loopml.cli.output import console, err_console, print_json, table
from loopml.core import errors
from loopml.core.errors import InvalidInput
from loopml.core.schemas import DatasetVersion, Label

labels_app = typer.Typer(
    help="Labels: list items, add, import, export, review and apply labels.", no_args_is_help=True
)
_SUFFIX_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".json": "label-studio"}


def _show(found: list[Label], title: str) -> None:
    rows = [
        (x.id, x.item[:24], x.value, x.status.value, x.source.value, x.author, x.applied_in)
        for x in found
    ]
    table(title, ["id", "item", "label", "status", "source", "author", "in version"], rows)


@labels_app.command("items")
def items(
    ctx: typer.Context,
    ref: str = REF,
    unlabelled: bool = typer.Option(False, "--unlabelled", help="Only items without a label."),
    limit: int = typer.Option(20, help="At most this many."),
    as_json: bool = JSON,
) -> None:
    """Items of the latest version, with their keys (what labels refer to)."""
    project, name, _ = parse_ref(ref)
    found = state(ctx).client().labels.items(project, name, unlabelled=unlabelled, limit=limit)
    if as_json:
        print_json(found)
        return
    rows = [(i["item"], i["value"], "test" if i["test"] else "train") for i in found]
    table(f"items of {project}/{name}", ["item", "label", "split"], rows)


@labels_app.command("list")
def list_labels(
    ctx: typer.Context,
    ref: str = REF,
    status: str = typer.Option(None, help="pending_review, approved or rejected."),
    as_json: bool = JSON,
) -> None:
    """Labels of a dataset, oldest first."""
    project, name, _ = parse_ref(ref)
    found = state(ctx).client().labels.list(project, name, status=status)
    print_json(found) if as_json else _show(found, f"labels of {project}/{name}")


@labels_app.command("add")
def add(
    ctx: typer.Context,
    ref: str = REF,
    pairs: list[str] = typer.Argument(..., help="ITEM=LABEL pairs."),
    as_json: bool = JSON,
) -> None:
    """Label items by hand."""
    project, name, _ = parse_ref(ref)
    parsed = []
    for pair in pairs:
        item, sep, value = pair.partition("=")
        if not sep or not item or not value:
            raise InvalidInput(f"{pair!r}: expected ITEM=LABEL", field="pairs")
        parsed.append((item, value))
    made = state(ctx).client().labels.add(project, name, parsed)
    print_json(made) if as_json else _show(made, "added")


@labels_app.command("import")
def import_labels(
    ctx: typer.Context,
    ref: str = REF,
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="The label file."),
    fmt: str = typer.Option(None, "--format", help="csv, jsonl or label-studio (by suffix)."),
    as_json: bool = JSON,
) -> None:
    """Import labels from CSV (item,label), JSON Lines or a Label Studio export."""
    project, name, _ = parse_ref(ref)
    chosen = fmt or _SUFFIX_FORMATS.get(path.suffix.lower())
    if chosen is None:
        raise InvalidInput(
            f"cannot tell the format of {path.name}; pass --format", field="--format"
        )
    made = state(ctx).client().labels.import_file(project, name, path.read_bytes(), chosen)
    print_json(made) if as_json else console.print(f"imported {len(made)} labels from {path}")


@labels_app.command("export")
def export(
    ctx: typer.Context,
    ref: str = REF,
    fmt: str = typer.Option("csv", "--format", help="csv, jsonl or label-studio."),
    status: str = typer.Option(None, help="Only labels of this status."),
    output: Path = typer.Option(None, "--output", "-o", help="File to write (default stdout)."),
) -> None:
    """Export labels."""
    project, name, _ = parse_ref(ref)
    data = state(ctx).client().labels.export(project, name, fmt, status)
    if output is None:
        sys.stdout.buffer.write(data)
    else:
        output.write_bytes(data)
        err_console.print(f"wrote {len(data):,} bytes to {output}")


@labels_app.command("review")
def review(
    ctx: typer.Context,
    ref: str = REF,
    label_ids: list[str] = typer.Argument(None, help="Labels to review (default: all pending)."),
    approve: bool = typer.Option(..., "--approve/--reject"),
    note: str = typer.Option("", help="Why (kept with the label)."),
    as_json: bool = JSON,
) -> None:
    """Approve or reject pending labels (a reviewer other than their author). Without ids,
    every pending label this key may review: its own are left for another key."""
    project, name, _ = parse_ref(ref)
    client = state(ctx).client()
    if label_ids:
        done = [
            client.labels.review(project, name, i, approve=approve, note=note) for i in label_ids
        ]
    else:
        done, left = _review_pending(client, project, name, approve, note)
        if left:
            err_console.print(
                f"left {left} pending label(s) made with this key (or reviewed meanwhile): "
                "another key must review them",
                soft_wrap=True,
            )
        if not done:
            if left:
                raise typer.Exit(1)
            console.print("no pending labels")
            return
    print_json(done) if as_json else _show(done, "reviewed")


_PAGE = 100_000  # the most labels the server lists at once


def _review_pending(
    client: Any, project: str, name: str, approve: bool, note: str
) -> tuple[list[Label], int]:
    """Review every pending label, page by page; returns those reviewed and how many were
    left (this key's own, which the server refuses, or reviewed by another meanwhile)."""
    done: list[Label] = []
    tried: set[str] = set()
    left = 0
    while True:
        page = client.labels.list(project, name, status="pending_review", limit=_PAGE)
        fresh = [x for x in page if x.id not in tried]
        if not fresh:
            return done, left
        for found in fresh:
            tried.add(found.id)
            try:
                done.append(
                    client.labels.review(project, name, found.id, approve=approve, note=note)
                )
            except errors.Conflict:
                left += 1


@labels_app.command("apply")
def apply(ctx: typer.Context, ref: str = REF, as_json: bool = JSON) -> None:
    """Make a new version whose target holds every approved label."""
    project, name, _ = parse_ref(ref)
    result = state(ctx).client().labels.apply(project, name)
    if as_json:
        print_json(result)
        return
    version = DatasetVersion.model_validate(result["version"])
    what = (
        "new version" if result["created"] else "unchanged: the latest version already holds them"
    )
    console.print(
        f"{what}: {result['labels']} labels applied, {result['changed']} rows changed"
        + (
            f", {result['missing_items']} labelled items no longer exist"
            if result["missing_items"]
            else ""
        )
        + (
            f", {result['skipped']} labels skipped: the target no longer takes their values"
            if result.get("skipped")
            else ""
        )
    )
    show_version(version)
