"""Reading tabular files into Arrow tables: CSV/TSV, Parquet, JSON, JSON Lines, Feather.

CSV delimiter and encoding are sniffed from the first bytes unless given. A malformed
file is an :class:`InvalidInput` that names the file, the line and the column.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import unicodedata
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.json as pajson
import pyarrow.parquet as pq

from loopml.core.errors import InvalidInput

FORMATS = ("csv", "tsv", "parquet", "json", "jsonl", "feather")
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
_COMPRESSED = (".gz", ".bz2", ".zst", ".lz4")
_SNIFF_BYTES = 64 * 1024
_COLUMN_RE = re.compile(r"column #(\d+)")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_BLOCK = 16 * 1024 * 1024


def tabular_format(name: str) -> str | None:
    """The format a file name says (``data.csv.gz`` -> csv), or None if not tabular."""
    lower = name.lower()
    for suffix in _COMPRESSED:
        lower = lower.removesuffix(suffix)
    return _SUFFIXES.get(Path(lower).suffix)


def read_table(path: Path, name: str, options: dict[str, Any] | None = None) -> pa.Table:
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
        if fmt in ("csv", "tsv"):
            table = _read_csv(path, name, fmt, options)
        elif fmt == "parquet":
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
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InvalidInput(f"{name}: repeated column names {repeated}", field="source")
    for field in table.schema:
        if pa.types.is_nested(field.type):
            raise InvalidInput(
                f"{name}: column {field.name!r} holds nested values ({field.type}); "
                "flatten it into plain columns first",
                field="source",
            )
    return table.rename_columns(names)


def sniff_csv(path: Path, fmt: str = "csv") -> tuple[str, str]:
    """Guess ``(delimiter, encoding)`` from the start of a file."""
    with _open_raw(path) as fh:
        head = fh.read(_SNIFF_BYTES)
    encoding = _sniff_encoding(head)
    text = head.decode(encoding, errors="ignore")
    lines = text.splitlines()
    if len(head) == _SNIFF_BYTES and len(lines) > 1:
        text = "\n".join(lines[:-1])  # the last line may be cut short
    default = "\t" if fmt == "tsv" else ","
    try:
        delimiter = csv.Sniffer().sniff(text, delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = default
    if fmt == "tsv" and "\t" in text:
        delimiter = "\t"
    return delimiter, encoding


def _sniff_encoding(head: bytes) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        # A multi-byte character may be cut at the end of the sample.
        head[: max(0, len(head) - 4)].decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = list(from_bytes(head))
    if matches and not _latin(head, matches[0].encoding):
        return matches[0].encoding  # Cyrillic, Greek, ...: another script's code page
    # On short samples charset_normalizer often names the wrong Latin code page (``José``
    # read as ``Josķ``, ``Zürich`` as ``Z³rich``): take the reading with the fewest
    # symbols inside words, cp1252 (the commonest) on a tie.
    candidates = ["cp1252", *(m.encoding for m in matches if _latin(head, m.encoding))]
    readable = [c for c in candidates if _decodes(head, c)]
    return min(readable, key=lambda c: _oddities(head.decode(c))) if readable else "latin-1"


def _decodes(head: bytes, encoding: str) -> bool:
    try:
        head.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return False
    return True


def _latin(head: bytes, encoding: str) -> bool:
    """Whether every letter beyond ASCII that ``encoding`` reads is a Latin one."""
    try:
        text = head.decode(encoding, errors="replace")
    except LookupError:
        return False
    return all(
        unicodedata.name(ch, "").startswith("LATIN")
        for ch in set(text)
        if ord(ch) > 127 and ch.isalpha()
    )


def _oddities(text: str) -> int:
    """Non-ASCII characters that are not letters but sit inside a word (``Z³rich``)."""
    return sum(
        1
        for m in _NON_ASCII.finditer(text)
        if not m.group().isalpha()
        and any(0 <= j < len(text) and text[j].isalpha() for j in (m.start() - 1, m.end()))
    )


def _open_raw(path: Path) -> Any:
    """A binary stream of the file, decompressed when its suffix says so."""
    return pa.input_stream(str(path), compression="detect")


def _read_csv(path: Path, name: str, fmt: str, options: dict[str, Any]) -> pa.Table:
    delimiter, encoding = sniff_csv(path, fmt)
    delimiter = options.get("delimiter") or delimiter
    encoding = options.get("encoding") or encoding
    _check_encoding(encoding)
    header = options.get("header", True)
    # pandas' C parser with Arrow-backed columns: the fastest reader here, and its types
    # (integers with gaps stay integers, text stays text) carry over to Arrow for free.
    try:
        frame = pd.read_csv(
            path,
            sep=delimiter,
            encoding=encoding,
            header=0 if header else None,
            dtype_backend="pyarrow",
            engine="c",
        )
    except pd.errors.EmptyDataError as exc:
        raise InvalidInput(f"{name} is empty", field="source") from exc
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"{name} is not {encoding} text (byte {exc.start}); name its encoding "
            "(e.g. encoding=latin-1)",
            field="encoding",
        ) from exc
    except (pd.errors.ParserError, ValueError) as exc:
        raise _diagnose(path, name, delimiter, encoding, str(exc)) from exc
    if not header:
        frame.columns = [f"f{i}" for i in range(frame.shape[1])]
    unnamed = [c for c in frame.columns if isinstance(c, str) and c.startswith("Unnamed: ")]
    if header and unnamed:
        position = list(frame.columns).index(unnamed[0]) + 1
        raise InvalidInput(f"{name}: column {position} has no name in the header", field="source")
    return pa.Table.from_pandas(frame, preserve_index=False)


def _check_encoding(encoding: str) -> None:
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise InvalidInput(f"unknown text encoding {encoding!r}", field="encoding") from None


def _header(path: Path, delimiter: str, encoding: str, header: bool) -> list[str]:
    with _text(path, encoding) as fh:
        first = next(csv.reader(fh, delimiter=delimiter), [])
    return first if header else [f"f{i}" for i in range(len(first))]


def _text(path: Path, encoding: str) -> io.TextIOWrapper:
    return io.TextIOWrapper(_open_raw(path), encoding=encoding, errors="replace", newline="")


def _diagnose(path: Path, name: str, delimiter: str, encoding: str, message: str) -> InvalidInput:
    """Find the first line that breaks the file's shape, to say where it is."""
    with _text(path, encoding) as fh:
        reader = csv.reader(fh, delimiter=delimiter, strict=True)
        start = 1
        try:
            header = next(reader, [])
            start = reader.line_num + 1
            for record in reader:
                if record and len(record) != len(header):
                    column = header[len(record)] if len(record) < len(header) else None
                    where = (
                        f"column {column!r} is missing"
                        if column
                        else f"it has {len(record) - len(header)} field(s) more than the header"
                    )
                    return InvalidInput(
                        f"{name}: line {reader.line_num} has {len(record)} fields where the "
                        f"header has {len(header)} ({where})",
                        field="source",
                        line=reader.line_num,
                        column=column,
                    )
                start = reader.line_num + 1
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                return _unclosed(name, start)
            return InvalidInput(
                f"{name}: line {reader.line_num}: {exc}", field="source", line=reader.line_num
            )
    return InvalidInput(f"{name} is not a readable CSV file: {message}", field="source")


