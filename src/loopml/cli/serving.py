"""``loopml models``, ``loopml deploy`` and ``loopml predict``: the registry and serving."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from loopml.cli.context import state
from loopml.cli.output import console, fields, print_json, table
from loopml.core.errors import InvalidInput
from loopml.core.schemas import ModelVersion

models_app = typer.Typer(help="The model registry: versions, stages, cards.", no_args_is_help=True)
JSON = typer.Option(False, "--json", help="Print machine-readable JSON.")
PROJECT = typer.Option(..., "--project", "-p", help="Project.")


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _gates(version: ModelVersion) -> str:
    if not version.gates:
        return "none set"
    return "passed" if all(g.passed for g in version.gates) else "failed"


def show_model(version: ModelVersion) -> None:
    failed = [g.message for g in version.gates if not g.passed]
    fields(
        f"{version.project} model v{version.number}",
        {
            "stage": version.stage.value,
            "task": f"{version.task.value}, metric {version.metric}",
            "score": f"{_num(version.score)} cross-validated, {_num(version.test_score)} test",
            "dataset": version.dataset,
            "training": version.training,
            "gates": "; ".join(failed) if failed else ("passed" if version.gates else "none set"),
            "size": f"{version.size_bytes:,} bytes",
            "content hash": version.content_hash,
        },
    )


@models_app.command("list")
def list_models(ctx: typer.Context, project: str = PROJECT, as_json: bool = JSON) -> None:
    """Registered model versions (each finished training registers one)."""
    found = state(ctx).client().models.list(project)
    if as_json:
        print_json(found)
        return
    rows = [
        (f"v{m.number}", m.stage.value, m.metric, _num(m.score), _num(m.test_score), m.dataset,
         _gates(m))
        for m in found
    ]  # fmt: skip
    table(
        f"models of {project}", ["model", "stage", "metric", "cv", "test", "dataset", "gates"], rows
    )


@models_app.command("show")
def show(ctx: typer.Context, number: int, project: str = PROJECT, as_json: bool = JSON) -> None:
    """One model version."""
    found = state(ctx).client().models.get(project, number)
    print_json(found) if as_json else show_model(found)


@models_app.command("card")
def card(ctx: typer.Context, number: int, project: str = PROJECT) -> None:
    """The model card (Markdown)."""
    print(state(ctx).client().models.card(project, number), end="")


@models_app.command("stage")
def stage(
    ctx: typer.Context,
    number: int,
    to: str = typer.Argument(..., help="candidate, staging, production or archived."),
    project: str = PROJECT,
    reason: str = typer.Option("", help="Kept in the model's history."),
    as_json: bool = JSON,
) -> None:
    """Move a model to a stage."""
    found = state(ctx).client().models.set_stage(project, number, to, reason)
    print_json(found) if as_json else show_model(found)


def deploy(
    ctx: typer.Context,
    project: str = PROJECT,
    model: int = typer.Option(..., "--model", "-m", help="Model version number."),
    name: str = typer.Option(..., "--name", "-n", help="Deployment name."),
    confidence_threshold: float = typer.Option(None, help="Abstain below this confidence (0-1)."),
    fallback_label: str = typer.Option(None, help='What an abstaining row says ("unknown").'),
    capture_percent: float = typer.Option(
        None, help="Share of predicted rows captured, 0-100 (100 for a new deployment)."
    ),
    as_json: bool = JSON,
) -> None:
    """Serve a model version under a name (created, or switched with no failed request)."""
    done = state(ctx).client().deployments.deploy(
        project, name, model, confidence_threshold=confidence_threshold,
        fallback_label=fallback_label, capture_percent=capture_percent,
    )  # fmt: skip
    if as_json:
        print_json(done)
    else:
        console.print(
            f"{project}/{done.name} serves model v{done.model}: POST "
            f"/api/v1/projects/{project}/deployments/{done.name}/predict"
        )


def predict(
    ctx: typer.Context,
    target: str = typer.Argument(..., metavar="PROJECT/DEPLOYMENT"),
    path: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="CSV with a header, or JSON records."
    ),
    as_json: bool = JSON,
) -> None:
    """Predict the rows of a file with a deployment."""
    project, _, name = target.partition("/")
    if not project or not name:
        raise InvalidInput(f"{target!r} is not PROJECT/DEPLOYMENT", field="deployment")
    client = state(ctx).client()
    data = path.read_bytes()
    if path.suffix.lower() == ".json":
        try:
            records = json.loads(data)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{path.name} is not JSON: {exc.msg}", field="path") from exc
        if isinstance(records, dict):  # the shapes the API takes: {"records"|"instances": [...]}
            records = records.get("records", records.get("instances"))
        if not isinstance(records, list):
            raise InvalidInput(
                f'{path.name}: give a list of records, {{"records": [...]}} or '
                '{"instances": [...]}',
                field="path",
            )
        result = client.deployments.predict(project, name, records)
    else:
        result = client.deployments.predict_csv(project, name, data)
    if as_json:
        json.dump(result, sys.stdout, indent=2)
        print()
        return
    rows = []
    for i, p in enumerate(result["predictions"]):
        answer = p.get("label", p.get("value"))
        rows.append((i, answer, _num(p.get("confidence")), "yes" if p.get("abstained") else ""))
    table(
        f"{target} (model v{result['model_version']})",
        ["row", "prediction", "confidence", "abstained"],
        rows,
    )
