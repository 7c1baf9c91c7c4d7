"""Reading tabular files into Arrow tables: CSV/TSV, Parquet, JSON, JSON Lines, Feather.

CSV delimiter and encoding are sniffed from the first bytes unless given. A malformed
file is an :class:`InvalidInput` that names the file, the line and the column.
"""

from __future__ import annotations

import codecs
import io
import json
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.json as pajson
import pyarrow.parquet as pq

from loopml.core.errors import InvalidInput, PayloadTooLarge
from loopml.data.csvfile import read_csv
from loopml.data.rawfile import COMPRESSED, open_raw, text

FORMATS = ("csv", "tsv", "parquet", "json", "jsonl", "feather")
_CHUNK = 1024 * 1024
_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".feather": "feather",
    ".arrow": "feather",
    ".ipc": "feather",
}


def tabular_format(name: str) -> str | None:
    """The format a file name says (``data.csv.gz`` -> csv), or None if not tabular."""
    lower = name.lower()
    for suffix in COMPRESSED:
        lower = lower.removesuffix(suffix)
    return _SUFFIXES.get(Path(lower).suffix)


def read_table(
    path: Path,
    name: str,
    options: dict[str, Any] | None = None,
    *,
    max_expanded: int | None = None,
) -> pa.Table:
    """Read one tabular file.

    Parameters
    ----------
    path : Path
        Where the file is.
    name : str
        The name the user knows it by (used in error messages and to pick the format).
    options : dict, optional
        ``format`` (one of :data:`FORMATS`), and for CSV ``delimiter``, ``encoding``
        and ``header`` (False when the first line holds data).
    max_expanded : int, optional
        The most bytes a compressed file may expand to.
    """
    options = dict(options or {})
    fmt = options.get("format") or tabular_format(name)
    if fmt not in FORMATS:
        raise InvalidInput(
            f"{name}: unsupported format; loopml reads {', '.join(FORMATS)} "
            "(by file suffix, or name one with the 'format' option)",
            field="format",
        )
    if path.stat().st_size == 0:
        raise InvalidInput(f"{name} is empty", field="source")
    try:
        if max_expanded is not None and name.lower().endswith(COMPRESSED):
            _check_expanded(path, name, max_expanded)
        if fmt in ("csv", "tsv"):
            table = read_csv(path, name, fmt, options)
        elif fmt == "parquet":
            _check_names(pq.read_schema(path).names, name)  # Arrow's own message is cryptic
            table = pq.read_table(path)
        elif fmt == "feather":
            table = feather.read_table(path)
        else:
            table = _read_json(path, name, fmt)
    except (pa.ArrowInvalid, OSError) as exc:
        if isinstance(exc, InvalidInput):
            raise
        raise InvalidInput(f"{name} is not a readable {fmt} file: {exc}", field="source") from exc
    return check_table(table, name)


def _check_names(names: list[str], name: str) -> None:
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InvalidInput(f"{name}: repeated column names {repeated}", field="source")


def check_table(table: pa.Table, name: str) -> pa.Table:
    """Refuse tables no version can hold: no rows, blank or repeated names, nested values."""
    if table.num_columns == 0:
        raise InvalidInput(f"{name} has no columns", field="source")
    if table.num_rows == 0:
        raise InvalidInput(f"{name} has a header but no rows", field="source")
    names = [str(n) for n in table.column_names]
    if any(not n.strip() for n in names):
        raise InvalidInput(
            f"{name}: column {names.index(next(n for n in names if not n.strip())) + 1} "
            "has no name",
            field="source",
        )
    _check_names(names, name)
    for field in table.schema:
        if pa.types.is_nested(field.type):
            raise InvalidInput(
                f"{name}: column {field.name!r} holds nested values ({field.type}); "
                "flatten it into plain columns first",
                field="source",
            )
    return _times_as_text(table.rename_columns(names))


def _times_as_text(table: pa.Table) -> pa.Table:
    """Times of day as text, as pandas reads them from CSV: training reads times in text
    (it would take ``datetime.time`` values for constants); dates and timestamps stay."""
    for i, field in enumerate(table.schema):
        if pa.types.is_time(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(pa.string()))
    return table


def _check_expanded(path: Path, name: str, cap: int) -> None:
    """Refuse a compressed file that expands past ``cap`` bytes (a few kB of gzip can
    hold gigabytes), before anything reads it whole."""
    total = 0
    with open_raw(path) as fh:
        while block := fh.read(_CHUNK):
            total += len(block)
            if total > cap:
                raise PayloadTooLarge(
                    f"{name} expands past {cap:,} bytes (setting max_expanded_bytes)",
                    field="source",
                )


