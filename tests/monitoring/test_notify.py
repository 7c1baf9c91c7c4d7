"""Telling people about alerts, against real receivers on loopback: a webhook server that
records what it gets (and can be told to fail), an SMTP server (aiosmtpd), and the log.

``Receiver`` and ``Mailbox`` are used by the API's alert tests too."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
import logging
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from loopml.core.alerts import Alert, EmailNotifier, LogNotifier, WebhookNotifier
from loopml.monitoring.notify import SIGNATURE, deliver, payload, sign, wanted
from tests.conftest import free_port

SECRET = "webhook-secret-1"


# --- real receivers --------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def signed_with(self, secret: str) -> bool:
        """The signature header is HMAC-SHA256 of ``<timestamp>.<raw body>`` under
        ``secret``, the timestamp being the one sent beside it."""
        stamp = self.headers.get("x-loopml-timestamp", "").encode()
        signed = stamp + b"." + self.body
        expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        return hmac.compare_digest(self.headers.get("x-loopml-signature", ""), expected)


class Receiver:
    """A webhook receiver on 127.0.0.1 that records every request. It answers 500 to the
    first ``fail_first`` requests, and always to paths starting with ``/down``."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.fail_first = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.requests.append(
                        Received(
                            self.command,
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                        )
                    )
                    failing = receiver.fail_first > 0 or self.path.startswith("/down")
                    receiver.fail_first = max(0, receiver.fail_first - 1)
                status, text = (500, b"receiver is down") if failing else (200, b"ok")
                self.send_response(status)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def about(self, alert_id: str) -> list[Received]:
        """The requests whose payload is about the alert ``alert_id``."""
        with self._lock:
            return [r for r in self.requests if r.json()["alert"]["id"] == alert_id]


class _Collect:
    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


class Mailbox:
    """An SMTP server (aiosmtpd) on 127.0.0.1 that keeps every message it receives."""

    def __init__(self) -> None:
        self._handler = _Collect()
        self.port = free_port()
        self._controller = Controller(self._handler, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> Mailbox:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    @property
    def messages(self) -> list[tuple[Any, EmailMessage]]:
        """(envelope, parsed message) of everything received, oldest first."""
        return [
            (
                e,
                email.message_from_bytes(
                    e.original_content or e.content, policy=email.policy.default
                ),
            )
            for e in list(self._handler.envelopes)
        ]


# --- fixtures --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    with Mailbox() as m:
        yield m


@pytest.fixture
def waits() -> list[float]:
    return []


def make_alert(**changes: Any) -> Alert:
    at = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
    values: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "project": "shop",
        "deployment": "web",
        "rule": "feature-drift",
        "check": "feature_drift",
        "subject": "petal length (cm)",
        "state": "open",
        "severity": "warning",
        "message": "`petal length (cm)` drifted (ks p-value 0.0001 < 0.05)",
        "details": {"test": "ks", "statistic": 0.0001, "threshold": 0.05},
        "count": 1,
        "first_seen": at,
        "last_seen": at,
        "run": "run-1",
    }
    values.update(changes)
    return Alert(**values)


def webhook(receiver: Receiver, path: str = "/hook", **changes: Any) -> WebhookNotifier:
    return WebhookNotifier.model_validate({"name": "crm", "url": receiver.url(path), **changes})


# --- webhooks --------------------------------------------------------------------------


def test_webhook_posts_the_event_and_alert_signed_with_the_secret(
    receiver: Receiver, waits: list[float]
) -> None:
    alert = make_alert()
    sent = deliver(webhook(receiver, secret=SECRET), alert, "opened", sleep=waits.append)
    assert sent.error is None and sent.attempts == 1
    assert (sent.notifier, sent.kind) == ("crm", "webhook")
    [got] = receiver.about(alert.id)
    assert got.method == "POST" and got.path == "/hook"
    assert got.headers["content-type"] == "application/json"
    assert got.signed_with(SECRET)
    assert not got.signed_with(SECRET + "x")
    body = got.json()
    assert set(body) == {"event", "alert"}
    assert body["event"] == "opened"
    assert body["alert"]["id"] == alert.id
    assert body["alert"]["subject"] == "petal length (cm)"
    assert body["alert"]["first_seen"].startswith("2024-05-01T12:00:00")
    assert "notifications" not in body["alert"]
    assert body == payload(alert, "opened")
    assert waits == []


