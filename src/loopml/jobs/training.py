"""The ``automl.train`` job: fit AutoML on a dataset and store the model and its report."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

from loopml.core.errors import InvalidInput
from loopml.core.schemas import DatasetVersion
from loopml.data import load
from loopml.data.builtin import is_builtin, load_builtin
from loopml.jobs.context import JobContext
from loopml.registry.service import register_training
from loopml.store import datasets

_LEADERBOARD_ROWS = 10
_SUMMARY_COLUMNS = (
    "rank", "model", "status", "score", "score_std", "fit_seconds",
    "predict_seconds_per_1000", "over_prediction_budget",
)  # fmt: skip


def _load(ctx: JobContext, dataset: str, target: str | None) -> _Data:
    """Training rows (and the frozen test rows of a dataset version) for ``dataset``."""
    if is_builtin(dataset):
        frame, info = load_builtin(dataset)
        column = target or info.target
        if column not in frame.columns:
            raise InvalidInput(
                f"dataset {dataset!r} has no column {column!r}; columns: "
                f"{', '.join(frame.columns)}",
                field="target",
            )
        return _Data(frame.drop(columns=[column]), frame[column], column, dataset)
    name, number = datasets.parse_ref(dataset)
    with ctx.db.session() as s:
        version = datasets.get_version(s, str(ctx.job.project), name, number)
    X, y, column = load.features_and_target(
        load.frame(ctx.blobs, version, "train", images=True), version, target
    )
    test = None
    if version.split.get("test_rows"):
        rows = load.frame(ctx.blobs, version, "test", images=True)
        test = load.features_and_target(rows, version, column)
    return _Data(X, y, column, version.ref, test[:2] if test else None, version)


class _Data(NamedTuple):
    X: Any
    y: Any
    target: str
    ref: str
    test: tuple[Any, Any] | None = None
    version: DatasetVersion | None = None


def _json(value: Any) -> bytes:
    """Strict JSON (NaN and infinities as null), as every JSON client can parse it."""
    return json.dumps(_clean(value), default=str, allow_nan=False).encode()


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    return _finite(value)


def _has_images(X: Any) -> bool:
    from loopml.automl.images import is_image_value

    return any(
        X[c].dtype == object and is_image_value(X[c].dropna().iloc[0])
        for c in X.columns
        if X[c].notna().any()
    )


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def train(
    ctx: JobContext,
    *,
    dataset: str,
    target: str | None = None,
    time_budget: float = 60.0,
    metric: str = "auto",
    task: str = "auto",
    seed: int = 0,
    max_trials: int | None = None,
    cost_matrix: dict[str, float] | None = None,
    confidence_threshold: float | None = None,
    deploy: str | None = None,
) -> dict[str, Any]:
    """Search models for ``target`` within ``time_budget`` seconds; store the best ensemble,
    register it as a model version and, when it passes the project's gates, deploy it to
    ``deploy`` (or the project's ``auto_deploy`` deployment).

    The model, the trial log and the report go to the blob store under
    ``models/<project>/<job id>/``; the result carries the leaderboard's top rows.
    """
    from loopml.automl import AutoML, Progress  # seconds to import: only in training jobs
    from loopml.automl.report_html import render
    from loopml.monitoring.reference import reference_profile

    data = _load(ctx, dataset, target)
    X, y, column = data.X, data.y, data.target
    held_out = f", {len(data.test[0])} test rows held out" if data.test else ""
    ctx.log(
        f"training on {data.ref}: {len(X)} rows, {X.shape[1]} features, target {column!r}"
        + held_out
    )
    ctx.progress(0.0, "starting the search")

    def on_progress(p: Progress) -> None:
        best = "none yet" if p.best_score is None else f"{p.best_score:.4f} ({p.best_learner})"
        ctx.progress(
            min(0.95, p.elapsed / max(time_budget, 1e-9)),
            f"{p.trials_done} trials, best {best}, {p.time_left:.0f} s left",
        )

    with tempfile.TemporaryDirectory() as tmp:
        log_path = Path(tmp) / "trials.jsonl"
        model = AutoML(
            backbone=ctx.vision_backbone if _has_images(X) else None,
            task=task,
            metric=metric,
            time_budget=time_budget,
            seed=seed,
            max_trials=max_trials,
            cost_matrix=cost_matrix,
            confidence_threshold=confidence_threshold,
            log_path=log_path,
            on_progress=on_progress,
        ).fit(X, y)
        ctx.progress(0.97, "storing the model")
        model_path = Path(tmp) / "model.zip"
        digest = model.save(model_path)
        prefix = f"models/{ctx.job.project}/{ctx.job.id}"
        stored = ctx.blobs.put(f"{prefix}/model.zip", model_path.read_bytes())
        ctx.blobs.put(f"{prefix}/trials.jsonl", log_path.read_bytes())
    report = dict(model.report_ or {})
    if data.test is not None:
        ctx.progress(0.98, "scoring the frozen test split")
        report["test"] = model.evaluate(*data.test)
    ctx.blobs.put(f"{prefix}/report.json", _json(report))
    page = render(
        report,
        model.leaderboard_.to_dict(orient="records"),
        f"{ctx.job.project}: training {ctx.job.id} on {data.ref}",
    )
    ctx.blobs.put(f"{prefix}/report.html", page.encode())
    ctx.progress(0.99, "profiling the training rows for monitoring")
    reference = reference_profile(X, model, y)
    ctx.blobs.put(f"{prefix}/reference_profile.json", _json(reference.to_dict()))
    board_json = model.leaderboard_.to_json(orient="records")
    ctx.blobs.put(f"{prefix}/leaderboard.json", board_json.encode())
    board = model.leaderboard_.head(_LEADERBOARD_ROWS)
    ctx.log(f"best: {board.iloc[0]['model']} {model.metric_} {board.iloc[0]['score']:.4f}")
    test_score = ((report.get("test") or {}).get("metrics", {}).get(model.metric_) or {}).get(
        "value"
    )
    kinds = {c.name: c.kind for c in model.schema_.columns}
    result: dict[str, Any] = {
        "dataset": data.ref,
        "dataset_version": data.version.id if data.version else None,
        "predict_seconds_per_1000": _finite(report.get("prediction_seconds_per_1000_rows")),
        "classes": None if model.classes_ is None else _clean(model.classes_.tolist()),
        "inputs": [
            {"name": str(n), "kind": kinds.get(str(n), "ignored")} for n in model.feature_names_in_
        ],
        "params": {k: v for k, v in ctx.params.items() if k != "deploy"},
        "test_score": _finite(test_score) if test_score is not None else None,
        "target": column,
        "task": model.task_.value,
        "metric": model.metric_,
        "score": _finite(float(board.iloc[0]["score"])),
        "beats_baselines": model.beats_baselines_,
        "baseline_margin": {k: _finite(v) for k, v in model.baseline_margin_.items()},
        "trials": len(model.trials_),
        "fit_seconds": round(model.fit_seconds_, 2),
        "model": {"sha256": stored.sha256, "content_hash": digest, "bytes": stored.size},
        "artifacts": {
            "model": f"{prefix}/model.zip",
            "report": f"{prefix}/report.json",
            "report_html": f"{prefix}/report.html",
            "leaderboard": f"{prefix}/leaderboard.json",
            "trials": f"{prefix}/trials.jsonl",
            "reference_profile": f"{prefix}/reference_profile.json",
        },
        "reference_profile": f"{prefix}/reference_profile.json",
        "leaderboard": [
            {k: _finite(v) for k, v in row.items() if k in _SUMMARY_COLUMNS}
            for row in board.to_dict(orient="records")
        ],
    }
    version, deployment = register_training(
        ctx.db, str(ctx.job.project), ctx.job.id, result, actor=f"training {ctx.job.id}",
        deploy_to=deploy,
    )  # fmt: skip
    failed = [g.message for g in version.gates if not g.passed]
    ctx.log(
        f"registered model v{version.number}"
        + (f", deployed to {deployment.name}" if deployment else "")
        + (f"; gates failed: {'; '.join(failed)}" if failed else "")
    )
    result.update(
        model_version=version.number,
        gates=[g.model_dump() for g in version.gates],
        deployed_to=deployment.name if deployment else None,
    )
    return result
