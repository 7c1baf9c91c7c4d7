"""Which alert rules a monitoring report sets off (on hand-built reports shaped like
``loopml.monitoring.run.monitor``'s), the data-quality limits the rules imply, and the
validation of a project's alert settings."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from loopml.core.alerts import AlertRule, AlertSettings, default_rules
from loopml.monitoring.alerting import drift_options, firing, quality_limits
from loopml.monitoring.quality import QualityLimits

COLUMNS = ("sepal length (cm)", "petal length (cm)", "colour")


def _column(name: str, drifted: bool) -> dict[str, Any]:
    return {
        "column": name,
        "kind": "numeric",
        "test": "ks",
        "statistic": 0.001 if drifted else 0.6,
        "threshold": 0.05,
        "drifted": drifted,
        "message": f"`{name}` drifted" if drifted else f"`{name}` did not drift",
        "reference_rows": 150,
        "current_rows": 150,
        "plot": {},
    }


def _finding(check: str, column: str | None, value: float = 0.3) -> dict[str, Any]:
    return {
        "check": check,
        "column": column,
        "severity": "warning",
        "value": value,
        "reference": 0.0,
        "message": f"{check} in {column}",
    }


def report(
    *,
    requests: int = 150,
    drifted: tuple[str, ...] = (),
    outputs_drifted: tuple[str, ...] = (),
    dataset_drifted: bool = False,
    p99: float | None = 12.0,
    abstain_rate: float = 0.0,
    quality: tuple[dict[str, Any], ...] = (),
) -> dict[str, Any]:
    columns = [_column(c, c in drifted) for c in COLUMNS]
    return {
        "title": "shop/web: model v1",
        "drift": {
            "dataset_drifted": dataset_drifted,
            "drifted_columns": list(drifted),
            "share": len(drifted) / len(COLUMNS),
            "drift_share": 0.5,
            "message": f"{len(drifted)} of {len(COLUMNS)} columns drifted",
            "columns": columns,
            "outputs": [_column(c, c in outputs_drifted) for c in ("prediction", "confidence")],
        },
        "quality": list(quality),
        "summary": [],
        "service": {
            "requests": requests,
            "abstained": round(abstain_rate * requests),
            "abstain_rate": abstain_rate,
            "latency_ms": {"p50": 1.0, "p95": 5.0, "p99": p99},
            "message": "served",
        },
    }


def fired(found: list[Any]) -> list[tuple[str, str]]:
    return sorted((f.rule.name, f.subject) for f in found)


DEFAULTS = AlertSettings()


def test_traffic_like_the_training_data_fires_nothing() -> None:
    assert firing(report(), DEFAULTS) == []


def test_feature_drift_fires_once_per_drifted_column_naming_it() -> None:
    found = firing(report(drifted=("petal length (cm)", "colour")), DEFAULTS)
    assert fired(found) == [("feature-drift", "colour"), ("feature-drift", "petal length (cm)")]
    petal = next(f for f in found if f.subject == "petal length (cm)")
    assert petal.rule.check == "feature_drift" and petal.rule.severity == "warning"
    assert petal.message == "`petal length (cm)` drifted"
    assert petal.details == {"test": "ks", "statistic": 0.001, "threshold": 0.05}


def test_dataset_drift_fires_about_the_whole_and_names_the_columns() -> None:
    two = ("sepal length (cm)", "petal length (cm)")
    found = firing(report(drifted=two, dataset_drifted=True), DEFAULTS)
    whole = [f for f in found if f.rule.name == "dataset-drift"]
    assert len(whole) == 1
    assert whole[0].subject == ""
    assert whole[0].rule.severity == "critical"
    assert whole[0].details == {"drifted_columns": list(two), "share": 2 / 3}
    assert whole[0].message == "2 of 3 columns drifted"
    assert fired([f for f in found if f.rule.name == "feature-drift"]) == [
        ("feature-drift", "petal length (cm)"),
        ("feature-drift", "sepal length (cm)"),
    ]


def test_prediction_drift_names_the_drifted_output() -> None:
    found = firing(report(outputs_drifted=("prediction",)), DEFAULTS)
    assert fired(found) == [("prediction-drift", "prediction")]


@pytest.mark.parametrize(
    ("check", "rule"),
    [
        ("missing_values", "missing-values"),
        ("outliers", "outliers"),
        ("unseen_categories", "unseen-categories"),
        ("type_violations", "type-violations"),
        ("missing_column", "missing-column"),
    ],
)
def test_each_quality_finding_fires_its_rule_about_its_column(check: str, rule: str) -> None:
    found = firing(report(quality=(_finding(check, "colour", 0.4),)), DEFAULTS)
    assert fired(found) == [(rule, "colour")]
    assert found[0].message == f"{check} in colour"
    assert found[0].details == {"value": 0.4, "reference": 0.0}


def test_a_finding_no_rule_checks_fires_nothing() -> None:
    extra = _finding("extra_columns", None, 2.0)
    assert firing(report(quality=(extra,)), DEFAULTS) == []


@pytest.mark.parametrize(("p99", "fires"), [(999.9, False), (1000.0, False), (1000.5, True)])
def test_latency_fires_only_strictly_above_its_threshold(p99: float, fires: bool) -> None:
    found = firing(report(p99=p99), DEFAULTS)
    assert fired(found) == ([("latency", "")] if fires else [])
    if fires:
        assert found[0].details == {"p99_ms": p99, "threshold": 1000.0}
        assert "1000" in found[0].message and "ms" in found[0].message


def test_latency_without_figures_fires_nothing() -> None:
    assert firing(report(p99=None), DEFAULTS) == []


@pytest.mark.parametrize(("rate", "fires"), [(0.2, False), (0.25, False), (0.26, True)])
def test_abstain_rate_fires_only_strictly_above_its_threshold(rate: float, fires: bool) -> None:
    found = firing(report(abstain_rate=rate), DEFAULTS)
    assert fired(found) == ([("abstaining", "")] if fires else [])
    if fires:
        assert found[0].details == {"abstain_rate": rate, "threshold": 0.25}
        assert "26.0%" in found[0].message and "25.0%" in found[0].message


def test_a_rules_own_threshold_is_what_counts() -> None:
    settings = AlertSettings(
        rules=[AlertRule(name="slow", check="latency_p99_ms", threshold=10, severity="critical")]
    )
    found = firing(report(p99=12.0), settings)
    assert fired(found) == [("slow", "")]
    assert found[0].rule.severity == "critical"
    assert firing(report(p99=12.0), DEFAULTS) == []


def everything() -> dict[str, Any]:
    return report(
        drifted=COLUMNS,
        outputs_drifted=("prediction",),
        dataset_drifted=True,
        p99=5000.0,
        abstain_rate=0.9,
        quality=tuple(
            _finding(c, "colour")
            for c in (
                "missing_values",
                "outliers",
                "unseen_categories",
                "type_violations",
                "missing_column",
            )
        ),
    )


# The default rules a report of traffic, drift, data quality and service figures sets off.
FIRED_BY_EVERYTHING = {
    "dataset-drift", "feature-drift", "prediction-drift", "missing-values", "outliers",
    "unseen-categories", "type-violations", "missing-column", "latency", "abstaining",
}  # fmt: skip


def test_every_default_rule_of_these_checks_can_fire() -> None:
    assert {r.name for r in default_rules()} >= FIRED_BY_EVERYTHING
    rules = {f.rule.name for f in firing(everything(), DEFAULTS)}
    assert rules == FIRED_BY_EVERYTHING


def test_disabled_rules_do_not_fire() -> None:
    rules = default_rules()
    for rule in rules:
        rule.enabled = rule.name not in ("feature-drift", "latency")
    names = {f.rule.name for f in firing(everything(), AlertSettings(rules=rules))}
    assert names == FIRED_BY_EVERYTHING - {"feature-drift", "latency"}


def test_a_report_without_traffic_fires_nothing() -> None:
    quiet = everything()
    quiet["service"]["requests"] = 0
    assert firing(quiet, DEFAULTS) == []
    del quiet["service"]
    assert firing(quiet, DEFAULTS) == []


def test_each_quality_rule_fires_at_its_own_threshold() -> None:
    # A warning at 5 % more missing values and a critical alert at 30 %: a column
    # missing in 20 % more rows than in the reference is a warning, not critical.
    settings = AlertSettings(
        rules=[
            AlertRule(name="missing-warn", check="missing_values", threshold=0.05),
            AlertRule(
                name="missing-crit", check="missing_values", threshold=0.3, severity="critical"
            ),
        ]
    )
    found = firing(report(quality=(_finding("missing_values", "colour", 0.2),)), settings)
    assert fired(found) == [("missing-warn", "colour")]


# --- limits and drift options the settings imply ------------------------------------------


def test_quality_limits_come_from_the_enabled_quality_rules() -> None:
    assert quality_limits(DEFAULTS) == QualityLimits(
        missing_increase=0.05, outlier_rate=0.01, unseen_rate=0.01
    )
    settings = AlertSettings(
        rules=[
            AlertRule(name="mv", check="missing_values", threshold=0.2),
            AlertRule(name="out", check="outliers", threshold=0.07, enabled=False),
            AlertRule(name="new", check="unseen_categories"),  # no threshold: the default
            AlertRule(name="slow", check="latency_p99_ms", threshold=5),
        ]
    )
    assert quality_limits(settings) == QualityLimits(
        missing_increase=0.2, outlier_rate=0.01, unseen_rate=0.01
    )


def test_drift_options_come_from_the_settings() -> None:
    settings = AlertSettings(drift_method="psi", drift_thresholds={"psi": 0.2}, drift_share=0.3)
    options = drift_options(settings)
    assert (options.method, dict(options.thresholds), options.drift_share) == (
        "psi",
        {"psi": 0.2},
        0.3,
    )
    assert drift_options(DEFAULTS).method is None


# --- settings validation -------------------------------------------------------------------


def _error(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as err:
        AlertSettings.model_validate(data)
    return str(err.value)


def test_defaults_are_the_default_rules_and_the_log() -> None:
    shown = AlertSettings().shown()
    assert [r["name"] for r in shown["rules"]] == [r.name for r in default_rules()]
    assert shown["notifiers"] == [{"kind": "log", "name": "log", "min_severity": "info"}]
    assert shown["cooldown_minutes"] == 60
    assert shown["drift_share"] == 0.5


def test_duplicate_rule_names_are_named() -> None:
    rule = {"name": "drift", "check": "feature_drift"}
    text = _error({"rules": [rule, rule, {"name": "other", "check": "dataset_drift"}]})
    assert "rule names must be unique; repeated: drift" in text


def test_duplicate_notifier_names_are_named() -> None:
    text = _error(
        {
            "notifiers": [
                {"kind": "log", "name": "ops"},
                {"kind": "webhook", "name": "ops", "url": "http://127.0.0.1:9/x"},
            ]
        }
    )
    assert "notifier names must be unique; repeated: ops" in text


@pytest.mark.parametrize("check", ["latency_p99_ms", "abstain_rate"])
def test_checks_that_compare_with_a_limit_need_a_threshold(check: str) -> None:
    text = _error({"rules": [{"name": "limit", "check": check}]})
    assert f"rule 'limit': check {check} needs a threshold" in text
    AlertSettings.model_validate({"rules": [{"name": "limit", "check": check, "threshold": 0}]})


@pytest.mark.parametrize("name", ["Feature Drift", "-drift", "", "x" * 64])
def test_bad_rule_names_are_refused(name: str) -> None:
    text = _error({"rules": [{"name": name, "check": "feature_drift"}]})
    assert "rules.0.name" in text


def test_unknown_check_is_refused_naming_the_choices() -> None:
    text = _error({"rules": [{"name": "drift", "check": "vibes"}]})
    assert "rules.0.check" in text and "feature_drift" in text


@pytest.mark.parametrize(
    ("notifier", "where"),
    [
        ({"sender": "loopml.example.com", "to": ["ops@example.com"]}, "sender"),
        ({"sender": "loopml@example.com", "to": ["ops at example.com"]}, "to.0"),
        ({"sender": "loopml@example.com", "to": []}, "to"),
    ],
)
def test_bad_email_addresses_are_refused(notifier: dict[str, Any], where: str) -> None:
    text = _error({"notifiers": [{"kind": "email", "name": "ops", "host": "mail", **notifier}]})
    assert f"notifiers.0.email.{where}" in text


def test_other_setting_mistakes_are_refused() -> None:
    assert "secret" in _error(
        {"notifiers": [{"kind": "webhook", "name": "w", "url": "http://h/x", "secret": "short"}]}
    )
    assert "url" in _error({"notifiers": [{"kind": "webhook", "name": "w", "url": "nowhere"}]})
    assert "notifiers.0" in _error({"notifiers": [{"kind": "pager", "name": "p"}]})
    assert "threshold" in _error(
        {"rules": [{"name": "n", "check": "missing_values", "threshold": -1}]}
    )
    assert "drift_share" in _error({"drift_share": 0})
    assert "cooldown" in _error({"cooldown_minutes": -1})
    assert "rule" in _error({"rule": []})


# --- secrets ---------------------------------------------------------------------------------


def with_secrets() -> AlertSettings:
    return AlertSettings.model_validate(
        {
            "notifiers": [
                {
                    "kind": "webhook",
                    "name": "crm",
                    "url": "https://crm.example.com/hook",
                    "secret": "s3cret-value",
                },
                {"kind": "webhook", "name": "plain", "url": "https://t.example.com/hook"},
                {
                    "kind": "email",
                    "name": "ops",
                    "host": "mail",
                    "sender": "a@example.com",
                    "to": ["b@example.com"],
                    "username": "loopml",
                    "password": "mail-password",
                },
            ]
        }
    )


def test_shown_masks_secrets_and_passwords_only() -> None:
    settings = with_secrets()
    shown = settings.shown()
    crm, plain, ops = shown["notifiers"]
    assert crm["secret"] == "***" and crm["url"] == "https://crm.example.com/hook"
    assert plain["secret"] is None
    assert ops["password"] == "***" and ops["username"] == "loopml"
    assert "s3cret-value" not in str(shown) and "mail-password" not in str(shown)
    # Showing does not change the settings themselves.
    assert settings.notifiers[0].secret == "s3cret-value"  # type: ignore[union-attr]


def test_settings_as_shown_are_accepted_back() -> None:
    # What GET alert-settings shows is what a user edits and PUTs back; "***" stands
    # for the stored secret.
    shown = with_secrets().shown()
    again = AlertSettings.model_validate(shown)
    assert again.shown() == shown
