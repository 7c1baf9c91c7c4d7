"""CSV and TSV files: sniffing, reading, and saying where a malformed one breaks.

pandas' C parser reads (the fastest here, with Arrow-backed columns that carry over to
Arrow for free), in chunks so that memory stays near the size of the result. It pads a
line with too few fields; a vectorised count of the fields of every line, made while
pandas parses, refuses those, naming the line and the missing column.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from loopml.core.errors import InvalidInput

_SNIFF_BYTES = 64 * 1024
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_CHUNK_BYTES = 64 * 1024 * 1024
_SCAN_BYTES = 16 * 1024 * 1024
# Encodings in which quote, delimiter and newline are the same single bytes as in ASCII.
_BYTE_SAFE = ("utf-8", "utf-8-sig", "utf8", "latin-1", "iso-8859-1", "ascii")


def open_raw(path: Path) -> Any:
    """A binary stream of the file, decompressed when its suffix says so."""
    return pa.input_stream(str(path), compression="detect")


def text(path: Path, encoding: str) -> io.TextIOWrapper:
    return io.TextIOWrapper(open_raw(path), encoding=encoding, errors="replace", newline="")


def read_csv(path: Path, name: str, fmt: str, options: dict[str, Any]) -> pa.Table:
    """Read a CSV/TSV file whole; options ``delimiter``, ``encoding``, ``header``."""
    parts = list(iter_csv(path, name, fmt, options))
    if not parts:
        raise InvalidInput(f"{name} has a header but no rows", field="source")
    return concat(parts)


def concat(parts: list[pa.Table]) -> pa.Table:
    """One table of chunks read on their own: numbers with and without gaps take the wider
    type, and a column that is integers in one chunk and text in another becomes text."""
    try:
        return pa.concat_tables(parts, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    columns = {}
    for name in parts[0].column_names:
        fields = [p.schema.field(name) for p in parts]
        try:
            kind = (
                pa.unify_schemas([pa.schema([f]) for f in fields], promote_options="permissive")
                .field(name)
                .type
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            kind = pa.string()
        columns[name] = pa.chunked_array(
            [chunk for p in parts for chunk in p.column(name).cast(kind).chunks], type=kind
        )
    return pa.table(columns)


def iter_csv(path: Path, name: str, fmt: str, options: dict[str, Any]) -> Iterator[pa.Table]:
    """The rows of a CSV/TSV file in chunks of about 64 MB of text.

    A line with too few fields is an :class:`InvalidInput` raised after the last chunk
    (the check runs beside the parser), so a consumer must not keep what it wrote of the
    chunks when iteration fails.
    """
    delimiter, encoding = sniff_csv(path, fmt)
    delimiter = options.get("delimiter") or delimiter
    encoding = options.get("encoding") or encoding
    _check_encoding(encoding)
    header = options.get("header", True)
    names = _header(path, delimiter, encoding, header)
    if header:
        # pandas renames repeated names (x, x.1); refuse them as every other format does.
        repeated = sorted({n for n in names if names.count(n) > 1 and n.strip()})
        if repeated:
            raise InvalidInput(f"{name}: repeated column names {repeated}", field="source")
    with ThreadPoolExecutor(1) as pool:
        shape = None
        if _byte_safe(encoding) and delimiter.isascii():
            shape = pool.submit(_short_line, path, delimiter, len(names), header)
        yield from _parse(path, name, delimiter, encoding, header)
        short = shape.result() if shape is not None else None
    if short is not None:
        line, fields = short
        missing = names[fields] if header and fields < len(names) else f"field {fields + 1}"
        raise InvalidInput(
            f"{name}: line {line} has {fields} fields where the header has {len(names)} "
            f"(column {missing!r} is missing)",
            field="source",
            line=line,
            column=missing,
        )


def _parse(
    path: Path, name: str, delimiter: str, encoding: str, header: bool
) -> Iterator[pa.Table]:
    rows_per_chunk = max(10_000, _CHUNK_BYTES // max(1, _line_bytes(path)))
    try:
        chunks = pd.read_csv(
            path,
            sep=delimiter,
            encoding=encoding,
            header=0 if header else None,
            dtype_backend="pyarrow",
            engine="c",
            chunksize=rows_per_chunk,
        )
        for chunk in chunks:
            yield _named(pa.Table.from_pandas(chunk, preserve_index=False), name, header)
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


def _named(table: pa.Table, name: str, header: bool) -> pa.Table:
    columns = [str(c) for c in table.column_names]
    if not header:
        return table.rename_columns([f"f{i}" for i in range(len(columns))])
    unnamed = [c for c in columns if c.startswith("Unnamed: ")]
    if unnamed:
        position = columns.index(unnamed[0]) + 1
        raise InvalidInput(f"{name}: column {position} has no name in the header", field="source")
    return table.rename_columns(columns)


def _line_bytes(path: Path) -> int:
    with open_raw(path) as fh:
        head = fh.read(_SNIFF_BYTES)
    return max(1, len(head) // max(1, head.count(b"\n")))


def _byte_safe(encoding: str) -> bool:
    return encoding.lower().replace("_", "-") in _BYTE_SAFE or encoding.lower().startswith("cp125")


def _short_line(path: Path, delimiter: str, expected: int, header: bool) -> tuple[int, int] | None:
    """The first record with fewer fields than the header: (line number, fields).

    Quotes are paired across the whole file (RFC 4180 doubles a quote inside a quoted
    value, which keeps the pairing), so delimiters and newlines inside quoted values are
    not counted. Blank lines are skipped, as pandas skips them.
    """
    sep, quote, newline, cr = ord(delimiter), ord('"'), ord("\n"), ord("\r")
    inside = False  # whether the bytes so far end inside a quoted value
    carry_fields = carry_bytes = 0  # the unfinished record at the end of the last block
    carry_cr = False  # whether that record's last byte is a carriage return
    lines = 0  # newlines in earlier blocks
    header_pending = header
    with open_raw(path) as fh:
        while True:
            block = fh.read(_SCAN_BYTES)
            data = np.frombuffer(block, dtype=np.uint8)
            last = len(block) == 0
            if last:  # the final record may have no newline
                ends = np.array([-1]) if carry_bytes else np.array([], dtype=np.int64)
                fields = np.array([carry_fields + 1])
                sizes = np.array([carry_bytes])
                blank = np.array([carry_bytes == 0 or (carry_bytes == 1 and carry_cr)])
            else:
                # Only the positions of quotes, newlines and delimiters are looked at: a
                # byte is inside quotes when an odd number of quotes precede it.
                quotes = np.flatnonzero(data == quote)
                newlines = np.flatnonzero(data == newline)
                seps = np.flatnonzero(data == sep)
                if len(quotes) or inside:
                    flip = (np.searchsorted(quotes, newlines) & 1).astype(bool)
                    ends = newlines[flip == inside]
                    flip = (np.searchsorted(quotes, seps) & 1).astype(bool)
                    seps = seps[flip == inside]
                else:
                    ends = newlines
                fields = np.diff(np.searchsorted(seps, np.r_[-1, ends], side="right")) + 1
                sizes = np.diff(np.r_[-1, ends]) - 1
                if len(ends):
                    fields[0] += carry_fields
                    sizes[0] += carry_bytes
                ends_cr = np.zeros(len(ends), dtype=bool)
                ends_cr[ends > 0] = data[ends[ends > 0] - 1] == cr
                ends_cr[ends == 0] = carry_cr
                blank = (sizes == 0) | ((sizes == 1) & ends_cr)
            records = np.flatnonzero(~blank[: len(ends)]) if len(ends) else np.array([], int)
            if header_pending and len(records):
                records = records[1:]
                header_pending = False
            bad = records[fields[records] < expected]
            if len(bad):
                first = int(bad[0])
                if last:
                    return lines + 1, int(fields[first])
                newlines_before = int(np.searchsorted(newlines, ends[first]))
                return lines + newlines_before + 1, int(fields[first])
            if last:
                return None
            tail = int(ends[-1]) + 1 if len(ends) else 0
            rest = data[tail:]
            carry_fields = (
                len(seps) - int(np.searchsorted(seps, tail)) + (0 if len(ends) else carry_fields)
            )
            carry_bytes = len(rest) + (0 if len(ends) else carry_bytes)
            carry_cr = bool(rest[-1] == cr) if len(rest) else (carry_cr and not len(ends))
            inside = inside != bool(len(quotes) & 1)
            lines += len(newlines)


def sniff_csv(path: Path, fmt: str = "csv") -> tuple[str, str]:
    """Guess ``(delimiter, encoding)`` from the start of a file."""
    with open_raw(path) as fh:
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


def _check_encoding(encoding: str) -> None:
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise InvalidInput(f"unknown text encoding {encoding!r}", field="encoding") from None


def _header(path: Path, delimiter: str, encoding: str, header: bool) -> list[str]:
    with text(path, encoding) as fh:
        first = next(csv.reader(fh, delimiter=delimiter), [])
    return first if header else [f"f{i}" for i in range(len(first))]


def _diagnose(path: Path, name: str, delimiter: str, encoding: str, message: str) -> InvalidInput:
    """Find the first line that breaks the file's shape, to say where it is."""
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
    return InvalidInput(f"{name} is not a readable CSV file: {message}", field="source")


def _unclosed(name: str, line: int) -> InvalidInput:
    return InvalidInput(
        f"{name}: line {line}: a quoted value that starts on this line is never closed "
        "(a missing or stray '\"')",
        field="source",
        line=line,
    )
