"""Workflows over HTTP on a live server: saving and validating definitions, executions
started, polled, listed and stopped, their histories, deployments called from a workflow
(predictions answered and captured), the SDK, and an execution that survives a restart
of the server."""

from __future__ import annotations

import json
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from loopml.core.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from loopml.sdk import Client
from tests.api.support import assert_problem, client, serve
from tests.conftest import LiveServer, make_settings, wait_for

FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
SETOSA = dict(zip(FEATURES, [5.1, 3.5, 1.4, 0.2], strict=True))
BORDER = dict(zip(FEATURES, [6.0, 2.7, 5.0, 1.6], strict=True))  # versicolor or virginica?
ENDED = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
BASE = "/projects/flows/workflows"

ADD = {
    "StartAt": "Add",
    "States": {
        "Add": {
            "Type": "Pass",
            "Parameters": {"sum.$": "States.MathAdd($.a, $.b)", "who.$": "$.who"},
            "Next": "Big?",
        },
        "Big?": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.sum", "NumericGreaterThan": 10, "Next": "Big"}],
            "Default": "Small",
        },
        "Big": {"Type": "Pass", "Result": "big", "ResultPath": "$.size", "End": True},
        "Small": {"Type": "Pass", "Result": "small", "ResultPath": "$.size", "End": True},
    },
}
NAP = {"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 60, "End": True}}}
FAIL = {
    "StartAt": "No",
    "States": {"No": {"Type": "Fail", "Error": "Order.Rejected", "Cause": "out of stock"}},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve(tmp_path_factory, capture_flush_seconds=0.2) as live:
        yield live


@pytest.fixture(scope="module")
def model(server: LiveServer) -> int:
    """Project "flows" with iris trained once and deployed as "iris"."""
    with Client(server.url, server.admin_key) as sdk:
        sdk.projects.create("flows")
        job = sdk.trainings.start("flows", "builtin:iris", time_budget=1, max_trials=1, seed=0)
        done = sdk.trainings.wait("flows", job.id, timeout=120)
        assert done.state.value == "succeeded", done.error
        assert done.result is not None
        version = int(done.result["model_version"])
        sdk.raw("PUT", "/projects/flows/deployments/iris", json={"model": version})
    return version


@pytest.fixture(scope="module")
def flows(admin: httpx.Client, model: int) -> httpx.Client:
    """The admin client, once project "flows" exists."""
    return admin


def save(http: httpx.Client, name: str, definition: Any) -> dict[str, Any]:
    r = http.put(f"{BASE}/{name}", json={"definition": definition})
    assert r.status_code in (200, 201), r.text
    return dict(r.json())


def start(http: httpx.Client, workflow: str, data: Any = None, **body: Any) -> dict[str, Any]:
    r = http.post(f"{BASE}/{workflow}/executions", json={"input": data, **body})
    assert r.status_code == 202, r.text
    return dict(r.json())


def finished(http: httpx.Client, name: str, execution: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        r = http.get(f"{BASE}/{name}/executions/{execution}")
        assert r.status_code == 200, r.text
        return r.json() if r.json()["status"] in ENDED else None

    return dict(wait_for(f"execution {execution} of {name}", check, timeout=30))


def run(http: httpx.Client, name: str, definition: Any, data: Any = None) -> dict[str, Any]:
    save(http, name, definition)
    return finished(http, name, start(http, name, data)["id"])


def events(http: httpx.Client, name: str, execution: str, **params: Any) -> list[dict[str, Any]]:
    r = http.get(f"{BASE}/{name}/executions/{execution}/history", params=params)
    assert r.status_code == 200, r.text
    return list(r.json()["events"])


# --- definitions -----------------------------------------------------------------------


def test_put_creates_then_replaces_the_definition(flows: httpx.Client) -> None:
    r = flows.put(f"{BASE}/adder", json={"definition": ADD})
    assert r.status_code == 201, r.text
    created = r.json()
    assert (created["name"], created["project"], created["revision"]) == ("adder", "flows", 1)
    assert created["definition"] == ADD

    changed = {**ADD, "Comment": "adds two numbers"}
    r = flows.put(f"{BASE}/adder", json={"definition": changed})
    assert r.status_code == 200, r.text
    assert (r.json()["revision"], r.json()["id"]) == (2, created["id"])
    assert flows.get(f"{BASE}/adder").json()["definition"] == changed
    assert "adder" in [w["name"] for w in flows.get(BASE).json()]

    r = flows.put(f"{BASE}/adder", json={"definition": changed})  # the same again
    assert (r.status_code, r.json()["revision"]) == (200, 2)


def test_an_express_workflow_keeps_its_type_and_runs_like_a_standard_one(
    flows: httpx.Client,
) -> None:
    r = flows.put(f"{BASE}/quick", json={"definition": ADD, "type": "EXPRESS"})
    assert r.status_code == 201 and r.json()["type"] == "EXPRESS", r.text
    done = finished(flows, "quick", start(flows, "quick", {"a": 4, "b": 9, "who": "ann"})["id"])
    assert (done["status"], done["type"]) == ("SUCCEEDED", "EXPRESS")
    assert done["output"] == {"sum": 13, "who": "ann", "size": "big"}
    r = flows.put(f"{BASE}/quick", json={"definition": ADD})  # the type is part of the save
    assert (r.json()["type"], r.json()["revision"]) == ("STANDARD", 2)
    bad = flows.put(f"{BASE}/quick", json={"definition": ADD, "type": "FAST"})
    assert_problem(bad, 422, field="body.type")


def test_json_and_yaml_text_are_definitions_too(flows: httpx.Client) -> None:
    yaml_text = textwrap.dedent(
        """
        # a comment, as YAML allows
        StartAt: Hello
        States:
          Hello:
            Type: Pass
            Parameters:
              greeting.$: States.Format('hello {}', $.who)
            End: true
        """
    )
    saved = save(flows, "hello-yaml", yaml_text)
    assert saved["definition"]["States"]["Hello"]["Type"] == "Pass"
    done = finished(flows, "hello-yaml", start(flows, "hello-yaml", {"who": "yaml"})["id"])
    assert done["output"] == {"greeting": "hello yaml"}

    saved = save(flows, "hello-json", json.dumps(ADD))
    assert saved["definition"] == ADD


def test_validate_counts_states_and_lists_resources(flows: httpx.Client) -> None:
    definition = {
        "StartAt": "Both",
        "States": {
            "Both": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
                    {
                        "StartAt": "N",
                        "States": {
                            "N": {"Type": "Task", "Resource": "loopml:task:notify", "End": True}
                        },
                    },
                ],
                "Next": "Predict",
            },
            "Predict": {"Type": "Task", "Resource": "loopml:deployment:iris", "End": True},
        },
    }
    r = flows.post(f"{BASE}/validate", json={"definition": definition})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "valid": True,
        "states": 4,
        "resources": ["loopml:deployment:iris", "loopml:task:notify"],
    }
    assert flows.get(f"{BASE}/both").status_code == 404  # validating saves nothing


