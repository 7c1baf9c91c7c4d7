"""``loopml monitor drift``: two files in, a drift and data-quality report out (a table,
JSON or an HTML page), and an exit status scripts can act on."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tests.cli.test_cli import cli, ok

ROWS = 2000


def frames(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and current rows; only ``amount`` drifted (its mean moved by 1.5 std)."""
    rng = np.random.default_rng(seed)

    def draw(shift: float) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "amount": rng.normal(100.0 + shift, 20.0, ROWS),
                "age": rng.normal(40.0, 10.0, ROWS),
                "plan": rng.choice(["basic", "plus", "pro"], ROWS, p=[0.5, 0.3, 0.2]),
                "visits": rng.integers(0, 100, ROWS),
            }
        )

    return draw(0.0), draw(30.0)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    """``ref.csv`` and ``cur.parquet``: a reference and a window in two formats."""
    reference, current = frames()
    ref, cur = tmp_path / "ref.csv", tmp_path / "cur.parquet"
    reference.to_csv(ref, index=False)
    current.to_parquet(cur, index=False)
    return ref, cur


def drift(ref: Path, cur: Path, *args: str):  # type: ignore[no-untyped-def]
    return cli("monitor", "drift", "--reference", str(ref), "--current", str(cur), *args)


def as_json(ref: Path, cur: Path, *args: str) -> dict:
    result = drift(ref, cur, "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def table_rows(text: str) -> dict[str, list[str]]:
    """The drift table's rows by column name: column, test, value, threshold, drifted."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == 5 and cells[0] != "column":
            rows[cells[0]] = cells
    return rows


def test_the_table_names_the_drifted_columns(files: tuple[Path, Path]) -> None:
    result = ok("monitor", "drift", "-r", str(files[0]), "-c", str(files[1]))
    rows = table_rows(result.stdout)
    assert set(rows) == {"amount", "age", "plan", "visits"}
    assert rows["amount"][4] == "yes"
    assert [rows[name][4] for name in ("age", "plan", "visits")] == ["no", "no", "no"]
    assert rows["amount"][1] == "wasserstein" and rows["plan"][1] == "jensenshannon"
    assert "no dataset drift: 1 of 4 columns drifted (25%; dataset drift at 50%): amount" in (
        result.stdout
    )
    assert "`amount` drifted: mean" in result.stdout
    assert "`age` drifted" not in result.stdout


def test_json_report(files: tuple[Path, Path]) -> None:
    reference, current = pd.read_csv(files[0]), pd.read_parquet(files[1])
    report = as_json(*files)
    drift = report["drift"]
    assert drift["dataset_drifted"] is False
    assert drift["drifted_columns"] == ["amount"]
    assert drift["share"] == 0.25
    assert report["reference"] == {"name": "ref.csv", "rows": ROWS}
    assert report["current"] == {"name": "cur.parquet", "rows": ROWS}
    by_name = {c["column"]: c for c in drift["columns"]}
    for name in ("amount", "age", "visits"):  # large samples: Wasserstein, as scipy has it
        expected = stats.wasserstein_distance(reference[name], current[name])
        expected /= np.std(reference[name])
        assert by_name[name]["test"] == "wasserstein"
        assert by_name[name]["statistic"] == pytest.approx(expected, abs=0.005)
    assert report["quality"] == []
    assert report["summary"][0] == drift["message"]


def test_json_reports_dataset_drift(tmp_path: Path) -> None:
    reference, current = frames(1)
    current["age"] = current["age"] * 3
    current["plan"] = "pro"
    ref, cur = tmp_path / "ref.parquet", tmp_path / "cur.csv"
    reference.to_parquet(ref, index=False)
    current.to_csv(cur, index=False)
    drift = as_json(ref, cur)["drift"]
    assert drift["dataset_drifted"] is True
    assert drift["drifted_columns"] == ["amount", "age", "plan"]


def test_html_report_is_one_self_contained_page(files: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = ok("monitor", "drift", "-r", str(files[0]), "-c", str(files[1]), "--html", str(out))
    assert f"HTML report: {out}" in result.stdout
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert page.count("<svg") >= 5  # drift per column, and each column's distributions
    for name in ("amount", "age", "plan", "visits", "ref.csv", "cur.parquet"):
        assert name in page
    assert "1 of 4 columns drifted" in page
    # Nothing to fetch: no scripts, stylesheets, images or fonts from elsewhere.
    lowered = page.lower()
    for reference in ("<script", "<link", "<img", "<iframe", " src=", "@import"):
        assert reference not in lowered, reference
    # References only within the page: SVG <use href="#..."> and clip-path="url(#...)".
    assert not re.search(r'href="(?!#)', page)
    assert not re.search(r"url\((?!#)", page)
    # The only addresses are XML namespace names, and the RDF metadata matplotlib writes
    # into each SVG (names and text that no browser loads).
    bare = re.sub(r'\sxmlns(:\w+)?="[^"]*"', "", page)
    bare = re.sub(r"<metadata>.*?</metadata>", "", bare, flags=re.DOTALL)
    assert "http://" not in bare and "https://" not in bare


def test_json_and_html_together(files: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    report = as_json(*files, "--html", str(out))  # the JSON stays parseable
    assert report["drift"]["drifted_columns"] == ["amount"]
    assert "<svg" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize(("share", "status"), [("0.25", 3), ("0.5", 0), ("1", 0)])
def test_fail_on_drift_exits_3_only_when_the_dataset_drifted(
    files: tuple[Path, Path], share: str, status: int
) -> None:
    result = drift(*files, "--fail-on-drift", "--drift-share", share)
    assert result.exit_code == status, result.output
    assert table_rows(result.stdout)["amount"][4] == "yes"  # the report is printed either way
    verdict = "the data drifted" if status == 3 else "no dataset drift"
    assert verdict in result.stdout


def test_without_fail_on_drift_drift_exits_0(files: tuple[Path, Path]) -> None:
    result = drift(*files, "--drift-share", "0.25")
    assert result.exit_code == 0
    assert "the data drifted" in result.stdout


def test_columns_restricts_the_report(files: tuple[Path, Path]) -> None:
    drift_ = as_json(*files, "--columns", "age, plan")["drift"]
    assert [c["column"] for c in drift_["columns"]] == ["age", "plan"]
    assert drift_["drifted_columns"] == [] and drift_["dataset_drifted"] is False
    only = as_json(*files, "--columns", "amount", "--method", "ks")
    assert only["drift"]["drifted_columns"] == ["amount"]
    assert only["drift"]["columns"][0]["test"] == "ks"


def test_method_and_threshold_apply(files: tuple[Path, Path]) -> None:
    report = as_json(*files, "--method", "psi", "--threshold", "psi=100")
    columns = report["drift"]["columns"]
    assert {c["test"] for c in columns} == {"psi"}
    assert {c["threshold"] for c in columns} == {100.0}
    assert report["drift"]["drifted_columns"] == []  # nothing is that far


def test_a_column_missing_from_the_current_file_is_a_quality_error(tmp_path: Path) -> None:
    reference, current = frames(2)
    ref, cur = tmp_path / "ref.parquet", tmp_path / "cur.parquet"
    reference.to_parquet(ref, index=False)
    current.drop(columns=["age"]).assign(coupon="none").to_parquet(cur, index=False)
    result = drift(ref, cur)
    assert result.exit_code == 0
    assert "`age` is missing: the reference has it, no row of this window does" in result.stdout
    assert "were ignored: coupon" in result.stdout
    assert table_rows(result.stdout)["age"][1:3] == ["-", "-"]  # not tested: no values


@pytest.mark.parametrize(
    ("args", "field", "problem"),
    [
        (["--threshold", "ks"], "threshold", "--threshold 'ks' is not TEST=NUMBER"),
        (["--threshold", "ks=often"], "threshold", "--threshold 'ks=often' is not TEST=NUMBER"),
        (["--threshold", "bogus=0.1"], "method", "unknown drift test 'bogus'"),
        (["--threshold", "psi=0"], "thresholds", "threshold of psi must be a positive number"),
        (["--threshold", "ks=-0.05"], "thresholds", "threshold of ks must be a positive number"),
        (["--method", "bogus"], "method", "unknown drift test 'bogus'; choose one of ks,"),
        (["--drift-share", "1.5"], "drift_share", "drift_share must be in (0, 1]"),
        (["--drift-share", "0"], "drift_share", "drift_share must be in (0, 1]"),
        (["--columns", "age,zz"], "columns", "ref.csv has no column(s) zz"),
        (["--method=ks", "--columns=plan"], "method", "column 'plan' holds categories; the ks"),
    ],
)  # fmt: skip
def test_bad_options_exit_2_naming_the_problem(
    files: tuple[Path, Path], args: list[str], field: str, problem: str
) -> None:
    result = drift(*files, *args)
    assert result.exit_code == 2, result.output
    assert f"error ({field}): {problem}" in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_a_missing_file_exits_2(files: tuple[Path, Path], tmp_path: Path) -> None:
    gone = tmp_path / "nope.csv"
    for ref, cur in ((gone, files[1]), (files[0], gone)):
        result = drift(ref, cur)
        assert result.exit_code == 2, result.output
        assert f"error (path): {gone} is not a file" in result.stderr
        assert "Traceback" not in result.output


def test_a_column_the_current_file_lacks_exits_2(files: tuple[Path, Path], tmp_path: Path) -> None:
    cur = tmp_path / "short.parquet"
    pd.read_parquet(files[1]).drop(columns=["visits"]).to_parquet(cur, index=False)
    result = drift(files[0], cur, "--columns", "amount,visits")
    assert result.exit_code == 2
    assert "error (columns): short.parquet has no column(s) visits" in result.stderr
