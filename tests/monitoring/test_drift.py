"""Drift between a reference and a window: planted drift is found and nothing else, the
verdicts read as sentences, options are checked, and profiles of any pandas frame merge
and travel as JSON without changing a verdict."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from loopml.core.errors import InvalidInput
from loopml.monitoring import DriftOptions, Profile, compare, drift_report, profile
from loopml.monitoring.sketch import CategorySketch, NumericSketch

PLANS = ["basic", "plus", "pro"]
REGIONS = ["north", "south", "east", "west"]
DRIFTED = {"shift", "spread", "plan"}
# A seed whose undrifted columns scipy finds far from drift at 500 rows (every p > 0.2):
# a 5% test flags one of three steady columns by chance about one seed in seven.
SMALL_SEED = 7


def frames(rows: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A reference and a window of ``rows`` rows each, with drift planted in three of six
    columns: a shifted mean, a doubled spread and changed category shares."""
    rng = np.random.default_rng(seed)

    def draw(shift: float, spread: float, plans: list[float]) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "shift": rng.normal(shift, 1.0, rows),
                "spread": rng.normal(0.0, spread, rows),
                "plan": rng.choice(PLANS, rows, p=plans),
                "steady": rng.normal(10.0, 3.0, rows),
                "visits": rng.poisson(20, rows),
                "region": rng.choice(REGIONS, rows),
            }
        )

    return draw(0.0, 1.0, [0.5, 0.3, 0.2]), draw(0.5, 2.0, [0.2, 0.3, 0.5])


def report_of(
    reference: pd.DataFrame, current: pd.DataFrame, options: DriftOptions | None = None
) -> tuple[Profile, Profile, dict]:
    ref = profile(reference)
    cur = profile(current, ref)
    return ref, cur, compare(ref, cur, options).to_dict()


@pytest.mark.parametrize(
    ("rows", "tests"),
    [
        (500, {"shift": "ks", "steady": "ks", "visits": "ks", "plan": "chisquare"}),
        (50_000, {"shift": "wasserstein", "visits": "wasserstein", "plan": "jensenshannon"}),
    ],
)
def test_planted_drift_is_found_and_nothing_else(rows: int, tests: dict[str, str]) -> None:
    reference, current = frames(rows, seed=SMALL_SEED if rows == 500 else rows)
    _, _, report = report_of(reference, current)
    by_name = {c["column"]: c for c in report["columns"]}
    assert set(by_name) == set(reference.columns)
    assert set(report["drifted_columns"]) == DRIFTED
    for name, test in tests.items():
        assert by_name[name]["test"] == test
    assert report["share"] == pytest.approx(0.5)
    assert report["dataset_drifted"]  # half the columns, at the default share of one half
    for column in report["columns"]:
        assert column["reference_rows"] == column["current_rows"] == rows


def test_small_verdicts_are_scipys() -> None:
    """At 500 rows every numeric verdict is the one scipy's KS test gives on the values."""
    reference, current = frames(500, seed=SMALL_SEED)
    _, _, report = report_of(reference, current)
    for column in report["columns"]:
        name = column["column"]
        if column["test"] == "ks":
            p = stats.ks_2samp(reference[name], current[name]).pvalue
            assert column["statistic"] == pytest.approx(p, rel=1e-12)
            assert column["drifted"] == (p < 0.05)


@pytest.mark.parametrize(
    ("share", "expected"), [(0.1, True), (0.5, True), (0.51, False), (1.0, False)]
)
def test_dataset_drift_follows_drift_share(share: float, expected: bool) -> None:
    reference, current = frames(500, seed=SMALL_SEED)
    _, _, report = report_of(reference, current, DriftOptions(drift_share=share))
    assert report["share"] == pytest.approx(3 / 6)  # three of six columns drifted
    assert report["dataset_drifted"] is expected
    assert report["drift_share"] == share
    message = report["message"]
    assert message.startswith("the data drifted" if expected else "no dataset drift")
    assert "3 of 6 columns drifted" in message
    assert f"dataset drift at {share:.0%}" in message
    assert all(name in message for name in DRIFTED)


def test_all_columns_drifted_is_dataset_drift_at_share_one() -> None:
    reference, current = frames(500, seed=SMALL_SEED)
    cols = sorted(DRIFTED)
    _, _, report = report_of(reference[cols], current[cols], DriftOptions(drift_share=1.0))
    assert report["dataset_drifted"] and report["share"] == 1.0


