"""Printing results: rich tables for people, ``--json`` for scripts."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


def _width() -> int:
    # Read at each print (COLUMNS first, then the terminal): the console's own width was
    # fixed when it was made, before a wrapper such as a test runner set COLUMNS.
    return shutil.get_terminal_size().columns


def to_plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    return value


def print_json(value: Any) -> None:
    # Plain print: rich would wrap long lines and break the JSON for scripts.
    print(json.dumps(to_plain(value), indent=2, default=str))


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    t = Table(title=title, title_justify="left")
    for col in columns:
        t.add_column(col, overflow="fold")
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    console.width = _width()
    console.print(t)


def fields(title: str, values: dict[str, Any]) -> None:
    t = Table(title=title, title_justify="left", show_header=False)
    t.add_column("field", style="bold")
    t.add_column("value")
    for k, v in values.items():
        t.add_row(k, "" if v is None else str(v))
    console.width = _width()
    console.print(t)
