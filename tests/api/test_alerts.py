"""Alerts end to end on a live server with its worker: iris trained and deployed, asked
about rows with petal length moved by 3 cm, monitoring runs over HTTP raising alerts
that reach a real webhook receiver (signed), a real SMTP server and the log; the cool-down,
acknowledging and resolving, failed deliveries, and the project's alert settings."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from loopml.core.alerts import AlertSettings
from loopml.core.schemas import Job
from loopml.data.builtin import load_builtin
from loopml.sdk import Client
from tests.api.support import assert_problem, client, serve
from tests.conftest import LiveServer
from tests.monitoring.test_notify import Mailbox, Receiver

FAST: dict[str, Any] = {"time_budget": 2, "max_trials": 2, "seed": 0}
SHIFTED = "petal length (cm)"
SECRET = "first-secret-1"
DEPLOYMENTS = ("web", "flaky", "kept", "gone")
SETTINGS = "/projects/shop/alert-settings"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve(tmp_path_factory) as live:
        yield live


@pytest.fixture(scope="module")
def sdk(server: LiveServer) -> Iterator[Client]:
    with Client(server.url, server.admin_key) as c:
        yield c


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> Iterator[httpx.Client]:
    with client(server, server.admin_key) as c:
        yield c


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    with Mailbox() as m:
        yield m


@pytest.fixture(scope="module")
def served(sdk: Client, admin: httpx.Client) -> int:
    """Iris trained once and deployed under every name of DEPLOYMENTS, each asked about
    every iris row with petal length moved by 3 cm; the number of rows sent."""
    sdk.projects.create("shop")
    job = sdk.trainings.start("shop", "builtin:iris", **FAST)
    done = sdk.trainings.wait("shop", job.id, timeout=120)
    assert done.state.value == "succeeded", done.error
    version = int(done.result["model_version"])
    frame, _ = load_builtin("builtin:iris")
    rows = frame.drop(columns=["target"]).to_dict(orient="records")
    shifted = [{**row, SHIFTED: row[SHIFTED] + 3.0} for row in rows]
    for name in DEPLOYMENTS:
        r = admin.put(f"/projects/shop/deployments/{name}", json={"model": version})
        assert r.status_code == 201, r.text
        r = admin.post(f"/projects/shop/deployments/{name}/predict", json={"records": shifted})
        assert r.status_code == 200, r.text
    time.sleep(2.5)  # the capture writer flushes every second
    return len(rows)


def notifiers(receiver: Receiver, mailbox: Mailbox, hook: str = "/hook") -> list[dict[str, Any]]:
    return [
        {"kind": "webhook", "name": "crm", "url": receiver.url(hook), "secret": SECRET,
         "attempts": 2},
        {"kind": "email", "name": "ops", "host": "127.0.0.1", "port": mailbox.port,
         "sender": "loopml@example.com", "to": ["ops@example.com"], "min_severity": "info"},
        {"kind": "log", "name": "log"},
    ]  # fmt: skip


def put_settings(admin: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    r = admin.put(SETTINGS, json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


def run(sdk: Client, admin: httpx.Client, deployment: str) -> Job:
    r = admin.post(
        f"/projects/shop/deployments/{deployment}/monitoring/runs", json={"window": "1h"}
    )
    assert r.status_code == 202, r.text
    job = sdk.jobs.wait("shop", r.json()["id"], timeout=120)
    assert job.state.value == "succeeded", job.error
    return job


def alerts_of(admin: httpx.Client, deployment: str, **params: str) -> list[dict[str, Any]]:
    r = admin.get("/projects/shop/alerts", params={"deployment": deployment, **params})
    assert r.status_code == 200, r.text
    return list(r.json())


def the(alerts: list[dict[str, Any]], rule: str, subject: str = SHIFTED) -> dict[str, Any]:
    [found] = [a for a in alerts if a["rule"] == rule and a["subject"] == subject]
    return found


def get(admin: httpx.Client, alert_id: str) -> dict[str, Any]:
    r = admin.get(f"/projects/shop/alerts/{alert_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


@pytest.fixture(scope="module")
def opened(
    sdk: Client, admin: httpx.Client, receiver: Receiver, mailbox: Mailbox, served: int
) -> dict[str, Any]:
    """The first monitoring run of "web" with the three notifiers: its job and alerts."""
    put_settings(admin, {"notifiers": notifiers(receiver, mailbox)})
    job = run(sdk, admin, "web")
    return {"job": job, "alerts": alerts_of(admin, "web")}


def test_shifted_traffic_opens_a_feature_drift_alert_about_the_column(
    opened: dict[str, Any],
) -> None:
    drifts = [a for a in opened["alerts"] if a["check"] == "feature_drift"]
    assert [a["subject"] for a in drifts] == [SHIFTED]
    alert = drifts[0]
    assert alert["state"] == "open" and alert["count"] == 1
    assert alert["deployment"] == "web" and alert["rule"] == "feature-drift"
    assert SHIFTED in alert["message"]
    assert alert["run"] == opened["job"].id
    result = opened["job"].result["alerts"]
    assert result["opened"] == len(opened["alerts"]) >= 1
    assert result["notifications_failed"] == 0
    # One column of four drifted: no dataset drift.
    assert all(a["check"] != "dataset_drift" for a in opened["alerts"])


def test_the_webhook_gets_a_signed_post_about_the_alert(
    opened: dict[str, Any], receiver: Receiver
) -> None:
    alert = the(opened["alerts"], "feature-drift")
    [post] = receiver.about(alert["id"])
    assert post.method == "POST" and post.path == "/hook"
    assert post.signed_with(SECRET)
    body = post.json()
    assert body["event"] == "opened"
    assert body["alert"]["subject"] == SHIFTED
    assert body["alert"]["project"] == "shop" and body["alert"]["deployment"] == "web"


def test_an_email_arrives_about_the_alert(opened: dict[str, Any], mailbox: Mailbox) -> None:
    alert = the(opened["alerts"], "feature-drift")
    [message] = [m for _, m in mailbox.messages if alert["id"] in m.get_content()]
    assert "shop/web" in message["Subject"] and "feature-drift" in message["Subject"]
    assert message["From"] == "loopml@example.com" and message["To"] == "ops@example.com"
    assert alert["message"] in message.get_content()


def test_the_alert_lists_its_notifications_as_sent(
    opened: dict[str, Any], admin: httpx.Client
) -> None:
    alert = get(admin, the(opened["alerts"], "feature-drift")["id"])
    notes = {n["notifier"]: n for n in alert["notifications"]}
    assert {k: (n["kind"], n["event"], n["state"]) for k, n in notes.items()} == {
        "crm": ("webhook", "opened", "sent"),
        "ops": ("email", "opened", "sent"),
        "log": ("log", "opened", "sent"),
    }
    assert all(n["error"] is None and n["attempts"] == 1 for n in notes.values())


def test_a_second_run_within_the_cool_down_tells_no_one(
    sdk: Client, admin: httpx.Client, receiver: Receiver, mailbox: Mailbox, opened: dict[str, Any]
) -> None:
    put_settings(admin, {"notifiers": notifiers(receiver, mailbox)})
    before = get(admin, the(opened["alerts"], "feature-drift")["id"])
    posts, mails = len(receiver.about(before["id"])), len(mailbox.messages)
    job = run(sdk, admin, "web")
    after = get(admin, before["id"])
    assert after["state"] == "open"
    assert after["count"] == before["count"] + 1
    assert after["run"] == job.id
    assert after["notifications"] == before["notifications"]
    assert len(receiver.about(before["id"])) == posts
    assert len(mailbox.messages) == mails
    assert job.result["alerts"]["opened"] == 0


def test_acknowledge_then_resolve_over_http(admin: httpx.Client, opened: dict[str, Any]) -> None:
    key = the(opened["alerts"], "prediction-drift", "prediction")["id"]
    path = f"/projects/shop/alerts/{key}"
    r = admin.post(f"{path}/acknowledge", json={"note": "retraining"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "acknowledged" and r.json()["acknowledged_by"] == "admin"
    problem = assert_problem(admin.post(f"{path}/acknowledge", json={}), 409, field="alert")
    assert "acknowledged" in problem["detail"]
    r = admin.post(f"{path}/resolve", json={"note": "new model out"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "resolved"
    assert r.json()["resolution"] == "resolved by admin: new model out"
    assert (
        "already resolved"
        in assert_problem(admin.post(f"{path}/resolve", json={}), 409, field="alert")["detail"]
    )
    assert_problem(admin.post(f"{path}/acknowledge", json={}), 409, field="alert")
    assert get(admin, key)["state"] == "resolved"
    assert key in [a["id"] for a in alerts_of(admin, "web", state="resolved")]
    assert key not in [a["id"] for a in alerts_of(admin, "web", state="open")]


def test_unknown_alerts_are_404_naming_the_id(admin: httpx.Client, served: int) -> None:
    for r in (
        admin.get("/projects/shop/alerts/no-such-alert"),
        admin.post("/projects/shop/alerts/no-such-alert/acknowledge", json={}),
        admin.post("/projects/shop/alerts/no-such-alert/resolve", json={}),
    ):
        assert "no-such-alert" in assert_problem(r, 404, field="alert")["detail"]
    assert_problem(admin.get("/projects/shop/alerts", params={"state": "closed"}), 422)


def test_an_alert_that_stops_firing_is_resolved_and_the_webhook_told(
    sdk: Client, admin: httpx.Client, receiver: Receiver, mailbox: Mailbox, served: int
) -> None:
    put_settings(admin, {"notifiers": notifiers(receiver, mailbox)})
    run(sdk, admin, "gone")
    alert = the(alerts_of(admin, "gone", state="open"), "feature-drift")
    # The rule switched off: the column no longer sets it off.
    rules = [
        {"name": "feature-drift", "check": "feature_drift", "enabled": False},
        {"name": "prediction-drift", "check": "prediction_drift"},
    ]
    put_settings(admin, {"rules": rules, "notifiers": notifiers(receiver, mailbox)})
    job = run(sdk, admin, "gone")
    assert job.result["alerts"]["resolved"] >= 1
    done = get(admin, alert["id"])
    assert done["state"] == "resolved"
    assert done["resolution"] == f"no longer found by monitoring (run {job.id})"
    events = [p.json()["event"] for p in receiver.about(alert["id"])]
    assert events == ["opened", "resolved"]
    assert all(p.signed_with(SECRET) for p in receiver.about(alert["id"]))
    resolved = [n for n in done["notifications"] if n["event"] == "resolved"]
    assert {n["notifier"] for n in resolved} == {"crm", "ops", "log"}


def test_a_failing_webhook_is_kept_as_a_failed_notification(
    sdk: Client, admin: httpx.Client, receiver: Receiver, mailbox: Mailbox, served: int
) -> None:
    put_settings(admin, {"notifiers": notifiers(receiver, mailbox, hook="/down")})
    job = run(sdk, admin, "flaky")
    assert job.state.value == "succeeded"
    result = job.result["alerts"]
    assert result["opened"] >= 1
    assert result["notifications_failed"] == result["opened"]  # the webhook's, each alert
    alert = get(admin, the(alerts_of(admin, "flaky"), "feature-drift")["id"])
    notes = {n["notifier"]: n for n in alert["notifications"]}
    assert notes["crm"]["state"] == "failed"
    assert notes["crm"]["attempts"] == 2
    assert notes["crm"]["sent_at"] is None
    assert "500" in notes["crm"]["error"] and "receiver is down" in notes["crm"]["error"]
    assert len(receiver.about(alert["id"])) == 2
    # The others were told all the same.
    assert notes["ops"]["state"] == notes["log"]["state"] == "sent"


# --- settings ----------------------------------------------------------------------------


def test_settings_are_the_defaults_until_set(admin: httpx.Client, served: int) -> None:
    assert admin.post("/projects", json={"name": "fresh"}).status_code == 201
    shown = admin.get("/projects/fresh/alert-settings").json()
    assert shown == AlertSettings().shown()
    assert "feature-drift" in [r["name"] for r in shown["rules"]]
    assert_problem(admin.get("/projects/nowhere/alert-settings"), 404)


def test_settings_hide_secrets_and_stars_keep_the_stored_one(
    sdk: Client, admin: httpx.Client, receiver: Receiver, mailbox: Mailbox, served: int
) -> None:
    shown = put_settings(admin, {"notifiers": notifiers(receiver, mailbox), "cooldown_minutes": 30})
    assert shown["notifiers"][0]["secret"] == "***"
    got = admin.get(SETTINGS).json()
    assert got == shown
    assert SECRET not in admin.get(SETTINGS).text
    # Sent back as shown, with one change: the stored secret stays.
    got["cooldown_minutes"] = 45
    again = put_settings(admin, got)
    assert again["cooldown_minutes"] == 45 and again["notifiers"][0]["secret"] == "***"
    run(sdk, admin, "kept")
    alert = the(alerts_of(admin, "kept"), "feature-drift")
    [post] = receiver.about(alert["id"])
    assert post.signed_with(SECRET)


def test_stars_without_a_stored_secret_are_refused(
    admin: httpx.Client, mailbox: Mailbox, served: int
) -> None:
    before = admin.get(SETTINGS).json()
    mail = {"kind": "email", "name": "new-mail", "host": "127.0.0.1", "port": mailbox.port,
            "sender": "a@example.com", "to": ["b@example.com"], "username": "u",
            "password": "***"}  # fmt: skip
    r = admin.put(SETTINGS, json={"notifiers": [mail]})
    assert r.status_code in (404, 422), r.text
    problem = assert_problem(r, r.status_code, field="notifiers.new-mail.password")
    assert "no stored password" in problem["detail"]
    assert admin.get(SETTINGS).json() == before


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"rules": [{"name": "x", "check": "vibes"}]}, "body.rules.0.check", "feature_drift"),
        ({"rules": [{"name": "slow", "check": "latency_p99_ms"}]}, "body.rules.0", "threshold"),
        ({"rules": [{"name": "x", "check": "abstain_rate"}]}, "body.rules.0", "threshold"),
        (
            {"rules": [{"name": "d", "check": "feature_drift"}] * 2},
            "body.rules",
            "repeated: d",
        ),
        (
            {"notifiers": [{"kind": "log", "name": "n"}, {"kind": "log", "name": "n"}]},
            "body.notifiers",
            "repeated: n",
        ),
        ({"drift_method": "magic"}, "body.drift_method", "unknown drift test"),
        ({"drift_thresholds": {"psi": -1}}, "body.drift_thresholds", "positive"),
        ({"cooldown": 5}, "body.cooldown", ""),
    ],
)
def test_bad_settings_are_422_naming_the_field(
    admin: httpx.Client, served: int, body: dict[str, Any], field: str, words: str
) -> None:
    before = admin.get(SETTINGS).json()
    problem = assert_problem(admin.put(SETTINGS, json=body), 422, field=field)
    assert words in problem["detail"]
    assert admin.get(SETTINGS).json() == before