def assert_plain(message: str) -> None:
    for jargon in ("nan", "inf", "np.", "float64", "None", "TestResult"):
        assert jargon not in message, message


def test_messages_name_the_column_the_test_and_the_threshold() -> None:
    reference, current = frames(50_000, seed=50_000)
    _, _, report = report_of(reference, current)
    by_name = {c["column"]: c for c in report["columns"]}

    shift = by_name["shift"]["message"]
    assert shift.startswith("`shift` drifted:")
    assert f"mean {reference['shift'].mean():.3g} -> {current['shift'].mean():.3g}" in shift
    assert "Wasserstein" in shift and "> 0.1" in shift
    was_std, now_std = reference["spread"].std(ddof=0), current["spread"].std(ddof=0)
    assert f"std {was_std:.3g} -> {now_std:.3g}" in by_name["spread"]["message"]

    steady = by_name["steady"]["message"]
    assert steady.startswith("`steady` did not drift:") and "<= 0.1" in steady

    # Categories: the value whose share moved most, with both shares.
    was = reference["plan"].value_counts(normalize=True)
    now = current["plan"].value_counts(normalize=True)
    moved = (now - was).abs().idxmax()
    plan = by_name["plan"]["message"]
    assert plan.startswith("`plan` drifted:")
    assert f"'{moved}' {was[moved]:.1%} -> {now[moved]:.1%} of rows" in plan
    assert "Jensen-Shannon" in plan and "> 0.1" in plan
    for column in report["columns"]:
        assert_plain(column["message"])
    assert_plain(report["message"])


def test_p_value_messages_say_which_side_of_the_threshold() -> None:
    reference, current = frames(500, seed=SMALL_SEED)
    options = DriftOptions(thresholds={"ks": 0.01, "chisquare": 0.02})
    _, _, report = report_of(reference, current, options)
    by_name = {c["column"]: c for c in report["columns"]}
    shift, steady, plan = (by_name[name]["message"] for name in ("shift", "steady", "plan"))
    assert "KS p-value" in shift and "< 0.01" in shift
    assert "KS p-value" in steady and ">= 0.01" in steady
    assert "chi-square p-value" in plan and "< 0.02" in plan
    assert by_name["shift"]["threshold"] == 0.01


def test_a_column_without_values_is_not_tested() -> None:
    reference = pd.DataFrame({"x": np.arange(100.0), "y": np.arange(100.0)})
    current = pd.DataFrame({"x": np.full(50, np.nan), "y": np.arange(50.0) * 3})
    _, _, report = report_of(reference, current)
    x = next(c for c in report["columns"] if c["column"] == "x")
    assert x["test"] is None and not x["drifted"]
    assert x["message"] == "`x`: not tested, this window has no values"
    assert "of 1 columns" in report["message"]  # only y was tested


# --- options -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        DriftOptions(method="kolmogorov"),
        DriftOptions(methods={"x": "kolmogorov"}),
        DriftOptions(thresholds={"kolmogorov": 0.1}),
    ],
)
def test_unknown_tests_are_refused(options: DriftOptions) -> None:
    with pytest.raises(InvalidInput) as caught:
        options.check()
    assert "unknown drift test 'kolmogorov'" in caught.value.message
    assert "ks, wasserstein, psi, jensenshannon, chisquare, ztest" in caught.value.message
    assert caught.value.field == "method"


