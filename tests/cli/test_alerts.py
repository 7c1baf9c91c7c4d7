"""``loopml monitor alerts|alert|ack|resolve|settings`` in local mode on one home: iris
deployed as "web", asked about rows with petal length moved by 3 cm, one monitoring run
raising alerts (told to the log, the default notifier)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from loopml.core.alerts import default_rules
from loopml.data.builtin import load_builtin
from tests.cli.test_cli import cli, ok, ok_json

SHIFTED = "petal length (cm)"


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A home with iris deployed as "web" in project "shop", asked about every iris row
    with petal length moved by 3 cm, one monitoring run of the last hour done; and an
    empty project "plain" for settings."""
    where = tmp_path_factory.mktemp("cli-alerts")
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("LOOPML_") and name != "LOOPML_TEST_POSTGRES_URL":
                mp.delenv(name)
        mp.chdir(where)
        ok("projects", "create", "shop")
        ok("projects", "create", "plain")
        ok("train", "-p", "shop", "-d", "builtin:iris", "--budget", "2", "--deploy", "web")
        frame, _ = load_builtin("builtin:iris")
        rows = frame.drop(columns=["target"])
        rows[SHIFTED] += 3.0
        rows.to_csv("shifted.csv", index=False)
        ok("predict", "shop/web", "shifted.csv")
        ok("monitor", "run", "shop/web", "--window", "1h", "--json")
        found = ok_json("monitor", "alerts", "-p", "shop")
        yield {"where": where, "alerts": found}


@pytest.fixture
def home(monitored: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(monitored["where"])
    return Path(monitored["where"])


def the(alerts: list[dict[str, Any]], rule: str, subject: str) -> dict[str, Any]:
    [found] = [a for a in alerts if a["rule"] == rule and a["subject"] == subject]
    return found


# --- settings ------------------------------------------------------------------------


def test_settings_show_the_defaults(home: Path) -> None:
    shown = ok("monitor", "settings", "-p", "plain").stdout
    for rule in default_rules():
        assert rule.name in shown
    assert "notifier log (log): the server log" in shown
    assert "cool-down 60 min" in shown
    as_json = ok_json("monitor", "settings", "-p", "plain")
    assert [r["name"] for r in as_json["rules"]] == [r.name for r in default_rules()]
    assert as_json["notifiers"] == [{"kind": "log", "name": "log", "min_severity": "info"}]


def test_set_replaces_the_settings_from_yaml(home: Path) -> None:
    wanted = {
        "cooldown_minutes": 15,
        "rules": [
            {"name": "drift", "check": "feature_drift", "severity": "critical"},
            {"name": "slow", "check": "latency_p99_ms", "threshold": 250},
        ],
        "notifiers": [
            {
                "kind": "webhook",
                "name": "crm",
                "url": "https://crm.example.com/hooks/loopml",
                "secret": "yaml-secret-1",
            }
        ],
    }
    (home / "alerting.yaml").write_text(yaml.safe_dump(wanted))
    shown = ok("monitor", "settings", "-p", "plain", "--set", "alerting.yaml").stdout
    assert "drift" in shown and "slow" in shown and "250" in shown
    assert "dataset-drift" not in shown
    assert "notifier crm (webhook): https://crm.example.com/hooks/loopml" in shown
    assert "cool-down 15 min" in shown
    assert "yaml-secret-1" not in shown
    stored = ok_json("monitor", "settings", "-p", "plain")
    assert [r["name"] for r in stored["rules"]] == ["drift", "slow"]
    assert stored["notifiers"][0]["secret"] == "***"
    assert stored["cooldown_minutes"] == 15
    # JSON files are read too.
    (home / "alerting.json").write_text(json.dumps({"cooldown_minutes": 5}))
    again = ok_json("monitor", "settings", "-p", "plain", "--set", "alerting.json")
    assert again["cooldown_minutes"] == 5
    assert [r["name"] for r in again["rules"]] == [r.name for r in default_rules()]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("rules: [unclosed", "cannot read settings"),
        ("- just\n- a list\n", "settings are a mapping"),
        ("rules:\n  - name: x\n    check: vibes\n", "rules.0.check"),
        ("rules:\n  - name: slow\n    check: latency_p99_ms\n", "needs a threshold"),
        ("drift_method: magic\n", "unknown drift test"),
    ],
)
def test_a_bad_settings_file_is_a_clear_error(home: Path, text: str, words: str) -> None:
    before = ok_json("monitor", "settings", "-p", "plain")
    (home / "bad.yaml").write_text(text)
    result = cli("monitor", "settings", "-p", "plain", "--set", "bad.yaml")
    assert result.exit_code == 2, result.output
    assert words in result.stderr
    assert "Traceback" not in result.output
    assert ok_json("monitor", "settings", "-p", "plain") == before


