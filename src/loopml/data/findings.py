"""How a quality finding is written: the check, its severity, the column and a message
that says what to do."""

from __future__ import annotations

from typing import Any

from loopml.core.enums import Severity
from loopml.core.schemas import QualityFinding


def finding(
    check: str, severity: Severity, column: str | None, message: str, **details: Any
) -> QualityFinding:
    return QualityFinding(
        check=check, severity=severity, column=column, message=message, details=details
    )


def pct(part: float, whole: float) -> str:
    return f"{100 * part / max(whole, 1):.1f}%"