@pytest.mark.parametrize("value", [0, -0.2, math.nan, math.inf, "0.1"])
def test_thresholds_must_be_positive_numbers(value: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        DriftOptions(thresholds={"psi": value}).check()  # type: ignore[dict-item]
    assert caught.value.message == "threshold of psi must be a positive number"
    assert caught.value.field == "thresholds"


@pytest.mark.parametrize("share", [0, -0.5, 1.01, math.nan])
def test_drift_share_must_be_in_zero_one(share: float) -> None:
    with pytest.raises(InvalidInput, match=r"drift_share must be in \(0, 1\]"):
        DriftOptions(drift_share=share).check()


def test_good_options_pass() -> None:
    options = DriftOptions(method="psi", thresholds={"psi": 0.25, "ks": 0.01}, drift_share=1)
    assert options.check() is options
    assert options.threshold("psi") == 0.25 and options.threshold("wasserstein") == 0.1


@pytest.mark.parametrize(
    "options", [DriftOptions(method="ks"), DriftOptions(methods={"plan": "wasserstein"})]
)
def test_a_numeric_test_on_a_categorical_column_is_refused(options: DriftOptions) -> None:
    reference, current = frames(500, seed=1)
    test = options.method or options.methods["plan"]
    with pytest.raises(InvalidInput) as caught:
        report_of(reference, current, options)
    assert caught.value.message == f"column 'plan' holds categories; the {test} test needs numbers"
    assert caught.value.field == "method"


def test_category_tests_also_work_on_numbers() -> None:
    reference, current = frames(5000, seed=2)
    for method in ("psi", "jensenshannon", "chisquare"):
        _, _, report = report_of(reference, current, DriftOptions(method=method))
        assert {c["test"] for c in report["columns"]} == {method}
        assert {"shift", "spread", "plan"} <= set(report["drifted_columns"])


def test_a_test_per_column_overrides_the_method() -> None:
    reference, current = frames(500, seed=3)
    options = DriftOptions(method="psi", methods={"shift": "ks"})
    _, _, report = report_of(reference, current, options)
    tests = {c["column"]: c["test"] for c in report["columns"]}
    assert tests.pop("shift") == "ks"
    assert set(tests.values()) == {"psi"}


# --- profiles of pandas frames -------------------------------------------------------------


def test_profiles_of_mixed_frames() -> None:
    rng = np.random.default_rng(31)
    n = 400
    ref = pd.DataFrame(
        {
            "mixed": pd.Series([1, "a", 2.5, None] * (n // 4), dtype=object),
            "when": pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"),
            "day": pd.date_range("2024-01-01", periods=n, freq="D").astype("datetime64[s]"),
            "flag": pd.Series([True, False, np.nan, True] * (n // 4), dtype=object),
            "ok": rng.random(n) < 0.5,
            "amount": np.where(rng.random(n) < 0.1, np.nan, rng.gamma(2.0, 5.0, n)),
            "image": [b"\x89PNG\r\n" + bytes([i % 256]) for i in range(n)],
        }
    )
    ref_profile = profile(ref)

    mixed = ref_profile.columns["mixed"]
    assert isinstance(mixed, CategorySketch)
    assert mixed.counts == {"1": n // 4, "a": n // 4, "2.5": n // 4} and mixed.missing == n // 4

    when = ref_profile.columns["when"]
    assert isinstance(when, NumericSketch)  # times are numbers: seconds since 1970
    assert when.minimum == ref["when"].min().timestamp()
    assert when.maximum == ref["when"].max().timestamp()
    day = ref_profile.columns["day"]
    assert isinstance(day, NumericSketch) and day.minimum == ref["day"].min().timestamp()

    flag = ref_profile.columns["flag"]
    assert isinstance(flag, CategorySketch)
    assert flag.counts == {"true": n // 2, "false": n // 4} and flag.missing == n // 4
    ok = ref_profile.columns["ok"]
    assert isinstance(ok, CategorySketch) and set(ok.counts) == {"true", "false"}

    amount = ref_profile.columns["amount"]
    assert amount.missing == ref["amount"].isna().sum() > 0
    assert amount.present == ref["amount"].notna().sum()

    assert "image" not in ref_profile.columns
    assert "images" in ref_profile.ignored["image"]

    # A later window: times a month later, more True flags, the images again.
    cur = ref.copy()
    cur["when"] = cur["when"] + pd.Timedelta(days=30)
    cur["ok"] = rng.random(n) < 0.8
    cur_profile = profile(cur, ref_profile)
    assert "image" not in cur_profile.columns and cur_profile.extra == []
    report = drift_report(ref_profile, cur_profile)
    drifted = set(report["drift"]["drifted_columns"])
    assert drifted == {"when", "ok"}
    assert report["ignored_columns"] == {"image": ref_profile.ignored["image"]}
    assert "image" not in {c["column"] for c in report["drift"]["columns"]}


def test_nanosecond_timestamps_are_profiled() -> None:
    """Timestamps with nanoseconds (as pd.to_datetime makes from integers, and parquet
    files from other tools hold) are numbers like any other time."""
    rng = np.random.default_rng(37)
    start = pd.Timestamp("2024-01-01").as_unit("ns")
    times = start + pd.to_timedelta(rng.integers(0, 10**15, 500), unit="ns")
    frame = pd.DataFrame({"t": times})
    assert frame["t"].dtype == "datetime64[ns]"
    sketch = profile(frame).columns["t"]
    assert isinstance(sketch, NumericSketch)
    assert sketch.minimum == pytest.approx(frame["t"].min().timestamp(), abs=1e-6)


def test_missing_and_extra_columns_show_in_quality_findings() -> None:
    reference, current = frames(500, seed=4)
    current = current.drop(columns=["steady"]).assign(promo=1, channel="web")
    ref = profile(reference)
    cur = profile(current, ref)
    assert sorted(cur.extra) == ["channel", "promo"]
    report = drift_report(ref, cur)
    steady = next(c for c in report["drift"]["columns"] if c["column"] == "steady")
    assert steady["test"] is None and "not tested" in steady["message"]
    checks = {f["check"]: f for f in report["quality"]}
    assert checks["missing_column"]["column"] == "steady"
    assert "`steady` is missing" in checks["missing_column"]["message"]
    assert checks["extra_columns"]["value"] == 2
    assert "channel" in checks["extra_columns"]["message"]
    assert "promo" in checks["extra_columns"]["message"]


def test_text_in_a_numeric_column_counts_as_type_violations() -> None:
    rng = np.random.default_rng(41)
    reference = pd.DataFrame({"income": rng.normal(50_000, 8_000, 500)})
    values: list[object] = list(rng.normal(50_000, 8_000, 450))
    values += ["unknown"] * 30 + ["n/a"] * 20
    current = pd.DataFrame({"income": pd.Series(values, dtype=object)})
    ref = profile(reference)
    report = drift_report(ref, profile(current, ref))
    column = report["drift"]["columns"][0]
    assert column["test"] == "ks"  # the numbers are still tested
    assert column["current_rows"] == 500
    violations = [f for f in report["quality"] if f["check"] == "type_violations"]
    assert len(violations) == 1
    assert violations[0]["value"] == pytest.approx(50 / 500)
    assert "50 value(s) (10.0%)" in violations[0]["message"]


# --- profiles travel and merge -------------------------------------------------------------


@pytest.mark.parametrize("rows", [500, 5000])
def test_profiles_survive_json_with_the_same_report(rows: int) -> None:
    reference, current = frames(rows, seed=rows + 1)
    reference["image"] = [b"img"] * rows
    current["extra"] = 1.0
    ref = profile(reference)
    cur = profile(current, ref)
    ref_back = Profile.from_dict(json.loads(json.dumps(ref.to_dict(), allow_nan=False)))
    cur_back = Profile.from_dict(json.loads(json.dumps(cur.to_dict(), allow_nan=False)))
    assert ref_back.ignored == ref.ignored and cur_back.extra == ["extra"]
    before, after = drift_report(ref, cur), drift_report(ref_back, cur_back)
    for report in (before, after):
        report.pop("created_at")
    assert after == before


def test_profiles_of_another_format_are_refused() -> None:
    data = profile(pd.DataFrame({"x": [1.0, 2.0]})).to_dict()
    data["format"] = 99
    with pytest.raises(InvalidInput, match="profile format 99") as caught:
        Profile.from_dict(data)
    assert caught.value.field == "profile"


@pytest.mark.parametrize("rows", [1200, 3000, 20_000])
def test_merged_halves_give_the_verdicts_of_the_whole(rows: int) -> None:
    reference, current = frames(rows, seed=rows + 2)
    ref = profile(reference)
    whole = profile(current, ref)
    half = rows // 2
    merged = profile(current.iloc[:half], ref).merge(profile(current.iloc[half:], ref))
    assert merged.rows == whole.rows == rows
    one, two = compare(ref, whole).to_dict(), compare(ref, merged).to_dict()
    assert one["drifted_columns"] == two["drifted_columns"]
    assert one["dataset_drifted"] == two["dataset_drifted"]
    for a, b in zip(one["columns"], two["columns"], strict=True):
        assert (a["column"], a["test"], a["drifted"]) == (b["column"], b["test"], b["drifted"])
        assert a["statistic"] == pytest.approx(b["statistic"], rel=1e-9, abs=1e-15)
        assert a["current_rows"] == b["current_rows"]
