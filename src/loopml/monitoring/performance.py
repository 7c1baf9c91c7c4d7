"""Model quality in production: the true labels people sent back (feedback) against what
the model answered, per window and per hour, with confidence intervals; and, without
labels, the accuracy the model's own confidences promise (as NannyML's CBPE estimates
it), always marked as an estimate.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from datetime import datetime, timezone
from typing import Any

import numpy as np
from sklearn.metrics import f1_score, roc_auc_score

from loopml.monitoring.traffic import HOUR
from loopml.serving.capture import segment_folder
from loopml.store.blobs import BlobStore

MIN_LABELS = 30  # fewer labels than this: figures are shown, but no verdict is drawn
_EVENT_ID = re.compile(r'"eventId":\s*"([0-9a-f]{26})"')  # compact (orjson) or spaced
_BOOTSTRAP = 200
_Z = 1.959964


def id_time(prediction_id: str) -> datetime | None:
    """When a prediction id was made (its first 48 bits are milliseconds)."""
    try:
        return datetime.fromtimestamp(int(prediction_id[:12], 16) / 1000, tz=timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None


def labelled(
    blobs: BlobStore,
    project: str,
    deployment: str,
    model_version: int,
    labels: dict[str, str],
    start: datetime,
    end: datetime,
) -> list[tuple[datetime, dict[str, Any], str]]:
    """(time, answer, true label) of each prediction in ``[start, end)`` answered by
    ``model_version`` that has a label. Only the hours holding labelled predictions are
    read, and only their labelled records are parsed."""
    wanted: dict[datetime, set[str]] = defaultdict(set)
    for prediction, _ in labels.items():
        made = id_time(prediction)
        if made is None or not start - HOUR <= made < end + HOUR:
            continue
        hour = made.replace(minute=0, second=0, microsecond=0)
        wanted[hour].add(prediction)
        wanted[hour + HOUR].add(prediction)  # a request that crossed the hour
    found: dict[str, tuple[datetime, dict[str, Any], str]] = {}
    for hour in sorted(wanted):
        ids = wanted[hour] - found.keys()
        if not ids:
            continue
        for info in blobs.list(segment_folder(project, deployment, hour)):
            for line in blobs.get(info.key).decode().splitlines():
                match = _EVENT_ID.search(line)
                if match is None or match.group(1) not in ids:
                    continue
                record = json.loads(line)
                at = datetime.fromisoformat(record["eventMetadata"]["inferenceTime"])
                mine = record.get("loopml", {})
                if mine.get("model_version") != model_version or not start <= at < end:
                    continue
                if mine.get("variant") == "shadow":  # never returned: not what was labelled
                    continue
                answer = json.loads(record["captureData"]["endpointOutput"]["data"])
                found[match.group(1)] = (at, answer, labels[match.group(1)])
    return sorted(found.values(), key=lambda item: item[0])


def performance(
    rows: list[tuple[datetime, dict[str, Any], str]],
    task: str,
    classes: list[Any] | None,
    expected: dict[str, float],
    *,
    estimated_accuracy: float | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Realised quality from labelled predictions (overall and per hour), the training
    figures it is compared with, and the confidence-based estimate."""
    out: dict[str, Any] = {
        "labelled": len(rows),
        "expected": expected,
        "estimated_accuracy": estimated_accuracy,
        "enough_labels": _usable(rows, task) >= MIN_LABELS,
    }
    if not rows:
        out["metrics"] = {}
        out["over_time"] = []
        out["message"] = _estimate_message(estimated_accuracy, expected)
        return out
    rng = np.random.default_rng(seed)
    out["metrics"] = _metrics(rows, task, classes, rng)
    by_hour: dict[datetime, list[tuple[datetime, dict[str, Any], str]]] = defaultdict(list)
    for row in rows:
        by_hour[row[0].replace(minute=0, second=0, microsecond=0)].append(row)
    out["over_time"] = [
        {"start": hour.isoformat(), "labelled": len(part), **_point(part, task)}
        for hour, part in sorted(by_hour.items())
    ]
    out["message"] = _message(out, task)
    return out


