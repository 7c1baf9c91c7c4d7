"""Guessing how a text file is written: its delimiter, its encoding and its decimal
mark, from its first bytes; and checking an encoding a caller names."""

from __future__ import annotations

import codecs
import csv
import re
import unicodedata
from pathlib import Path

from loopml.core.errors import InvalidInput
from loopml.data.rawfile import open_raw

SNIFF_BYTES = 64 * 1024
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_COMMA_NUMBER = re.compile(r"[-+]?\d+,\d+")
_DOT_NUMBER = re.compile(r"[-+]?\d*\.\d+")
_THOUSANDS = re.compile(r"[-+]?[1-9]\d{0,2}(,\d{3})+")  # 12,500: a thousand, or a fraction


def sniff_csv(path: Path, fmt: str = "csv") -> tuple[str, str]:
    """Guess ``(delimiter, encoding)`` from the start of a file."""
    with open_raw(path) as fh:
        head = fh.read(SNIFF_BYTES)
    encoding = _sniff_encoding(head)
    text = head.decode(encoding, errors="ignore")
    lines = text.splitlines()
    if len(head) == SNIFF_BYTES and len(lines) > 1:
        text = "\n".join(lines[:-1])  # the last line may be cut short
    default = "\t" if fmt == "tsv" else ","
    try:
        delimiter = csv.Sniffer().sniff(text, delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = default
    if fmt == "tsv" and "\t" in text:
        delimiter = "\t"
    return delimiter, encoding


def sniff_decimal(path: Path, delimiter: str, encoding: str) -> str:
    """',' when the start of a semicolon file writes its fractions that way (``3,01``,
    as European spreadsheets export; ``12,500`` could be a thousand and does not count)
    and none with '.', else '.'."""
    if delimiter != ";":  # a tab or a pipe file's "1,234" is as likely a thousand
        return "."
    with open_raw(path) as fh:
        head = fh.read(SNIFF_BYTES).decode(encoding, errors="replace")
    lines = head.splitlines()[1:-1] or head.splitlines()[1:]
    commas = dots = 0
    for record in csv.reader(lines, delimiter=delimiter):
        for value in record:
            value = value.strip()
            commas += bool(_COMMA_NUMBER.fullmatch(value)) and not _THOUSANDS.fullmatch(value)
            dots += bool(_DOT_NUMBER.fullmatch(value))
    return "," if commas and not dots else "."


def _sniff_encoding(head: bytes) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    # UTF-16 without its byte mark: ASCII characters leave a zero byte beside each one
    # (and only there: a file padded with zeros has them on both sides).
    odd, even = head[1::2].count(0), head[0::2].count(0)
    half = len(head) / 2
    if len(head) >= 4 and odd > 0.4 * half and even < 0.05 * half:
        return "utf-16-le"
    if len(head) >= 4 and even > 0.4 * half and odd < 0.05 * half:
        return "utf-16-be"
    sample = head[: max(0, len(head) - 4)]  # a multi-byte character may be cut at the end
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    if _mostly_utf8(sample):
        return "utf-8"  # with a stray byte, which reading it will name
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


def _mostly_utf8(sample: bytes) -> bool:
    """Whether UTF-8 letters of the Latin alphabets (and typographic punctuation)
    outnumber the bytes that are not UTF-8 four to one. Text in a legacy code page rarely
    forms a UTF-8 character, and when it does, mostly not a Latin one (cp1250's ``ÓŁ``
    reads as a Cyrillic letter)."""
    decoded = sample.decode("utf-8", errors="replace")
    invalid = decoded.count("\ufffd")
    latin = sum(1 for ch in decoded if 0xC0 <= ord(ch) <= 0x24F or 0x2010 <= ord(ch) <= 0x20CF)
    return latin >= 3 and latin >= 4 * invalid


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


def check_encoding(encoding: str) -> None:
    try:
        info = codecs.lookup(encoding)
    except LookupError:
        raise InvalidInput(f"unknown text encoding {encoding!r}", field="encoding") from None
    if not getattr(info, "_is_text_encoding", True):  # rot13, hex, base64: not text
        raise InvalidInput(f"{encoding!r} is not a text encoding", field="encoding")