def test_an_invalid_definition_is_a_problem_naming_each_field(flows: httpx.Client) -> None:
    broken = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Next": "Nowhere"},
            "B": {"Type": "Task", "Resource": "loopml:task:no-such-task", "End": True},
        },
    }
    for r in (
        flows.post(f"{BASE}/validate", json={"definition": broken}),
        flows.put(f"{BASE}/broken", json={"definition": broken}),
    ):
        body = assert_problem(r, 422, code="invalid-definition")
        fields = [e["field"] for e in body["errors"]]
        assert "States.A.Next" in fields
        assert "States.B.Resource" in fields
        assert all(e["message"] for e in body["errors"])
        assert body["field"] == body["errors"][0]["field"]
        assert "Nowhere" in body["detail"] and "no-such-task" in body["detail"]
    assert_problem(flows.get(f"{BASE}/broken"), 404, field="name")

    r = flows.post(f"{BASE}/validate", json={"definition": "StartAt: [unclosed"})
    body = assert_problem(r, 422, code="invalid-definition")
    assert body["errors"][0]["field"] == "definition"
    r = flows.post(f"{BASE}/validate", json={"definition": ADD, "extra": 1})
    assert_problem(r, 422, field="body.extra")


# --- executions ------------------------------------------------------------------------


def test_an_execution_is_accepted_then_polled_until_it_succeeds(flows: httpx.Client) -> None:
    save(flows, "adder", ADD)
    started = start(flows, "adder", {"a": 4, "b": 9, "who": "ann"})
    assert started["status"] == "RUNNING" and started["workflow"] == "adder"
    assert started["started_by"] == "admin"
    done = finished(flows, "adder", started["id"])
    assert done["status"] == "SUCCEEDED"
    assert done["output"] == {"sum": 13, "who": "ann", "size": "big"}
    assert done["input"] == {"a": 4, "b": 9, "who": "ann"}
    assert done["error"] is None and done["stopped_at"] is not None

    small = finished(flows, "adder", start(flows, "adder", {"a": 1, "b": 2, "who": "bo"})["id"])
    assert small["output"]["size"] == "small"


