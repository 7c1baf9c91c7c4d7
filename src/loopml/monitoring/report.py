"""A monitoring report: drift and data quality of a window against its reference, as one
JSON-ready dict that the CLI prints, the API returns and the HTML page draws."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from loopml.monitoring.drift import DriftOptions, compare
from loopml.monitoring.profile import Profile
from loopml.monitoring.quality import QualityLimits, quality


def drift_report(
    reference: Profile,
    current: Profile,
    options: DriftOptions | None = None,
    limits: QualityLimits | None = None,
    *,
    title: str = "Drift report",
    reference_name: str = "reference",
    current_name: str = "current",
) -> dict[str, Any]:
    """Drift and quality of ``current`` against ``reference``.

    Returns
    -------
    dict
        ``title``, ``created_at``, ``reference`` and ``current`` (name, rows),
        ``drift`` (per column: test, statistic, threshold, drifted, message, plot data;
        and for the frame: ``dataset_drifted``, ``share``, ``message``), ``quality``
        (findings) and ``summary`` (the sentences a person reads first).
    """
    drift = compare(reference, current, options)
    findings = quality(reference, current, limits)
    summary = [drift.message]
    summary += [c.message for c in drift.columns if c.drifted]
    summary += [f.message for f in findings if f.severity != "info"]
    return {
        "title": title,
        "created_at": datetime.now(timezone.utc).isoformat(),
        "reference": {"name": reference_name, "rows": reference.rows},
        "current": {"name": current_name, "rows": current.rows},
        "drift": drift.to_dict(),
        "quality": [f.to_dict() for f in findings],
        "ignored_columns": reference.ignored,
        "summary": summary,
    }