def test_webhook_without_a_secret_sends_no_signature(
    receiver: Receiver, waits: list[float]
) -> None:
    alert = make_alert()
    assert deliver(webhook(receiver), alert, "resolved", sleep=waits.append).error is None
    [got] = receiver.about(alert.id)
    assert "x-loopml-signature" not in got.headers
    assert got.json()["event"] == "resolved"


def test_sign_is_hmac_sha256_of_the_exact_body() -> None:
    body = b'{"event": "opened"}'
    digest = hmac.new(b"k" * 8, b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign("k" * 8, body, "1700000000") == f"sha256={digest}"
    assert sign("k" * 8, body + b" ", "1700000000") != sign("k" * 8, body, "1700000000")
    assert sign("k" * 8, body, "1700000001") != sign("k" * 8, body, "1700000000")
    assert SIGNATURE == "X-Loopml-Signature"


def test_webhook_is_retried_after_500s_with_growing_waits(
    receiver: Receiver, waits: list[float]
) -> None:
    alert = make_alert()
    receiver.fail_first = 2
    sent = deliver(webhook(receiver, secret=SECRET), alert, "opened", sleep=waits.append)
    assert sent.error is None
    assert sent.attempts == 3
    assert waits == [0.5, 1.0]
    got = receiver.about(alert.id)
    assert len(got) == 3
    # Every attempt carries the same signed body.
    assert len({r.body for r in got}) == 1
    assert all(r.signed_with(SECRET) for r in got)


def test_webhook_gives_up_after_its_attempts_and_returns_the_error(
    receiver: Receiver, waits: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    alert = make_alert()
    notifier = webhook(receiver, "/down", attempts=4)
    sent = deliver(notifier, alert, "opened", sleep=waits.append)
    assert sent.attempts == 4
    assert sent.error is not None
    assert "500" in sent.error and "receiver is down" in sent.error
    assert waits == [0.5, 1.0, 2.0]
    assert len(receiver.about(alert.id)) == 4
    assert any(
        r.name == "loopml.alerts" and r.levelno == logging.ERROR and alert.id in r.getMessage()
        for r in caplog.records
    )


def test_webhook_to_a_closed_port_is_an_error_not_an_exception(waits: list[float]) -> None:
    closed = f"http://127.0.0.1:{free_port()}/hook"
    notifier = WebhookNotifier.model_validate({"name": "crm", "url": closed, "attempts": 2})
    sent = deliver(notifier, make_alert(), "opened", sleep=waits.append, timeout=5)
    assert sent.attempts == 2
    assert sent.error is not None and "ConnectError" in sent.error
    assert waits == [0.5]


@pytest.mark.parametrize(
    ("minimum", "taken"),
    [
        ("info", {"info", "warning", "critical"}),
        ("warning", {"warning", "critical"}),
        ("critical", {"critical"}),
    ],
)
def test_min_severity_decides_which_alerts_a_notifier_takes(minimum: str, taken: set[str]) -> None:
    notifiers: list[WebhookNotifier | EmailNotifier | LogNotifier] = [
        WebhookNotifier.model_validate(
            {"name": "w", "url": "http://127.0.0.1:9/x", "min_severity": minimum}
        ),
        EmailNotifier.model_validate(
            {"name": "e", "host": "h", "sender": "a@b", "to": ["c@d"], "min_severity": minimum}
        ),
        LogNotifier.model_validate({"min_severity": minimum}),
    ]
    for notifier in notifiers:
        got = {
            s for s in ("info", "warning", "critical") if wanted(notifier, make_alert(severity=s))
        }
        assert got == taken, notifier


# --- e-mail ----------------------------------------------------------------------------


def mail_to(mailbox: Mailbox, **changes: Any) -> EmailNotifier:
    values: dict[str, Any] = {
        "name": "ops",
        "host": "127.0.0.1",
        "port": mailbox.port,
        "sender": "loopml@example.com",
        "to": ["ops@example.com", "oncall@example.com"],
    }
    values.update(changes)
    return EmailNotifier(**values)


def _mail_about(mailbox: Mailbox, alert: Alert) -> list[tuple[Any, EmailMessage]]:
    return [(e, m) for e, m in mailbox.messages if alert.id in m.get_content()]


def test_email_arrives_with_subject_sender_recipients_and_body(
    mailbox: Mailbox, waits: list[float]
) -> None:
    alert = make_alert(severity="critical", rule="dataset-drift", check="dataset_drift")
    sent = deliver(mail_to(mailbox), alert, "opened", sleep=waits.append)
    assert sent.error is None and sent.attempts == 1
    assert (sent.notifier, sent.kind) == ("ops", "email")
    [(envelope, message)] = _mail_about(mailbox, alert)
    subject = message["Subject"]
    assert "critical" in subject and "shop/web" in subject and "dataset-drift" in subject
    assert message["From"] == "loopml@example.com"
    assert message["To"] == "ops@example.com, oncall@example.com"
    assert envelope.mail_from == "loopml@example.com"
    assert sorted(envelope.rcpt_tos) == ["oncall@example.com", "ops@example.com"]
    text = message.get_content()
    assert alert.message in text
    assert f"alert id: {alert.id}" in text
    assert waits == []


def test_email_subject_says_when_an_alert_is_resolved(mailbox: Mailbox) -> None:
    alert = make_alert(state="resolved")
    assert deliver(mail_to(mailbox), alert, "resolved").error is None
    [(_, message)] = _mail_about(mailbox, alert)
    assert "resolved" in message["Subject"] and "feature-drift" in message["Subject"]


def test_email_with_smtp_down_is_an_error_after_its_attempts(waits: list[float]) -> None:
    notifier = EmailNotifier(
        name="ops", host="127.0.0.1", port=free_port(), sender="a@example.com",
        to=["b@example.com"], attempts=3,
    )  # fmt: skip
    sent = deliver(notifier, make_alert(), "opened", sleep=waits.append, timeout=5)
    assert sent.error is not None
    assert "Connection" in sent.error or "refused" in sent.error
    assert sent.attempts == 3
    assert waits == [0.5, 1.0]


def test_email_asking_for_starttls_from_a_plain_server_fails_and_sends_nothing(
    mailbox: Mailbox, waits: list[float]
) -> None:
    alert = make_alert()
    sent = deliver(mail_to(mailbox, starttls=True, attempts=1), alert, "opened", sleep=waits.append)
    assert sent.error is not None and "STARTTLS" in sent.error
    assert _mail_about(mailbox, alert) == []


# --- the log ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("severity", "level"), [("warning", logging.WARNING), ("info", logging.INFO)]
)
def test_log_notifier_writes_to_the_alerts_logger(
    caplog: pytest.LogCaptureFixture, severity: str, level: int
) -> None:
    caplog.set_level(logging.INFO, logger="loopml.alerts")
    alert = make_alert(severity=severity)
    sent = deliver(LogNotifier(), alert, "opened")
    assert sent.error is None and (sent.notifier, sent.kind, sent.attempts) == ("log", "log", 1)
    [record] = [r for r in caplog.records if r.name == "loopml.alerts"]
    assert record.levelno == level
    text = record.getMessage()
    assert "opened" in text and severity in text and "shop/web" in text and alert.message in text
