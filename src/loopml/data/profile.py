"""Per-column summaries of a dataset version, for reading and for plotting."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loopml.core.enums import ColumnKind
from loopml.core.schemas import DatasetSchema

_TOP = 10
_BINS = 20
_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def profile(table: pa.Table, schema: DatasetSchema) -> dict[str, dict[str, Any]]:
    """Numeric columns: range, mean, spread, quantiles and a histogram; others: top values."""
    out: dict[str, dict[str, Any]] = {}
    for column in schema.columns:
        values = table.column(column.name)
        if column.kind in (ColumnKind.numeric, ColumnKind.integer) and (
            pa.types.is_integer(values.type) or pa.types.is_floating(values.type)
        ):
            out[column.name] = _numeric(values)
        elif column.kind not in (ColumnKind.image, ColumnKind.identifier, ColumnKind.text):
            out[column.name] = _top(values)
    return out


def _numeric(values: pa.ChunkedArray) -> dict[str, Any]:
    x = values.to_numpy().astype(float, copy=False)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return {}
    counts, edges = np.histogram(x, bins=_BINS)
    quantiles = np.quantile(x, _QUANTILES)
    return {
        "min": float(x.min()),
        "max": float(x.max()),
        "mean": float(x.mean()),
        "std": float(x.std()),
        "quantiles": {str(q): float(v) for q, v in zip(_QUANTILES, quantiles, strict=False)},
        "histogram": {"counts": counts.tolist(), "edges": edges.tolist()},
    }


def _top(values: pa.ChunkedArray) -> dict[str, Any]:
    counts = pc.value_counts(values.drop_null())
    if len(counts) == 0:
        return {}
    order = np.argsort(-np.asarray(counts.field("counts")), kind="stable")[:_TOP]
    names = counts.field("values").take(pa.array(order)).to_pylist()
    sizes = counts.field("counts").take(pa.array(order)).to_pylist()
    return {"top": [{"value": str(v), "count": int(c)} for v, c in zip(names, sizes, strict=False)]}
