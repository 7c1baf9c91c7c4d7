"""CSV and TSV files: sniffing, reading, and saying where a malformed one breaks.

Arrow's reader parses blocks of the file on every core and settles each column's type
over the whole file. What it would accept silently is checked: an unclosed quote (Arrow
reads the rest of the file into one value) and text that is not in the named encoding
(Arrow would keep it as bytes). A line with too many or too few fields is found again
with Python's reader, which names the line and the column.
"""

from __future__ import annotations

import codecs
import csv
import mmap
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from loopml.core.errors import InvalidInput
from loopml.data.rawfile import COMPRESSED, open_raw, text
from loopml.data.sniff import SNIFF_BYTES, check_encoding, sniff_csv, sniff_decimal

_BLOCK_BYTES = 2 * 1024 * 1024  # parsed blocks in flight: memory against speed
_SCAN_BYTES = 1024 * 1024
# Encodings in which quote, delimiter and newline are the same single bytes as in ASCII.
_BYTE_SAFE = ("utf-8", "utf-8-sig", "utf8", "latin-1", "iso-8859-1", "ascii")
# pandas' default missing-value markers, so that a file means what it meant to pandas.
_MISSING = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
    "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
]  # fmt: skip


def read_csv(path: Path, name: str, fmt: str, options: dict[str, Any]) -> pa.Table:
    """Read a CSV/TSV file whole; options ``delimiter``, ``encoding``, ``header`` and
    ``decimal`` (the decimal mark, '.' or ',')."""
    delimiter, encoding = sniff_csv(path, fmt)
    delimiter = options.get("delimiter") or delimiter
    encoding = options.get("encoding") or encoding
    check_encoding(encoding)
    if len(delimiter) != 1 or not delimiter.isascii() or delimiter in '"\r\n':
        raise InvalidInput(
            f"delimiter {delimiter!r} is not one character of ASCII other than a quote or a "
            "line break",
            field="delimiter",
        )
    header = options.get("header", True)
    try:
        names = _header(path, delimiter, encoding, header)
    except UnicodeError as exc:  # a codec that cannot read it at all (UTF-16 without a mark)
        raise InvalidInput(
            f"{name} cannot be read as {encoding} text: {exc}", field="encoding"
        ) from exc
    if header:
        repeated = sorted({n for n in names if names.count(n) > 1 and n.strip()})
        if repeated:
            raise InvalidInput(f"{name}: repeated column names {repeated}", field="source")
        blank = next((i for i, n in enumerate(names) if not n.strip()), None)
        if blank is not None:
            raise InvalidInput(
                f"{name}: column {blank + 1} has no name in the header", field="source"
            )
    # A file without quotes has no value that holds a newline: Arrow then splits blocks
    # at any newline, and parses in half the time.
    quotes = _quotes(path) if _byte_safe(encoding) else None
    decimal = options.get("decimal") or sniff_decimal(path, delimiter, encoding)
    if decimal not in (".", ",") or decimal == delimiter:
        raise InvalidInput(
            f"decimal mark {decimal!r}: loopml reads '.' or ',' (not the delimiter)",
            field="decimal",
        )
    # Columns the caller calls text (categorical, identifier) keep their characters:
    # the zip code 00037 is not the number 37.
    text = {c: pa.string() for c in options.get("text_columns") or []}
    table = _parse(path, name, delimiter, encoding, header, decimal, text, multiline=quotes != 0)
    if quotes is None or quotes % 2 == 1 or (quotes and _last_row_spans_lines(table)):
        # Maybe a quote that never closes: Arrow then reads the rest of the file into the
        # last row's last value (a stray inch mark elsewhere can make the count even).
        problem = _diagnose(path, name, delimiter, encoding)
        if problem is not None:
            raise problem
    binary = [f.name for f in table.schema if pa.types.is_binary(f.type)]
    if binary:
        raise _not_encoded(path, name, encoding, binary[0])
    if table.num_rows == 0:
        raise InvalidInput(f"{name} has a header but no rows", field="source")
    return table


def _last_row_spans_lines(table: pa.Table) -> bool:
    """Whether a text value of the last row holds a line break."""
    if table.num_rows == 0:
        return False
    last = table.slice(table.num_rows - 1).to_pylist()[0]
    return any(isinstance(v, str) and ("\n" in v or "\r" in v) for v in last.values())


