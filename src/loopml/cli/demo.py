"""``loopml demo``: the whole loop that exists so far, on the embedded defaults, then serve."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import typer

from loopml.cli.demo_images import images_step
from loopml.cli.demo_monitoring import monitoring_step
from loopml.cli.demo_workflows import workflow_step
from loopml.cli.jobs import follow
from loopml.cli.output import console, fields
from loopml.cli.serve import build_server, check_port_free
from loopml.cli.train import show_training
from loopml.core.errors import AlreadyExists, StorageError
from loopml.data.builtin import load_builtin
from loopml.home import read_admin_key
from loopml.sdk import Client
from loopml.settings import Settings

DEMO_PROJECT = "demo"
DEMO_DATASET = "breast-cancer"
DEMO_SOURCE = "builtin:breast_cancer"
DEMO_UNLABELLED = 30
DEMO_DEPLOYMENT = "cancer"
DEMO_CONFIDENCE = 0.9
DEMO_BUDGET = 20.0


def _run_loop(settings: Settings, budget: float) -> dict[str, str]:
    key = read_admin_key(settings)
    assert key, "the server creates the admin key on start"
    with Client(settings.base_url, key) as client:
        health = client.health()
        console.print(
            f"[green]1.[/] server is up: database {health['database']}, "
            f"schema {health['schema_revision']}"
        )
        try:
            client.projects.create(DEMO_PROJECT, "Created by `loopml demo`.")
            console.print(f"[green]2.[/] created project [bold]{DEMO_PROJECT}[/]")
        except AlreadyExists:
            console.print(f"[green]2.[/] project [bold]{DEMO_PROJECT}[/] already exists")
        job = client.jobs.submit(DEMO_PROJECT, "selfcheck", {"pause": 0.3})
        console.print(
            "[green]3.[/] the embedded worker runs a self-check job "
            "(database and blob store round trip):"
        )
        job = follow(client, job)
        if job.state.value != "succeeded":
            raise StorageError(f"self-check job {job.state.value}: {job.error}")
        timings = ", ".join(f"{k} {v} ms" for k, v in job.result["milliseconds"].items())
        console.print(f"   self-check passed: {timings}")
        version = _data_and_labels(client, settings)
        console.print(
            f"[green]6.[/] AutoML trains on [bold]{version}[/] for {budget:g} s (baselines, a "
            "portfolio of strong defaults, then a guided search), never seeing its frozen "
            "test split, then is scored on it:"
        )
        training = client.trainings.start(
            DEMO_PROJECT, DEMO_DATASET, time_budget=budget, deploy=DEMO_DEPLOYMENT
        )
        training = follow(client, training)
        if training.state.value != "succeeded":
            raise StorageError(f"training job {training.state.value}: {training.error}")
        show_training(training)
        report = settings.home / "demo-report.html"
        report.write_text(client.trainings.report_html(DEMO_PROJECT, training.id), "utf-8")
        console.print(f"   the report with its plots: [bold]{report.resolve()}[/]")
        _serve_and_predict(client, training.result or {})
        _batch(client)
        _shadow(client, budget)
        images_step(client, DEMO_PROJECT, settings.home, budget, step=10)
        workflow_step(client, DEMO_PROJECT, settings.home, step=11)
        monitoring_step(client, DEMO_PROJECT, DEMO_DEPLOYMENT, DEMO_DATASET, settings.home, step=12)
    base = settings.base_url
    return {
        "API": f"{base}/api/v1",
        "interactive docs": f"{base}/docs",
        "OpenAPI": f"{base}/openapi.json",
        "deployment's OpenAPI": (
            f"{base}/api/v1/projects/{DEMO_PROJECT}/deployments/{DEMO_DEPLOYMENT}/openapi.json"
        ),
        "health": f"{base}/api/v1/health",
        "admin key": key,
        "admin key file": str(settings.admin_key_path.resolve()),
        "home": str(settings.home.resolve()),
        "try": f"curl -H 'Authorization: Bearer {key}' {base}/api/v1/projects",
    }


def _data_and_labels(client: Client, settings: Settings) -> str:
    """Upload a CSV with some rows unlabelled, label them as a labeller, approve as admin."""
    frame, info = load_builtin(DEMO_SOURCE)
    truth = frame[info.target].iloc[-DEMO_UNLABELLED:].tolist()
    frame.loc[frame.index[-DEMO_UNLABELLED:], info.target] = None
    path = settings.home / "demo-data" / "breast_cancer.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    console.print(
        f"[green]4.[/] upload [bold]{path.name}[/] ({len(frame)} rows, the last "
        f"{DEMO_UNLABELLED} without a diagnosis) as dataset [bold]{DEMO_DATASET}[/]:"
    )
    job = follow(client, client.datasets.upload(DEMO_PROJECT, DEMO_DATASET, [path]))
    if job.state.value != "succeeded":
        raise StorageError(f"ingest job {job.state.value}: {job.error}")
    first = client.datasets.version(DEMO_PROJECT, DEMO_DATASET, job.result["version"])
    split, schema = first.split, first.data_schema
    severities = [f.severity.value for f in first.quality]
    counts = ", ".join(f"{severities.count(s)} {s}" for s in ("error", "warning", "info"))
    console.print(
        f"   {first.ref}: target {schema.target!r} "
        f"({schema.task.value if schema.task else 'no task'}), frozen test split "
        f"{split['test_rows']} rows ({split['method']}); quality report: {counts}, e.g.:"
    )
    shown = [f for f in first.quality if f.check == "unlabelled"] + first.quality[:2]
    for finding in shown[:3]:
        console.print(f"     {finding.severity.value}: {finding.message}", soft_wrap=True)
    console.print(
        f"[green]5.[/] a labeller labels the {DEMO_UNLABELLED} rows, the admin approves, "
        "the labels become a new version:"
    )
    unlabelled = client.labels.items(
        DEMO_PROJECT, DEMO_DATASET, unlabelled=True, limit=DEMO_UNLABELLED
    )
    if len(unlabelled) != DEMO_UNLABELLED:  # a demo run before labelled them already
        latest = client.datasets.version(DEMO_PROJECT, DEMO_DATASET)
        console.print(f"   already labelled in an earlier demo run: {latest.ref}")
        return latest.ref
    labeller = client.keys.create("demo-labeller", roles={DEMO_PROJECT: "labeller"})
    with Client(settings.base_url, labeller.secret) as as_labeller:
        made = as_labeller.labels.add(
            DEMO_PROJECT,
            DEMO_DATASET,
            [(item["item"], value) for item, value in zip(unlabelled, truth, strict=True)],
        )
    for label in made:
        client.labels.review(DEMO_PROJECT, DEMO_DATASET, label.id, approve=True)
    client.keys.revoke(labeller.key.id)
    applied = client.labels.apply(DEMO_PROJECT, DEMO_DATASET)
    version = applied["version"]
    console.print(
        f"   {len(made)} labels by {labeller.key.name}, approved by the admin: "
        f"{DEMO_DATASET}@{version['number']} has {applied['changed']} newly labelled rows "
        f"(parent {version['parent']})"
    )
    return f"{DEMO_DATASET}@{version['number']}"


def _serve_and_predict(client: Client, result: dict[str, Any]) -> None:
    """The registered model is served: predict frozen-test rows, abstaining when unsure."""
    version = int(result["model_version"])
    deployed = client.deployments.deploy(
        DEMO_PROJECT, DEMO_DEPLOYMENT, version, confidence_threshold=DEMO_CONFIDENCE,
        reason="the demo serves the model it trained",
    )  # fmt: skip
    console.print(
        f"[green]7.[/] model v{version} is registered and deployed as "
        f"[bold]{DEMO_PROJECT}/{deployed.name}[/], abstaining below {DEMO_CONFIDENCE:.0%} "
        "confidence; it predicts the frozen test split over HTTP:"
    )
    rows = json.loads(client.datasets.rows(DEMO_PROJECT, DEMO_DATASET, part="test", format="json"))
    truth = [row.pop("target") for row in rows]
    answers = client.deployments.predict(DEMO_PROJECT, DEMO_DEPLOYMENT, rows)["predictions"]
    decided = [(a, t) for a, t in zip(answers, truth, strict=True) if not a["abstained"]]
    right = sum(a["label"] == t for a, t in decided)
    console.print(
        f"   {len(rows)} rows: {len(rows) - len(decided)} abstained, {right} of the "
        f"{len(decided)} answered are right; the three least sure:"
    )
    for answer, actual in sorted(
        zip(answers, truth, strict=True), key=lambda p: p[0]["confidence"]
    )[:3]:
        console.print(
            f"   {answer['label']!s:9} confidence {answer['confidence']:.3f}"
            f"{' (abstained)' if answer['abstained'] else ''}, actually {actual}"
        )
    console.print(
        f"   POST /api/v1/projects/{DEMO_PROJECT}/deployments/{DEMO_DEPLOYMENT}/predict "
        "answers any client; its OpenAPI schema is at /docs"
    )


def demo(
    port: int = typer.Option(None, help="Port (default 8000)."),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="Keep serving after the demo."),
    budget: float = typer.Option(DEMO_BUDGET, help="AutoML time budget in seconds."),
) -> None:
    """Start a server on the embedded defaults, run the loop on bundled data, keep serving."""
    overrides: dict[str, Any] = {"port": port} if port else {}
    # The demo's server is yours, on 127.0.0.1: its workflows read and write your files
    # (the digit images and the bucket of unsure ones).
    overrides.setdefault("workflow_local_files", True)
    settings = Settings(**overrides)
    check_port_free(settings.host, settings.port)
    announced: list[str] = []
    server = build_server(settings, announced.append)
    outcome: dict[str, object] = {}

    def script() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        try:
            for message in announced:
                console.print(f"[bold yellow]{message}[/]")
            outcome["urls"] = _run_loop(settings, budget)
        except Exception as exc:  # shown to the user, then the server stops
            outcome["error"] = exc
            server.should_exit = True
            return
        fields("loopml demo is ready", outcome["urls"])  # type: ignore[arg-type]
        if serve:
            console.print("Serving; press Ctrl-C to stop.")
        else:
            server.should_exit = True

    console.print(f"Starting loopml on {settings.base_url} with home {settings.home.resolve()}")
    thread = threading.Thread(target=script, daemon=True)
    thread.start()
    server.run()
    thread.join(timeout=5)
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]


def _batch(client: Client) -> None:
    """The whole dataset version, predicted as a job and written as Parquet."""
    console.print(
        f"[green]8.[/] a batch prediction job scores every row of [bold]{DEMO_DATASET}[/] "
        "with the deployment and writes Parquet:"
    )
    job = client.deployments.batch_predict(DEMO_PROJECT, DEMO_DEPLOYMENT, dataset=DEMO_DATASET)
    job = follow(client, job)
    if job.state.value != "succeeded" or job.result is None:
        raise StorageError(f"batch prediction job {job.state.value}: {job.error}")
    console.print(
        f"   {job.result['rows']} rows scored by v{job.result['model_version']}, "
        f"{job.result['abstained']} abstained; GET .../batch-predictions/{job.id}/output"
    )


def _likeliest(answer: dict[str, Any]) -> Any:
    """The class an answer finds likeliest, whether or not it abstained (an abstaining
    answer's label is the fallback, which says nothing about the two models' agreement)."""
    probabilities: dict[str, float] = answer.get("probabilities") or {}
    if not probabilities:
        return answer["label"]
    return max(probabilities.items(), key=lambda item: item[1])[0]


def _shadow(client: Client, budget: float) -> None:
    """A second, quicker model tried as a shadow: it sees a copy of the traffic, and its
    answers are captured beside the served model's, never returned."""
    console.print(
        f"[green]9.[/] a quicker training ({budget / 4:g} s) becomes a [bold]shadow[/] "
        "challenger; the test split is predicted again and both answers are captured:"
    )
    training = follow(
        client, client.trainings.start(DEMO_PROJECT, DEMO_DATASET, time_budget=budget / 4)
    )
    if training.state.value != "succeeded" or training.result is None:
        raise StorageError(f"training job {training.state.value}: {training.error}")
    challenger = int(training.result["model_version"])
    client.deployments.set_challenger(
        DEMO_PROJECT, DEMO_DEPLOYMENT, challenger, mode="shadow",
        reason="the demo tries a quicker model",
    )  # fmt: skip
    rows = json.loads(client.datasets.rows(DEMO_PROJECT, DEMO_DATASET, part="test", format="json"))
    for row in rows:
        row.pop("target")
    answers = client.deployments.predict(DEMO_PROJECT, DEMO_DEPLOYMENT, rows)["predictions"]
    served = {a["prediction_id"]: _likeliest(a) for a in answers}
    shadowed: dict[str, Any] = {}
    deadline = time.monotonic() + 30
    while len(shadowed) < len(served) and time.monotonic() < deadline:
        time.sleep(0.5)  # captures are written about once a second
        for record in client.deployments.captures(DEMO_PROJECT, DEMO_DEPLOYMENT, limit=100_000):
            mine = record["loopml"]
            if mine["variant"] == "shadow" and mine.get("shadow_of") in served:
                shadowed[mine["shadow_of"]] = _likeliest(
                    json.loads(record["captureData"]["endpointOutput"]["data"])
                )
    same = sum(served[pid] == label for pid, label in shadowed.items())
    console.print(
        f"   shadow v{challenger} answered {len(shadowed)} of {len(served)} copies and agrees "
        f"with the served model's likeliest class on {same}; `loopml deployments promote "
        f"{DEMO_PROJECT}/{DEMO_DEPLOYMENT}` would serve it"
    )
