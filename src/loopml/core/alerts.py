"""Alerting's shapes: a project's rules and notifiers, alerts and their notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    ValidationInfo,
    field_validator,
    model_validator,
)

Check = Literal[
    "dataset_drift",  # the share of drifted columns reached drift_share
    "feature_drift",  # one alert per drifted column
    "prediction_drift",  # the model's answers drifted
    "missing_values",  # missing-value rate above the reference's by more than threshold
    "outliers",  # outlier rate above the reference's by more than threshold
    "unseen_categories",  # share of values the reference never had above threshold
    "type_violations",  # values of the wrong type in a column
    "missing_column",  # a column the model reads is not sent
    "latency_p99_ms",  # p99 latency above threshold (milliseconds)
    "abstain_rate",  # share of abstained predictions above threshold
    "quality_drop",  # accuracy below training's by more than threshold (MAE: above, relative)
    "rejected_rows",  # share of rows in refused or failed requests above threshold
]
Severity = Literal["info", "warning", "critical"]
AlertState = Literal["open", "acknowledged", "resolved"]
NEEDS_THRESHOLD = frozenset({"latency_p99_ms", "abstain_rate", "quality_drop", "rejected_rows"})


class AlertRule(BaseModel):
    """When a monitoring run raises an alert."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    check: Check
    threshold: float | None = Field(
        default=None, ge=0, description="For checks that compare a figure with a limit."
    )
    severity: Severity = "warning"
    enabled: bool = True

    @model_validator(mode="after")
    def _threshold_where_needed(self) -> AlertRule:
        if self.check in NEEDS_THRESHOLD and self.threshold is None:
            raise ValueError(f"rule {self.name!r}: check {self.check} needs a threshold")
        return self


def default_rules() -> list[AlertRule]:
    """What a project gets until it sets its own."""
    return [
        AlertRule(name="dataset-drift", check="dataset_drift", severity="critical"),
        AlertRule(name="feature-drift", check="feature_drift"),
        AlertRule(name="prediction-drift", check="prediction_drift"),
        AlertRule(name="missing-values", check="missing_values", threshold=0.05),
        AlertRule(name="outliers", check="outliers", threshold=0.01),
        AlertRule(name="unseen-categories", check="unseen_categories", threshold=0.01),
        AlertRule(name="type-violations", check="type_violations", severity="critical"),
        AlertRule(name="missing-column", check="missing_column", severity="critical"),
        AlertRule(name="latency", check="latency_p99_ms", threshold=1000.0),
        AlertRule(name="abstaining", check="abstain_rate", threshold=0.25),
        AlertRule(name="quality-drop", check="quality_drop", threshold=0.05, severity="critical"),
        AlertRule(name="rejected-requests", check="rejected_rows", threshold=0.01),
    ]


class WebhookNotifier(BaseModel):
    """POSTs each alert as JSON, signed with HMAC-SHA256 when a secret is set
    (``X-Loopml-Signature: sha256=<hex of the body>``), retried with back-off."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["webhook"] = "webhook"
    name: str = Field(min_length=1, max_length=63)
    url: HttpUrl
    secret: str | None = Field(
        default=None, description="At least 8 characters; never shown back (``***`` keeps it)."
    )
    attempts: int = Field(default=4, ge=1, le=10)
    min_severity: Severity = "info"

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, value: str | None) -> str | None:
        if value is not None and value != "***" and len(value) < 8:
            raise ValueError("a webhook secret has at least 8 characters")
        return value


class EmailNotifier(BaseModel):
    """Sends each alert as an e-mail over SMTP."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["email"] = "email"
    name: str = Field(min_length=1, max_length=63)
    host: str = Field(min_length=1)
    port: int = Field(default=25, ge=1, le=65535)
    sender: str = Field(min_length=3, pattern=r"^[^@\s]+@[^@\s]+$")
    to: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]] = Field(min_length=1)
    username: str | None = None
    password: str | None = Field(default=None, description="Never shown back.")
    starttls: bool = False
    attempts: int = Field(default=3, ge=1, le=10)
    min_severity: Severity = "warning"


class LogNotifier(BaseModel):
    """Writes each alert to the server's log (logger ``loopml.alerts``)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["log"] = "log"
    name: str = Field(default="log", min_length=1, max_length=63)
    min_severity: Severity = "info"


def _log_only() -> list[WebhookNotifier | EmailNotifier | LogNotifier]:
    return [LogNotifier()]


Notifier = Annotated[WebhookNotifier | EmailNotifier | LogNotifier, Field(discriminator="kind")]
SECRET_FIELDS = ("secret", "password")


class AlertSettings(BaseModel):
    """A project's monitoring settings: how drift is decided, the alert rules, and who
    is told."""

    model_config = ConfigDict(extra="forbid")

    rules: list[AlertRule] = Field(default_factory=default_rules)
    notifiers: list[Notifier] = Field(default_factory=lambda: _log_only())
    cooldown_minutes: float = Field(
        default=60, ge=0, le=7 * 24 * 60,
        description="An alert still firing is repeated to notifiers at most this often; "
        "one resolved less than this ago reopens quietly.",
    )  # fmt: skip
    drift_method: str | None = Field(default=None, description="One test for every column.")
    drift_thresholds: dict[str, float] = Field(default_factory=dict)
    drift_share: float = Field(default=0.5, gt=0, le=1)

    @field_validator("rules", "notifiers")
    @classmethod
    def _unique_names(cls, items: list[Any], info: ValidationInfo) -> list[Any]:
        names = [item.name for item in items]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            what = "rule" if info.field_name == "rules" else "notifier"
            raise ValueError(f"{what} names must be unique; repeated: {', '.join(repeated)}")
        return items

    def shown(self) -> dict[str, Any]:
        """As others may see it: secrets replaced by ``"***"``."""
        data = self.model_dump(mode="json")
        for notifier in data["notifiers"]:
            for name in SECRET_FIELDS:
                if notifier.get(name):
                    notifier[name] = "***"
        return data


class Notification(BaseModel):
    id: str
    notifier: str
    kind: str
    event: Literal["opened", "repeated", "resolved"]
    state: Literal["sent", "failed"]
    attempts: int
    error: str | None = None
    created_at: datetime
    sent_at: datetime | None = None


class Alert(BaseModel):
    id: str
    project: str
    deployment: str
    rule: str
    check: str
    subject: str = Field(description="What it is about: a column, or empty for the whole.")
    state: AlertState
    severity: Severity
    message: str
    details: dict[str, Any] = Field(default_factory=dict)
    count: int = Field(description="Monitoring runs that found it firing.")
    first_seen: datetime
    last_seen: datetime
    run: str | None = Field(default=None, description="The last monitoring run that saw it.")
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    resolution: str | None = None
    notifications: list[Notification] = Field(default_factory=list)
