"""Windows made of parts: a column one part lacks counts as missing in the whole; blank
text and "NaN" in a number column are missing values, as serving takes them; a nested
value where the reference had text is compared as its JSON text."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from loopml.monitoring import drift_report, profile


def test_a_column_one_hour_lacks_is_missing_in_the_merged_window() -> None:
    rng = np.random.default_rng(5)
    reference = profile(pd.DataFrame({"x": rng.normal(size=400), "y": rng.normal(size=400)}))
    with_x = profile(pd.DataFrame({"x": rng.normal(size=100), "y": rng.normal(size=100)}),
                     reference)  # fmt: skip
    without_x = profile(pd.DataFrame({"y": rng.normal(size=100)}), reference)
    window = with_x.merge(without_x)
    assert (window.columns["x"].rows, window.columns["x"].missing) == (200, 100)
    findings = {f["check"]: f for f in drift_report(reference, window)["quality"]}
    assert findings["missing_values"]["column"] == "x"
    assert findings["missing_values"]["value"] == 0.5
    assert "missing_column" not in findings
    alone = {f["check"] for f in drift_report(reference, without_x)["quality"]}
    assert "missing_column" in alone  # no row of that window has it


def test_blank_and_nan_text_are_missing_but_words_are_violations() -> None:
    reference = profile(pd.DataFrame({"age": np.arange(50.0)}))
    sent = pa.table({"age": pa.array(["31", "", "NaN", "nan", "forty", "n/a", "42"])})
    sketch = profile(sent, reference).columns["age"]
    assert (sketch.present, sketch.missing, sketch.invalid) == (2, 3, 2)


def test_nested_values_in_a_category_column_are_compared_as_json_text() -> None:
    reference = profile(pd.DataFrame({"tag": ["a", "b"] * 50}))
    sent = pa.table({"tag": pa.array([["a"], ["b", "c"], None])})
    sketch = profile(sent, reference).columns["tag"]
    assert sketch.counts == {'["a"]': 1, '["b", "c"]': 1} and sketch.missing == 1
    assert sketch.unseen == 2
