"""A monitoring report as one self-contained HTML page (inline SVG plots, no CDN)."""

from __future__ import annotations

from typing import Any

from loopml.automl.html import STYLE, escape, number, svg_plot, table
from loopml.monitoring.drift import number as short
from loopml.monitoring.plots_over_time import over_time

_MAX_PLOTS = 60


def render(report: dict[str, Any]) -> str:
    """The HTML page of a :func:`loopml.monitoring.report.drift_report`."""
    drift = report["drift"]
    verdict = "bad" if drift["dataset_drifted"] else "good"
    rows = [
        (
            escape(c["column"]),
            escape(c["kind"]),
            escape(c["test"] or "-"),
            short(c["statistic"]),
            short(c["threshold"]),
            '<span class="bad">drifted</span>' if c["drifted"] else "no",
            escape(c["message"]),
        )
        for c in sorted(drift["columns"], key=lambda c: not c["drifted"])
    ]
    findings = [
        (escape(f["severity"]), escape(f["check"]), escape(f["column"] or ""), escape(f["message"]))
        for f in report["quality"]
    ]
    plotted = sorted(drift["columns"], key=lambda c: not c["drifted"])[:_MAX_PLOTS]
    plots = "".join(_distribution(c, report) for c in plotted)
    ref, cur = report["reference"], report["current"]
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(report['title'])}"
        f"</title><style>{STYLE}</style></head><body><h1>{escape(report['title'])}</h1>"
        f"<p class='note'>{escape(ref['name'])} ({ref['rows']:,} rows) against "
        f"{escape(cur['name'])} ({cur['rows']:,} rows) · {escape(report['created_at'])}</p>"
        f"<p class='{verdict}'>{escape(drift['message'])}</p>"
        + _service(report)
        + over_time(report)
        + f"<h2>Drift per column</h2>{_statistics(drift['columns'])}"
        f"{table(['column', 'type', 'test', 'value', 'threshold', 'drift', 'in words'], rows)}"
        f"<h2>Data quality</h2>"
        + (
            table(["severity", "check", "column", "finding"], findings)
            if findings
            else "<p class='good'>No data-quality findings.</p>"
        )
        + f"<h2>Distributions: reference against current</h2><div class='grid'>{plots}</div>"
        "</body></html>"
    )


def _statistics(columns: list[dict[str, Any]]) -> str:
    tested = [c for c in columns if c["statistic"] is not None][:40]
    if not tested:
        return ""

    def draw(ax: Any) -> None:
        names = [c["column"] for c in tested][::-1]
        # p-values drift when small, distances when large: plot both as "how far past".
        scores = [_severity(c) for c in tested][::-1]
        colours = ["#b00020" if c["drifted"] else "#5b8def" for c in tested][::-1]
        ax.barh(names, scores, color=colours)
        ax.axvline(1.0, c="grey", ls="--", lw=0.8)
        ax.set_xlabel("value / threshold (p-value tests: threshold / p)")

    height = 1.2 + 0.2 * len(tested)
    return svg_plot(draw, "drift per column (right of the line: drifted)", size=(8.4, height))


def _severity(column: dict[str, Any]) -> float:
    value, threshold = column["statistic"], column["threshold"]
    if column["test"] in ("ks", "chisquare", "ztest"):
        return min(threshold / max(value, 1e-12), 10.0)
    return min(value / threshold, 10.0)


def _distribution(column: dict[str, Any], report: dict[str, Any]) -> str:
    plot = column["plot"]
    ref_name, cur_name = report["reference"]["name"], report["current"]["name"]
    if plot["type"] == "histogram":
        edges = plot["edges"]
        if None in edges:
            return ""

        def draw(ax: Any) -> None:
            ax.stairs(plot["reference"], edges, label=ref_name, fill=True, alpha=0.4)
            ax.stairs(plot["current"], edges, label=cur_name, lw=1.5)
            ax.set_ylabel("share of rows")
            ax.legend(loc="upper right", fontsize=7)

    elif plot["type"] == "bars":
        labels = [str(label)[:18] for label in plot["labels"]]

        def draw(ax: Any) -> None:
            xs = range(len(labels))
            ax.bar([x - 0.2 for x in xs], plot["reference"], width=0.4, label=ref_name)
            ax.bar([x + 0.2 for x in xs], plot["current"], width=0.4, label=cur_name)
            ax.set_xticks(list(xs), labels, rotation=45, ha="right")
            ax.set_ylabel("share of rows")
            ax.legend(loc="upper right", fontsize=7)

    else:
        return ""
    flag = " (drifted)" if column["drifted"] else ""
    return svg_plot(draw, f"{column['column']}{flag}")


def _service(report: dict[str, Any]) -> str:
    """Served traffic and model quality, when the report is of a deployment."""
    service, quality = report.get("service"), report.get("performance")
    if not service:
        return ""
    parts = [f"<h2>Service</h2><p>{escape(service['message'])}</p>"]
    if quality:
        parts.append(f"<h2>Model quality</h2><p>{escape(quality['message'])}</p>")
        rows = [
            (escape(name), number(m.get("value") if isinstance(m, dict) else m),
             number(m.get("ci_low")) if isinstance(m, dict) else "",
             number(m.get("ci_high")) if isinstance(m, dict) else "",
             number(quality["expected"].get(name)))
            for name, m in quality.get("metrics", {}).items()
        ]  # fmt: skip
        if rows:
            parts.append(table(["metric", "measured", "95% low", "95% high", "at training"], rows))
    return "".join(parts)
