"""Times in a window arrive as ISO 8601 text (JSON has no time type): they are compared
with a reference's times as the same instants, and only text that is no time counts as
a type violation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from loopml.monitoring import drift_report, profile


def test_iso_text_is_read_as_the_reference_s_times() -> None:
    moments = pd.date_range("2024-01-01", periods=500, freq="h", tz="UTC")
    reference = profile(pd.DataFrame({"when": moments}))
    sent = [m.isoformat() for m in moments[:300]] + ["soon", None]
    window = profile(pa.table({"when": pa.array(sent)}), reference)
    sketch = window.columns["when"]
    assert (sketch.present, sketch.invalid, sketch.missing) == (300, 1, 1)
    seconds = moments[:300].as_unit("s").asi8
    assert sketch.mean == np.mean(seconds)
    report = drift_report(reference, window)
    (finding,) = [f for f in report["quality"] if f["check"] == "type_violations"]
    assert finding["column"] == "when" and "1 value(s)" in finding["message"]
