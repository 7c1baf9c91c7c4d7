"""Data quality of a window against its reference: each finding is raised when the window
is worse than the reference by more than the limit, and only then."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loopml.monitoring import QualityLimits, profile, quality
from loopml.monitoring.quality import QualityFinding
from loopml.monitoring.sketch import FENCE


def findings(
    reference: pd.DataFrame, current: pd.DataFrame, limits: QualityLimits | None = None
) -> list[QualityFinding]:
    ref = profile(reference)
    return quality(ref, profile(current, ref), limits)


def by_check(found: list[QualityFinding]) -> dict[str, list[QualityFinding]]:
    out: dict[str, list[QualityFinding]] = {}
    for finding in found:
        out.setdefault(finding.check, []).append(finding)
    return out


def with_missing(rng: np.random.Generator, values: np.ndarray, share: float) -> np.ndarray:
    values = values.astype(float)
    values[rng.choice(values.size, round(share * values.size), replace=False)] = np.nan
    return values


def sample(rng: np.random.Generator, rows: int, missing: float = 0.02) -> pd.DataFrame:
    plans = rng.choice(["basic", "plus", "pro"], rows).astype(object)
    plans[rng.choice(rows, round(missing * rows), replace=False)] = None
    return pd.DataFrame(
        {
            "age": with_missing(rng, rng.normal(40, 10, rows), missing),
            "spend": rng.gamma(2.0, 30.0, rows),
            "plan": plans,
        }
    )


@pytest.mark.parametrize("rows", [400, 20_000])
def test_data_like_the_reference_has_no_findings(rows: int) -> None:
    rng = np.random.default_rng(rows)
    assert findings(sample(rng, rows), sample(rng, rows)) == []


def test_a_rise_in_missing_values_is_found() -> None:
    rng = np.random.default_rng(1)
    reference, current = sample(rng, 2000), sample(rng, 1000, missing=0.2)
    found = by_check(findings(reference, current))
    missing = {f.column: f for f in found["missing_values"]}
    assert set(missing) == {"age", "plan"}
    age = missing["age"]
    assert age.value == pytest.approx(current["age"].isna().mean())  # 20%
    assert age.reference == pytest.approx(reference["age"].isna().mean())  # 2%
    assert age.severity == "warning"
    assert age.message == "`age` is missing in 20.0% of rows (reference 2.0%)"
    assert missing["plan"].value == pytest.approx(current["plan"].isna().mean())


def test_a_small_rise_in_missing_values_is_within_the_limit() -> None:
    rng = np.random.default_rng(2)
    reference, current = sample(rng, 2000), sample(rng, 2000, missing=0.06)  # +4 points
    assert "missing_values" not in by_check(findings(reference, current))
    strict = findings(reference, current, QualityLimits(missing_increase=0.03))
    assert {f.column for f in by_check(strict)["missing_values"]} == {"age", "plan"}


def test_outliers_beyond_the_reference_fences_are_found() -> None:
    rng = np.random.default_rng(3)
    reference = sample(rng, 3000)
    current = sample(rng, 1000)
    current.loc[:49, "spend"] = 10_000.0  # 5% far out
    current.loc[50:59, "spend"] = -10_000.0  # 1% far out the other way
    found = by_check(findings(reference, current))
    (outliers,) = found["outliers"]
    q1, q3 = np.quantile(reference["spend"], [0.25, 0.75], method="lower")
    low, high = q1 - FENCE * (q3 - q1), q3 + FENCE * (q3 - q1)
    spend = current["spend"]
    assert outliers.column == "spend"
    assert outliers.value == pytest.approx(((spend < low) | (spend > high)).mean())
    ref_spend = reference["spend"]
    assert outliers.reference == pytest.approx(((ref_spend < low) | (ref_spend > high)).mean())
    assert f"[{low:.4g}, {high:.4g}]" in outliers.message
    assert outliers.message.startswith(f"`spend` has {outliers.value:.1%} outliers")


def test_as_many_outliers_as_the_reference_is_no_finding() -> None:
    rng = np.random.default_rng(4)
    reference, current = sample(rng, 3000), sample(rng, 1000)
    reference.loc[:149, "spend"] = 50_000.0  # 5% far out, in both
    current.loc[:49, "spend"] = 50_000.0
    assert "outliers" not in by_check(findings(reference, current))


def test_unseen_categories_are_found_with_examples() -> None:
    rng = np.random.default_rng(5)
    reference, current = sample(rng, 2000), sample(rng, 1000)
    current.loc[:59, "plan"] = "enterprise"
    current.loc[60:79, "plan"] = "trial"
    current.loc[80:84, "plan"] = "legacy"
    current.loc[85:86, "plan"] = "gift"
    (unseen,) = by_check(findings(reference, current))["unseen_categories"]
    assert unseen.column == "plan"
    present = current["plan"].notna().sum()
    assert unseen.value == pytest.approx(87 / present)
    # The most common new values are named, most common first.
    assert "(e.g. 'enterprise', 'trial', 'legacy')" in unseen.message
    assert "'gift'" not in unseen.message
    assert f"{87 / present:.1%} values the reference never had" in unseen.message


def test_a_few_unseen_values_are_within_the_limit() -> None:
    rng = np.random.default_rng(6)
    reference, current = sample(rng, 2000), sample(rng, 1000)
    current.loc[:4, "plan"] = "trial"  # 0.5%
    assert "unseen_categories" not in by_check(findings(reference, current))
    strict = by_check(findings(reference, current, QualityLimits(unseen_rate=0.001)))
    assert "'trial'" in strict["unseen_categories"][0].message


def test_text_in_a_numeric_column_is_a_type_violation_not_a_missing_value() -> None:
    rng = np.random.default_rng(7)
    reference = sample(rng, 1000, missing=0.0)
    current = sample(rng, 200, missing=0.0)
    current["age"] = pd.Series(current["age"].tolist()[:180] + ["forty"] * 20, dtype=object)
    found = findings(reference, current)
    checks = by_check(found)
    (violation,) = checks["type_violations"]
    assert violation.column == "age" and violation.severity == "error"
    assert violation.value == pytest.approx(20 / 200)
    assert violation.message == "`age` should hold numbers; 20 value(s) (10.0%) were not"
    assert "missing_values" not in checks  # no value was missing


def test_missing_and_extra_columns_are_found_most_severe_first() -> None:
    rng = np.random.default_rng(8)
    reference = sample(rng, 500)
    current = sample(rng, 500, missing=0.3).drop(columns=["spend"])
    current["coupon"] = "none"
    current["score"] = 1.0
    found = findings(reference, current)
    checks = by_check(found)
    (gone,) = checks["missing_column"]
    assert (gone.column, gone.severity) == ("spend", "error")
    assert gone.message == "`spend` is missing: the reference has it, no row of this window does"
    (extra,) = checks["extra_columns"]
    assert extra.severity == "info" and extra.value == 2
    assert extra.message.endswith("were ignored: coupon, score")
    order = {"error": 0, "warning": 1, "info": 2}
    assert [order[f.severity] for f in found] == sorted(order[f.severity] for f in found)
    assert found[0].check == "missing_column" and found[-1].check == "extra_columns"
    assert "missing_values" in checks  # warnings sit between


def test_findings_are_plain_dicts() -> None:
    rng = np.random.default_rng(9)
    reference = sample(rng, 500)
    current = sample(rng, 500).drop(columns=["plan"])
    (finding,) = findings(reference, current)
    assert finding.to_dict() == {
        "check": "missing_column",
        "column": "plan",
        "severity": "error",
        "value": 1.0,
        "reference": None,
        "message": "`plan` is missing: the reference has it, no row of this window does",
    }
