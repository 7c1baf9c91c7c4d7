"""Items: what a label is attached to, identified the same way in every version.

An image is its SHA-256; a row is the value of the dataset's identifier column when it
has one, otherwise a hash of the row's values without the target (so that labelling a
row does not change its key).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from loopml.core.enums import ColumnKind
from loopml.core.schemas import DatasetSchema


def key_column(schema: DatasetSchema) -> str | None:
    """The column whose values are the item keys, if the dataset has one."""
    for kind in (ColumnKind.image, ColumnKind.identifier):
        for column in schema.columns:
            if column.kind is kind and column.name != schema.target:
                return column.name
    return None


def item_keys(rows: pa.Table, schema: DatasetSchema) -> np.ndarray:
    """The key of every row, as strings."""
    column = key_column(schema)
    if column is not None:
        return np.asarray([str(v) for v in rows.column(column).to_pylist()], dtype=object)
    features = rows.drop_columns([schema.target]) if schema.target in rows.column_names else rows
    hashed = pd.util.hash_pandas_object(features.to_pandas(), index=False).to_numpy()
    return np.asarray([f"row-{h:016x}" for h in hashed], dtype=object)
