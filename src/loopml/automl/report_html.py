"""The report as one self-contained HTML page: tables and plots, no scripts, no CDN."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from loopml.automl.html import STYLE as _STYLE
from loopml.automl.html import escape as _e
from loopml.automl.html import number as _num
from loopml.automl.html import svg_plot as _svg
from loopml.automl.html import table as _table


def _roc(roc: dict[str, Any]) -> str:
    def draw(ax: Any) -> None:
        ax.plot(roc["fpr"], roc["tpr"], label=f"AUC {roc['auc']:.3f}")
        ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.legend(loc="lower right")

    return _svg(draw, "ROC curve")


def _pr(pr: dict[str, Any]) -> str:
    def draw(ax: Any) -> None:
        ax.plot(pr["recall"], pr["precision"], label=f"AP {pr['average_precision']:.3f}")
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_ylim(0, 1.02)
        ax.legend(loc="lower left")

    return _svg(draw, "precision-recall")


def _calibration(cal: dict[str, Any]) -> str:
    def draw(ax: Any) -> None:
        xs = [p["predicted"] for p in cal["points"]]
        ys = [p["observed"] for p in cal["points"]]
        ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8)
        ax.plot(xs, ys, marker="o")
        ax.set_xlabel("predicted")
        ax.set_ylabel(cal["observed_is"])

    ece = cal["expected_calibration_error"]
    return _svg(draw, f"calibration (ECE {ece:.3f})")


def _confusion(cm: dict[str, Any]) -> str:
    labels = [str(label) for label in cm["labels"]]
    matrix = cm["matrix"]

    def draw(ax: Any) -> None:
        ax.imshow(matrix, cmap="Blues")
        ticks = range(len(labels))
        ax.set_xticks(list(ticks), labels, rotation=45, ha="right")
        ax.set_yticks(list(ticks), labels)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        top = max(max(row) for row in matrix) or 1
        for i, row in enumerate(matrix):
            for j, count in enumerate(row):
                ax.text(
                    j,
                    i,
                    count,
                    ha="center",
                    va="center",
                    color="white" if count > top / 2 else "black",
                )

    return _svg(draw, "confusion matrix")


def _confidence(points: list[dict[str, float]]) -> str:
    def draw(ax: Any) -> None:
        ts = [p["threshold"] for p in points]
        ax.plot(ts, [p["coverage"] for p in points], label="rows answered")
        ax.plot(ts, [p["accuracy"] for p in points], label="accuracy of those")
        ax.set_xlabel("confidence threshold")
        ax.set_ylim(0, 1.02)
        ax.legend(loc="lower left")

    return _svg(draw, "abstaining: coverage vs accuracy")


def _importance(features: list[dict[str, Any]]) -> str:
    top = features[:15][::-1]

    def draw(ax: Any) -> None:
        ax.barh(
            [f["feature"] for f in top],
            [f["importance"] for f in top],
            xerr=[f["std"] for f in top],
        )
        ax.set_xlabel("drop in the metric when shuffled")

    return _svg(draw, "permutation importance")


def _residuals(res: dict[str, Any]) -> str:
    def draw(ax: Any) -> None:
        ax.scatter(res["predicted"], res["residual"], s=8)
        ax.axhline(0, c="grey", lw=0.8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("residual")

    return _svg(draw, "residuals")


def _plots(report: dict[str, Any]) -> str:
    parts = []
    if report.get("roc"):
        parts.append(_roc(report["roc"]))
    if report.get("precision_recall"):
        parts.append(_pr(report["precision_recall"]))
    if report.get("confusion_matrix"):
        parts.append(_confusion(report["confusion_matrix"]))
    if report.get("calibration"):
        parts.append(_calibration(report["calibration"]))
    if report.get("confidence"):
        parts.append(_confidence(report["confidence"]))
    if report.get("residuals"):
        parts.append(_residuals(report["residuals"]))
    features = (report.get("permutation_importance") or {}).get("features")
    if features:
        parts.append(_importance(features))
    return '<div class="grid">' + "".join(parts) + "</div>"


def _verdict(report: dict[str, Any]) -> str:
    base = report.get("baselines") or {}
    if base.get("beats_baselines"):
        return (
            f'<p class="good">Beats {_e(base.get("baseline"))} by {_num(base.get("margin"))}, '
            f"more than the fold-to-fold noise ({_num(base.get('noise'))}).</p>"
        )
    return (
        f'<p class="bad">Does not beat {_e(base.get("baseline"))} by more than the '
        f"fold-to-fold noise (margin {_num(base.get('margin'))}, noise "
        f"{_num(base.get('noise'))}): the simple model is as good.</p>"
    )


def _findings(report: dict[str, Any]) -> str:
    rows = []
    weak = report.get("weakest_slice")
    if weak:
        flag = '<span class="bad">much worse</span>' if weak["much_worse"] else "within noise"
        rows.append(
            (
                "weakest slice",
                f"{_e(weak['feature'])} = {_e(weak['slice'])} "
                f"({weak['rows']} rows): {weak['error_measure']} {_num(weak['error'])} "
                f"vs {_num(weak['overall_error'])} overall, {flag}",
            )
        )
    rob = report.get("robustness")
    if rob:
        moved = rob.get("changed_share", rob.get("mean_change"))
        rows.append(
            (
                "robustness",
                f"{rob['noise']:.0%} noise on numbers: {rob['metric']} "
                f"{_num(rob['clean'])} → {_num(rob['noisy'])}; moved {_num(moved)}",
            )
        )
    if report.get("prediction_seconds_per_1000_rows") is not None:
        rows.append(
            ("prediction", f"{_num(report['prediction_seconds_per_1000_rows'])} s per 1,000 rows")
        )
    if report.get("model_size_bytes") is not None:
        rows.append(("model size", f"{report['model_size_bytes'] / 1e6:.2f} MB"))
    for name, reason in (report.get("dropped_columns") or {}).items():
        rows.append(("dropped column", f"{_e(name)}: {_e(reason)}"))
    return _table(["check", "finding"], rows)


def render(report: dict[str, Any], leaderboard: Sequence[dict[str, Any]], title: str) -> str:
    """The HTML page for a fitted model's ``report_`` and leaderboard rows."""
    test = (report.get("test") or {}).get("metrics") or {}
    metrics = [
        (
            _e(name),
            _num(m["value"]),
            f"{_num(m['ci_low'])} &ndash; {_num(m['ci_high'])}",
            *(
                (_num(test[name]["value"]),
                 f"{_num(test[name]['ci_low'])} &ndash; {_num(test[name]['ci_high'])}")
                if name in test else ()
            ),
        )
        for name, m in report.get("metrics", {}).items()
    ]  # fmt: skip
    columns = ["metric", "cross-validated", "interval"]
    if test:
        columns += ["frozen test split", "interval"]
    board = [
        (
            r.get("rank"),
            _e(r.get("model")),
            _e(r.get("status"))
            + (" (too slow to serve)" if r.get("over_prediction_budget") else ""),
            _num(r.get("score")),
            _num(r.get("score_std")),
            _num(r.get("fit_seconds"), 2),
        )
        for r in list(leaderboard)[:25]
    ]
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{_e(title)}</h1>"
        f"<p class='note'>{_e(report.get('task'))} · metric {_e(report.get('metric'))} · "
        f"{report.get('n_rows')} rows · {_e(report.get('evaluation'))}</p>"
        f"{_verdict(report)}<h2>Metrics (95% intervals)</h2>"
        f"{_table(columns, metrics)}"
        f"<h2>Plots</h2>{_plots(report)}<h2>Checks</h2>{_findings(report)}"
        f"<h2>Leaderboard</h2>"
        f"{_table(['rank', 'model', 'status', 'score', '± fold std', 'fit s'], board)}"
        "</body></html>"
    )