def test_the_history_has_step_functions_order_and_shape(flows: httpx.Client) -> None:
    save(flows, "adder", ADD)
    execution = start(flows, "adder", {"a": 1, "b": 2, "who": "cy"})["id"]
    done = finished(flows, "adder", execution)
    history = events(flows, "adder", execution)
    assert [e["type"] for e in history] == [
        "ExecutionStarted",
        "PassStateEntered",
        "PassStateExited",
        "ChoiceStateEntered",
        "ChoiceStateExited",
        "PassStateEntered",
        "PassStateExited",
        "ExecutionSucceeded",
    ]
    assert [e["id"] for e in history] == list(range(1, 9))
    assert [e["previousEventId"] for e in history] == list(range(0, 8))
    assert done["events"] == 8
    for e in history:
        assert e["timestamp"].endswith("+00:00")
    first, entered, last = history[0], history[1], history[-1]
    assert json.loads(first["executionStartedEventDetails"]["input"]) == done["input"]
    assert entered["stateEnteredEventDetails"]["name"] == "Add"
    assert history[4]["stateExitedEventDetails"]["name"] == "Big?"
    assert history[5]["stateEnteredEventDetails"]["name"] == "Small"
    assert json.loads(last["executionSucceededEventDetails"]["output"]) == done["output"]

    assert [e["id"] for e in events(flows, "adder", execution, after=6)] == [7, 8]
    assert [e["id"] for e in events(flows, "adder", execution, limit=2)] == [1, 2]


def test_a_failing_execution_shows_its_error_and_cause(flows: httpx.Client) -> None:
    done = run(flows, "rejects", FAIL, {"order": 1})
    assert (done["status"], done["error"], done["cause"]) == (
        "FAILED",
        "Order.Rejected",
        "out of stock",
    )
    assert done["output"] is None
    last = events(flows, "rejects", done["id"])[-1]
    assert last["type"] == "ExecutionFailed"
    assert last["executionFailedEventDetails"] == {
        "error": "Order.Rejected",
        "cause": "out of stock",
    }


def test_stop_aborts_a_waiting_execution(flows: httpx.Client) -> None:
    save(flows, "nap", NAP)
    execution = start(flows, "nap", {})["id"]
    path = f"{BASE}/nap/executions/{execution}"
    wait_for("the Wait state", lambda: len(events(flows, "nap", execution)) >= 2)
    r = flows.post(f"{path}/stop")
    assert r.status_code == 200, r.text
    done = finished(flows, "nap", execution)
    assert (done["status"], done["error"]) == ("ABORTED", "States.Aborted")
    assert events(flows, "nap", execution)[-1]["type"] == "ExecutionAborted"
    assert_problem(flows.post(f"{path}/stop"), 409, field="execution")


def test_executions_are_listed_newest_first_and_by_status(flows: httpx.Client) -> None:
    save(flows, "listed", FAIL)
    failed = [finished(flows, "listed", start(flows, "listed", {"i": i})["id"]) for i in range(2)]
    save(flows, "listed", ADD)
    good = finished(flows, "listed", start(flows, "listed", {"a": 1, "b": 1, "who": "x"})["id"])

    listed = flows.get(f"{BASE}/listed/executions").json()
    assert [e["id"] for e in listed] == [good["id"], failed[1]["id"], failed[0]["id"]]
    assert [e["revision"] for e in listed] == [2, 1, 1]
    by_status = flows.get(f"{BASE}/listed/executions", params={"status": "FAILED"}).json()
    assert [e["id"] for e in by_status] == [failed[1]["id"], failed[0]["id"]]
    assert flows.get(f"{BASE}/listed/executions", params={"status": "RUNNING"}).json() == []
    assert len(flows.get(f"{BASE}/listed/executions", params={"limit": 1}).json()) == 1
    assert_problem(flows.get(f"{BASE}/ghost/executions"), 404, field="name")


