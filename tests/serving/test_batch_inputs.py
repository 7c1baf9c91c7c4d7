"""The input columns a batch prediction writes beside its answers: one Arrow type per
column across every chunk, whatever a chunk holds."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from loopml.jobs.batch import _inputs, _mixed


def test_chunks_share_the_types_read_from_every_row() -> None:
    frame = pd.DataFrame({"sparse": [None, None, "x", None], "mixed": [1, "two", None, 3.5]})
    mixed = _mixed(frame)
    assert mixed == {"mixed"}
    schema = pa.Schema.from_pandas(_inputs(frame, mixed), preserve_index=False)
    chunks = [
        pa.Table.from_pandas(
            _inputs(frame.iloc[i : i + 2], mixed), schema=schema, preserve_index=False
        )
        for i in (0, 2)
    ]
    assert all(c.schema.equals(schema) for c in chunks)  # the first, all-null chunk too
    rows = pa.concat_tables(chunks).to_pylist()
    assert [r["input_sparse"] for r in rows] == [None, None, "x", None]
    assert [r["input_mixed"] for r in rows] == ["1", "two", None, "3.5"]
