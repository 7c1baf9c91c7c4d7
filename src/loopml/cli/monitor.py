"""``loopml monitor``: drift and data-quality reports.

``loopml monitor drift`` compares two files directly, with no server, deployment or home:
for people who only want the drift report.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import typer
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

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
            console.print(f"HTML report: {escape(str(html))}")
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
