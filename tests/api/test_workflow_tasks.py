"""The server's own workflow tasks (train, evaluate, deploy, predict, batch_predict) over a
live server with its worker: the retrain example, run as a user runs it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

EXAMPLE = Path(__file__).parents[2] / "examples" / "retrain_workflow" / "retrain.asl.yaml"


def wait(admin: httpx.Client, path: str, timeout: float = 240) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = admin.get(path).json()
        if found["status"] != "RUNNING":
            return dict(found)
        time.sleep(0.3)
    pytest.fail(f"{path} still running after {timeout} s")


@pytest.fixture(scope="module")
def project(admin: httpx.Client) -> str:
    assert admin.post("/projects", json={"name": "loop"}).status_code == 201
    r = admin.post("/projects/loop/datasets", json={"name": "iris", "source": "builtin:iris"})
    assert r.status_code == 202, r.text
    job = r.json()["id"]
    end = time.monotonic() + 120
    while admin.get(f"/projects/loop/jobs/{job}").json()["state"] != "succeeded":
        assert time.monotonic() < end, "ingest did not finish"
        time.sleep(0.3)
    return "loop"


def test_the_retrain_example_trains_deploys_checks_and_scores(
    admin: httpx.Client, project: str
) -> None:
    # The example trains for a minute; a test runs the same loop on two trials.
    text = EXAMPLE.read_text().replace("time_budget: 60", "time_budget: 2, max_trials: 2")
    assert "max_trials: 2" in text
    r = admin.put(f"/projects/{project}/workflows/retrain", json={"definition": text})
    assert r.status_code == 201, r.text
    r = admin.post(f"/projects/{project}/workflows/retrain/executions", json={"input": {}})
    assert r.status_code == 202, r.text
    execution = wait(admin, f"/projects/{project}/workflows/retrain/executions/{r.json()['id']}")
    assert execution["status"] == "SUCCEEDED", execution
    output = execution["output"]
    model = output["training"]["model"]
    assert output["evaluation"]["number"] == model
    assert output["evaluation"]["dataset"] == "iris@1"
    assert output["evaluation"]["beats_baselines"] is True
    # The deployment really serves the new model, and the workflow's smoke test used it.
    served = admin.get(f"/projects/{project}/deployments/iris").json()
    assert served["model"] == model == output["deployed"]["model"]
    assert admin.get(f"/projects/{project}/models/{model}").json()["stage"] == "production"
    assert output["check"]["label"] == "setosa"
    # The batch prediction job scored every row of the dataset and wrote Parquet.
    assert output["batch"]["rows"] == 150 and output["batch"]["model_version"] == model
    r = admin.get(
        f"/projects/{project}/deployments/iris/batch-predictions/{output['batch']['job']}/output",
        params={"format": "csv"},
    )
    assert r.status_code == 200 and r.text.count("\n") == 151


def test_a_failed_training_fails_the_task_with_the_jobs_error(
    admin: httpx.Client, project: str
) -> None:
    parameters = {"dataset": "iris", "target": "no-such-column", "time_budget": 1}
    definition = {"StartAt": "Train", "States": {"Train": {
        "Type": "Task", "Resource": "loopml:task:train", "End": True,
        "Parameters": parameters}}}  # fmt: skip
    admin.put(f"/projects/{project}/workflows/bad-train", json={"definition": definition})
    r = admin.post(f"/projects/{project}/workflows/bad-train/executions", json={})
    execution = wait(admin, f"/projects/{project}/workflows/bad-train/executions/{r.json()['id']}")
    assert execution["status"] == "FAILED"
    assert execution["error"] == "loopml.TrainingFailed"
    assert "no-such-column" in execution["cause"]


@pytest.mark.parametrize(
    ("task", "parameters", "field"),
    [
        ("deploy", {"deployment": "x"}, "model"),
        ("evaluate", {"model": "three"}, "model"),
        ("batch_predict", {"deployment": "iris", "source": "builtin:iris"}, "dataset"),
        ("train", {"time_budget": 1}, "dataset"),
    ],
)
def test_bad_task_input_fails_with_the_field_named(
    admin: httpx.Client, project: str, task: str, parameters: dict[str, Any], field: str
) -> None:
    definition = {"StartAt": "T", "States": {"T": {
        "Type": "Task", "Resource": f"loopml:task:{task}", "Parameters": parameters,
        "End": True}}}  # fmt: skip
    name = f"bad-{task.replace('_', '-')}"
    admin.put(f"/projects/{project}/workflows/{name}", json={"definition": definition})
    r = admin.post(f"/projects/{project}/workflows/{name}/executions", json={})
    execution = wait(admin, f"/projects/{project}/workflows/{name}/executions/{r.json()['id']}")
    assert execution["status"] == "FAILED"
    assert execution["error"] == "InvalidInput"
    assert field in execution["cause"]
