"""A monitoring run's figures hour by hour, drawn: traffic and abstaining, latency,
drift, missing values and outliers, model quality, and the seeds' "confidence of recent
inferences over time with the production threshold line"."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from loopml.automl.html import svg_plot


def over_time(report: dict[str, Any]) -> str:
    """The plots of ``report["over_time"]`` (and its performance), or nothing."""
    points = report.get("over_time") or []
    if not points:
        return ""
    # Each hour is drawn at its middle, its bar across the hour.
    times = [datetime.fromisoformat(p["start"]) + timedelta(minutes=30) for p in points]
    threshold = (report.get("service") or {}).get("confidence_threshold")
    parts = [
        _traffic(times, points),
        _latency(times, points),
        _drift(times, points, (report.get("drift") or {}).get("drift_share", 0.5)),
        _rates(times, points),
    ]
    if any("confidence" in p for p in points):
        parts.append(_confidence(times, points, threshold))
    quality = _quality(report.get("performance") or {})
    if quality:
        parts.append(quality)
    return "<h2>Over time</h2><div class='grid'>" + "".join(parts) + "</div>"


def _dates(ax: Any, times: list[datetime]) -> None:
    import matplotlib.dates as mdates

    if len(set(times)) == 1:  # one hour: give the axis an hour either side to span
        ax.set_xlim(times[0] - timedelta(hours=1), times[0] + timedelta(hours=1))
    locator = mdates.AutoDateLocator(maxticks=6)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _traffic(times: list[datetime], points: list[dict[str, Any]]) -> str:
    def draw(ax: Any) -> None:
        ax.bar(times, [p["requests"] for p in points], width=0.9 / 24, color="#5b8def")
        ax.set_ylabel("predictions per hour")
        other = ax.twinx()
        other.plot(times, [p["abstain_rate"] for p in points], color="#b00020", marker=".")
        other.set_ylabel("abstained", color="#b00020")
        other.set_ylim(0, 1)
        _dates(ax, times)

    return svg_plot(draw, "traffic and abstaining")


def _latency(times: list[datetime], points: list[dict[str, Any]]) -> str:
    def draw(ax: Any) -> None:
        for q in ("p50", "p95", "p99"):
            ax.plot(times, [p["latency_ms"][q] for p in points], marker=".", label=q)
        ax.set_ylabel("milliseconds")
        ax.legend(loc="upper left", fontsize=7)
        _dates(ax, times)

    return svg_plot(draw, "prediction latency")


def _drift(times: list[datetime], points: list[dict[str, Any]], share: float) -> str:
    def draw(ax: Any) -> None:
        ax.plot(times, [p["drift_share"] for p in points], marker="o")
        ax.axhline(share, ls="--", c="#b00020", lw=0.8, label=f"dataset drift at {share:.0%}")
        ax.set_ylim(0, 1.02)
        ax.set_ylabel("share of columns drifted")
        ax.legend(loc="upper left", fontsize=7)
        _dates(ax, times)

    return svg_plot(draw, "drift over time")


def _rates(times: list[datetime], points: list[dict[str, Any]]) -> str:
    def draw(ax: Any) -> None:
        ax.plot(times, [p.get("missing_rate", 0.0) for p in points], marker=".", label="missing")
        ax.plot(times, [p.get("outlier_rate", 0.0) for p in points], marker=".", label="outliers")
        ax.set_ylabel("share of values")
        ax.legend(loc="upper left", fontsize=7)
        _dates(ax, times)

    return svg_plot(draw, "missing values and outliers")


def _confidence(times: list[datetime], points: list[dict[str, Any]], limit: float | None) -> str:
    shown = [(t, p["confidence"]) for t, p in zip(times, points, strict=True) if "confidence" in p]

    def draw(ax: Any) -> None:
        ax.plot([t for t, _ in shown], [c["mean"] for _, c in shown], marker="o", label="mean")
        ax.plot([t for t, _ in shown], [c["p10"] for _, c in shown], marker=".", label="10% below")
        if limit is not None:
            ax.axhline(limit, ls="--", c="#b00020", lw=1, label=f"threshold {limit:g}")
        ax.set_ylim(0, 1.02)
        ax.set_ylabel("confidence")
        ax.legend(loc="lower left", fontsize=7)
        _dates(ax, [t for t, _ in shown])

    return svg_plot(draw, "confidence of recent inferences")


def _quality(performance: dict[str, Any]) -> str:
    points = performance.get("over_time") or []
    if not points:
        return ""
    name = "mae" if "mae" in points[0] else "accuracy"
    times = [datetime.fromisoformat(p["start"]) + timedelta(minutes=30) for p in points]
    expected = (performance.get("expected") or {}).get(name)

    def draw(ax: Any) -> None:
        ax.plot(times, [p.get(name) for p in points], marker="o", label="measured")
        if expected is not None:
            ax.axhline(expected, ls="--", c="grey", lw=0.8, label="at training")
        ax.set_ylabel(name)
        ax.legend(loc="lower left", fontsize=7)
        _dates(ax, times)

    return svg_plot(draw, f"{name} from feedback labels")
