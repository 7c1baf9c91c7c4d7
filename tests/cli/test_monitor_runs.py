"""``loopml monitor run|runs|report``: a deployment's captured traffic monitored in local
mode on one home (iris trained once, predictions with one column shifted)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loopml.data.builtin import load_builtin
from tests.cli.test_cli import cli, ok, ok_json

SHIFTED = "petal length (cm)"


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A home with iris deployed as "web", asked about every iris row with petal length
    moved by 3 cm, and one finished monitoring run of the last hour."""
    where = tmp_path_factory.mktemp("cli-monitor")
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("LOOPML_") and name != "LOOPML_TEST_POSTGRES_URL":
                mp.delenv(name)
        mp.chdir(where)
        ok("projects", "create", "shop")
        ok("train", "-p", "shop", "-d", "builtin:iris", "--budget", "2", "--deploy", "web")
        frame, _ = load_builtin("builtin:iris")
        rows = frame.drop(columns=["target"])
        rows[SHIFTED] += 3.0
        rows.to_csv("shifted.csv", index=False)
        ok("predict", "shop/web", "shifted.csv")
        report = ok_json("monitor", "run", "shop/web", "--window", "1h")
        yield {"where": where, "report": report, "rows": len(rows)}


@pytest.fixture
def home(monitored: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(monitored["where"])
    return Path(monitored["where"])


def test_run_reports_the_shifted_column(monitored: dict[str, Any]) -> None:
    report = monitored["report"]
    assert report["drift"]["drifted_columns"] == [SHIFTED]
    assert report["service"]["requests"] == monitored["rows"]
    assert report["deployment"] == "web" and report["model_version"] == 1


def test_run_prints_a_table_and_writes_html(home: Path) -> None:
    shown = ok("monitor", "run", "shop/web", "-w", "2h", "--html", "page.html").stdout
    assert SHIFTED in shown and "drifted" in shown
    assert f"served: {150:,} predictions" in shown
    page = (home / "page.html").read_text()
    assert "<svg" in page and SHIFTED in page


def test_fail_on_drift_exits_3_only_when_the_dataset_drifted(home: Path) -> None:
    # One column of four drifted: 25%.
    assert cli("monitor", "run", "shop/web", "--fail-on-drift").exit_code == 0
    strict = cli("monitor", "run", "shop/web", "--fail-on-drift", "--drift-share", "0.25")
    assert strict.exit_code == 3, strict.output


def test_runs_lists_and_report_shows_a_run(home: Path) -> None:
    runs = ok_json("monitor", "runs", "shop/web")
    assert runs and all(r["kind"] == "monitoring.run" for r in runs)
    listed = ok("monitor", "runs", "shop/web").stdout
    assert runs[0]["id"] in listed and SHIFTED in listed
    again = ok_json("monitor", "report", "shop/web", runs[-1]["id"])
    assert again["drift"]["drifted_columns"] == [SHIFTED]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["monitor", "run", "shop/web", "-w", "soon"], "not a duration"),
        (["monitor", "run", "shop/nowhere"], "nowhere"),
        (["monitor", "run", "shop"], "PROJECT/DEPLOYMENT"),
        (["monitor", "run", "shop/web", "--threshold", "psi"], "TEST=NUMBER"),
        (["monitor", "report", "shop/web", "no-such-run"], "no-such-run"),
    ],
)
def test_mistakes_are_named(home: Path, args: list[str], words: str) -> None:
    result = cli(*args)
    assert result.exit_code != 0
    assert words in result.output