def test_an_execution_is_found_only_under_its_own_workflow(flows: httpx.Client) -> None:
    save(flows, "adder", ADD)
    save(flows, "other", FAIL)
    execution = start(flows, "adder", {"a": 1, "b": 1, "who": "x"})["id"]
    finished(flows, "adder", execution)
    for r in (
        flows.get(f"{BASE}/other/executions/{execution}"),
        flows.get(f"{BASE}/other/executions/{execution}/history"),
        flows.post(f"{BASE}/other/executions/{execution}/stop"),
    ):
        assert_problem(r, 404, field="execution")
    assert_problem(flows.get(f"{BASE}/adder/executions/nope"), 404, field="execution")


def test_a_named_execution_is_started_once(flows: httpx.Client) -> None:
    save(flows, "adder", ADD)
    name = f"order-{uuid.uuid4().hex[:8]}"
    first = start(flows, "adder", {"a": 1, "b": 2, "who": "x"}, name=name)
    again = start(flows, "adder", {"a": 1, "b": 2, "who": "x"}, name=name)
    assert again["id"] == first["id"] and first["name"] == name
    r = flows.post(f"{BASE}/adder/executions", json={"input": {"a": 9}, "name": name})
    assert_problem(r, 409, field="name", code="already-exists")


def test_a_workflow_is_deleted_only_once_nothing_runs(flows: httpx.Client) -> None:
    save(flows, "doomed", NAP)
    execution = start(flows, "doomed", {})["id"]
    assert_problem(flows.delete(f"{BASE}/doomed"), 409, field="name")
    flows.post(f"{BASE}/doomed/executions/{execution}/stop")
    finished(flows, "doomed", execution)
    assert flows.delete(f"{BASE}/doomed").status_code == 204
    assert_problem(flows.get(f"{BASE}/doomed"), 404)
    assert_problem(flows.get(f"{BASE}/doomed/executions/{execution}"), 404)


def test_a_viewer_reads_but_never_starts(server: LiveServer, flows: httpx.Client) -> None:
    r = flows.post(
        "/keys", json={"name": f"viewer-{uuid.uuid4().hex[:6]}", "roles": {"flows": "viewer"}}
    )
    assert r.status_code == 201, r.text
    save(flows, "adder", ADD)
    with client(server, r.json()["secret"]) as viewer:
        assert viewer.get(f"{BASE}/adder").status_code == 200
        assert viewer.post(f"{BASE}/validate", json={"definition": ADD}).status_code == 200
        assert_problem(viewer.post(f"{BASE}/adder/executions", json={"input": {}}), 403)
        assert_problem(viewer.put(f"{BASE}/adder", json={"definition": ADD}), 403)


# --- deployments in workflows ------------------------------------------------------------


