"""``loopml workflow trigger|triggers|untrigger`` on the home directory through the
in-process server: each kind of trigger saved and replaced, listed as a table and as JSON,
deleted; one of --cron, --dataset and --source required; bad specs exit 2 naming why."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.cli.test_cli import cli, ok, ok_json

ECHO = {"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}}


@pytest.fixture
def echo(tmp_path: Path) -> str:
    """Workflow shop/echo on the home in the working directory."""
    ok("projects", "create", "shop")
    definition = tmp_path / "echo.json"
    definition.write_text(json.dumps(ECHO))
    ok("workflow", "create", "shop/echo", str(definition))
    return "shop/echo"


def test_trigger_triggers_and_untrigger(echo: str) -> None:
    made = ok(
        "workflow", "trigger", echo, "nightly", "--cron", "0 3 * * *",
        "--timezone", "Europe/Paris", "--input", '{"full": true}',
    )  # fmt: skip
    assert "trigger nightly (schedule) of shop/echo: next fires at" in made.stdout
    ok("workflow", "trigger", echo, "on-orders", "--dataset", "orders", "--every", "30")
    Path("inbox").mkdir()
    ok("workflow", "trigger", echo, "inbox", "--source", "inbox", "--disabled")

    listed = {t["name"]: t for t in ok_json("workflow", "triggers", echo)}
    assert sorted(listed) == ["inbox", "nightly", "on-orders"]
    nightly = listed["nightly"]
    assert nightly["spec"] == {"cron": "0 3 * * *", "timezone": "Europe/Paris"}
    assert (nightly["kind"], nightly["input"], nightly["enabled"]) == (
        "schedule",
        {"full": True},
        True,
    )
    assert nightly["due_at"].endswith(("T01:00:00Z", "T02:00:00Z"))  # 03:00 in Paris
    assert listed["on-orders"]["spec"] == {"dataset": "orders", "every": 30.0}
    # A folder given here is this folder, whichever folder a server later runs in.
    assert listed["inbox"]["spec"] == {"url": str(Path("inbox").resolve()), "every": 60.0}
    assert listed["inbox"]["enabled"] is False and os.path.isabs(listed["inbox"]["spec"]["url"])

    table = ok("workflow", "triggers", echo).stdout
    assert "triggers of shop/echo" in table
    for word in ("nightly", "schedule", "on-orders", "dataset", "inbox", "source"):
        assert word in table

    replaced = ok("workflow", "trigger", echo, "nightly", "--cron", "@hourly")
    assert "next fires at" in replaced.stdout
    again = {t["name"]: t for t in ok_json("workflow", "triggers", echo)}
    assert again["nightly"]["spec"] == {"cron": "@hourly", "timezone": "UTC"}
    assert again["nightly"]["input"] is None
    assert again["nightly"]["id"] == nightly["id"]

    assert (
        "deleted trigger nightly of shop/echo"
        in ok("workflow", "untrigger", echo, "nightly").stdout
    )
    assert sorted(t["name"] for t in ok_json("workflow", "triggers", echo)) == [
        "inbox",
        "on-orders",
    ]
    missing = cli("workflow", "untrigger", echo, "nightly")
    assert missing.exit_code == 1
    assert "has no trigger 'nightly'" in missing.stderr


def test_exactly_one_of_cron_dataset_source_and_alert_is_needed(echo: str) -> None:
    for what in (
        [],
        ["--cron", "@daily", "--dataset", "orders"],
        ["--dataset", "orders", "--source", "s3://in/"],
        ["--cron", "@daily", "--dataset", "orders", "--source", "s3://in/"],
        ["--alert", "--cron", "@daily"],
    ):
        result = cli("workflow", "trigger", echo, "t", *what)
        assert result.exit_code == 2, what
        assert "give one of --cron, --dataset, --source and --alert" in result.stderr, what
        assert "Traceback" not in result.output
    assert ok_json("workflow", "triggers", echo) == []


def test_an_alert_trigger_is_saved_with_its_filters(echo: str) -> None:
    made = ["workflow", "trigger", echo, "on-drift", "--alert", "--alert-deployment", "web"]
    shown = ok(*made, "--alert-severity", "critical").stdout
    assert "on-drift (alert)" in shown
    (saved,) = [t for t in ok_json("workflow", "triggers", echo) if t["name"] == "on-drift"]
    assert saved["spec"] == {"deployment": "web", "severity": "critical", "every": 10.0}
    bad = cli(*made, "--alert-severity", "loud")
    assert bad.exit_code == 2 and "'info', 'warning' or 'critical'" in bad.stderr


def test_a_bad_trigger_exits_two_naming_why(echo: str) -> None:
    for args, words in (
        (["--cron", "61 * * * *"], "'61' is outside the minute range"),
        (["--cron", "@daily", "--timezone", "Mars/Olympus"], "unknown time zone"),
        (["--dataset", "orders@2"], "new versions"),
        (["--dataset", "orders", "--every", "0"], "at least 1"),
        (["--cron", "@daily", "--input", "{not json"], "input"),
    ):
        result = cli("workflow", "trigger", echo, "t", *args)
        assert result.exit_code == 2, (args, result.output)
        assert words in result.stderr, (args, result.stderr)
    assert ok_json("workflow", "triggers", echo) == []


def test_a_trigger_needs_an_existing_workflow(echo: str) -> None:
    result = cli("workflow", "trigger", "shop/ghost", "t", "--cron", "@daily")
    assert result.exit_code == 1
    assert "workflow 'ghost' does not exist" in result.stderr
    assert cli("workflow", "triggers", "ghost").exit_code == 2  # not PROJECT/WORKFLOW