def _read_json(path: Path, name: str, fmt: str) -> pa.Table:
    with _open_raw(path) as fh:
        start = fh.read(1024).lstrip()
    if fmt == "jsonl" or not start.startswith(b"["):
        try:
            return pajson.read_json(str(path))
        except pa.ArrowInvalid as exc:
            line = _bad_json_line(path)
            where = f" at line {line}" if line else ""
            raise InvalidInput(
                f"{name}: not JSON Lines (one object per line){where}: {exc}",
                field="source",
                line=line,
            ) from exc
    with _text(path, "utf-8") as fh:
        try:
            records = json.load(fh)
        except json.JSONDecodeError as exc:
            raise InvalidInput(
                f"{name}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
                field="source",
                line=exc.lineno,
            ) from exc
    bad = next((i for i, r in enumerate(records) if not isinstance(r, dict)), None)
    if bad is not None:
        raise InvalidInput(
            f"{name}: item {bad} of the JSON array is not an object; loopml reads an array "
            "of records ({column: value})",
            field="source",
        )
    return pa.Table.from_pylist(records)


def _bad_json_line(path: Path) -> int | None:
    """The first line of a JSON Lines file that is not a JSON object (Arrow counts rows
    within a block from 0, so its own number is not the line)."""
    with _text(path, "utf-8") as fh:
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
