"""Batch predictions over HTTP, on a live server with its worker: a dataset version's
part or a source predicted as a ``serving.batch_predict`` job, written as Parquet and
downloaded as Parquet or CSV; who may start, list and download them."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from loopml.core.schemas import Job
from loopml.data import load
from loopml.data.builtin import load_builtin
from loopml.sdk import Client
from loopml.store.blobs import BlobStore
from tests.api.support import assert_problem, client, serve
from tests.conftest import LiveServer

FAST = {"time_budget": 2, "max_trials": 2, "seed": 0}
FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
CLASSES = ["setosa", "versicolor", "virginica"]
LIVE = "/projects/shop/deployments/live"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # one job at a time: a batch queued behind another job stays queued
    with serve(tmp_path_factory, worker_concurrency=1) as live:
        yield live


@pytest.fixture(scope="module")
def sdk(server: LiveServer) -> Iterator[Client]:
    with Client(server.url, server.admin_key) as c:
        yield c


def train(sdk: Client, project: str, dataset: str, **options: Any) -> int:
    job = sdk.trainings.start(project, dataset, **{**FAST, **options})
    done = sdk.trainings.wait(project, job.id, timeout=120)
    assert done.state.value == "succeeded", done.error
    assert done.result is not None
    return int(done.result["model_version"])


@pytest.fixture(scope="module")
def served(sdk: Client) -> dict[str, int]:
    """Project "shop": iris with a frozen test split, its model deployed as "live", and
    a diabetes regression deployed as "progress"."""
    sdk.projects.create("shop")
    job = sdk.datasets.ingest(
        "shop", "iris", "builtin:iris", split={"method": "random", "test_size": 0.3}
    )
    assert sdk.jobs.wait("shop", job.id, timeout=60).state.value == "succeeded"
    iris = train(sdk, "shop", "iris", deploy="live")
    diabetes = train(sdk, "shop", "builtin:diabetes", deploy="progress")
    return {"iris": iris, "diabetes": diabetes}


def start(http: httpx.Client, body: dict[str, Any], name: str = "live") -> Job:
    r = http.post(f"/projects/shop/deployments/{name}/batch-predictions", json=body)
    assert r.status_code == 202, r.text
    job = Job.model_validate(r.json())
    assert job.kind == "serving.batch_predict"
    return job


def finish(sdk: Client, job: Job) -> Job:
    return sdk.jobs.wait("shop", job.id, timeout=120)


def run(sdk: Client, admin: httpx.Client, body: dict[str, Any], name: str = "live") -> Job:
    """A batch that must succeed."""
    done = finish(sdk, start(admin, body, name))
    assert done.state.value == "succeeded", done.error
    assert done.result is not None
    return done


def output(http: httpx.Client, job_id: str, name: str = "live", fmt: str = "parquet") -> Any:
    url = f"/projects/shop/deployments/{name}/batch-predictions/{job_id}/output"
    r = http.get(url, params={"format": fmt})
    assert r.status_code == 200, r.text
    if fmt == "csv":
        assert r.headers["content-type"].startswith("text/csv")
        return pd.read_csv(io.BytesIO(r.content))
    assert f'filename="{name}-{job_id}.parquet"' in r.headers["content-disposition"]
    return pd.read_parquet(io.BytesIO(r.content))


def predict(http: httpx.Client, rows: list[dict[str, Any]], name: str = "live") -> list[dict]:
    r = http.post(f"/projects/shop/deployments/{name}/predict", json=rows)
    assert r.status_code == 200, r.text
    return list(r.json()["predictions"])


def iris_rows() -> list[dict[str, Any]]:
    frame, _ = load_builtin("builtin:iris")
    return frame[FEATURES].to_dict(orient="records")


# --- a dataset version ---------------------------------------------------------------


@pytest.fixture(scope="module")
def test_part(sdk: Client, admin: httpx.Client, served: dict[str, int]) -> dict[str, Any]:
    """The test part of iris@1 predicted by "live", downloaded both ways."""
    job = run(sdk, admin, {"dataset": "iris@1", "part": "test"})
    return {
        "job": job,
        "parquet": output(admin, job.id),
        "csv": output(admin, job.id, fmt="csv"),
    }


def test_a_dataset_part_gives_one_row_per_test_row_at_its_place(
    server: LiveServer, sdk: Client, test_part: dict[str, Any]
) -> None:
    version = sdk.datasets.version("shop", "iris", 1)
    mask = load.test_mask(BlobStore(server.settings.resolved_storage_url), version)
    frame: pd.DataFrame = test_part["parquet"]
    job: Job = test_part["job"]
    assert 0 < mask.sum() < len(mask)
    assert len(frame) == int(mask.sum()) == job.result["rows"]  # type: ignore[index]
    assert frame["row"].tolist() == np.flatnonzero(mask).tolist()
    assert job.result == {
        **job.result,  # type: ignore[dict-item]
        "deployment": "live",
        "model_version": 1,
        "input": "iris@1",
        "abstained": 0,
    }
    columns = ["row", "label", "confidence", "abstained"]
    columns += [f"probability_{c}" for c in CLASSES]
    assert list(frame.columns[: len(columns)]) == columns
    assert {f"input_{f}" for f in FEATURES} <= set(frame.columns)

    # the inputs are the version's rows at those places
    everything = pd.read_parquet(io.BytesIO(sdk.datasets.rows("shop", "iris", 1, format="parquet")))
    at = everything.iloc[frame["row"]].reset_index(drop=True)
    for f in FEATURES:
        assert frame[f"input_{f}"].tolist() == pytest.approx(at[f].tolist())


def test_batch_labels_are_what_predict_answers(
    admin: httpx.Client, test_part: dict[str, Any]
) -> None:
    frame: pd.DataFrame = test_part["parquet"]
    rows = [{f: row[f"input_{f}"] for f in FEATURES} for _, row in frame.iterrows()]
    said = predict(admin, rows)
    assert frame["label"].tolist() == [p["label"] for p in said]
    assert frame["confidence"].tolist() == pytest.approx([p["confidence"] for p in said])
    for c in CLASSES:
        want = [p["probabilities"][c] for p in said]
        assert frame[f"probability_{c}"].tolist() == pytest.approx(want)
    assert not frame["abstained"].any()


def test_parquet_and_csv_downloads_agree(test_part: dict[str, Any]) -> None:
    parquet: pd.DataFrame = test_part["parquet"]
    csv: pd.DataFrame = test_part["csv"]
    assert list(csv.columns) == list(parquet.columns)
    assert len(csv) == len(parquet)
    for column in parquet.columns:
        if parquet[column].dtype.kind == "f":
            assert csv[column].tolist() == pytest.approx(parquet[column].tolist()), column
        else:
            got = csv[column].astype(str).str.lower().tolist()
            assert got == parquet[column].astype(str).str.lower().tolist(), column


def test_the_list_holds_this_deployments_batches(
    sdk: Client, admin: httpx.Client, test_part: dict[str, Any]
) -> None:
    other = run(sdk, admin, {"source": "builtin:diabetes"}, name="progress")
    listed = admin.get(f"{LIVE}/batch-predictions").json()
    ids = [j["id"] for j in listed]
    assert test_part["job"].id in ids and other.id not in ids
    assert all(j["params"]["deployment"] == "live" for j in listed)
    # the newest batch of the project is another deployment's: a limit still finds this one's
    (newest,) = admin.get(f"{LIVE}/batch-predictions", params={"limit": 1}).json()
    assert newest["id"] == ids[0]
    assert [j.id for j in sdk.deployments.batch_predictions("shop", "progress")][:1] == [other.id]
    assert_problem(admin.get("/projects/shop/deployments/ghost/batch-predictions"), 404)


# --- sources ---------------------------------------------------------------------------


def test_a_builtin_source_and_a_server_file(
    sdk: Client, admin: httpx.Client, served: dict[str, int], tmp_path: Path
) -> None:
    job = run(sdk, admin, {"source": "builtin:iris", "include_inputs": False})
    frame = output(admin, job.id)
    assert frame["row"].tolist() == list(range(150))
    assert not [c for c in frame.columns if c.startswith("input_")]
    assert job.result is not None and job.result["input"] == "builtin:iris"
    truth, _ = load_builtin("builtin:iris")
    assert (frame["label"] == truth["target"]).mean() > 0.9

    rows = iris_rows()[::15]
    path = tmp_path / "rows.csv"
    pd.DataFrame(rows).assign(customer=range(len(rows))).to_csv(path, index=False)
    job = run(sdk, admin, {"source": str(path)})
    frame = output(admin, job.id)
    assert frame["row"].tolist() == list(range(len(rows)))
    assert frame["label"].tolist() == [p["label"] for p in predict(admin, rows)]
    assert frame["input_customer"].tolist() == list(range(len(rows)))
    assert job.result is not None and job.result["ignored_columns"] == ["customer"]


def test_a_non_number_in_a_numeric_column_fails_the_job_naming_row_and_column(
    sdk: Client, admin: httpx.Client, served: dict[str, int], tmp_path: Path
) -> None:
    rows = iris_rows()[:4]
    rows[2] = {**rows[2], "petal width (cm)": "wide"}
    path = tmp_path / "bad.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    failed = finish(sdk, start(admin, {"source": str(path)}))
    assert failed.state.value == "failed"
    assert failed.error is not None
    assert "row 2: 'petal width (cm)' must be a number, got 'wide'" in failed.error
    url = f"{LIVE}/batch-predictions/{failed.id}/output"
    assert "failed" in assert_problem(admin.get(url), 409, field="job_id")["detail"]


def test_a_regression_deployment_writes_values(
    sdk: Client, admin: httpx.Client, served: dict[str, int]
) -> None:
    job = run(sdk, admin, {"source": "builtin:diabetes"}, name="progress")
    frame = output(admin, job.id, name="progress")
    assert len(frame) == 442
    assert "value" in frame.columns and "label" not in frame.columns
    assert not [c for c in frame.columns if c.startswith("probability_")]
    truth, _ = load_builtin("builtin:diabetes")
    rows = truth.drop(columns="target").head(5).to_dict(orient="records")
    said = predict(admin, rows, name="progress")
    assert frame["value"].head(5).tolist() == pytest.approx([p["value"] for p in said])


def test_an_abstaining_deployment_writes_its_fallback_and_counts_it(
    sdk: Client, admin: httpx.Client, served: dict[str, int]
) -> None:
    plain = predict(admin, iris_rows())
    confidences = sorted(p["confidence"] for p in plain)
    limit = round(confidences[len(confidences) // 2], 6)
    body = {"model": served["iris"], "confidence_threshold": limit, "fallback_label": "ask"}
    assert admin.put("/projects/shop/deployments/careful", json=body).status_code == 201
    job = run(sdk, admin, {"source": "builtin:iris"}, name="careful")
    frame = output(admin, job.id, name="careful")
    expected = [p["confidence"] < limit for p in plain]
    assert frame["abstained"].tolist() == expected
    assert job.result is not None and job.result["abstained"] == sum(expected)
    assert 0 < sum(expected) < 150
    labels = ["ask" if a else p["label"] for a, p in zip(expected, plain, strict=True)]
    assert frame["label"].tolist() == labels


# --- refused requests ---------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"dataset": "iris", "source": "builtin:iris"},
        {"part": "test"},
        {"dataset": "iris", "part": "middle"},
        {"dataset": "iris", "limit": 3},
        {"source": "builtin:iris", "part": "test"},
    ],
    ids=["neither", "both", "part-only", "bad-part", "unknown-field", "part-of-a-source"],
)
def test_bad_requests_are_422(admin: httpx.Client, served: dict[str, int], body: dict) -> None:
    before = len(admin.get(f"{LIVE}/batch-predictions").json())
    assert_problem(admin.post(f"{LIVE}/batch-predictions", json=body), 422)
    assert len(admin.get(f"{LIVE}/batch-predictions").json()) == before  # nothing queued


def test_an_unknown_deployment_or_dataset(
    sdk: Client, admin: httpx.Client, served: dict[str, int]
) -> None:
    r = admin.post("/projects/shop/deployments/ghost/batch-predictions", json={"dataset": "iris"})
    assert_problem(r, 404, field="deployment")
    failed = finish(sdk, start(admin, {"dataset": "nothing"}))
    assert failed.state.value == "failed"
    assert failed.error is not None and "nothing" in failed.error


def test_outputs_of_unfinished_other_and_unknown_jobs(
    sdk: Client, admin: httpx.Client, served: dict[str, int], test_part: dict[str, Any]
) -> None:
    # one job at a time: a batch behind a slow selfcheck waits in the queue
    r = admin.post("/projects/shop/jobs", json={"kind": "selfcheck", "params": {"pause": 0.5}})
    assert r.status_code == 202, r.text
    queued = start(admin, {"source": "builtin:iris"})
    url = f"{LIVE}/batch-predictions/{queued.id}/output"
    problem = assert_problem(admin.get(url), 409, field="job_id", code="conflict")
    assert "queued" in problem["detail"] or "running" in problem["detail"]
    assert finish(sdk, queued).state.value == "succeeded"

    mine = test_part["job"].id
    r = admin.get(f"/projects/shop/deployments/progress/batch-predictions/{mine}/output")
    assert_problem(r, 404, field="name")
    assert_problem(admin.get(f"{LIVE}/batch-predictions/nope/output"), 404, field="job_id")
    training = admin.get("/projects/shop/trainings").json()[0]["id"]
    assert_problem(admin.get(f"{LIVE}/batch-predictions/{training}/output"), 404)
    r = admin.get(f"{LIVE}/batch-predictions/{mine}/output", params={"format": "xlsx"})
    assert_problem(r, 422)


# --- roles ---------------------------------------------------------------------------


def test_a_viewer_lists_and_downloads_but_does_not_start(
    server: LiveServer, admin: httpx.Client, test_part: dict[str, Any], tmp_path: Path
) -> None:
    keys = {}
    for role in ("viewer", "maintainer"):
        r = admin.post("/keys", json={"name": f"batch-{role}", "roles": {"shop": role}})
        assert r.status_code == 201, r.text
        keys[role] = r.json()["secret"]
    mine = test_part["job"].id
    with client(server, keys["viewer"]) as viewer:
        r = viewer.post(f"{LIVE}/batch-predictions", json={"dataset": "iris"})
        assert_problem(r, 403, field="Authorization")
        assert mine in [j["id"] for j in viewer.get(f"{LIVE}/batch-predictions").json()]
        assert output(viewer, mine).equals(test_part["parquet"])
    path = tmp_path / "rows.csv"
    pd.DataFrame(iris_rows()).to_csv(path, index=False)
    with client(server, keys["maintainer"]) as maintainer:
        started = start(maintainer, {"dataset": "iris", "part": "train"})
        # only admins have the server read its own files
        r = maintainer.post(f"{LIVE}/batch-predictions", json={"source": str(path)})
        assert_problem(r, 403, field="source")
    deadline = time.monotonic() + 60
    while admin.get(f"/projects/shop/jobs/{started.id}").json()["state"] != "succeeded":
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_the_sdk_starts_lists_and_downloads(
    sdk: Client, admin: httpx.Client, test_part: dict[str, Any]
) -> None:
    job = sdk.deployments.batch_predict("shop", "live", dataset="iris", part="test")
    done = sdk.jobs.wait("shop", job.id, timeout=120)
    assert done.state.value == "succeeded", done.error
    assert job.id in [j.id for j in sdk.deployments.batch_predictions("shop", "live")]
    frame = pd.read_parquet(io.BytesIO(sdk.deployments.batch_output("shop", "live", job.id)))
    assert frame["label"].tolist() == test_part["parquet"]["label"].tolist()
    text = sdk.deployments.batch_output("shop", "live", job.id, "csv").decode()
    assert text.splitlines()[0].startswith('"row","label"')
