"""``loopml train``: an AutoML training job, followed with a progress bar."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from loopml.cli.context import state
from loopml.cli.jobs import run_to_end
from loopml.cli.output import console, err_console, fields, print_json, table
from loopml.core.errors import InvalidInput
from loopml.core.schemas import Job


def show_training(job: Job) -> None:
    """Print a finished training's leaderboard and verdict."""
    result: dict[str, Any] = job.result or {}
    rows = [
        (
            r["rank"],
            r["model"],
            r["status"] + (" (too slow to serve)" if r.get("over_prediction_budget") else ""),
            _num(r["score"]),
            _num(r["score_std"]),
            r["fit_seconds"],
        )
        for r in result.get("leaderboard", [])
    ]
    table(
        f"leaderboard ({result.get('metric')}, cross-validated)",
        ["rank", "model", "status", "score", "± fold std", "fit s"],
        rows,
    )
    margin = result.get("baseline_margin") or {}
    verdict = (
        "beats" if result.get("beats_baselines") else "does NOT beat"
    ) + f" {margin.get('baseline')} by more than the fold-to-fold noise"
    fields(
        f"training job {job.id}",
        {
            "dataset": result.get("dataset"),
            "task": result.get("task"),
            "best score": f"{result.get('metric')} {_num(result.get('score'))} (cross-validated)",
            "test score": (
                f"{result.get('metric')} {_num(result.get('test_score'))} (frozen test split)"
                if result.get("test_score") is not None
                else "no frozen test split (built-in dataset)"
            ),
            "verdict": verdict,
            "trials": result.get("trials"),
            "seconds": result.get("fit_seconds"),
            "model": (result.get("artifacts") or {}).get("model"),
            "content hash": (result.get("model") or {}).get("content_hash"),
            "report": (result.get("artifacts") or {}).get("report"),
            "model version": (
                f"v{result['model_version']}" if result.get("model_version") else None
            ),
            "gates": "; ".join(g["message"] for g in result.get("gates") or [] if not g["passed"])
            or ("passed" if result.get("gates") else "none set"),
            "deployed to": result.get("deployed_to") or "not deployed",
        },
    )


def _num(value: Any) -> str:
    return "" if value is None else f"{value:.4f}"


def train(
    ctx: typer.Context,
    project: str = typer.Option(..., "--project", "-p", help="Project to train in."),
    dataset: str = typer.Option(
        ..., "--dataset", "-d", help="Dataset, e.g. builtin:breast_cancer."
    ),
    target: str = typer.Option(
        None, "--target", "-t", help="Target column (a built-in's default)."
    ),
    budget: float = typer.Option(60.0, "--budget", "-b", help="Time budget in seconds."),
    metric: str = typer.Option(
        "auto", help="Metric to optimise (auto, roc_auc, log_loss, rmse ...)."
    ),
    task: str = typer.Option("auto", help="auto, binary, multiclass or regression."),
    seed: int = typer.Option(0, help="Random seed."),
    cost_matrix: str = typer.Option(
        None, help='Binary tasks: JSON costs, e.g. \'{"fp": 1, "fn": 5}\'.'
    ),
    deploy: str = typer.Option(
        None, "--deploy", help="Deploy the model under this name if it passes the gates."
    ),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Follow the job to its end."),
    html: Path = typer.Option(
        None, "--html", help="Write the report with its plots to this HTML file."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Train with AutoML: search models within the budget and store the best ensemble."""
    costs = None
    if cost_matrix is not None:
        try:
            costs = json.loads(cost_matrix)
        except ValueError:
            raise InvalidInput(
                f"--cost-matrix is not JSON: {cost_matrix!r}", field="--cost-matrix"
            ) from None
    cli = state(ctx)
    client = cli.client()
    job = client.trainings.start(
        project,
        dataset,
        target=target,
        time_budget=budget,
        metric=metric,
        task=task,
        seed=seed,
        cost_matrix=costs,
        deploy=deploy,
    )
    if wait:
        job = run_to_end(cli, job, quiet=as_json)
    if html is not None and job.state.value == "succeeded":
        html.write_text(client.trainings.report_html(project, job.id), encoding="utf-8")
        err_console.print(f"report written to {html}")
    if as_json:
        print_json(job)
    elif job.state.value == "succeeded":
        show_training(job)
    else:
        console.print(f"job {job.id}: {job.state.value} {job.error or ''}")
    if wait and job.state.value != "succeeded":
        raise typer.Exit(1)
