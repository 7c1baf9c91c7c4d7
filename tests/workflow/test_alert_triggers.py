"""Alert triggers: a workflow started once for each new monitoring alert that matches
(deployment, rule, least severity), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from loopml.core.errors import InvalidInput
from loopml.store import alerts
from loopml.workflow.triggers import check_spec
from tests.workflow.test_triggers import T0, Rig, database, ended, rig

__all__ = ["database", "rig"]


def raise_alert(
    rig: Rig,
    at: datetime,
    *,
    deployment: str = "live",
    rule: str = "feature-drift",
    subject: str = "income",
    severity: str = "warning",
) -> str:
    """An alert opened at ``at``, as a monitoring run records it."""
    found = {"rule": rule, "check": "feature_drift", "subject": subject, "severity": severity,
             "message": f"`{subject}` drifted", "details": {"test": "psi"}}  # fmt: skip
    with rig.db.session() as s:
        # Earlier alerts of the deployment stay open: a run that sees them all again.
        active = [
            {"rule": a.rule, "check": a.check, "subject": a.subject, "severity": a.severity,
             "message": a.message, "details": a.details}
            for a in alerts.list_alerts(s, "shop", state="open", deployment=deployment)
        ]  # fmt: skip
        changes = alerts.record(s, "shop", deployment, [*active, found], run="r",
                                cooldown=timedelta(minutes=60), now=at)  # fmt: skip
    (opened,) = [c.alert for c in changes if c.event == "opened"]
    return opened.id


def test_each_new_alert_starts_one_execution_with_the_alert_as_input(rig: Rig) -> None:
    raise_alert(rig, T0 - timedelta(minutes=1), subject="before")  # before the trigger
    made = rig.put("on-alert", "alert", data={"team": "ml"}, every=10)
    assert made.spec == {"every": 10.0, "severity": "warning"}
    assert rig.tick(T0 + timedelta(seconds=10)) == 0

    first = raise_alert(rig, T0 + timedelta(seconds=12), subject="income")
    second = raise_alert(rig, T0 + timedelta(seconds=13), subject="age")
    assert rig.tick(T0 + timedelta(seconds=15)) == 0  # not yet time to look
    assert rig.tick(T0 + timedelta(seconds=20)) == 2
    done = ended(rig, 2)
    assert [e.input["alert"]["id"] for e in done] == [first, second]
    assert done[0].input["alert"]["subject"] == "income"
    assert done[0].input["team"] == "ml" and done[0].input["trigger"] == "on-alert"
    assert done[0].trigger == "alert:on-alert"
    assert rig.tick(T0 + timedelta(seconds=30)) == 0  # each alert fires once
    assert rig.trigger("on-alert").fired == 2


def test_alerts_raised_in_the_same_instant_all_fire(rig: Rig) -> None:
    rig.put("on-alert", "alert", every=1)
    moment = T0 + timedelta(seconds=1)
    ids = {raise_alert(rig, moment, subject=name) for name in ("a", "b", "c")}
    assert rig.tick(T0 + timedelta(seconds=1)) == 3
    assert {e.input["alert"]["id"] for e in ended(rig, 3)} == ids


@pytest.mark.parametrize(
    ("spec", "fires"),
    [
        ({"deployment": "live"}, {"live-warning", "live-critical", "live-latency"}),
        ({"deployment": "batch"}, {"batch-warning"}),
        ({"rule": "latency"}, {"live-latency"}),
        ({"severity": "critical"}, {"live-critical"}),
        ({"severity": "info"}, {"live-warning", "live-critical", "live-latency",
                                "batch-warning", "live-info"}),
    ],
)  # fmt: skip
def test_filters_choose_which_alerts_fire(rig: Rig, spec: dict[str, Any], fires: set[str]) -> None:
    rig.put("on-alert", "alert", every=1, **spec)
    later = T0 + timedelta(seconds=1)
    made = {
        "live-warning": raise_alert(rig, later, subject="w"),
        "live-critical": raise_alert(rig, later, subject="c", severity="critical"),
        "live-latency": raise_alert(rig, later, rule="latency", subject=""),
        "batch-warning": raise_alert(rig, later, deployment="batch", subject="w"),
        "live-info": raise_alert(rig, later, subject="i", severity="info"),
    }
    assert rig.tick(T0 + timedelta(seconds=1)) == len(fires)
    started = {e.input["alert"]["id"] for e in ended(rig, len(fires))}
    assert started == {made[name] for name in fires}


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        ({"severity": "loud"}, "severity", "least severe"),
        ({"deployment": ""}, "deployment", "names one deployment"),
        ({"rule": 3}, "rule", "names one rule"),
        ({"url": "s3://x/"}, "url", "no 'url'"),
        ({"every": 0}, "every", "at least 1"),
    ],
)
def test_a_bad_alert_spec_names_its_field(spec: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(InvalidInput) as err:
        check_spec("alert", spec, allow_local_files=False)
    assert err.value.field == field
    assert words in err.value.message, err.value.message
