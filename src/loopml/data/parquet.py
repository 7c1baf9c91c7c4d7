"""How a dataset version's rows are stored: Parquet in the blob store, each column
encoded the way that pays for what it holds."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from loopml.store.blobs import BlobStore

_BUFFER = 1024 * 1024  # bytes gathered before each write to the blob


def put_table(blobs: BlobStore, key: str, table: pa.Table) -> dict[str, Any]:
    """Write ``table`` as Parquet at ``key``; returns the manifest entry (key, hash, size)."""
    # Floats of many values are split into byte streams (Parquet's encoding for them):
    # the sign and exponent bytes compress, the mantissa bytes do not, so LZ4 does as
    # well as zstd there (3% larger here) in a third of the time. Their min/max
    # statistics are left out (the version's profile holds them): computing them took as
    # long as the encoding. Every other column tries a dictionary; text is compressed with
    # zstd, where it pays, the rest with LZ4.
    floats = [f.name for f in table.schema if _many_floats(table.column(f.name))]
    others = [f.name for f in table.schema if f.name not in floats]
    text = {
        f.name
        for f in table.schema
        if pa.types.is_string(f.type)
        or pa.types.is_large_string(f.type)
        or pa.types.is_binary(f.type)
    }
    # Buffered: Parquet writes each page header on its own, thousands of small writes
    # that each took the GIL from the threads describing the columns.
    with blobs.writer(key) as out, pa.output_stream(out, buffer_size=_BUFFER) as sink:
        pq.write_table(
            table,
            sink,
            compression={n: "zstd" if n in text else "lz4" for n in table.column_names},
            use_dictionary=others,
            column_encoding=dict.fromkeys(floats, "BYTE_STREAM_SPLIT"),
            write_statistics=others,
        )
    return {"key": key, "sha256": out.info.sha256, "bytes": out.info.size}


def _many_floats(column: pa.ChunkedArray) -> bool:
    """Whether a column holds floats with too many distinct values for a dictionary (a
    sample of its first rows has more than one distinct value in five)."""
    if not pa.types.is_floating(column.type):
        return False
    head = column.slice(0, 20_000).drop_null()
    return len(head) > 0 and len(pc.unique(head)) > len(head) / 5


def describe_table(blobs: BlobStore, key: str) -> dict[str, Any]:
    """The manifest entry of a table already stored at ``key``."""
    info = next(b for b in blobs.list(key.rsplit("/", 1)[0]) if b.key == key)
    return {"key": key, "sha256": blobs.hash(key), "bytes": info.size}
