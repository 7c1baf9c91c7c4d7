"""The registry and serving over HTTP, on a live server with its worker: trainings that
register models and deploy those that pass their project's gates, deployments answering
predictions from JSON and CSV rows, stage history, model cards and the OpenAPI document."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from loopml.core.errors import InvalidInput, NotFound
from loopml.data.builtin import load_builtin
from loopml.sdk import Client
from loopml.store.blobs import BlobStore
from tests.api.support import assert_problem
from tests.conftest import LiveServer

FAST = {"time_budget": 2, "max_trials": 2, "seed": 0}
FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
SETOSA = dict(zip(FEATURES, [5.1, 3.5, 1.4, 0.2], strict=True))
VIRGINICA = dict(zip(FEATURES, [6.7, 3.0, 5.8, 2.2], strict=True))


@pytest.fixture(scope="module")
def sdk(server: LiveServer) -> Iterator[Client]:
    with Client(server.url, server.admin_key) as c:
        yield c


def train(sdk: Client, project: str, dataset: str = "builtin:iris", **options: Any) -> dict:
    """A finished training's result (it must succeed)."""
    job = sdk.trainings.start(project, dataset, **{**FAST, **options})
    done = sdk.trainings.wait(project, job.id, timeout=120)
    assert done.state.value == "succeeded", done.error
    assert done.result is not None
    return {"id": done.id, **done.result}


@pytest.fixture(scope="module")
def served(sdk: Client) -> dict[str, Any]:
    """Project "shop": iris with a frozen test split, trained with deploy="live"."""
    sdk.projects.create("shop")
    job = sdk.datasets.ingest(
        "shop", "iris", "builtin:iris", split={"method": "random", "test_size": 0.3}
    )
    assert sdk.jobs.wait("shop", job.id, timeout=60).state.value == "succeeded"
    return train(sdk, "shop", "iris", deploy="live")


def predict(http: httpx.Client, rows: Any, name: str = "live", **kwargs: Any) -> httpx.Response:
    return http.post(f"/projects/shop/deployments/{name}/predict", json=rows, **kwargs)


def iris_rows(n: int = 150) -> list[dict[str, float]]:
    frame, _ = load_builtin("builtin:iris")
    return frame[FEATURES].head(n).to_dict(orient="records")


