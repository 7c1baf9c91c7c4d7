"""The leaderboard, the verdict against baselines, and the evaluation report."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from loopml.automl import curves
from loopml.automl.columns import RawFrame, check_frame
from loopml.automl.cv import TrialResult, Workspace
from loopml.automl.learners import timed_predictions
from loopml.automl.metrics import METRICS, Metric
from loopml.automl.predictor import Predictor
from loopml.automl.sensitivity import decisions, permutation_importance, robustness
from loopml.automl.target import check_target
from loopml.automl.timing import Timer
from loopml.core.enums import TaskType
from loopml.core.errors import InvalidInput

if TYPE_CHECKING:
    from loopml.automl.estimator import AutoML

_BOOTSTRAP = 100
_BOOTSTRAP_ROWS = 20_000
# A first prediction of 100 rows slower than 0.02 s (images: decoding and a CNN) gives the
# answer; otherwise the best of three runs of 1,000 rows, or of as many as fit in 0.25 s.
_TIMER = Timer(probe_rows=100, probe_seconds=0.02, repeats=3, within=0.25)


def _oriented(metric: Metric, values: list[float]) -> np.ndarray:
    sign = 1.0 if metric.greater_is_better else -1.0
    return sign * np.asarray(values, dtype=float)


def leaderboard(
    ensemble: TrialResult,
    trials: list[TrialResult],
    metric: Metric,
    weights: dict[int, float] | None = None,
    prediction_budget: float | None = None,
) -> pd.DataFrame:
    """One row per candidate, best first; baselines and failures included.

    ``weights`` maps trial ids to their weight in the ensemble. A candidate whose one
    fold model predicts slower than ``prediction_budget`` (seconds per 1,000 rows) is
    marked ``over_prediction_budget``: it may outscore the ensemble, which could not
    take it. A cut of a booster (:mod:`loopml.automl.truncation`) is named by the rounds
    it keeps and the trial it was cut from.
    """
    weights = weights or {}
    limit = np.inf if prediction_budget is None else prediction_budget
    rows = []
    for t in [ensemble, *trials]:
        name = f"baseline_{t.learner}" if t.baseline else t.learner
        if t.truncated_from is not None:
            name += f" (first {t.params['rounds']} rounds of trial {t.truncated_from})"
        speed = t.predict_seconds_per_1000
        rows.append(
            {
                "model": name,
                "trial": t.id,
                "learner": t.learner,
                "status": t.status,
                "score": t.score,
                "score_std": float(np.std(t.fold_scores)) if t.fold_scores else float("nan"),
                "fit_seconds": round(t.fit_seconds, 3),
                "predict_seconds_per_1000": None if np.isnan(speed) else round(speed, 6),
                "ensemble_weight": 1.0 if t is ensemble else weights.get(t.id, 0.0),
                "over_prediction_budget": bool(t is not ensemble and speed > limit),
                "baseline": t.baseline,
                "params": json.dumps(t.params, sort_keys=True, default=float),
                "error": t.error,
            }
        )
    board = pd.DataFrame(rows)
    ok = board["status"].eq("ok") & board["score"].notna()
    sign = 1.0 if metric.greater_is_better else -1.0
    board["_key"] = np.where(ok, -sign * board["score"].fillna(0), np.inf)
    board = board.sort_values(["_key", "trial"], kind="stable").drop(columns="_key")
    board.insert(0, "rank", range(1, len(board) + 1))
    board.attrs["metric"] = metric.name
    return board.reset_index(drop=True)


def baseline_verdict(
    ensemble: TrialResult, trials: list[TrialResult], metric: Metric
) -> tuple[bool, dict[str, Any]]:
    """Whether the model beats the best baseline by more than the fold-to-fold noise.

    The noise is the standard deviation, across folds, of the paired score differences.
    """
    baselines = [t for t in trials if t.baseline and t.status == "ok"]
    if not baselines:
        return True, {"baseline": None, "margin": None, "noise": None}
    best = max(baselines, key=lambda t: float(np.mean(_oriented(metric, t.fold_scores))))
    diffs = _oriented(metric, ensemble.fold_scores) - _oriented(metric, best.fold_scores)
    margin = float(np.nanmean(diffs))
    noise = float(np.nanstd(diffs, ddof=1)) if len(diffs) > 1 else 0.0
    name = f"baseline_{best.learner}"
    return bool(margin > noise), {"baseline": name, "margin": margin, "noise": noise}


def _metrics_with_ci(task: TaskType, y: np.ndarray, pred: np.ndarray, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    n = len(y)
    # Intervals from resamples of at most _BOOTSTRAP_ROWS rows, rescaled to n rows.
    m = min(n, _BOOTSTRAP_ROWS)
    samples = [rng.integers(0, n, m) for _ in range(_BOOTSTRAP)]
    widen = np.sqrt(m / n)
    out: dict[str, Any] = {}
    for metric in METRICS.values():
        if task not in metric.tasks:
            continue
        value = metric.value(y, pred)
        boot = np.array([metric.value(y[s], pred[s]) for s in samples])
        boot = boot[np.isfinite(boot)]
        if len(boot):
            low, high = value + (np.quantile(boot, [0.025, 0.975]) - np.mean(boot)) * widen
        else:
            low, high = np.nan, np.nan
        out[metric.name] = {"value": value, "ci_low": float(low), "ci_high": float(high)}
    return out


def evaluation(model: AutoML, y: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    """Metrics with confidence intervals and the curves a person looks at."""
    task = model.task_
    out: dict[str, Any] = {
        "task": task.value,
        "metric": model.metric_,
        "n_rows": len(y),
        "metrics": _metrics_with_ci(task, y, pred, model.seed),
    }
    if task is TaskType.regression:
        out["residuals"] = curves.residuals(y, pred)
        return out
    classes = model.classes_ if model.classes_ is not None else np.arange(pred.shape[1])
    labels = [_plain(c) for c in classes]
    decided = decisions(model, pred)
    out["threshold"] = model.threshold_
    out["confusion_matrix"] = {
        "labels": labels,
        "matrix": curves.confusion(y, decided, len(labels)),
    }
    out["confidence"] = curves.confidence_coverage(y, pred)
    out["calibration"] = curves.calibration(y, pred)
    if task is TaskType.binary:
        out["calibration"]["observed_is"] = f"share of {labels[1]}"
    if task is TaskType.binary:
        out["roc"] = curves.roc(y, pred[:, 1])
        out["precision_recall"] = curves.precision_recall(y, pred[:, 1])
    return out


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _slices(column: pd.Series, kind: str) -> list[tuple[str, np.ndarray]]:
    """(name, rows) of each slice of a column, by name: the quartiles of a number, the
    values of a category; missing values are in none."""
    if kind == "numeric" and column.nunique() > 4:
        # Named from the quartiles' codes: converting each row's interval to text took
        # most of a second on 64 numeric columns.
        cuts = pd.qcut(pd.to_numeric(column, errors="coerce"), 4, duplicates="drop")
        codes = cuts.cat.codes.to_numpy()
        names = [str(v) for v in cuts.cat.categories]
        return sorted(
            ((names[i], np.flatnonzero(codes == i)) for i in range(len(names))),
            key=lambda pair: pair[0],
        )
    if kind in ("categorical", "boolean"):
        text = column.astype(str)
        groups = text.groupby(text.to_numpy()).groups
        return [(str(value), np.asarray(rows)) for value, rows in groups.items()]
    return []


def weakest_slice(
    model: AutoML, frame: pd.DataFrame, y: np.ndarray, pred: np.ndarray
) -> dict[str, Any] | None:
    """The data slice (a category, or a quartile of a number) where the model is worst."""
    regression = model.task_ is TaskType.regression
    errors = np.abs(y - pred) if regression else (decisions(model, pred) != y).astype(float)
    overall = float(errors.mean())
    min_rows = max(10, int(0.05 * len(y)))
    worst: dict[str, Any] | None = None
    for plan in model.schema_.columns:
        if plan.name not in frame.columns:  # held-out data may lack a column
            continue
        for value, idx in _slices(frame[plan.name], plan.kind):
            if len(idx) < min_rows or len(idx) == len(y):
                continue
            err = float(errors[idx].mean())
            if worst is None or err > worst["error"]:
                worst = {
                    "feature": plan.name,
                    "slice": str(value),
                    "rows": len(idx),
                    "error": err,
                }
    if worst is None:
        return None
    worst["overall_error"] = overall
    worst["error_measure"] = "mean absolute error" if regression else "error rate"
    if regression:
        worst["much_worse"] = bool(worst["error"] > 1.5 * overall)
    else:
        se = np.sqrt(max(overall * (1 - overall), 1e-12) / worst["rows"])
        worst["much_worse"] = bool(worst["error"] > overall + max(2 * se, 0.05))
    return worst


def prediction_seconds_per_1000(model: AutoML, frame: pd.DataFrame) -> float:
    """Seconds ``model.predict`` takes per 1,000 rows sampled from ``frame``."""
    sample = frame.sample(1000, replace=True, random_state=model.seed).reset_index(drop=True)
    with timed_predictions():
        return _TIMER.seconds_per_1000(lambda n: model.predict(sample.head(n)), len(sample))


def build_report(
    model: AutoML,
    bag: Predictor,
    frame: pd.DataFrame,
    raw: RawFrame,
    y: np.ndarray,
    oof: np.ndarray,
    ws: Workspace,
) -> dict[str, Any]:
    """The report ``fit`` stores: everything measured on out-of-fold predictions."""
    report = evaluation(model, y, oof)
    report["evaluation"] = f"{ws.n_folds}-fold cross-validation (out-of-fold predictions)"
    report["n_folds"] = ws.n_folds
    report["baselines"] = {"beats_baselines": model.beats_baselines_, **model.baseline_margin_}
    report["permutation_importance"] = permutation_importance(model, bag, raw, y, ws, oof)
    report["weakest_slice"] = weakest_slice(model, frame, y, oof)
    report["robustness"] = robustness(model, bag, raw, y, ws, oof)
    report["prediction_seconds_per_1000_rows"] = prediction_seconds_per_1000(model, frame)
    report["model_size_bytes"] = model.model_size_
    report["dropped_columns"] = dict(model.schema_.dropped)
    return report


def holdout_report(model: AutoML, X: Any, y: Any) -> dict[str, Any]:
    """Evaluate a fitted model on held-out rows."""
    frame = check_frame(X)
    target = check_target(y, len(frame))
    pred = model._native(frame)
    if model.task_ is TaskType.regression:
        y_eval = target.to_numpy(dtype=float)
    else:
        lookup = {
            _plain(c): i for i, c in enumerate(model.classes_ if model.classes_ is not None else [])
        }
        unknown = sorted({str(v) for v in target if _plain(v) not in lookup})
        if unknown:
            raise InvalidInput(
                f"the target holds classes the model never saw: {unknown}", field="y"
            )
        y_eval = np.array([lookup[_plain(v)] for v in target], dtype=np.int64)
    report = evaluation(model, y_eval, pred)
    report["evaluation"] = "held-out data"
    report["weakest_slice"] = weakest_slice(model, frame, y_eval, pred)
    return report