def _metrics(
    rows: list[tuple[datetime, dict[str, Any], str]],
    task: str,
    classes: list[Any] | None,
    rng: np.random.Generator,
) -> dict[str, Any]:
    if task == "regression":
        truth, guess = _numbers(rows)
        errors = guess - truth
        return {
            "mae": _with_interval(np.abs(errors), np.mean, rng),
            "rmse": _with_interval(errors, lambda e: float(np.sqrt(np.mean(e**2))), rng),
        }
    answered = [r for r in rows if not r[1].get("abstained")]
    metrics: dict[str, Any] = {"coverage": len(answered) / len(rows)}
    if not answered:
        return metrics
    truth = np.array([r[2] for r in answered], dtype=object)
    guess = np.array([str(r[1].get("label")) for r in answered], dtype=object)
    right = (truth == guess).astype(float)
    metrics["accuracy"] = {"value": float(right.mean()), **_wilson(right.sum(), right.size)}
    codes = {label: i for i, label in enumerate(sorted(set(truth) | set(guess)))}
    t = np.array([codes[v] for v in truth])
    g = np.array([codes[v] for v in guess])
    metrics["f1_macro"] = _with_interval(
        np.column_stack([t, g]),
        lambda tg: float(f1_score(tg[:, 0], tg[:, 1], average="macro", zero_division=0)),
        rng,
    )
    if classes is not None and len(classes) == 2:
        positive = str(classes[1])
        scores = np.array([float(r[1].get("probabilities", {}).get(positive, np.nan))
                           for r in answered])  # fmt: skip
        is_positive = (truth == positive).astype(int)
        if np.isfinite(scores).all() and 0 < is_positive.sum() < is_positive.size:
            metrics["roc_auc"] = _with_interval(np.column_stack([is_positive, scores]), _auc, rng)
    return metrics


def _auc(pairs: np.ndarray) -> float:
    if pairs[:, 0].min() == pairs[:, 0].max():
        return float("nan")
    return float(roc_auc_score(pairs[:, 0], pairs[:, 1]))


def _point(part: list[tuple[datetime, dict[str, Any], str]], task: str) -> dict[str, Any]:
    if task == "regression":
        truth, guess = _numbers(part)
        return {"mae": float(np.mean(np.abs(guess - truth)))}
    answered = [r for r in part if not r[1].get("abstained")]
    if not answered:
        return {"accuracy": None}
    return {"accuracy": float(np.mean([str(r[1].get("label")) == r[2] for r in answered]))}


def _usable(rows: list[tuple[datetime, dict[str, Any], str]], task: str) -> int:
    """Labels that can score the model: for regression, those that are numbers."""
    return len(_numbers(rows)[0]) if task == "regression" else len(rows)


def _numbers(rows: list[tuple[datetime, dict[str, Any], str]]) -> tuple[np.ndarray, np.ndarray]:
    pairs = []
    for _, answer, label in rows:
        try:
            pairs.append((float(label), float(answer["value"])))
        except (KeyError, TypeError, ValueError):
            continue  # a label that is not a number cannot score a regression
    values = np.array(pairs, dtype=float).reshape(-1, 2)
    return values[:, 0], values[:, 1]


def _wilson(successes: float, n: int) -> dict[str, float]:
    """Wilson's 95% interval of a proportion."""
    p = successes / n
    centre = (p + _Z**2 / (2 * n)) / (1 + _Z**2 / n)
    half = _Z * math.sqrt(p * (1 - p) / n + _Z**2 / (4 * n * n)) / (1 + _Z**2 / n)
    return {"ci_low": max(0.0, centre - half), "ci_high": min(1.0, centre + half)}


def _with_interval(values: np.ndarray, statistic: Any, rng: np.random.Generator) -> dict[str, Any]:
    """The statistic and a percentile-bootstrap 95% interval."""
    value = float(statistic(values)) if len(values) else float("nan")
    if not math.isfinite(value):
        return {"value": None, "ci_low": None, "ci_high": None}
    if len(values) < 2:
        return {"value": value, "ci_low": None, "ci_high": None}
    draws = [statistic(values[rng.integers(0, len(values), len(values))])
             for _ in range(_BOOTSTRAP)]  # fmt: skip
    finite = np.array([d for d in draws if np.isfinite(d)])
    if finite.size == 0:
        return {"value": value, "ci_low": None, "ci_high": None}
    low, high = np.percentile(finite, [2.5, 97.5])
    return {"value": value, "ci_low": float(low), "ci_high": float(high)}


def _message(out: dict[str, Any], task: str) -> str:
    metrics, expected = out["metrics"], out["expected"]
    name = "mae" if task == "regression" else "accuracy"
    if name not in metrics:
        return f"{out['labelled']} labelled predictions, none answered"
    m = metrics[name]
    low, high = m.get("ci_low"), m.get("ci_high")
    interval = f" (95% CI {low:.3g}-{high:.3g})" if low is not None and high is not None else ""
    text = f"{name} {m['value']:.3g}{interval} on {out['labelled']} labelled predictions"
    if name in expected:
        text += f", {expected[name]:.3g} at training"
    if not out["enough_labels"]:
        text += f" (fewer than {MIN_LABELS} labels: no verdict)"
    estimate = _estimate_message(out["estimated_accuracy"], {})
    return text + ("; " + estimate if out["estimated_accuracy"] is not None else "")


def _estimate_message(estimated: float | None, expected: dict[str, float]) -> str:
    if estimated is None:
        return "no labelled predictions and no confidences: model quality unknown"
    text = f"estimated accuracy {estimated:.3g} from the model's confidences (an estimate)"
    if "accuracy" in expected:
        text += f", {expected['accuracy']:.3g} at training"
    return text