def as_csv(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


# --- a training deployed ---------------------------------------------------------------


def test_a_training_with_deploy_puts_v1_in_production_behind_the_deployment(
    admin: httpx.Client, served: dict[str, Any]
) -> None:
    assert served["model_version"] == 1
    assert served["deployed_to"] == "live"
    assert served["gates"] == []  # the project sets none

    (model,) = admin.get("/projects/shop/models").json()
    assert model["number"] == 1
    assert model["stage"] == "production"
    assert model["training"] == served["id"]
    assert model["dataset"] == "iris@1"
    assert model["metric"] == "log_loss"
    assert model["score"] == pytest.approx(served["score"])
    assert model["test_score"] == pytest.approx(served["test_score"])
    assert model["classes"] == ["setosa", "versicolor", "virginica"]
    assert [c["name"] for c in model["inputs"]] == FEATURES
    assert model["content_hash"] == served["model"]["content_hash"]
    assert admin.get("/projects/shop/models/1").json() == model
    assert admin.get("/projects/shop/models", params={"stage": "candidate"}).json() == []

    (deployment,) = admin.get("/projects/shop/deployments").json()
    assert (deployment["name"], deployment["model"]) == ("live", 1)
    assert admin.get("/projects/shop/deployments/live").json() == deployment

    history = admin.get("/projects/shop/models/1/history").json()
    assert [(h["from_stage"], h["to_stage"], h["reason"]) for h in history] == [
        (None, "candidate", "registered"),
        ("candidate", "production", "passed the gates; deployed to live"),
    ]
    assert all(h["actor"] == f"training {served['id']}" for h in history)


def test_the_deployment_predicts_json_records(admin: httpx.Client, served: dict) -> None:
    r = predict(admin, [SETOSA, VIRGINICA])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_version"] == 1
    first, second = body["predictions"]
    assert (first["label"], second["label"]) == ("setosa", "virginica")
    for p in (first, second):
        assert set(p["probabilities"]) == {"setosa", "versicolor", "virginica"}
        assert sum(p["probabilities"].values()) == pytest.approx(1.0)
        assert p["confidence"] == pytest.approx(p["probabilities"][p["label"]])
        assert p["abstained"] is False
        assert p["model_version"] == 1
    assert first["prediction_id"] != second["prediction_id"]
    assert "x-loopml-ignored-columns" not in r.headers


def test_every_request_shape_gives_the_same_answers(admin: httpx.Client, served: dict) -> None:
    rows = iris_rows()[::10]
    url = "/projects/shop/deployments/live"
    answers = {
        "list": predict(admin, rows),
        "records": predict(admin, {"records": rows}),
        "instances": predict(admin, {"instances": rows}),
        "csv": admin.post(
            f"{url}/predict", content=as_csv(rows), headers={"Content-Type": "text/csv"}
        ),
        "csv with charset": admin.post(
            f"{url}/predict",
            content=as_csv(rows),
            headers={"Content-Type": "text/csv; charset=utf-8"},
        ),
        "invocations": admin.post(f"{url}/invocations", json={"instances": rows}),
        "invocations csv": admin.post(
            f"{url}/invocations", content=as_csv(rows), headers={"Content-Type": "text/csv"}
        ),
    }
    expected = None
    for shape, r in answers.items():
        assert r.status_code == 200, (shape, r.text)
        seen = [(p["label"], p["probabilities"]) for p in r.json()["predictions"]]
        assert len(seen) == len(rows), shape
        if expected is None:
            expected = seen
        labels = [label for label, _ in seen]
        assert labels == [label for label, _ in expected], shape
        for (_, got), (_, want) in zip(seen, expected, strict=True):
            assert got == pytest.approx(want), shape
    # and they are right: iris is easy
    frame, _ = load_builtin("builtin:iris")
    truth = frame["target"][::10].tolist()
    assert sum(a == b for a, b in zip(labels, truth, strict=True)) >= 13


@pytest.mark.parametrize(
    ("request_kwargs", "detail", "field"),
    [
        (
            {"json": [SETOSA, {**SETOSA, "petal width (cm)": "wide"}]},
            "record 1: 'petal width (cm)' must be a number, got 'wide'",
            "records[1].petal width (cm)",
        ),
        (
            {"json": {"records": [SETOSA, SETOSA, {**SETOSA, "sepal width (cm)": True}]}},
            "record 2: 'sepal width (cm)' must be a number, got True",
            "records[2].sepal width (cm)",
        ),
        (
            {
                "content": b"sepal length (cm),petal width (cm)\n5.1,0.2\n6.0,n/a\n",
                "headers": {"Content-Type": "text/csv"},
            },
            "line 3: 'petal width (cm)' must be a number, got 'n/a'",  # lines of the file
            "records[1].petal width (cm)",
        ),
        ({"json": [SETOSA, 5]}, "record 1 is not an object", "records[1]"),
        ({"json": []}, "non-empty list of records", "records"),
        ({"json": {"rows": [SETOSA]}}, '{"records": [...]}', "body"),
        (
            {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
            "not JSON",
            "body",
        ),
        ({"content": b"5.1", "headers": {"Content-Type": "text/plain"}}, "text/csv", "body"),
        ({"content": b"", "headers": {"Content-Type": "text/csv"}}, "cannot be read", "body"),
    ],
    ids=[
        "json",
        "records",
        "csv",
        "not-an-object",
        "empty",
        "no-records",
        "bad-json",
        "plain",
        "empty-csv",
    ],
)
def test_bad_rows_are_422_naming_record_and_column(
    admin: httpx.Client, served: dict, request_kwargs: dict, detail: str, field: str
) -> None:
    r = admin.post("/projects/shop/deployments/live/predict", **request_kwargs)
    problem = assert_problem(r, 422, field=field, code="invalid-input")
    assert detail in problem["detail"]


def test_unknown_columns_are_ignored_and_named_in_a_header(
    admin: httpx.Client, served: dict
) -> None:
    rows = [{**SETOSA, "customer_id": 12, "note": "vip"}, {**VIRGINICA, "Sepal Length": 1}]
    r = predict(admin, rows)
    assert r.status_code == 200, r.text
    assert r.headers["X-Loopml-Ignored-Columns"] == "Sepal Length,customer_id,note"
    assert [p["label"] for p in r.json()["predictions"]] == ["setosa", "virginica"]
    # columns the request lacks are missing values, still predicted
    r = predict(admin, [{"petal length (cm)": 5.8}, {}])
    assert r.status_code == 200, r.text
    assert len(r.json()["predictions"]) == 2


def test_below_the_threshold_a_deployment_abstains_with_its_fallback_label(
    admin: httpx.Client, served: dict
) -> None:
    rows = iris_rows()[40:110]  # setosa, versicolor, virginica: some less certain
    plain = predict(admin, rows).json()["predictions"]
    confidences = sorted(p["confidence"] for p in plain)
    limit = round(confidences[len(confidences) // 2], 6)
    r = admin.put(
        "/projects/shop/deployments/careful",
        json={"model": 1, "confidence_threshold": limit, "fallback_label": "ask a botanist"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["confidence_threshold"] == limit
    careful = predict(admin, rows, name="careful").json()["predictions"]
    abstained = [p for p in careful if p["abstained"]]
    assert 0 < len(abstained) < len(rows)
    for before, after in zip(plain, careful, strict=True):
        assert after["abstained"] is (before["confidence"] < limit)
        assert after["label"] == ("ask a botanist" if after["abstained"] else before["label"])
        assert after["confidence"] == pytest.approx(before["confidence"])
    # "live" serves the same model without a threshold: it never abstains
    assert not any(p["abstained"] for p in predict(admin, rows).json()["predictions"])
    # leaving the threshold out keeps it; null stops abstaining
    kept = admin.put("/projects/shop/deployments/careful", json={"model": 1})
    assert kept.status_code == 200 and kept.json()["confidence_threshold"] == limit
    cleared = admin.put(
        "/projects/shop/deployments/careful", json={"model": 1, "confidence_threshold": None}
    )
    assert cleared.json()["confidence_threshold"] is None
    assert not any(
        p["abstained"] for p in predict(admin, rows, name="careful").json()["predictions"]
    )


def test_a_blank_csv_cell_is_a_missing_value(admin: httpx.Client, served: dict) -> None:
    body = as_csv([SETOSA, {**VIRGINICA, "sepal width (cm)": ""}])
    r = admin.post(
        "/projects/shop/deployments/live/predict",
        content=body,
        headers={"Content-Type": "text/csv"},
    )
    assert r.status_code == 200, r.text
    assert [p["label"] for p in r.json()["predictions"]] == ["setosa", "virginica"]


# --- gates -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gated(sdk: Client, admin: httpx.Client) -> dict[str, Any]:
    """Project "gated" with auto_deploy: a training that passes its gates, then one that
    fails them (log loss at most 0.0001); what the API said after each."""
    sdk.projects.create("gated")
    lenient = {"min_score": 5, "max_size_bytes": 10**9, "auto_deploy": "auto"}
    r = admin.patch("/projects/gated", json={"gates": lenient})
    assert r.status_code == 200, r.text
    passing = train(sdk, "gated")
    strict = {**lenient, "min_score": 0.0001}
    assert admin.patch("/projects/gated", json={"gates": strict}).status_code == 200
    failing = train(sdk, "gated", seed=1)
    return {
        "lenient": lenient,
        "passing": passing,
        "failing": failing,
        "models": admin.get("/projects/gated/models").json(),
        "deployment": admin.get("/projects/gated/deployments/auto").json(),
    }


def test_project_gates_are_kept_and_checked(admin: httpx.Client, gated: dict) -> None:
    assert admin.get("/projects/gated").json()["gates"]["auto_deploy"] == "auto"
    r = admin.patch("/projects/gated", json={"gates": {"min_accuracy": 0.9}})
    problem = assert_problem(r, 422, field="gates")
    assert "min_accuracy" in problem["detail"]
    r = admin.patch("/projects/gated", json={"gates": {"min_score": "high"}})
    assert "gate min_score must be a number" in assert_problem(r, 422, field="gates")["detail"]
    # refused settings changed nothing
    assert admin.get("/projects/gated").json()["gates"]["min_score"] == 0.0001


def test_a_training_passing_the_gates_goes_to_the_auto_deploy_deployment(gated: dict) -> None:
    passing = gated["passing"]
    assert passing["deployed_to"] == "auto"
    assert {g["gate"]: g["passed"] for g in passing["gates"]} == {
        "min_score": True,
        "max_size_bytes": True,
    }
    assert passing["gates"][0]["message"].endswith("must be at most 5")


def test_a_training_failing_a_gate_stays_candidate_and_is_not_deployed(gated: dict) -> None:
    failing = gated["failing"]
    assert failing["model_version"] == gated["passing"]["model_version"] + 1
    assert failing["deployed_to"] is None
    verdicts = {g["gate"]: g for g in failing["gates"]}
    assert verdicts["min_score"]["passed"] is False
    assert "must be at most 0.0001" in verdicts["min_score"]["message"]
    assert verdicts["max_size_bytes"]["passed"] is True
    stages = {m["number"]: m["stage"] for m in gated["models"]}
    assert stages == {
        gated["passing"]["model_version"]: "production",
        failing["model_version"]: "candidate",
    }
    failed_model = next(m for m in gated["models"] if m["number"] == failing["model_version"])
    assert failed_model["gates"] == failing["gates"]
    # the deployment still serves the model that passed
    assert gated["deployment"]["model"] == gated["passing"]["model_version"]


def test_a_model_whose_artifact_was_changed_is_not_deployed(
    server: LiveServer, admin: httpx.Client, gated: dict
) -> None:
    """The model is loaded and verified before the switch: the deployment keeps serving."""
    number = gated["failing"]["model_version"]
    model = admin.get(f"/projects/gated/models/{number}").json()
    BlobStore(server.settings.resolved_storage_url).put(model["artifact"], b"not a model")
    r = admin.put("/projects/gated/deployments/auto", json={"model": number})
    problem = assert_problem(r, 500, code="integrity-error")
    assert "changed after it was written" in problem["detail"]
    assert (
        admin.get("/projects/gated/deployments/auto").json()["model"]
        == (gated["passing"]["model_version"])
    )
    assert admin.get(f"/projects/gated/models/{number}").json()["stage"] == "candidate"
    r = admin.post("/projects/gated/deployments/auto/predict", json=[SETOSA])
    assert r.status_code == 200, r.text


def test_a_training_deploy_name_is_checked_before_it_runs(admin: httpx.Client) -> None:
    r = admin.post(
        "/projects/shop/trainings", json={"dataset": "builtin:iris", "deploy": "Live Now"}
    )
    problem = assert_problem(r, 422)
    assert any(e["field"] == "body.deploy" for e in problem["errors"]), problem


# --- deploying by hand, stages, history, cards ---------------------------------------


@pytest.fixture(scope="module")
def switched(sdk: Client, admin: httpx.Client) -> dict[str, Any]:
    """Project "switch": two candidate trainings, v1 deployed by hand, then v2."""
    sdk.projects.create("switch")
    first, second = train(sdk, "switch"), train(sdk, "switch", seed=3)
    r = admin.put("/projects/switch/deployments/web", json={"model": 1})
    assert r.status_code == 201, r.text
    created = r.json()
    r = admin.put("/projects/switch/deployments/web", json={"model": 2, "reason": "v2 is better"})
    assert r.status_code == 200, r.text
    return {"first": first, "second": second, "created": created, "switched": r.json()}


def test_trainings_without_deploy_stay_candidates(switched: dict) -> None:
    for result in (switched["first"], switched["second"]):
        assert result["deployed_to"] is None
    assert (switched["first"]["model_version"], switched["second"]["model_version"]) == (1, 2)
    assert switched["created"]["model"] == 1


def test_switching_a_deployment_archives_the_previous_model_with_history(
    admin: httpx.Client, switched: dict
) -> None:
    assert switched["switched"]["model"] == 2
    assert switched["switched"]["id"] == switched["created"]["id"]
    stages = {m["number"]: m["stage"] for m in admin.get("/projects/switch/models").json()}
    assert stages == {1: "archived", 2: "production"}
    v1 = admin.get("/projects/switch/models/1/history").json()
    assert [(h["to_stage"], h["actor"], h["reason"]) for h in v1[1:]] == [
        ("production", "admin", "deployed to web"),
        ("archived", "admin", "replaced by v2"),
    ]
    v2 = admin.get("/projects/switch/models/2/history").json()
    assert (v2[-1]["to_stage"], v2[-1]["reason"]) == ("production", "v2 is better")
    r = admin.post("/projects/switch/deployments/web/predict", json=[SETOSA])
    assert r.json()["model_version"] == 2
    assert r.json()["predictions"][0]["model_version"] == 2


def test_the_model_card_has_the_scores_gates_and_history(
    admin: httpx.Client, served: dict, switched: dict, gated: dict
) -> None:
    r = admin.get("/projects/shop/models/1/card")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/markdown")
    card = r.text
    assert card.startswith("# shop model v1\n")
    assert "**Stage:** production" in card
    assert f"{served['score']:.4f} cross-validated" in card
    assert f"{served['test_score']:.4f} on the frozen test split" in card
    assert "iris@1" in card and served["id"] in card
    assert "| sepal length (cm) | numeric |" in card
    assert "candidate → production" in card and "passed the gates; deployed to live" in card

    archived = admin.get("/projects/switch/models/1/card").text
    assert "**Stage:** archived" in archived
    assert "production → archived | admin | replaced by v2 |" in archived

    failed = admin.get(f"/projects/gated/models/{gated['failing']['model_version']}/card").text
    assert "## Quality gates" in failed
    assert "| min_score | **failed** |" in failed
    assert "must be at most 0.0001" in failed


def test_stage_changes_by_hand_are_recorded(admin: httpx.Client, switched: dict) -> None:
    r = admin.post(
        "/projects/switch/models/1/stage", json={"stage": "staging", "reason": "one more look"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["stage"] == "staging"
    last = admin.get("/projects/switch/models/1/history").json()[-1]
    assert (last["from_stage"], last["to_stage"], last["actor"], last["reason"]) == (
        "archived",
        "staging",
        "admin",
        "one more look",
    )
    r = admin.post("/projects/switch/models/1/stage", json={"stage": "gone"})
    assert_problem(r, 422)
    staged = admin.get("/projects/switch/models", params={"stage": "staging"}).json()
    assert [m["number"] for m in staged] == [1]


def test_a_deployment_is_deleted_and_then_unknown(admin: httpx.Client, served: dict) -> None:
    r = admin.put("/projects/shop/deployments/temporary", json={"model": 1})
    assert r.status_code == 201, r.text
    r = admin.delete("/projects/shop/deployments/temporary")
    assert r.status_code == 204
    assert_problem(admin.get("/projects/shop/deployments/temporary"), 404, field="deployment")
    assert_problem(predict(admin, [SETOSA], name="temporary"), 404, field="deployment")
    # the model stays where it was
    assert admin.get("/projects/shop/models/1").json()["stage"] == "production"


def test_deploy_requests_are_checked(admin: httpx.Client, served: dict) -> None:
    url = "/projects/shop/deployments/other"
    for body, field in (
        ({"model": 1, "confidence_threshold": 1.5}, "body.confidence_threshold"),
        ({"model": 0}, "body.model"),
        ({"model": 1, "replicas": 2}, "body.replicas"),
    ):
        problem = assert_problem(admin.put(url, json=body), 422)
        assert any(e["field"] == field for e in problem["errors"]), problem
    r = admin.put("/projects/shop/deployments/Bad_Name", json={"model": 1})
    assert "not a valid name" in assert_problem(r, 422)["detail"]
    names = {d["name"] for d in admin.get("/projects/shop/deployments").json()}
    assert not names & {"other", "Bad_Name"}  # refused requests made nothing


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("GET", "/projects/shop/deployments/ghost", "deployment"),
        ("DELETE", "/projects/shop/deployments/ghost", "deployment"),
        ("POST", "/projects/shop/deployments/ghost/predict", "deployment"),
        ("POST", "/projects/shop/deployments/ghost/invocations", "deployment"),
        ("PUT", "/projects/shop/deployments/ghost", "model"),
        ("GET", "/projects/shop/models/99", "model"),
        ("GET", "/projects/shop/models/99/history", "model"),
        ("GET", "/projects/shop/models/99/card", "model"),
        ("POST", "/projects/shop/models/99/stage", "model"),
        ("GET", "/projects/nowhere/models", "project"),
        ("GET", "/projects/nowhere/deployments", "project"),
    ],
)
def test_unknown_models_and_deployments_are_404(
    admin: httpx.Client, served: dict, method: str, path: str, field: str
) -> None:
    body = {
        "PUT": {"json": {"model": 99}},
        "POST": {"json": {"stage": "staging"} if path.endswith("/stage") else [SETOSA]},
    }.get(method, {})
    r = admin.request(method, path, **body)
    assert_problem(r, 404, field=field, code="not-found")


def test_the_sdk_reads_and_deploys(sdk: Client, served: dict, tmp_path: Path) -> None:
    (model,) = sdk.models.list("shop", stage="production")
    assert model.number == 1
    assert [h.reason for h in sdk.models.history("shop", 1)][-1].startswith("passed the gates")
    assert sdk.models.card("shop", 1).startswith("# shop model v1")
    made = sdk.deployments.deploy("shop", "sdk-made", 1, fallback_label="dunno")
    assert (made.model, made.fallback_label) == (1, "dunno")
    assert "sdk-made" in [d.name for d in sdk.deployments.list("shop")]
    answer = sdk.deployments.predict("shop", "sdk-made", [SETOSA])
    assert answer["predictions"][0]["label"] == "setosa"
    answer = sdk.deployments.predict_csv("shop", "sdk-made", as_csv([VIRGINICA]))
    assert answer["predictions"][0]["label"] == "virginica"
    with pytest.raises(InvalidInput) as err:  # the server names the record
        sdk.deployments.predict("shop", "sdk-made", [SETOSA, 5])  # type: ignore[list-item]
    assert err.value.field == "records[1]"
    sdk.deployments.delete("shop", "sdk-made")
    with pytest.raises(NotFound):
        sdk.deployments.get("shop", "sdk-made")


def test_openapi_lists_predict_with_its_request_body(server: LiveServer) -> None:
    document = httpx.get(server.url + "/openapi.json").json()
    for route in ("predict", "invocations"):
        operation = document["paths"][f"/api/v1/projects/{{project}}/deployments/{{name}}/{route}"]
        body = operation["post"]["requestBody"]
        assert body["required"] is True
        assert set(body["content"]) == {"application/json", "text/csv"}
        shapes = body["content"]["application/json"]["schema"]["oneOf"]
        assert {"type": "array", "items": {"type": "object"}} in shapes
        assert any("records" in s.get("properties", {}) for s in shapes)
        assert any("instances" in s.get("properties", {}) for s in shapes)
        assert "200" in operation["post"]["responses"]
    models = document["paths"]["/api/v1/projects/{project}/models/{number}/card"]["get"]
    assert "text/markdown" in models["responses"]["200"]["content"]


# --- capture and feedback --------------------------------------------------------------


def test_predictions_are_captured_and_take_feedback(admin: httpx.Client, served: dict) -> None:
    import time

    said = predict(admin, [SETOSA, VIRGINICA]).json()["predictions"]
    ids = {p["prediction_id"] for p in said}
    deadline = time.monotonic() + 20
    found: dict[str, dict] = {}
    while time.monotonic() < deadline and not ids <= set(found):
        r = admin.get("/projects/shop/deployments/live/captures", params={"limit": 100_000})
        assert r.status_code == 200, r.text
        found = {c["eventMetadata"]["eventId"]: c for c in r.json()}
        time.sleep(0.2)
    assert ids <= set(found), "captured predictions appear within the flush interval"
    first = found[said[0]["prediction_id"]]
    assert json.loads(first["captureData"]["endpointInput"]["data"]) == SETOSA
    assert json.loads(first["captureData"]["endpointOutput"]["data"])["label"] == said[0]["label"]
    assert first["loopml"]["model_version"] == said[0]["model_version"]

    r = admin.post(
        f"/projects/shop/deployments/live/predictions/{said[0]['prediction_id']}/feedback",
        json={"label": "setosa"},
    )
    assert r.status_code == 200, r.text
    told = admin.get("/projects/shop/deployments/live/feedback").json()
    assert {(f["prediction_id"], f["label"]) for f in told} >= {
        (said[0]["prediction_id"], "setosa")
    }
    assert_problem(
        admin.post(
            "/projects/shop/deployments/nowhere/predictions/x/feedback", json={"label": "a"}
        ),
        404,
    )


def test_a_deployment_capturing_nothing_writes_no_captures(
    admin: httpx.Client, served: dict
) -> None:
    import time

    r = admin.put("/projects/shop/deployments/quiet", json={"model": 1, "capture_percent": 0})
    assert r.status_code == 201 and r.json()["capture_percent"] == 0
    assert predict(admin, [SETOSA], name="quiet").status_code == 200
    time.sleep(1.5)  # past the flush interval
    assert admin.get("/projects/shop/deployments/quiet/captures").json() == []
    bad = admin.put("/projects/shop/deployments/quiet", json={"model": 1, "capture_percent": 101})
    assert_problem(bad, 422, field="body.capture_percent")