def _read_json(path: Path, name: str, fmt: str) -> pa.Table:
    with open_raw(path) as fh:
        start = fh.read(1024).removeprefix(codecs.BOM_UTF8).lstrip()
    if fmt == "jsonl" or not start.startswith(b"["):
        try:
            with open_raw(path) as raw:
                table = pajson.read_json(raw)
            table.validate(full=True)  # Arrow's JSON reader lets through text not UTF-8
            return table
        except pa.ArrowInvalid as exc:
            if "UTF8" in str(exc) or "utf8" in str(exc).lower():
                raise InvalidInput(
                    f"{name} is not UTF-8 text, as JSON must be: {exc}", field="source"
                ) from exc
            changed = re.search(r"Column\(/(.*)\) changed from (\w+) to (\w+)", str(exc))
            if changed:
                raise _type_change(path, name, changed.group(1)) from exc
            line = _bad_json_line(path)
            where = f" at line {line}" if line else ""
            raise InvalidInput(
                f"{name}: not JSON Lines (one object per line){where}: {exc}",
                field="source",
                line=line,
            ) from exc
    with io.TextIOWrapper(open_raw(path), encoding="utf-8-sig") as fh:
        try:
            records = json.load(fh)
        except json.JSONDecodeError as exc:
            raise InvalidInput(
                f"{name}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
                field="source",
                line=exc.lineno,
            ) from exc
        except UnicodeDecodeError as exc:
            raise InvalidInput(
                f"{name} is not UTF-8 text, as JSON must be: {exc}", field="source"
            ) from exc
        except RecursionError as exc:
            raise InvalidInput(f"{name}: JSON nested too deeply to read", field="source") from exc
    bad = next((i for i, r in enumerate(records) if not isinstance(r, dict)), None)
    if bad is not None:
        raise InvalidInput(
            f"{name}: item {bad} of the JSON array is not an object; loopml reads an array "
            "of records ({column: value})",
            field="source",
        )
    return _records(records, name)


def _records(records: list[dict[str, Any]], name: str) -> pa.Table:
    """A table of every record's keys (in the order they first appear), missing as null."""
    if not records:
        raise InvalidInput(f"{name} holds an empty JSON array: no records", field="source")
    try:
        table = pa.Table.from_struct_array(pa.array(records))
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        keys = dict.fromkeys(k for r in records for k in r)
        column = next((k for k in keys if not _one_type([r.get(k) for r in records])), None)
        where = f"the values of {column!r}" if column is not None else "its values"
        why = (
            "hold a whole number beyond 64 bits"
            if isinstance(exc, OverflowError)
            else "are not of one type (numbers, text, true/false)"
        )
        raise InvalidInput(f"{name}: {where} {why}: {exc}", field="source", column=column) from exc
    # Arrow reads true as 1.0 among fractions (it refuses it among whole numbers).
    for field in table.schema:
        if pa.types.is_floating(field.type):
            flag = next((r[field.name] for r in records if type(r.get(field.name)) is bool), None)
            if flag is not None:
                raise InvalidInput(
                    f"{name}: the values of {field.name!r} are not of one type (numbers, "
                    f"text, true/false): numbers and {str(flag).lower()}",
                    field="source",
                    column=field.name,
                )
    return table


def _one_type(values: list[Any]) -> bool:
    try:
        pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return False
    return True


_JSON_TYPES = {bool: "true/false", int: "numbers", float: "numbers", str: "text"}


def _type_change(path: Path, name: str, column: str) -> InvalidInput:
    """Where a JSON Lines column's values stop being of the type its first ones are."""
    first = None
    with text(path, "utf-8-sig") as fh:
        for number, line in enumerate(fh, start=1):
            try:
                record = json.loads(line) if line.strip() else {}
            except json.JSONDecodeError:
                break  # a broken line: the type change is what Arrow named
            value = record.get(column) if isinstance(record, dict) else None
            kind = _JSON_TYPES.get(type(value), "nested values") if value is not None else None
            if kind is None:
                continue
            if first is None:
                first = kind
            elif kind != first:
                return InvalidInput(
                    f"{name}: {column!r} holds {first} until line {number}, which holds "
                    f"{kind} ({value!r}): a column's values must be of one type (write a "
                    "missing value as null)",
                    field="source",
                    line=number,
                    column=column,
                )
    return InvalidInput(f"{name}: the values of {column!r} are not of one type", field="source")


def _bad_json_line(path: Path) -> int | None:
    """The first line of a JSON Lines file that is not a JSON object (Arrow counts rows
    within a block from 0, so its own number is not the line)."""
    with text(path, "utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                return number
            if not isinstance(value, dict):
                return number
    return None
