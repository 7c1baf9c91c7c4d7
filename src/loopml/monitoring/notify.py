"""Telling people about alerts: a signed webhook (for CRM, ERP and ticket systems), an
e-mail over SMTP, or the log. Each delivery is retried with back-off; what failed is
returned, to be kept and shown, never raised into the monitoring run."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import httpx

from loopml.core.alerts import Alert, EmailNotifier, LogNotifier, WebhookNotifier

log = logging.getLogger("loopml.alerts")
_RANK = {"info": 0, "warning": 1, "critical": 2}
SIGNATURE = "X-Loopml-Signature"
TIMESTAMP = "X-Loopml-Timestamp"
FIRST_WAIT = 0.5  # seconds before the first retry; doubled each time


@dataclass(frozen=True)
class Delivery:
    notifier: str
    kind: str
    attempts: int
    error: str | None  # None: delivered


def wanted(notifier: WebhookNotifier | EmailNotifier | LogNotifier, alert: Alert) -> bool:
    """Whether the notifier takes alerts of this severity."""
    return _RANK[alert.severity] >= _RANK[notifier.min_severity]


def payload(alert: Alert, event: str) -> dict[str, Any]:
    """What a webhook receives: the event and the alert as the API shows it."""
    return {"event": event, "alert": alert.model_dump(mode="json", exclude={"notifications"})}


def sign(secret: str, body: bytes, timestamp: str) -> str:
    """The signature header's value: HMAC-SHA256, hex, of ``<timestamp>.<body>`` (the
    exact bytes sent); the timestamp lets a receiver refuse an old request replayed."""
    signed = timestamp.encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def deliver(
    notifier: WebhookNotifier | EmailNotifier | LogNotifier,
    alert: Alert,
    event: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
    timeout: float = 10.0,
) -> Delivery:
    """Send one alert event through one notifier, retrying with back-off."""
    if isinstance(notifier, LogNotifier):
        level = logging.WARNING if alert.severity != "info" else logging.INFO
        log.log(level, "alert %s (%s) %s/%s: %s", event, alert.severity, alert.project,
                alert.deployment, alert.message)  # fmt: skip
        return Delivery(notifier.name, notifier.kind, 1, None)
    if isinstance(notifier, WebhookNotifier):
        send: Callable[[], None] = lambda: _post(notifier, alert, event, timeout)  # noqa: E731
    else:
        send = lambda: _mail(notifier, alert, event, timeout)  # noqa: E731
    error: str | None = None
    for attempt in range(1, notifier.attempts + 1):
        try:
            send()
            return Delivery(notifier.name, notifier.kind, attempt, None)
        except (httpx.HTTPError, OSError, smtplib.SMTPException, _Refused) as exc:
            error = f"{type(exc).__name__}: {_without_url(str(exc), notifier)}"
            if attempt < notifier.attempts:
                sleep(FIRST_WAIT * 2 ** (attempt - 1))
    log.error("alert %s not delivered by %s: %s", alert.id, notifier.name, error)
    return Delivery(notifier.name, notifier.kind, notifier.attempts, error)


class _Refused(Exception):
    """The receiver answered, but not with success."""


def _post(notifier: WebhookNotifier, alert: Alert, event: str, timeout: float) -> None:
    body = json.dumps(payload(alert, event), sort_keys=True).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "loopml-alerts"}
    if notifier.secret:
        stamp = str(int(time.time()))
        headers[TIMESTAMP] = stamp
        headers[SIGNATURE] = sign(notifier.secret, body, stamp)
    response = httpx.post(str(notifier.url), content=body, headers=headers, timeout=timeout)
    if not response.is_success:
        # The host only: a webhook's path or query is often its credential.
        raise _Refused(
            f"HTTP {response.status_code} from {notifier.url.host}: {response.text[:200]}"
        )


def _mail(notifier: EmailNotifier, alert: Alert, event: str, timeout: float) -> None:
    message = EmailMessage()
    verb = {"opened": "", "repeated": "still firing: ", "resolved": "resolved: "}.get(event, "")
    message["Subject"] = (
        f"[loopml {alert.severity}] {verb}{alert.project}/{alert.deployment}: {alert.rule}"
    )
    message["From"] = notifier.sender
    message["To"] = ", ".join(notifier.to)
    message.set_content(
        f"{alert.message}\n\nproject: {alert.project}\ndeployment: {alert.deployment}\n"
        f"rule: {alert.rule} ({alert.check})\nstate: {alert.state}\nseen {alert.count} "
        f"time(s), first {alert.first_seen.isoformat()}, last {alert.last_seen.isoformat()}\n"
        f"alert id: {alert.id}\n"
    )
    with smtplib.SMTP(notifier.host, notifier.port, timeout=timeout) as smtp:
        if notifier.starttls:
            smtp.starttls(context=ssl.create_default_context())  # the certificate is checked
        if notifier.username:
            smtp.login(notifier.username, notifier.password or "")
        smtp.send_message(message)


def _without_url(text: str, notifier: WebhookNotifier | EmailNotifier) -> str:
    """An error's text, the webhook's full address (which may hold a token) cut out."""
    if isinstance(notifier, WebhookNotifier):
        return text.replace(str(notifier.url), notifier.url.host or "the webhook")
    return text
