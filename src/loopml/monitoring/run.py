"""A monitoring run: a deployment's served traffic over a window, against its model
version's reference: drift, data quality, prediction drift, service figures and how
they moved hour by hour."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from loopml.core.errors import InvalidInput, NotFound
from loopml.core.schemas import Deployment, ModelVersion
from loopml.monitoring.drift import DriftOptions, compare
from loopml.monitoring.performance import labelled, performance
from loopml.monitoring.profile import Profile
from loopml.monitoring.quality import QualityLimits
from loopml.monitoring.reference import CONFIDENCE
from loopml.monitoring.report import drift_report
from loopml.monitoring.sketch import NumericSketch
from loopml.monitoring.traffic import Hour, Traffic, traffic_by_hour
from loopml.store.blobs import BlobStore

_WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*$")
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_WINDOW = timedelta(days=366)


def parse_window(text: str) -> timedelta:
    """``"30m"``, ``"1h"``, ``"7d"`` or ``"2w"`` as a duration."""
    match = _WINDOW.match(str(text))
    if not match or float(match.group(1)) <= 0:
        raise InvalidInput(
            f"window {text!r} is not a duration such as 30m, 1h, 24h, 7d or 2w", field="window"
        )
    length = timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    if length > MAX_WINDOW:
        raise InvalidInput(f"window {text!r} is longer than a year", field="window")
    return length


def load_reference(blobs: BlobStore, model: ModelVersion) -> Profile:
    """The reference profile stored with a model version."""
    if not model.reference_profile:
        raise NotFound(
            f"model v{model.number} has no reference profile (it was trained before loopml "
            "made them); retrain it to monitor its deployment",
            field="model",
        )
    return Profile.from_dict(json.loads(blobs.get(model.reference_profile)))


def monitor(
    blobs: BlobStore,
    deployment: Deployment,
    model: ModelVersion,
    start: datetime,
    end: datetime,
    options: DriftOptions | None = None,
    limits: QualityLimits | None = None,
    *,
    now: datetime | None = None,
    progress: Callable[[float], None] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The report of ``deployment``'s traffic answered by ``model`` in ``[start, end)``.

    Returns :func:`loopml.monitoring.report.drift_report`'s dict plus ``deployment``,
    ``model_version``, ``window``, ``service`` (requests, abstain rate, latency
    percentiles against the training-time baseline) and ``over_time`` (per hour: the
    same figures and the share of drifted columns), and ``performance``: quality on the
    predictions that ``labels`` (prediction id to true label, from feedback) cover, and
    the accuracy the model's confidences promise.
    """
    if end <= start:
        raise InvalidInput("the window ends before it starts", field="window")
    options = (options or DriftOptions()).check()
    reference = load_reference(blobs, model)
    total = Traffic(Profile())
    points = []
    hours_seen = traffic_by_hour(
        blobs, deployment.project, deployment.name, model.number, reference, start, end,
        now=now, progress=progress, cache_as=model.id,
    )  # fmt: skip
    for hour in hours_seen:  # one hour in memory at a time, and the running total
        total = total.merge(hour.traffic)
        points.append(_hour(hour, reference, options))
    title = f"{deployment.project}/{deployment.name}: model v{model.number}"
    if total.requests:
        report = drift_report(
            reference, total.profile, options, limits, title=title,
            reference_name=f"training (v{model.number})", current_name="served traffic",
        )  # fmt: skip
    else:
        report = _no_traffic(title, reference, options.drift_share)
    confidence = total.profile.outputs.get(CONFIDENCE)
    estimate = (
        confidence.mean if isinstance(confidence, NumericSketch) and confidence.present else None
    )
    rows = labelled(blobs, deployment.project, deployment.name, model.number, labels or {},
                    start, end) if labels else []  # fmt: skip
    quality = performance(
        rows, model.task.value, model.classes, reference.metrics, estimated_accuracy=estimate
    )
    report.update(
        deployment=deployment.name,
        project=deployment.project,
        model_version=model.number,
        window={"start": start.isoformat(), "end": end.isoformat()},
        service=service(total, model, deployment),
        over_time=points,
        performance=quality,
    )
    report["summary"].insert(1, report["service"]["message"])
    report["summary"].insert(2, "model quality: " + quality["message"])
    return report


