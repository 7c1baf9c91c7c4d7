"""Which alert rules a monitoring report sets off, and what each says."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, get_args

from loopml.core.alerts import AlertRule, AlertSettings, Check
from loopml.monitoring.drift import DriftOptions
from loopml.monitoring.quality import QualityLimits

_QUALITY = {
    "missing_values": "missing_increase",
    "outliers": "outlier_rate",
    "unseen_categories": "unseen_rate",
}


@dataclass(frozen=True)
class Firing:
    """One rule set off, about one subject (a column, or the whole deployment)."""

    rule: AlertRule
    subject: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


def drift_options(settings: AlertSettings) -> DriftOptions:
    """How the project decides drift."""
    return DriftOptions(
        method=settings.drift_method,
        thresholds=settings.drift_thresholds,
        drift_share=settings.drift_share,
    )


def quality_limits(settings: AlertSettings) -> QualityLimits:
    """The project's data-quality limits: the thresholds of its quality rules."""
    limits: dict[str, float] = {}
    for rule in settings.rules:
        name = _QUALITY.get(rule.check)
        if name and rule.enabled and rule.threshold is not None:
            # Findings are made at the lowest limit; each rule then keeps its own.
            limits[name] = min(limits.get(name, rule.threshold), rule.threshold)
    return QualityLimits(**limits)


def firing(report: dict[str, Any], settings: AlertSettings) -> list[Firing]:
    """Every enabled rule the report sets off. A report without traffic sets off none."""
    out: list[Firing] = []
    for rule in settings.rules:
        if rule.enabled and rule.check in judged(report):
            out.extend(_check(rule, report))
    return out


def judged(report: dict[str, Any]) -> frozenset[str]:
    """The checks a report can decide: without answered predictions, only rejections
    (an alert about drift is neither confirmed nor resolved by an empty window)."""
    service = report.get("service", {})
    if service.get("requests"):
        checks = frozenset(get_args(Check))
        quality = report.get("performance") or {}
        estimable = quality.get("estimated_accuracy") is not None and "accuracy" in (
            quality.get("expected") or {}
        )
        if not quality.get("enough_labels") and not estimable:
            checks -= {"quality_drop"}  # too few labels to say either way
        return checks
    if (service.get("rejected") or {}).get("requests"):
        return frozenset({"rejected_rows"})
    return frozenset()


def _check(rule: AlertRule, report: dict[str, Any]) -> list[Firing]:
    drift, service = report["drift"], report["service"]
    check = rule.check
    if check == "dataset_drift":
        if not drift["dataset_drifted"]:
            return []
        return [Firing(rule, "", drift["message"], {"drifted_columns": drift["drifted_columns"],
                                                   "share": drift["share"]})]  # fmt: skip
    if check in ("feature_drift", "prediction_drift"):
        columns = drift["columns"] if check == "feature_drift" else drift.get("outputs", [])
        return [
            Firing(
                rule,
                c["column"],
                c["message"],
                {k: c[k] for k in ("test", "statistic", "threshold")},
            )
            for c in columns
            if c["drifted"]
        ]
    if check == "latency_p99_ms":
        p99 = service["latency_ms"].get("p99")
        if p99 is None or rule.threshold is None or p99 <= rule.threshold:
            return []
        message = f"p99 latency {p99:.4g} ms is above {rule.threshold:g} ms"
        return [Firing(rule, "", message, {"p99_ms": p99, "threshold": rule.threshold})]
    if check == "abstain_rate":
        rate = service["abstain_rate"]
        if rule.threshold is None or rate <= rule.threshold:
            return []
        message = f"{rate:.1%} of predictions abstained, above {rule.threshold:.1%}"
        return [Firing(rule, "", message, {"abstain_rate": rate, "threshold": rule.threshold})]
    if check == "quality_drop":
        return _quality_drop(rule, report.get("performance") or {})
    if check == "rejected_rows":
        refused = service.get("rejected") or {}
        share = refused.get("share_of_rows", 0.0)
        if rule.threshold is None or share <= rule.threshold:
            return []
        message = (f"{share:.1%} of rows were in refused or failed requests, above "
                   f"{rule.threshold:.1%}")  # fmt: skip
        return [Firing(rule, "", message, {"share_of_rows": share, **refused})]
    return [
        Firing(
            rule,
            f["column"] or "",
            f["message"],
            {"value": f["value"], "reference": f["reference"]},
        )
        for f in report["quality"]
        if f["check"] == check and _beyond(rule, f)
    ]


def _beyond(rule: AlertRule, finding: dict[str, Any]) -> bool:
    """A rate finding counts for a rule only past the rule's own threshold (its excess
    over the reference's rate); findings without a threshold always count."""
    if rule.threshold is None or rule.check not in _QUALITY:
        return True
    return float(finding["value"]) - float(finding.get("reference") or 0.0) > rule.threshold


def _quality_drop(rule: AlertRule, perf: dict[str, Any]) -> list[Firing]:
    """Measured quality (enough labels) or, for classifiers without them, the estimate
    from confidences, against the out-of-fold quality at training."""
    expected, metrics = perf.get("expected") or {}, perf.get("metrics") or {}
    limit = rule.threshold or 0.0
    enough = perf.get("enough_labels", False)
    if "mae" in expected:
        if not enough or (metrics.get("mae") or {}).get("value") is None:
            return []
        value, most = metrics["mae"]["value"], expected["mae"] * (1 + limit)
        if value <= most:
            return []
        message = (f"MAE {value:.3g} on {perf['labelled']} labelled predictions is above "
                   f"{most:.3g} (training {expected['mae']:.3g}, +{limit:.0%})")  # fmt: skip
        return [Firing(rule, "", message, {"mae": value, "expected": expected["mae"]})]
    if "accuracy" not in expected:
        return []
    if enough and "accuracy" in metrics:
        value, how = metrics["accuracy"]["value"], f"on {perf['labelled']} labelled predictions"
    elif perf.get("estimated_accuracy") is not None:
        value, how = perf["estimated_accuracy"], "estimated from the model's confidences"
    else:
        return []
    least = expected["accuracy"] - limit
    if value >= least:
        return []
    message = (f"accuracy {value:.3g} {how} is below {least:.3g} "
               f"(training {expected['accuracy']:.3g}, -{limit:g})")  # fmt: skip
    return [Firing(rule, "", message, {"accuracy": value, "expected": expected["accuracy"],
                                       "estimated": how.startswith("estimated")})]  # fmt: skip