def test_a_missing_settings_file_is_a_clear_error(home: Path) -> None:
    result = cli("monitor", "settings", "-p", "plain", "--set", "nowhere.yaml")
    assert result.exit_code == 2, result.output
    assert "nowhere.yaml" in result.stderr and "cannot read settings" in result.stderr


# --- alerts --------------------------------------------------------------------------


def test_alerts_lists_the_feature_drift_alert(monitored: dict[str, Any], home: Path) -> None:
    alert = the(monitored["alerts"], "feature-drift", SHIFTED)
    assert alert["state"] == "open" and alert["deployment"] == "web"
    listed = ok("monitor", "alerts", "-p", "shop").stdout
    assert alert["id"] in listed
    assert "web: feature-drift" in listed
    assert SHIFTED in listed


def test_alerts_filter_by_state_and_deployment(monitored: dict[str, Any], home: Path) -> None:
    alert = the(monitored["alerts"], "feature-drift", SHIFTED)
    assert alert["id"] in [
        a["id"] for a in ok_json("monitor", "alerts", "-p", "shop", "--state", "open")
    ]
    assert ok_json("monitor", "alerts", "-p", "shop", "--state", "acknowledged") == []
    assert ok_json("monitor", "alerts", "-p", "shop", "-d", "elsewhere") == []
    assert alert["id"] in [a["id"] for a in ok_json("monitor", "alerts", "-p", "shop", "-d", "web")]
    assert ok_json("monitor", "alerts", "-p", "plain") == []


def test_alert_shows_it_with_its_notifications(monitored: dict[str, Any], home: Path) -> None:
    alert = the(monitored["alerts"], "feature-drift", SHIFTED)
    shown = ok("monitor", "alert", alert["id"], "-p", "shop").stdout
    assert alert["id"] in shown
    assert "feature-drift (feature_drift)" in shown and SHIFTED in shown
    assert "1 time(s)" in shown
    assert "Notifications" in shown
    [line] = [x for x in shown.splitlines() if " log " in x and "opened" in x]
    assert "sent" in line
    as_json = ok_json("monitor", "alert", alert["id"], "-p", "shop")
    assert [(n["notifier"], n["event"], n["state"]) for n in as_json["notifications"]] == [
        ("log", "opened", "sent")
    ]


def test_ack_and_resolve_change_the_state(monitored: dict[str, Any], home: Path) -> None:
    key = the(monitored["alerts"], "prediction-drift", "prediction")["id"]
    acked = ok("monitor", "ack", key, "-p", "shop", "-m", "retraining").stdout
    assert f"alert {key} acknowledged by" in acked
    assert ok_json("monitor", "alert", key, "-p", "shop")["state"] == "acknowledged"
    assert key in [
        a["id"] for a in ok_json("monitor", "alerts", "-p", "shop", "--state", "acknowledged")
    ]
    again = cli("monitor", "ack", key, "-p", "shop")
    assert again.exit_code == 1 and "acknowledged" in again.stderr
    done = ok("monitor", "resolve", key, "-p", "shop", "-m", "new model").stdout
    assert f"alert {key} resolved" in done and "new model" in done
    shown = ok_json("monitor", "alert", key, "-p", "shop")
    assert shown["state"] == "resolved" and shown["resolution"].endswith(": new model")
    twice = cli("monitor", "resolve", key, "-p", "shop")
    assert twice.exit_code == 1 and "already resolved" in twice.stderr


@pytest.mark.parametrize("command", ["alert", "ack", "resolve"])
def test_an_unknown_alert_is_named(home: Path, command: str) -> None:
    result = cli("monitor", command, "no-such-alert", "-p", "shop")
    assert result.exit_code == 1, result.output
    assert "no-such-alert" in result.stderr
    assert "Traceback" not in result.output


def test_an_unknown_state_is_refused(home: Path) -> None:
    result = cli("monitor", "alerts", "-p", "shop", "--state", "closed")
    assert result.exit_code == 2, result.output
    assert "state" in result.stderr
