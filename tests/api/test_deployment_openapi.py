"""A deployment's own OpenAPI document, on a live server with its worker: a valid
OpenAPI 3.1 document whose Record schema names the served model's input columns with
their types and whose Prediction schema names its classes (and the fallback label
when the deployment abstains), following the model the deployment serves."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator

from loopml.data.builtin import load_builtin
from loopml.sdk import Client
from tests.api.support import assert_problem, client
from tests.conftest import LiveServer

FAST = {"time_budget": 2, "max_trials": 2, "seed": 0}
PENGUINS = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm"]
PENGUINS += ["body_mass_g", "sex", "year"]
SPECIES = ["Adelie", "Chinstrap", "Gentoo"]
IRIS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
NUMBER = ["number", "null"]


@pytest.fixture(scope="module")
def sdk(server: LiveServer) -> Iterator[Client]:
    with Client(server.url, server.admin_key) as c:
        yield c


def train(sdk: Client, project: str, dataset: str, **options: Any) -> int:
    """The model version a finished training registered (it must succeed)."""
    job = sdk.trainings.start(project, dataset, **{**FAST, **options})
    done = sdk.trainings.wait(project, job.id, timeout=120)
    assert done.state.value == "succeeded", done.error
    assert done.result is not None
    return int(done.result["model_version"])


@pytest.fixture(scope="module")
def models(sdk: Client) -> dict[str, int]:
    """Project "shop": penguins (numeric and categorical columns) deployed as "live",
    and an iris model that is not deployed."""
    sdk.projects.create("shop")
    penguins = train(sdk, "shop", "builtin:penguins", deploy="live")
    iris = train(sdk, "shop", "builtin:iris")
    return {"penguins": penguins, "iris": iris}


def document(http: httpx.Client, name: str = "live", project: str = "shop") -> dict[str, Any]:
    r = http.get(f"/projects/{project}/deployments/{name}/openapi.json")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    return dict(r.json())


def schemas(doc: dict[str, Any]) -> dict[str, Any]:
    return dict(doc["components"]["schemas"])


def penguin_rows(n: int | None = None) -> list[dict[str, Any]]:
    """Penguins as a client would send them: no target, missing values as null."""
    frame, _ = load_builtin("builtin:penguins")
    rows = frame[PENGUINS].to_dict(orient="records")
    clean = [
        {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
        for row in rows
    ]
    return clean[:n] if n is not None else clean


# --- a valid document ------------------------------------------------------------------


def test_the_document_is_valid_openapi_3_1(
    server: LiveServer, admin: httpx.Client, models: dict[str, int]
) -> None:
    doc = document(admin)
    OpenAPIV31SpecValidator(doc).validate()  # raises naming what is wrong
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["title"] == "shop/live"
    assert doc["info"]["version"] == f"v{models['penguins']}"
    assert doc["servers"] == [{"url": server.url}]
    base = "/api/v1/projects/shop/deployments/live"
    assert set(doc["paths"]) == {f"{base}/predict", f"{base}/invocations"}
    ids = {doc["paths"][p]["post"]["operationId"] for p in doc["paths"]}
    assert ids == {"predict", "invocations"}
    body = doc["paths"][f"{base}/predict"]["post"]["requestBody"]
    assert set(body["content"]) == {"application/json", "text/csv"}
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_the_record_schema_is_json_schema_that_real_rows_meet(
    admin: httpx.Client, models: dict[str, int]
) -> None:
    record = schemas(document(admin))["Record"]
    jsonschema.Draft202012Validator.check_schema(record)
    check = jsonschema.Draft202012Validator(record)
    rows = penguin_rows()
    assert any(r["sex"] is None for r in rows)  # missing values are in the sample
    for row in rows:
        check.validate(row)
    check.validate({})  # every column is optional: absent is missing
    check.validate({**rows[0], "customer_id": "c-17"})  # other keys are ignored

    errors = list(check.iter_errors({**rows[0], "bill_length_mm": "long"}))
    assert [list(e.path) for e in errors] == [["bill_length_mm"]]
    assert not check.is_valid({**rows[0], "body_mass_g": [3750]})
    assert not check.is_valid([rows[0]])  # a record is an object

    # and rows that meet it are answered by the deployment
    r = admin.post("/projects/shop/deployments/live/predict", json=rows[:20])
    assert r.status_code == 200, r.text


def test_real_answers_meet_the_prediction_schema(
    admin: httpx.Client, models: dict[str, int]
) -> None:
    found = schemas(document(admin))
    answers = admin.post("/projects/shop/deployments/live/predict", json=penguin_rows(30))
    assert answers.status_code == 200, answers.text
    body = answers.json()
    registry = {"components": {"schemas": found}}
    for prediction in body["predictions"]:
        jsonschema.validate(prediction, found["Prediction"])
    wrapper = {**found["Predictions"], "components": registry["components"]}
    jsonschema.validate(body, wrapper)
    assert not jsonschema.Draft202012Validator(found["Prediction"]).is_valid(
        {**body["predictions"][0], "label": "Emperor"}
    )


# --- what the document names -----------------------------------------------------------


def test_it_names_every_input_column_with_its_type_and_every_class(
    admin: httpx.Client, models: dict[str, int]
) -> None:
    model = admin.get(f"/projects/shop/models/{models['penguins']}").json()
    found = schemas(document(admin))
    properties = found["Record"]["properties"]
    kinds = {c["name"]: c["kind"] for c in model["inputs"]}
    assert set(properties) == {n for n, k in kinds.items() if k != "ignored"}
    assert set(PENGUINS) - {"year"} <= set(properties)
    for name, kind in kinds.items():
        if kind == "numeric":
            assert properties[name]["type"] == NUMBER, name
        elif kind == "categorical":
            assert "string" in properties[name]["type"], name
            assert "null" in properties[name]["type"], name
    assert kinds["bill_length_mm"] == "numeric" and kinds["island"] == "categorical"

    prediction = found["Prediction"]["properties"]
    assert model["classes"] == SPECIES
    assert prediction["label"]["enum"] == SPECIES
    assert set(prediction["probabilities"]["properties"]) == set(SPECIES)
    assert prediction["probabilities"]["required"] == SPECIES
    assert "unknown" not in prediction["label"]["enum"]  # no threshold: never abstains


def test_the_fallback_label_is_a_label_only_with_a_threshold(
    admin: httpx.Client, models: dict[str, int]
) -> None:
    url = "/projects/shop/deployments/careful"
    v = models["penguins"]
    rows = penguin_rows()[::5]
    said = admin.post("/projects/shop/deployments/live/predict", json=rows).json()
    confidences = sorted(p["confidence"] for p in said["predictions"])
    limit = min(round(confidences[len(confidences) // 2], 6), 0.999999)
    body = {"model": v, "confidence_threshold": limit, "fallback_label": "ask a biologist"}
    assert admin.put(url, json=body).status_code in (200, 201)
    careful = schemas(document(admin, "careful"))["Prediction"]
    assert careful["properties"]["label"]["enum"] == [*SPECIES, "ask a biologist"]
    assert "'ask a biologist'" in careful["properties"]["abstained"]["description"]
    OpenAPIV31SpecValidator(document(admin, "careful")).validate()

    # its abstaining answers meet the schema
    said = admin.post(f"{url}/predict", json=rows).json()["predictions"]
    assert any(p["abstained"] for p in said) or confidences[0] >= limit
    for p in said:
        jsonschema.validate(p, careful)

    # the threshold cleared: the fallback is no label any more
    r = admin.put(url, json={"model": v, "confidence_threshold": None})
    assert r.status_code == 200, r.text
    plain = schemas(document(admin, "careful"))["Prediction"]
    assert plain["properties"]["label"]["enum"] == SPECIES


def test_the_document_follows_the_model_the_deployment_serves(
    admin: httpx.Client, models: dict[str, int]
) -> None:
    url = "/projects/shop/deployments/swap"
    assert admin.put(url, json={"model": models["penguins"]}).status_code in (200, 201)
    before = document(admin, "swap")
    r = admin.put(url, json={"model": models["iris"]})
    assert r.status_code == 200, r.text
    after = document(admin, "swap")
    OpenAPIV31SpecValidator(after).validate()
    assert after != before
    assert after["info"]["version"] == f"v{models['iris']}"
    assert f"v{models['iris']}" in after["info"]["description"]
    record = schemas(after)["Record"]["properties"]
    assert set(record) == set(IRIS)
    assert all(p["type"] == NUMBER for p in record.values())
    assert not set(record) & set(PENGUINS)
    label = schemas(after)["Prediction"]["properties"]["label"]
    assert label["enum"] == ["setosa", "versicolor", "virginica"]
    # "live" still serves penguins
    assert set(schemas(document(admin))["Record"]["properties"]) >= {"island", "sex"}


# --- who may read it -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("project", "name", "field"),
    [("shop", "ghost", "deployment"), ("nowhere", "live", "project")],
)
def test_an_unknown_deployment_is_404(
    admin: httpx.Client, models: dict[str, int], project: str, name: str, field: str
) -> None:
    r = admin.get(f"/projects/{project}/deployments/{name}/openapi.json")
    assert_problem(r, 404, field=field, code="not-found")


def test_a_viewer_reads_it_others_do_not(
    server: LiveServer, admin: httpx.Client, models: dict[str, int]
) -> None:
    made = admin.post("/keys", json={"name": "reader", "roles": {"shop": "viewer"}})
    assert made.status_code == 201, made.text
    stranger = admin.post("/keys", json={"name": "stranger"})
    assert stranger.status_code == 201, stranger.text
    with client(server, made.json()["secret"]) as viewer:
        assert document(viewer) == document(admin)
    with client(server, stranger.json()["secret"]) as other:
        r = other.get("/projects/shop/deployments/live/openapi.json")
        assert_problem(r, 403, field="Authorization")
    with client(server) as anonymous:
        assert_problem(anonymous.get("/projects/shop/deployments/live/openapi.json"), 401)


def test_the_sdk_reads_it(sdk: Client, admin: httpx.Client, models: dict[str, int]) -> None:
    assert sdk.deployments.openapi("shop", "live") == document(admin)