def _parse(
    path: Path,
    name: str,
    delimiter: str,
    encoding: str,
    header: bool,
    decimal: str,
    text: dict[str, pa.DataType],
    *,
    multiline: bool,
) -> pa.Table:
    utf8 = encoding.lower().replace("_", "-") in ("utf-8", "utf-8-sig", "utf8")
    read_options = pacsv.ReadOptions(
        encoding="utf8" if utf8 else encoding,
        block_size=_BLOCK_BYTES,
        autogenerate_column_names=not header,
    )
    parse_options = pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=multiline)
    try:
        types = _first_block_types(path, read_options, parse_options, decimal)
        if types:
            try:
                return _arrow_read(path, read_options, parse_options, decimal, types | text)
            except pa.ArrowInvalid as exc:
                if "conversion error" not in str(exc):
                    raise
                # A later value that the first block's types cannot hold (text after
                # numbers): the whole file decides, as it would have from the start.
        return _arrow_read(path, read_options, parse_options, decimal, text)
    except UnicodeError as exc:
        raise _not_encoded(path, name, encoding, None) from exc
    except pa.ArrowInvalid as exc:
        if "Empty CSV file" in str(exc):
            with open_raw(path) as fh:
                written = bool(fh.read(SNIFF_BYTES).strip())
            what = "has a header but no rows" if written and header else "is empty"
            raise InvalidInput(f"{name} {what}", field="source") from exc
        problem = _diagnose(path, name, delimiter, encoding)
        raise problem or InvalidInput(
            f"{name} is not a readable CSV file: {exc}", field="source"
        ) from exc


def _arrow_read(
    path: Path,
    read_options: pacsv.ReadOptions,
    parse_options: pacsv.ParseOptions,
    decimal: str,
    types: dict[str, pa.DataType],
) -> pa.Table:
    convert_options = pacsv.ConvertOptions(
        null_values=_MISSING, strings_can_be_null=True, column_types=types, decimal_point=decimal
    )
    with open_raw(path) as fh:
        return pacsv.read_csv(
            fh, read_options=read_options, parse_options=parse_options,
            convert_options=convert_options,
        )  # fmt: skip


def _first_block_types(
    path: Path, read_options: pacsv.ReadOptions, parse_options: pacsv.ParseOptions, decimal: str
) -> dict[str, pa.DataType]:
    """Column types as the first block of a large file shows them ({} for a small file).

    Arrow keeps every parsed block while it still infers types, in case a later one
    changes them: about twice the table in memory. With the types given, each block is
    converted and let go.
    """
    with open_raw(path) as fh:
        head = fh.read(_BLOCK_BYTES)
        if len(head) < _BLOCK_BYTES or not fh.read(1):
            return {}
    cut = head.rfind(b"\n")
    if cut <= 0:
        return {}
    try:
        sample = pacsv.read_csv(
            pa.BufferReader(head[: cut + 1]),
            read_options=read_options,
            parse_options=parse_options,
            convert_options=pacsv.ConvertOptions(
                null_values=_MISSING, strings_can_be_null=True, decimal_point=decimal
            ),
        )
    except (pa.ArrowInvalid, UnicodeError):
        return {}  # cut inside a quoted value, or a character: the whole read will say
    return {f.name: f.type for f in sample.schema if not pa.types.is_null(f.type)}


def _quotes(path: Path) -> int:
    """How many quote characters the file holds (an odd number: one never closes)."""
    if path.stat().st_size and not path.name.lower().endswith(COMPRESSED):
        with path.open("rb") as raw, mmap.mmap(raw.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            if mm.find(b'"') < 0:  # memchr over the mapped file: no copy, no count
                return 0
    count = 0
    with open_raw(path) as fh:
        while block := fh.read(_SCAN_BYTES):
            count += block.count(b'"')
    return count


def _not_encoded(path: Path, name: str, encoding: str, column: str | None) -> InvalidInput:
    """The first byte that is not ``encoding`` text, named with the column it is in."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = 0
    where = ""
    with open_raw(path) as fh:
        while block := fh.read(_SCAN_BYTES):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                where = f" (byte {offset + exc.start})"
                break
            except UnicodeError:  # a codec's own complaint (UTF-16 without its byte mark)
                break
            offset += len(block)
    inside = f", in column {column!r}" if column else ""
    return InvalidInput(
        f"{name} is not {encoding} text{where}{inside}; name its encoding (e.g. encoding=latin-1)",
        field="encoding",
    )


def _byte_safe(encoding: str) -> bool:
    return encoding.lower().replace("_", "-") in _BYTE_SAFE or encoding.lower().startswith("cp125")


def _header(path: Path, delimiter: str, encoding: str, header: bool) -> list[str]:
    with text(path, encoding) as fh:
        first = next(csv.reader(fh, delimiter=delimiter), [])
    return first if header else [f"f{i}" for i in range(len(first))]


def _diagnose(path: Path, name: str, delimiter: str, encoding: str) -> InvalidInput | None:
    """The first line that breaks the file's shape, to say where it is (None: none does)."""
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))  # Arrow reads any length
    with text(path, encoding) as fh:
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
    return None


def _unclosed(name: str, line: int) -> InvalidInput:
    return InvalidInput(
        f"{name}: line {line}: a quoted value that starts on this line is never closed "
        "(a missing or stray '\"')",
        field="source",
        line=line,
    )
