"""Monitoring runs over HTTP, on a live server with its worker: a trained model's
reference profile, predictions captured, a run over the window finding the drift that
was sent (and none when the traffic looks like the training data), the report as JSON
and HTML, and the errors a user can make."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from loopml.core.schemas import Job
from loopml.data.builtin import load_builtin
from loopml.sdk import Client
from tests.api.support import assert_problem, client, serve
from tests.conftest import LiveServer

FAST = {"time_budget": 2, "max_trials": 2, "seed": 0}
RUNS = "/projects/shop/deployments/{}/monitoring/runs"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve(tmp_path_factory) as live:
        yield live


@pytest.fixture(scope="module")
def sdk(server: LiveServer) -> Iterator[Client]:
    with Client(server.url, server.admin_key) as c:
        yield c


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> Iterator[httpx.Client]:
    with client(server, server.admin_key) as c:
        yield c


@pytest.fixture(scope="module")
def served(sdk: Client, admin: httpx.Client) -> dict[str, Any]:
    """Iris trained and deployed twice: "steady" gets rows like the training rows,
    "shifted" gets the same rows with petal length moved by 3 cm."""
    sdk.projects.create("shop")
    job = sdk.trainings.start("shop", "builtin:iris", **FAST)
    done = sdk.trainings.wait("shop", job.id, timeout=120)
    assert done.state.value == "succeeded", done.error
    version = int(done.result["model_version"])
    frame, _ = load_builtin("builtin:iris")
    rows = frame.drop(columns=["target"]).to_dict(orient="records")
    for name in ("steady", "shifted"):
        r = admin.put(f"/projects/shop/deployments/{name}", json={"model": version})
        assert r.status_code == 201, r.text
    shifted = [{**row, "petal length (cm)": row["petal length (cm)"] + 3.0} for row in rows]
    answers = {}
    for name, sent in (("steady", rows), ("shifted", shifted)):
        r = admin.post(f"/projects/shop/deployments/{name}/predict", json={"records": sent})
        assert r.status_code == 200, r.text
        answers[name] = r.json()["predictions"]
    # People label the first 40 steady predictions; ten of the labels say the model erred.
    truth = [str(v) for v in frame["target"].head(40)]
    for i, answer in enumerate(answers["steady"][:40]):
        label = truth[i] if i >= 10 else f"not-{answer['label']}"
        r = admin.post(
            f"/projects/shop/deployments/steady/predictions/{answer['prediction_id']}/feedback",
            json={"label": label},
        )
        assert r.status_code == 200, r.text
        truth[i] = label
    time.sleep(2.5)  # the capture writer flushes every second
    return {"version": version, "rows": len(rows), "answers": answers, "truth": truth}


def run(sdk: Client, admin: httpx.Client, name: str, body: dict[str, Any]) -> tuple[Job, Any]:
    r = admin.post(RUNS.format(name), json=body)
    assert r.status_code == 202, r.text
    job = sdk.jobs.wait("shop", r.json()["id"], timeout=120)
    assert job.state.value == "succeeded", job.error
    report = admin.get(f"{RUNS.format(name)}/{job.id}/report")
    assert report.status_code == 200, report.text
    return job, report.json()


def test_training_stores_a_reference_profile(admin: httpx.Client, served: dict[str, Any]) -> None:
    model = admin.get(f"/projects/shop/models/{served['version']}").json()
    assert model["reference_profile"]
    # The drift report of steady traffic compares with the training rows, not nothing.
    assert model["reference_profile"].endswith("reference_profile.json")


def test_shifted_traffic_drifts_in_the_shifted_column_only(
    sdk: Client, admin: httpx.Client, served: dict[str, Any]
) -> None:
    job, report = run(sdk, admin, "shifted", {"window": "1h"})
    assert job.result["drifted_columns"] == ["petal length (cm)"]
    assert report["service"]["requests"] == served["rows"]
    drifted = [c for c in report["drift"]["columns"] if c["drifted"]]
    assert [c["column"] for c in drifted] == ["petal length (cm)"]
    assert "`petal length (cm)` drifted" in drifted[0]["message"]
    # The model now sees long petals everywhere: its answers drift too.
    outputs = {c["column"]: c for c in report["drift"]["outputs"]}
    assert outputs["prediction"]["drifted"]
    assert report["over_time"] and report["over_time"][0]["requests"] == served["rows"]


def test_steady_traffic_does_not_drift(
    sdk: Client, admin: httpx.Client, served: dict[str, Any]
) -> None:
    job, report = run(sdk, admin, "steady", {"window": "1h"})
    assert job.result["dataset_drifted"] is False
    assert job.result["drifted_columns"] == []
    assert report["service"]["requests"] == served["rows"]
    latency = report["service"]["latency_ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"]
    assert report["quality"] == []
    assert job.result["alerts"]["firing"] == 1  # only the quality drop the labels show


def test_feedback_labels_measure_the_model_and_confidences_estimate_it(
    sdk: Client, admin: httpx.Client, served: dict[str, Any]
) -> None:
    _, report = run(sdk, admin, "steady", {"window": "1h"})
    quality = report["performance"]
    answers = served["answers"]["steady"]
    right = [str(a["label"]) == t for a, t in zip(answers[:40], served["truth"], strict=True)]
    assert quality["labelled"] == 40 and quality["enough_labels"]
    assert quality["metrics"]["accuracy"]["value"] == pytest.approx(np.mean(right))
    accuracy = quality["metrics"]["accuracy"]
    assert accuracy["ci_low"] < accuracy["value"] < accuracy["ci_high"]
    assert 0 < quality["expected"]["accuracy"] <= 1  # out-of-fold, at training
    # Without labels: the mean confidence the model answered with.
    mean_confidence = np.mean([a["confidence"] for a in answers])
    assert quality["estimated_accuracy"] == pytest.approx(mean_confidence, abs=0.01)
    assert any("model quality: accuracy" in line for line in report["summary"])
    # Ten of forty labels contradict the model: a quality drop worth an alert.
    alerts = admin.get("/projects/shop/alerts", params={"deployment": "steady"}).json()
    assert "quality-drop" in {a["rule"] for a in alerts}


def test_html_report_is_a_page_with_plots(
    sdk: Client, admin: httpx.Client, served: dict[str, Any]
) -> None:
    job, _ = run(sdk, admin, "shifted", {"window": "2h"})
    page = admin.get(f"{RUNS.format('shifted')}/{job.id}/report.html")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "<svg" in page.text and "petal length (cm)" in page.text
    assert "<script" not in page.text


def test_a_window_without_traffic_says_so(
    sdk: Client, admin: httpx.Client, served: dict[str, Any]
) -> None:
    body = {"start": "2020-01-01T00:00:00Z", "end": "2020-01-01T03:00:00Z"}
    job, report = run(sdk, admin, "steady", body)
    assert job.result["requests"] == 0
    assert "no traffic" in report["summary"][0]


def test_runs_are_listed_per_deployment(
    sdk: Client, admin: httpx.Client, served: dict[str, Any]
) -> None:
    job, _ = run(sdk, admin, "steady", {"window": "30m"})
    listed = admin.get(RUNS.format("steady")).json()
    assert job.id in [j["id"] for j in listed]
    assert all(j["params"]["deployment"] == "steady" for j in listed)
    elsewhere = admin.get(RUNS.format("shifted")).json()
    assert job.id not in [j["id"] for j in elsewhere]
    wrong = admin.get(f"{RUNS.format('shifted')}/{job.id}/report")
    assert_problem(wrong, 404, field="run")


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"window": "yesterday"}, "body.window", "not a duration"),
        ({"window": "0h"}, "body.window", "not a duration"),
        ({"method": "magic"}, "body", "unknown drift test"),
        ({"thresholds": {"psi": -1}}, "body", "positive"),
        ({"drift_share": 0}, "body.drift_share", ""),
        ({"start": "2024-01-02T00:00:00Z", "end": "2024-01-01T00:00:00Z"}, "body", "after"),
        ({"windows": "1h"}, "body.windows", ""),
    ],
)
def test_bad_requests_name_the_problem(
    admin: httpx.Client, served: dict[str, Any], body: dict[str, Any], field: str, words: str
) -> None:
    r = admin.post(RUNS.format("steady"), json=body)
    problem = assert_problem(r, 422, field=field)
    assert words in str(problem)


def test_unknown_deployment_is_404(admin: httpx.Client, served: dict[str, Any]) -> None:
    assert_problem(admin.post(RUNS.format("nowhere"), json={}), 404)
    assert_problem(admin.get(RUNS.format("nowhere")), 404)


def test_reference_profile_matches_the_training_rows(
    admin: httpx.Client, server: LiveServer, served: dict[str, Any]
) -> None:
    import json

    from loopml.store.blobs import BlobStore

    key = admin.get(f"/projects/shop/models/{served['version']}").json()["reference_profile"]
    stored = json.loads(BlobStore(server.settings.resolved_storage_url).get(key))
    frame, _ = load_builtin("builtin:iris")
    petal = stored["columns"]["petal length (cm)"]
    assert sum(petal["counts"]) == len(frame)
    assert np.isclose(petal["total"], frame["petal length (cm)"].sum())
    assert set(stored["outputs"]["prediction"]["counts"]) <= {"0", "1", "2"} | set(
        str(c) for c in frame["target"].unique()
    )


def test_baseline_as_profile_and_sagemaker_files(
    admin: httpx.Client, served: dict[str, Any]
) -> None:
    base = f"/projects/shop/models/{served['version']}/baseline"
    frame, _ = load_builtin("builtin:iris")
    features = [c for c in frame.columns if c != "target"]
    stats = admin.get(f"{base}/statistics.json").json()
    assert stats["dataset"]["item_count"] == len(frame)
    assert [f["name"] for f in stats["features"]] == features
    limits = admin.get(f"{base}/constraints.json").json()
    assert all(f["completeness"] == 1.0 for f in limits["features"])
    assert admin.get(base).json()["rows"] == len(frame)
    assert_problem(admin.get("/projects/shop/models/99/baseline/statistics.json"), 404)


def test_refused_requests_are_counted_with_the_columns_they_got_wrong(
    sdk: Client, admin: httpx.Client, served: dict[str, Any]
) -> None:
    r = admin.put("/projects/shop/deployments/picky", json={"model": served["version"]})
    assert r.status_code == 201, r.text
    frame, _ = load_builtin("builtin:iris")
    rows = frame.drop(columns=["target"]).head(20).to_dict(orient="records")
    assert admin.post("/projects/shop/deployments/picky/predict", json=rows).status_code == 200
    bad = [{**rows[0], "sepal width (cm)": "wide"}, rows[1]]
    for _ in range(2):
        refused = admin.post("/projects/shop/deployments/picky/predict", json=bad)
        assert_problem(refused, 422, field="records[0].sepal width (cm)")
    time.sleep(2.5)  # the capture writer flushes every second
    job, report = run(sdk, admin, "picky", {"window": "1h"})
    rejected = report["service"]["rejected"]
    assert (rejected["requests"], rejected["rows"]) == (2, 4)
    assert rejected["columns"] == {"sepal width (cm)": 2}
    assert rejected["status"] == {"422": 2}
    assert rejected["share_of_rows"] == pytest.approx(4 / 24)
    assert "2 request(s) refused or failed" in report["service"]["message"]
    assert job.result["alerts"]["firing"] >= 1
    alerts = admin.get("/projects/shop/alerts", params={"deployment": "picky"}).json()
    assert "rejected-requests" in {a["rule"] for a in alerts}
