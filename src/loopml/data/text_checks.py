"""Checks of a text column's values: numbers mixed with text, one value spelled in
different ways, and line breaks inside values (rows merged by a stray quote)."""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from loopml.core.enums import Severity
from loopml.core.schemas import QualityFinding
from loopml.data.findings import finding, pct

_TEXT_SAMPLE = 10_000  # values read as Python strings: the dearest to look at
_NORMALISE = re.compile(r"[\s_\-.]+")
_RARE = 0.01  # at most this share of values with line breaks: a stray quote, not notes


def mixed(name: str, values: pa.ChunkedArray) -> list[QualityFinding]:
    if not _is_text(values.type):
        return []
    head = values.slice(0, _TEXT_SAMPLE).drop_null()
    if len(head) < min(_TEXT_SAMPLE, len(values) - values.null_count):  # gaps at the start
        head = values.drop_null().slice(0, _TEXT_SAMPLE)
    if len(head) == 0 or not pc.any(pc.match_substring_regex(head, r"\d")).as_py():
        return []  # no digit anywhere: no numbers to mix with
    sample = pd.Series(head.to_pylist(), dtype=object)
    numeric = pd.to_numeric(sample.str.strip(), errors="coerce").notna()
    share = float(numeric.mean())
    if not 0.05 <= share < 1.0:
        return []
    text = sample[~numeric].unique()[:3].tolist()
    numbers = sample[numeric].unique()[:2].tolist()
    return [
        finding(
            "mixed_types",
            Severity.warning,
            name,
            f"{name!r} mixes numbers ({', '.join(map(repr, numbers))}) with text "
            f"({', '.join(map(repr, text))}): {pct(1 - share, 1)} of values are not numbers; "
            "if those mean 'missing', re-export them as empty cells",
            numeric_share=share,
            text_examples=text,
        )
    ]


def near_duplicates(name: str, values: pa.ChunkedArray) -> list[QualityFinding]:
    if not _is_text(values.type):
        return []
    distinct = [v for v in pc.unique(values).to_pylist() if v is not None]
    if len(distinct) > 10_000:
        return []
    groups: dict[str, list[str]] = defaultdict(list)
    for value in distinct:
        groups[_NORMALISE.sub(" ", value).strip().casefold()].append(value)
    clashes = [sorted(g) for g in groups.values() if len(g) > 1]
    if not clashes:
        return []
    shown = "; ".join(" / ".join(repr(v) for v in g) for g in clashes[:5])
    return [
        finding(
            "near_duplicate_values",
            Severity.warning,
            name,
            f"{name!r} spells the same value in different ways ({shown}): they count as "
            "different categories until they are made the same",
            groups=clashes[:20],
        )
    ]


def line_breaks(name: str, values: pa.ChunkedArray) -> list[QualityFinding]:
    """A few values holding line breaks: a quote opened where none was meant merges the
    lines after it into one value (valid CSV, so no reader can refuse it)."""
    if not _is_text(values.type) or not _any_break(values):
        return []
    holds = pc.or_(pc.match_substring(values, "\n"), pc.match_substring(values, "\r"))
    count = int(pc.sum(holds).as_py() or 0)
    present = len(values) - values.null_count
    if count == 0 or count > max(1, _RARE * present):
        return []  # none, or a column of multi-line text
    row = int(pc.index(holds, True).as_py()) + 1
    return [
        finding(
            "line_breaks",
            Severity.warning,
            name,
            f"{count} value(s) of {name!r} hold line breaks ({pct(count, present)}; the first "
            f"in row {row}): if the file has a quote that opens a value where none was meant, "
            "the lines after it were merged into that value; check the source around that row",
            count=count,
            first_row=row,
        )
    ]


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _any_break(values: pa.ChunkedArray) -> bool:
    """Whether a line-break byte is anywhere in the column's text (its raw bytes, read in
    place: a column without one costs a scan, not a search per value)."""
    for chunk in values.chunks:
        data = chunk.buffers()[2]
        if data is None:
            continue
        raw = np.frombuffer(data, dtype=np.uint8)
        if np.any((raw == 10) | (raw == 13)):
            return True
    return False
