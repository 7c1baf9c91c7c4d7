"""How the fitted ensemble's out-of-fold predictions respond to its inputs: permutation
importances and robustness to noise, both on rows each fold's models never saw.

Both are part of the report that ``fit`` stores, so their cost is sized to the time
budget or to a fixed number of rows, never to the data alone.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.automl.columns import RawFrame
from loopml.automl.cv import Workspace
from loopml.automl.decision import decide
from loopml.automl.metrics import get_metric
from loopml.automl.predictor import Predictor
from loopml.core.enums import TaskType

if TYPE_CHECKING:
    from loopml.automl.estimator import AutoML

_IMPORTANCE_ROWS = 2000
_IMPORTANCE_REPEATS = 2
_IMPORTANCE_SECONDS = 20.0
_IMPORTANCE_MIN_ROWS = 100  # importances are measured on no fewer rows, whatever they cost
_PROBE_ROWS = 100  # rows of a first prediction, timed to size the rest
_NOISE = 0.05


def decisions(model: AutoML, pred: np.ndarray) -> np.ndarray:
    """Class codes as the model decides them (its threshold; no abstaining)."""
    return decide(pred, np.arange(pred.shape[1]), model.threshold_, None, None)


def _feature_columns(raw: RawFrame, feature: str) -> tuple[list[int], list[int], list[int]]:
    num = [
        i for i, n in enumerate(raw.numeric_names) if n == feature or n.startswith(feature + ".")
    ]
    cat = [i for i, n in enumerate(raw.categorical_names) if n == feature]
    txt = [i for i, n in enumerate(raw.text_names) if n == feature]
    return num, cat, txt


def _permuted(raw: RawFrame, feature: str, order: np.ndarray) -> RawFrame:
    num, cat, txt = _feature_columns(raw, feature)
    numeric = raw.numeric.copy()
    if num:
        numeric[:, num] = numeric[order][:, num]
    cats = [c[order] if i in cat else c for i, c in enumerate(raw.categorical)]
    texts = [t[order] if i in txt else t for i, t in enumerate(raw.text)]
    images = [
        im[order] if n == feature else im for im, n in zip(raw.images, raw.image_names, strict=True)
    ]
    return RawFrame(
        numeric, raw.numeric_names, cats, raw.categorical_names, texts, raw.text_names,
        images, raw.image_names,
    )  # fmt: skip


def _sample_rows(ws: Workspace, rows: int, seed: int) -> list[tuple[int, np.ndarray]]:
    """Up to ``rows`` out-of-fold rows, as (fold, rows of that fold), alike across folds."""
    rng = np.random.default_rng(seed)
    per_fold = max(1, rows // ws.n_folds)
    return [(f, rng.permutation(valid)[:per_fold]) for f, (_, valid) in enumerate(ws.folds)]


def permutation_importance(
    model: AutoML,
    predictor: Predictor,
    raw: RawFrame,
    y: np.ndarray,
    ws: Workspace,
    oof: np.ndarray,
) -> dict[str, Any]:
    """Drop in the metric when one feature is shuffled, on out-of-fold rows of each fold.

    ``predictor`` is the bag of fold models, so every row is scored by models that
    never saw it; ``oof`` is its prediction of the unshuffled rows, as served
    (:meth:`Predictor.calibrated`). The time allowed
    grows with the budget; the rows shrink (to ``_IMPORTANCE_MIN_ROWS``) until one
    feature's shuffles take at most a third of it: a CNN's 2,000 rows took seconds.
    """
    metric = get_metric(model.metric_, model.task_)
    budget = min(_IMPORTANCE_SECONDS, max(1.0, 0.04 * float(model.time_budget)))
    started = time.monotonic()
    probe = raw.take(ws.folds[0][1][:_PROBE_ROWS])
    predictor.predict_fold(probe, 0)
    per_row = (time.monotonic() - started) / probe.n_rows
    affordable = budget / 3 / (_IMPORTANCE_REPEATS * max(per_row, 1e-9))
    rows = int(min(_IMPORTANCE_ROWS, max(_IMPORTANCE_MIN_ROWS, affordable)))
    folds = _sample_rows(ws, rows, model.seed)
    chosen = np.concatenate([r for _, r in folds])
    subsets = [(f, raw.take(r)) for f, r in folds]
    base_score = metric.score(y[chosen], oof[chosen])
    rng = np.random.default_rng(model.seed + 1)
    results: list[dict[str, Any]] = []
    complete = True
    for plan in model.schema_.columns:
        if time.monotonic() - started > budget:
            complete = False
            break
        drops = []
        for _ in range(_IMPORTANCE_REPEATS):
            preds = [
                predictor.calibrated(
                    predictor.predict_fold(
                        _permuted(sub, plan.name, rng.permutation(sub.n_rows)), f
                    )
                )
                for f, sub in subsets
            ]
            drops.append(base_score - metric.score(y[chosen], np.concatenate(preds)))
        results.append(
            {"feature": plan.name, "importance": float(np.mean(drops)), "std": float(np.std(drops))}
        )
    results.sort(key=lambda r: -float(r["importance"]))
    return {
        "metric": metric.name,
        "rows": len(chosen),
        "complete": complete,
        "features": results,
    }


def robustness(
    model: AutoML, bag: Predictor, raw: RawFrame, y: np.ndarray, ws: Workspace, oof: np.ndarray
) -> dict[str, Any]:
    """How predictions move when numeric inputs get noise of 5% of their spread.

    Measured on out-of-fold rows with the fold models, like everything in the report:
    ``oof`` is their prediction of the clean rows; without numeric inputs nothing moves,
    and nothing is predicted again.
    """
    numeric = set(model.schema_.names("numeric"))
    columns = [i for i, name in enumerate(raw.numeric_names) if name in numeric]
    spread = np.nan_to_num(np.nanstd(raw.numeric[:, columns], axis=0)) if columns else []
    folds = _sample_rows(ws, _IMPORTANCE_ROWS, model.seed)
    index = np.concatenate([r for _, r in folds])
    clean_pred = oof[index]
    noisy_pred = clean_pred
    if columns:
        rng = np.random.default_rng(model.seed + 1)
        shaken = []
        for f, chosen in folds:
            sub = raw.take(chosen)
            noisy = sub.numeric.copy()
            noisy[:, columns] += rng.normal(0.0, 1.0, (len(chosen), len(columns))) * (
                _NOISE * np.asarray(spread)
            )
            moved = RawFrame(
                noisy, sub.numeric_names, sub.categorical, sub.categorical_names, sub.text,
                sub.text_names, sub.images, sub.image_names,
            )  # fmt: skip
            shaken.append(bag.calibrated(bag.predict_fold(moved, f)))
        noisy_pred = np.concatenate(shaken)
    metric = get_metric(model.metric_, model.task_)
    out = {
        "noise": _NOISE,
        "rows": len(index),
        "metric": metric.name,
        "clean": metric.value(y[index], clean_pred),
        "noisy": metric.value(y[index], noisy_pred),
    }
    if model.task_ is TaskType.regression:
        out["mean_change"] = float(np.mean(np.abs(clean_pred - noisy_pred)))
    else:
        changed = decisions(model, clean_pred) != decisions(model, noisy_pred)
        out["changed_share"] = float(np.mean(changed))
    return out
