"""Opening a file as bytes (decompressed when its suffix says so) or as text."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pyarrow as pa

# Suffixes of the compressed files open_raw reads.
COMPRESSED = (".gz", ".bz2", ".zst", ".lz4")
_CODECS = dict(zip(COMPRESSED, ("gzip", "bz2", "zstd", "lz4"), strict=True))


def open_raw(path: Path) -> Any:
    """A binary stream of the file, decompressed when its suffix says so (``.GZ`` too)."""
    lower = path.name.lower()
    codec = next((c for suffix, c in _CODECS.items() if lower.endswith(suffix)), None)
    return pa.input_stream(str(path), compression=codec)


def text(path: Path, encoding: str) -> io.TextIOWrapper:
    return io.TextIOWrapper(open_raw(path), encoding=encoding, errors="replace", newline="")
