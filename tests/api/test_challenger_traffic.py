"""What callers and captures see of a challenger at the edges: a canary never fails a
request the served model would answer, and a request copied to a shadow is captured whole
even where the deployment captures nothing else."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from loopml.sdk import Client
from tests.api.support import serve
from tests.conftest import LiveServer, wait_for

FAST = {"time_budget": 1, "max_trials": 1}
IRIS = {
    "sepal length (cm)": 5.1, "sepal width (cm)": 3.5,
    "petal length (cm)": 1.4, "petal width (cm)": 0.2,
}  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve(tmp_path_factory, capture_flush_seconds=0.2) as live:
        yield live


@pytest.fixture(scope="module")
def versions(server: LiveServer) -> dict[str, int]:
    """Project "edges": two iris classifiers and a wine classifier (a multiclass model
    reading other columns)."""
    with Client(server.url, server.admin_key) as sdk:
        sdk.projects.create("edges")
        jobs = {
            "iris": sdk.trainings.start("edges", "builtin:iris", seed=0, **FAST),
            "iris2": sdk.trainings.start("edges", "builtin:iris", seed=1, **FAST),
            "wine": sdk.trainings.start("edges", "builtin:wine", seed=0, **FAST),
        }
        found = {}
        for name, job in jobs.items():
            done = sdk.trainings.wait("edges", job.id, timeout=120)
            assert done.state.value == "succeeded", done.error
            assert done.result is not None
            found[name] = int(done.result["model_version"])
    return found


def _put(admin: httpx.Client, path: str, body: dict[str, Any]) -> None:
    r = admin.put(f"/projects/edges/deployments/{path}", json=body)
    assert r.status_code in (200, 201), r.text


def test_rows_a_canary_refuses_are_answered_by_the_served_model(
    admin: httpx.Client, versions: dict[str, int]
) -> None:
    _put(admin, "guarded", {"model": versions["iris"]})
    _put(
        admin, "guarded/challenger", {"model": versions["wine"], "mode": "canary", "percent": 99.99}
    )
    path = "/projects/edges/deployments/guarded/predict"
    # "alcohol" is no column of the served iris model (ignored there) but a numeric one of
    # the wine canary, which refuses a word in it
    for _ in range(10):
        r = admin.post(path, json=[{**IRIS, "alcohol": "plenty"}])
        assert r.status_code == 200, r.text
        assert r.headers["X-Loopml-Variant"] == "production"
        assert r.json()["model_version"] == versions["iris"]
        assert r.headers["X-Loopml-Ignored-Columns"] == "alcohol"
    # rows the canary takes are its to answer
    answered = {admin.post(path, json=[IRIS]).json()["model_version"] for _ in range(10)}
    assert versions["wine"] in answered


def test_a_shadowed_request_is_captured_whole_where_nothing_else_is(
    server: LiveServer, admin: httpx.Client, versions: dict[str, int]
) -> None:
    _put(admin, "quiet", {"model": versions["iris"], "capture_percent": 0})
    r = admin.post("/projects/edges/deployments/quiet/predict", json=[IRIS])
    assert r.status_code == 200, r.text
    unshadowed = r.json()["predictions"][0]["prediction_id"]
    _put(admin, "quiet/challenger", {"model": versions["iris2"], "mode": "shadow"})
    r = admin.post("/projects/edges/deployments/quiet/predict", json=[IRIS, IRIS])
    assert r.status_code == 200, r.text
    ids = {p["prediction_id"] for p in r.json()["predictions"]}
    server.app.state.shadows.wait()

    def pairs() -> list[dict[str, Any]] | None:
        found = admin.get("/projects/edges/deployments/quiet/captures").json()
        shadows = {c["loopml"].get("shadow_of") for c in found}
        return found if ids <= shadows and len(found) >= 4 else None

    found = wait_for("both answers of the shadowed request", pairs, timeout=20)
    production = {
        c["loopml"]["prediction_id"] for c in found if c["loopml"]["variant"] == "production"
    }
    assert production == ids  # every shadow answer has its pair...
    assert unshadowed not in {c["loopml"]["prediction_id"] for c in found}  # ...nothing else
    for c in found:
        if c["loopml"]["variant"] == "shadow":
            out = json.loads(c["captureData"]["endpointOutput"]["data"])
            assert out["model_version"] == versions["iris2"]


def test_promoting_a_model_already_in_production_is_still_recorded(
    admin: httpx.Client, versions: dict[str, int]
) -> None:
    both = versions["iris2"]
    _put(admin, "elsewhere", {"model": both})  # production, served by another deployment
    _put(admin, "promoting", {"model": versions["iris"]})
    _put(admin, "promoting/challenger", {"model": both, "mode": "shadow"})
    r = admin.post("/projects/edges/deployments/promoting/promote", json={"reason": "won"})
    assert r.status_code == 200, r.text
    last = admin.get(f"/projects/edges/models/{both}/history").json()[-1]
    assert (last["from_stage"], last["to_stage"], last["reason"]) == (
        "production",
        "production",
        "won",
    )