def captured(http: httpx.Client, prediction_id: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        r = http.get("/projects/flows/deployments/iris/captures", params={"limit": 100_000})
        assert r.status_code == 200, r.text
        found = [c for c in r.json() if c["loopml"]["prediction_id"] == prediction_id]
        return found[0] if found else None

    return dict(wait_for(f"the capture of {prediction_id}", check, timeout=20))


def test_a_deployment_answers_a_workflow_and_the_prediction_is_captured(
    flows: httpx.Client, model: int
) -> None:
    definition = {
        "StartAt": "Classify",
        "States": {
            "Classify": {
                "Type": "Task",
                "Resource": "loopml:deployment:iris",
                "InputPath": "$.flower",
                "ResultPath": "$.prediction",
                "End": True,
            }
        },
    }
    done = run(flows, "classify", definition, {"flower": SETOSA, "ref": "f-1"})
    assert done["status"] == "SUCCEEDED", done
    prediction = done["output"]["prediction"]
    assert prediction["label"] == "setosa"
    assert 0 < prediction["confidence"] <= 1
    assert prediction["prediction_id"]
    assert prediction["model_version"] == model
    assert done["output"]["ref"] == "f-1"

    capture = captured(flows, prediction["prediction_id"])["captureData"]
    assert json.loads(capture["endpointInput"]["data"]) == SETOSA
    assert json.loads(capture["endpointOutput"]["data"]) == prediction


def test_the_predict_task_takes_a_deployment_and_a_record(flows: httpx.Client, model: int) -> None:
    definition = {
        "StartAt": "Predict",
        "States": {
            "Predict": {
                "Type": "Task",
                "Resource": "loopml:task:predict",
                "Parameters": {"deployment": "iris", "record.$": "$.flower"},
                "End": True,
            }
        },
    }
    done = run(flows, "predict-task", definition, {"flower": SETOSA})
    assert done["status"] == "SUCCEEDED", done
    assert done["output"]["label"] == "setosa"
    assert done["output"]["model_version"] == model
    captured(flows, done["output"]["prediction_id"])

    # Other fields beside the record (a note, an id) do not change what is predicted.
    noted = {"deployment": "iris", "record.$": "$.flower", "note": "from the shop"}
    definition["States"]["Predict"]["Parameters"] = noted
    noted_done = run(flows, "predict-task", definition, {"flower": SETOSA})
    assert noted_done["status"] == "SUCCEEDED", noted_done
    assert noted_done["output"]["label"] == "setosa"
    assert noted_done["output"]["probabilities"] == done["output"]["probabilities"]

    many = run(
        flows,
        "predict-many",
        {
            "StartAt": "Predict",
            "States": {
                "Predict": {
                    "Type": "Task",
                    "Resource": "loopml:task:predict",
                    "Parameters": {"deployment": "iris", "records.$": "$.flowers"},
                    "End": True,
                }
            },
        },
        {"flowers": [SETOSA, SETOSA]},
    )
    assert many["output"]["model_version"] == model
    assert [p["label"] for p in many["output"]["predictions"]] == ["setosa", "setosa"]


def test_a_wrong_record_fails_the_execution_naming_the_column(flows: httpx.Client) -> None:
    definition = {
        "StartAt": "Classify",
        "States": {"Classify": {"Type": "Task", "Resource": "loopml:deployment:iris", "End": True}},
    }
    done = run(flows, "classify-bad", definition, {**SETOSA, "petal width (cm)": "wide"})
    assert (done["status"], done["error"]) == ("FAILED", "InvalidInput")
    assert "petal width (cm)" in done["cause"] and "wide" in done["cause"]
    failed = [e for e in events(flows, "classify-bad", done["id"]) if e["type"] == "TaskFailed"]
    assert failed[0]["taskFailedEventDetails"]["error"] == "InvalidInput"

    done = run(
        flows,
        "classify-ghost",
        {
            "StartAt": "C",
            "States": {"C": {"Type": "Task", "Resource": "loopml:deployment:ghost", "End": True}},
        },
        SETOSA,
    )
    assert (done["status"], done["error"]) == ("FAILED", "NotFound")
    assert "ghost" in done["cause"]


def chain(catch: bool) -> dict[str, Any]:
    """The seed workflow's shape: predict, then keep only confident predictions."""
    check: dict[str, Any] = {
        "Type": "Task",
        "Resource": "loopml:task:confidence_filter",
        "Parameters": {"threshold.$": "$.threshold", "prediction.$": "$.prediction"},
        "End": True,
    }
    if catch:
        check["Catch"] = [
            {
                "ErrorEquals": ["ConfidenceThresholdNotMet"],
                "ResultPath": "$.doubt",
                "Next": "Review",
            }
        ]
        check["ResultPath"] = None
    states = {
        "Classify": {
            "Type": "Task",
            "Resource": "loopml:task:predict",
            "Parameters": {"deployment": "iris", "record.$": "$.flower"},
            "ResultPath": "$.prediction",
            "Next": "Check",
        },
        "Check": check,
    }
    if catch:
        states["Review"] = {
            "Type": "Pass",
            "Result": "needs a human",
            "ResultPath": "$.route",
            "End": True,
        }
    return {"StartAt": "Classify", "States": states}


def test_a_doubtful_prediction_fails_the_chain_or_is_caught(flows: httpx.Client) -> None:
    data = {"flower": BORDER, "threshold": 0.999999}
    done = run(flows, "chain", chain(catch=False), data)
    assert (done["status"], done["error"]) == ("FAILED", "ConfidenceThresholdNotMet"), done
    assert "below the threshold 0.999999" in done["cause"]

    caught = run(flows, "chain-caught", chain(catch=True), data)
    assert caught["status"] == "SUCCEEDED", caught
    assert caught["output"]["route"] == "needs a human"
    assert caught["output"]["doubt"]["Error"] == "ConfidenceThresholdNotMet"
    assert caught["output"]["prediction"]["label"] in ("versicolor", "virginica")

    sure = run(flows, "chain-caught", chain(catch=True), {"flower": SETOSA, "threshold": 0.0})
    assert sure["status"] == "SUCCEEDED" and "route" not in sure["output"]
    assert [e["type"] for e in events(flows, "chain-caught", sure["id"])][-1] == (
        "ExecutionSucceeded"
    )


# --- the SDK -----------------------------------------------------------------------------


def test_the_sdk_saves_validates_starts_waits_and_reads_history(
    server: LiveServer, model: int
) -> None:
    with Client(server.url, server.admin_key) as sdk:
        checked = sdk.workflows.validate("flows", ADD)
        assert (checked["valid"], checked["states"], checked["resources"]) == (True, 4, [])
        with pytest.raises(InvalidInput) as bad:
            sdk.workflows.validate("flows", {"StartAt": "X", "States": {}})
        assert bad.value.extra["errors"] and bad.value.field

        saved = sdk.workflows.save("flows", "sdk-adder", ADD)
        assert saved.revision >= 1
        assert "sdk-adder" in [w.name for w in sdk.workflows.list("flows")]
        assert sdk.workflows.get("flows", "sdk-adder").definition == ADD

        started = sdk.workflows.start("flows", "sdk-adder", {"a": 5, "b": 6, "who": "sdk"})
        done = sdk.workflows.wait("flows", "sdk-adder", started.id, timeout=30, poll=0.05)
        assert (done.status, done.output) == ("SUCCEEDED", {"sum": 11, "who": "sdk", "size": "big"})
        history = sdk.workflows.history("flows", "sdk-adder", started.id)
        assert history[0]["type"] == "ExecutionStarted" and len(history) == done.events
        assert [
            e["id"] for e in sdk.workflows.history("flows", "sdk-adder", started.id, after=7)
        ] == [8]

        named = sdk.workflows.start(
            "flows", "sdk-adder", {"a": 1, "b": 1, "who": "n"}, execution="n-1"
        )
        assert (
            sdk.workflows.start(
                "flows", "sdk-adder", {"a": 1, "b": 1, "who": "n"}, execution="n-1"
            ).id
            == named.id
        )
        with pytest.raises(AlreadyExists):
            sdk.workflows.start("flows", "sdk-adder", {"a": 2}, execution="n-1")
        sdk.workflows.wait("flows", "sdk-adder", named.id, timeout=30, poll=0.05)
        succeeded = sdk.workflows.executions("flows", "sdk-adder", status="SUCCEEDED")
        assert {started.id, named.id} <= {e.id for e in succeeded}
        assert sdk.workflows.executions("flows", "sdk-adder", status="FAILED") == []


def test_the_sdk_stops_an_execution_and_waits_with_a_timeout(
    server: LiveServer, model: int
) -> None:
    with Client(server.url, server.admin_key) as sdk:
        sdk.workflows.save("flows", "sdk-nap", NAP)
        started = sdk.workflows.start("flows", "sdk-nap", {})
        with pytest.raises(TimeoutError, match="still RUNNING"):
            sdk.workflows.wait("flows", "sdk-nap", started.id, timeout=0.2, poll=0.05)
        assert sdk.workflows.stop("flows", "sdk-nap", started.id).id == started.id
        done = sdk.workflows.wait("flows", "sdk-nap", started.id, timeout=30, poll=0.05)
        assert done.status == "ABORTED"
        with pytest.raises(Conflict):
            sdk.workflows.stop("flows", "sdk-nap", started.id)
        sdk.workflows.delete("flows", "sdk-nap")
        with pytest.raises(NotFound):
            sdk.workflows.get("flows", "sdk-nap")


# --- restarting the server ---------------------------------------------------------------

STEP_MODULE = """
import pathlib, time

import loopml.workflow


@loopml.workflow.task("{task}")
def step(data):
    with open(data["calls"], "a") as f:
        f.write(data["state"] + "\\n")
    time.sleep(data.get("sleep", 0))
    return data["state"]
"""


def test_an_execution_resumes_on_the_next_server_after_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = f"restart_tasks_{uuid.uuid4().hex[:8]}"
    task = f"slow_step_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(STEP_MODULE.format(task=task))
    monkeypatch.syspath_prepend(str(tmp_path))
    calls = tmp_path / "calls.txt"

    def state(name: str, sleep: float = 0, **more: Any) -> dict[str, Any]:
        return {
            "Type": "Task",
            "Resource": f"loopml:task:{task}",
            "Parameters": {"calls": str(calls), "state": name, "sleep": sleep},
            "ResultPath": f"$.{name}",
            **more,
        }

    definition = {
        "StartAt": "A",
        "States": {
            "A": state("A", Next="B"),
            "B": state("B", 1.0, Next="C"),
            "C": state("C", End=True),
        },
    }
    home = tmp_path / "home"
    first = make_settings(home, workflow_task_modules=[module])
    with LiveServer(first) as live, client(live, live.admin_key) as http:
        assert http.post("/projects", json={"name": "flows"}).status_code == 201
        save(http, "steps", definition)
        execution = start(http, "steps", {"order": 7})["id"]
        wait_for("B to start", lambda: calls.exists() and "B" in calls.read_text().split())
        stopping = time.monotonic()
    # The server stopped mid-B: B was let finish, C was left for the next server.
    assert time.monotonic() - stopping < 10
    assert calls.read_text().split() == ["A", "B"]

    second = make_settings(home, workflow_task_modules=[module])
    with LiveServer(second) as live, client(live, live.admin_key) as http:
        done = finished(http, "steps", execution)
        history = events(http, "steps", execution)
    assert done["status"] == "SUCCEEDED", done
    assert done["output"] == {"order": 7, "A": "A", "B": "B", "C": "C"}
    assert calls.read_text().split() == ["A", "B", "C"]  # nothing ran twice
    types = [e["type"] for e in history]
    assert types.count("ExecutionResumed") == 1
    resumed = history[types.index("ExecutionResumed")]
    assert resumed["executionResumedEventDetails"] == {"state": "C"}
    assert [e["id"] for e in history] == list(range(1, len(history) + 1))
    entered = [
        e["stateEnteredEventDetails"]["name"] for e in history if e["type"] == "TaskStateEntered"
    ]
    assert entered == ["A", "B", "C"]
    assert done["events"] == len(history)
    sys.modules.pop(module, None)


# --- the CLI, running a definition here with the server's deployments ----------------------


def test_loopml_workflow_run_calls_the_servers_deployment(
    server: LiveServer, model: int, tmp_path: Path
) -> None:
    from tests.cli.test_cli import cli

    path = tmp_path / "classify.json"
    path.write_text(
        json.dumps(
            {
                "StartAt": "C",
                "States": {
                    "C": {"Type": "Task", "Resource": "loopml:deployment:iris", "End": True}
                },
            }
        )
    )
    remote = ["--url", server.url, "--key", server.admin_key, "workflow", "run", str(path)]

    def run_here(data: Any) -> tuple[int, dict[str, Any]]:
        result = cli(*remote, "--project", "flows", "--input", json.dumps(data), "--json")
        return result.exit_code, json.loads(result.stdout)

    code, one = run_here(SETOSA)
    assert code == 0, one
    assert one["output"]["label"] == "setosa" and one["output"]["prediction_id"]
    assert one["output"]["model_version"] == model
    for many in ([SETOSA, BORDER], {"records": [SETOSA, BORDER]}, {"instances": [SETOSA, BORDER]}):
        code, done = run_here(many)
        assert code == 0, done
        assert done["output"]["model_version"] == model
        assert done["output"]["predictions"][0]["label"] == "setosa"
    code, bad = run_here("a string")
    assert (code, bad["status"], bad["error"]) == (1, "FAILED", "InvalidInput")
    code, wrong = run_here({**SETOSA, "sepal width (cm)": "wide"})
    assert (code, wrong["error"]) == (1, "InvalidInput")
    assert "sepal width (cm)" in wrong["cause"]