def _no_traffic(title: str, reference: Profile, drift_share: float) -> dict[str, Any]:
    message = "no traffic of this model version in the window: nothing to compare"
    return {
        "title": title,
        "created_at": datetime.now(timezone.utc).isoformat(),
        "reference": {"name": "training", "rows": reference.rows},
        "current": {"name": "served traffic", "rows": 0},
        "drift": {
            "dataset_drifted": False, "drifted_columns": [], "share": 0.0,
            "drift_share": drift_share, "message": message, "columns": [], "outputs": [],
        },
        "quality": [],
        "ignored_columns": reference.ignored,
        "summary": [message],
    }  # fmt: skip


def service(traffic: Traffic, model: ModelVersion, deployment: Deployment) -> dict[str, Any]:
    """Requests, abstain rate and latency percentiles (milliseconds) of a window."""
    latency = {f"p{q}": _quantile(traffic.latency, q / 100) for q in (50, 95, 99)}
    baseline = model.predict_seconds_per_1000
    rate = traffic.abstained / traffic.requests if traffic.requests else 0.0
    parts = [f"{traffic.requests:,} predictions"]
    if traffic.requests:
        parts.append(f"{rate:.1%} abstained")
        parts.append(
            f"latency p50 {latency['p50']:.3g} ms, p95 {latency['p95']:.3g} ms, "
            f"p99 {latency['p99']:.3g} ms"
        )
    refused = traffic.rejected or {}
    rows = refused.get("rows", 0)
    rejected_share = rows / (rows + traffic.requests) if rows + traffic.requests else 0.0
    if refused:
        worst = sorted(refused["columns"].items(), key=lambda item: -item[1])[:3]
        named = ", ".join(f"`{c}` {n}" for c, n in worst)
        parts.append(
            f"{refused['requests']:,} request(s) refused or failed ({rows:,} rows, "
            f"{rejected_share:.1%} of rows)" + (f"; wrong values in {named}" if named else "")
        )
    return {
        "requests": traffic.requests,
        "abstained": traffic.abstained,
        "abstain_rate": rate,
        "rejected": {
            "requests": refused.get("requests", 0),
            "rows": rows,
            "share_of_rows": rejected_share,
            "status": refused.get("status", {}),
            "columns": refused.get("columns", {}),
            "example": refused.get("example"),
        },
        "latency_ms": latency,
        "model_ms_per_row_at_training": None if baseline is None else baseline,
        "confidence_threshold": deployment.confidence_threshold,
        "message": "served: " + ", ".join(parts),
    }


def _quantile(sketch: NumericSketch, q: float) -> float | None:
    if not sketch.present:
        return None
    value = sketch.quantile(q)
    return float(value) if np.isfinite(value) else None


def _hour(hour: Hour, reference: Profile, options: DriftOptions) -> dict[str, Any]:
    traffic = hour.traffic
    drift = compare(reference, traffic.profile, options)
    confidence = traffic.profile.outputs.get(CONFIDENCE)
    point: dict[str, Any] = {
        "start": hour.start.isoformat(),
        "requests": traffic.requests,
        "abstain_rate": traffic.abstained / traffic.requests if traffic.requests else 0.0,
        "latency_ms": {f"p{q}": _quantile(traffic.latency, q / 100) for q in (50, 95, 99)},
        "drift_share": drift.share,
        "drifted_columns": drift.drifted_columns,
        "statistics": {
            c.column: None if c.result is None else c.result.statistic for c in drift.columns
        },
        **_rates(traffic.profile),
    }
    if isinstance(confidence, NumericSketch) and confidence.present:
        point["confidence"] = {
            "mean": confidence.mean,
            "p10": confidence.quantile(0.1),
            "p50": confidence.quantile(0.5),
        }
    return point


def _rates(window: Profile) -> dict[str, Any]:
    """Missing values and outliers in an hour: their share over all profiled cells, and
    the column where each was highest."""
    missing = {name: s.missing / s.rows for name, s in window.columns.items() if s.rows}
    outliers = {
        name: s.outliers / s.present
        for name, s in window.columns.items()
        if isinstance(s, NumericSketch) and s.present
    }
    cells = sum(s.rows for s in window.columns.values())
    numbers = sum(s.present for s in window.columns.values() if isinstance(s, NumericSketch))
    return {
        "missing_rate": sum(s.missing for s in window.columns.values()) / cells if cells else 0.0,
        "outlier_rate": sum(
            s.outliers for s in window.columns.values() if isinstance(s, NumericSketch)
        )
        / numbers
        if numbers
        else 0.0,
        "most_missing": max(missing, key=lambda n: missing[n]) if missing else None,
        "most_outliers": max(outliers, key=lambda n: outliers[n]) if outliers else None,
    }
