"""Challengers over HTTP, on a live server with its worker: a shadow that predicts copies
of the traffic (captured, never returned), a canary answering its share of requests,
promoting a challenger, removing it, and the requests that are refused."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from loopml.sdk import Client
from tests.api.support import assert_problem, client, serve
from tests.conftest import LiveServer, wait_for

FAST = {"time_budget": 1, "max_trials": 1}
FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
SETOSA = dict(zip(FEATURES, [5.1, 3.5, 1.4, 0.2], strict=True))
VIRGINICA = dict(zip(FEATURES, [6.7, 3.0, 5.8, 2.2], strict=True))
VARIANT = "X-Loopml-Variant"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve(tmp_path_factory, capture_flush_seconds=0.2) as live:
        yield live


@pytest.fixture(scope="module")
def versions(server: LiveServer) -> dict[str, int]:
    """Project "duel": three iris classifiers ("served", "challenger" and "promoted", the
    last one touched only by the promote test) and a diabetes regressor."""
    with Client(server.url, server.admin_key) as sdk:
        sdk.projects.create("duel")
        jobs = {
            "served": sdk.trainings.start("duel", "builtin:iris", seed=0, **FAST),
            "challenger": sdk.trainings.start("duel", "builtin:iris", seed=1, **FAST),
            "promoted": sdk.trainings.start("duel", "builtin:iris", seed=2, **FAST),
            "regressor": sdk.trainings.start("duel", "builtin:diabetes", **FAST),
        }
        found = {}
        for name, job in jobs.items():
            done = sdk.trainings.wait("duel", job.id, timeout=120)
            assert done.state.value == "succeeded", done.error
            assert done.result is not None
            found[name] = int(done.result["model_version"])
    return found


def url(name: str, tail: str = "") -> str:
    return f"/projects/duel/deployments/{name}{tail}"


def deploy(admin: httpx.Client, name: str, model: int, **body: Any) -> dict[str, Any]:
    r = admin.put(url(name), json={"model": model, **body})
    assert r.status_code in (200, 201), r.text
    return dict(r.json())


def challenge(admin: httpx.Client, name: str, model: int, mode: str, **body: Any) -> dict[str, Any]:
    r = admin.put(url(name, "/challenger"), json={"model": model, "mode": mode, **body})
    assert r.status_code == 200, r.text
    return dict(r.json())


def predict(http: httpx.Client, name: str, rows: list[dict[str, Any]]) -> httpx.Response:
    r = http.post(url(name, "/predict"), json=rows)
    assert r.status_code == 200, r.text
    return r


def captures(admin: httpx.Client, name: str, ids: set[str]) -> list[dict[str, Any]]:
    """The captures of deployment ``name`` once every id in ``ids`` is among them (as a
    prediction id or as the answer a shadow answer was made for)."""

    def check() -> list[dict[str, Any]] | None:
        r = admin.get(url(name, "/captures"), params={"limit": 100_000})
        assert r.status_code == 200, r.text
        found = r.json()
        seen = {c["loopml"]["prediction_id"] for c in found}
        seen |= {c["loopml"].get("shadow_of") for c in found}
        return found if ids <= seen else None

    return list(wait_for(f"captures of {sorted(ids)} in {name}", check, timeout=20))


def stage(admin: httpx.Client, number: int) -> str:
    return str(admin.get(f"/projects/duel/models/{number}").json()["stage"])


# --- shadow ------------------------------------------------------------------------------


def test_a_shadow_predicts_copies_that_are_captured_and_never_returned(
    server: LiveServer, admin: httpx.Client, versions: dict[str, int]
) -> None:
    served, challenger = versions["served"], versions["challenger"]
    deploy(admin, "shadowed", served)
    made = challenge(admin, "shadowed", challenger, "shadow")
    assert made["model"] == served
    assert made["challenger"] == {"model": challenger, "mode": "shadow", "percent": 100.0}
    assert admin.get(url("shadowed")).json()["challenger"] == made["challenger"]

    returned: list[str] = []
    for _ in range(5):
        r = predict(admin, "shadowed", [SETOSA, VIRGINICA])
        assert r.headers[VARIANT] == "production"
        body = r.json()
        assert body["model_version"] == served
        assert [p["model_version"] for p in body["predictions"]] == [served, served]
        assert [p["label"] for p in body["predictions"]] == ["setosa", "virginica"]
        returned += [p["prediction_id"] for p in body["predictions"]]
    server.app.state.shadows.wait()

    found = captures(admin, "shadowed", set(returned))
    shadows = [c for c in found if c["loopml"]["variant"] == "shadow"]
    production = [c for c in found if c["loopml"]["variant"] == "production"]
    assert sorted(c["loopml"]["shadow_of"] for c in shadows) == sorted(returned)
    assert sorted(c["loopml"]["prediction_id"] for c in production) == sorted(returned)
    assert {c["loopml"]["model_version"] for c in shadows} == {challenger}
    assert {c["loopml"]["model_version"] for c in production} == {served}
    assert all("shadow_of" not in c["loopml"] for c in production)
    for c in shadows:  # the copy's answer has its own id and the row the caller sent
        assert c["loopml"]["prediction_id"] not in returned
        assert json.loads(c["captureData"]["endpointInput"]["data"]) in (SETOSA, VIRGINICA)
        out = json.loads(c["captureData"]["endpointOutput"]["data"])
        assert out["model_version"] == challenger
        assert set(out["probabilities"]) == {"setosa", "versicolor", "virginica"}


def test_removing_the_challenger_stops_shadow_copies(
    server: LiveServer, admin: httpx.Client, versions: dict[str, int]
) -> None:
    served, challenger = versions["served"], versions["challenger"]
    deploy(admin, "stopped", served)
    challenge(admin, "stopped", challenger, "shadow")
    before = predict(admin, "stopped", [SETOSA]).json()["predictions"][0]["prediction_id"]
    server.app.state.shadows.wait()
    found = captures(admin, "stopped", {before})
    assert [c["loopml"]["shadow_of"] for c in found if c["loopml"]["variant"] == "shadow"] == [
        before
    ]

    r = admin.delete(url("stopped", "/challenger"))
    assert r.status_code == 200, r.text
    assert (r.json()["model"], r.json()["challenger"]) == (served, None)
    again = admin.delete(url("stopped", "/challenger"))  # nothing left to remove: fine
    assert again.status_code == 200 and again.json()["challenger"] is None

    after = []
    for _ in range(3):
        r = predict(admin, "stopped", [VIRGINICA])
        assert r.headers[VARIANT] == "production"
        after.append(r.json()["predictions"][0]["prediction_id"])
    server.app.state.shadows.wait()
    # a capture queued after any shadow answer could have been: once it is written,
    # everything queued before it is too
    last = predict(admin, "stopped", [SETOSA]).json()["predictions"][0]["prediction_id"]
    found = captures(admin, "stopped", {last, *after})
    shadows = [c["loopml"]["shadow_of"] for c in found if c["loopml"]["variant"] == "shadow"]
    assert shadows == [before]


# --- canary ------------------------------------------------------------------------------


def test_a_canary_answers_its_share_of_the_requests(
    admin: httpx.Client, versions: dict[str, int]
) -> None:
    served, challenger = versions["served"], versions["challenger"]
    deploy(admin, "canaried", served)
    made = challenge(admin, "canaried", challenger, "canary", percent=50)
    assert made["challenger"] == {"model": challenger, "mode": "canary", "percent": 50.0}

    answered: Counter[int] = Counter()
    variants: dict[str, str] = {}
    for _ in range(60):
        r = predict(admin, "canaried", [SETOSA])
        body = r.json()
        (one,) = body["predictions"]
        assert one["model_version"] == body["model_version"]
        expected = "canary" if body["model_version"] == challenger else "production"
        assert body["model_version"] in (served, challenger)
        assert r.headers[VARIANT] == expected
        answered[body["model_version"]] += 1
        variants[one["prediction_id"]] = expected
    # each request is a fair coin: fewer than 5 of 60 for either has a chance below 1e-11
    assert answered[served] >= 5 and answered[challenger] >= 5, answered

    found = captures(admin, "canaried", set(variants))
    for c in found:
        mine = c["loopml"]
        assert mine["variant"] == variants[mine["prediction_id"]]
        assert mine["model_version"] == (challenger if mine["variant"] == "canary" else served)
        assert "shadow_of" not in mine


# --- refused challengers -----------------------------------------------------------------


def test_challenger_requests_are_checked(admin: httpx.Client, versions: dict[str, int]) -> None:
    served, challenger = versions["served"], versions["challenger"]
    deploy(admin, "checked", served)
    path = url("checked", "/challenger")
    r = admin.put(path, json={"model": challenger, "mode": "canary", "percent": 100})
    problem = assert_problem(r, 422, field="percent", code="invalid-input")
    assert "canary" in problem["detail"]
    for body, field in (
        ({"model": challenger, "mode": "canary", "percent": 0}, "body.percent"),
        ({"model": challenger, "mode": "shadow", "percent": 101}, "body.percent"),
        ({"model": challenger, "mode": "blue"}, "body.mode"),
        ({"model": challenger}, "body.mode"),
        ({"model": challenger, "mode": "shadow", "weight": 3}, "body.weight"),
    ):
        problem = assert_problem(admin.put(path, json=body), 422)
        assert any(e["field"] == field for e in problem["errors"]), (body, problem)
    r = admin.put(path, json={"model": 99, "mode": "shadow"})
    assert_problem(r, 404, field="model", code="not-found")
    r = admin.put(url("ghost", "/challenger"), json={"model": challenger, "mode": "shadow"})
    assert_problem(r, 404, field="deployment", code="not-found")
    assert_problem(admin.delete(url("ghost", "/challenger")), 404, field="deployment")
    # refused requests left the deployment as it was
    assert admin.get(url("checked")).json()["challenger"] is None


def test_a_challenger_of_another_task_is_refused(
    admin: httpx.Client, versions: dict[str, int]
) -> None:
    deploy(admin, "tasks", versions["served"])
    r = admin.put(
        url("tasks", "/challenger"), json={"model": versions["regressor"], "mode": "shadow"}
    )
    problem = assert_problem(r, 422, field="model", code="invalid-input")
    assert "regression" in problem["detail"] and "multiclass" in problem["detail"]
    assert admin.get(url("tasks")).json()["challenger"] is None


def test_the_served_model_cannot_challenge_itself(
    admin: httpx.Client, versions: dict[str, int]
) -> None:
    deploy(admin, "itself", versions["served"])
    r = admin.put(url("itself", "/challenger"), json={"model": versions["served"], "mode": "canary",
                                                      "percent": 10})  # fmt: skip
    problem = assert_problem(r, 409, field="model", code="conflict")
    assert f"already serves v{versions['served']}" in problem["detail"]
    assert admin.get(url("itself")).json()["challenger"] is None


# --- promoting, deploying and stages -------------------------------------------------------


def test_promoting_serves_the_challenger_and_records_why(
    admin: httpx.Client, versions: dict[str, int]
) -> None:
    served, newcomer = versions["served"], versions["promoted"]
    deploy(admin, "promoted", served)
    assert stage(admin, newcomer) == "candidate"
    challenge(admin, "promoted", newcomer, "canary", percent=10, reason="try the seed-2 model")
    assert stage(admin, newcomer) == "staging"  # a candidate challenger is staged
    last = admin.get(f"/projects/duel/models/{newcomer}/history").json()[-1]
    assert (last["from_stage"], last["to_stage"], last["reason"]) == (
        "candidate",
        "staging",
        "try the seed-2 model",
    )

    r = admin.post(url("promoted", "/promote"), json={"reason": "it won the canary"})
    assert r.status_code == 200, r.text
    assert (r.json()["model"], r.json()["challenger"]) == (newcomer, None)
    assert admin.get(url("promoted")).json() == r.json()
    for _ in range(5):  # the former challenger answers everything now
        answer = predict(admin, "promoted", [VIRGINICA])
        assert answer.json()["model_version"] == newcomer
        assert answer.headers[VARIANT] == "production"
    assert stage(admin, newcomer) == "production"
    last = admin.get(f"/projects/duel/models/{newcomer}/history").json()[-1]
    assert (last["from_stage"], last["to_stage"], last["actor"], last["reason"]) == (
        "staging",
        "production",
        "admin",
        "it won the canary",
    )
    # the slot is empty: nothing more to promote
    problem = assert_problem(admin.post(url("promoted", "/promote")), 409, field="challenger")
    assert "no challenger" in problem["detail"]


def test_promoting_without_a_challenger_is_a_conflict(
    admin: httpx.Client, versions: dict[str, int]
) -> None:
    deploy(admin, "lonely", versions["served"])
    for body in ({}, {"json": {"reason": "why not"}}):
        r = admin.post(url("lonely", "/promote"), **body)
        assert_problem(r, 409, field="challenger", code="conflict")
    assert admin.get(url("lonely")).json()["model"] == versions["served"]
    assert_problem(admin.post(url("ghost", "/promote")), 404, field="deployment")


def test_deploying_the_challenger_clears_it(admin: httpx.Client, versions: dict[str, int]) -> None:
    served, challenger = versions["served"], versions["challenger"]
    deploy(admin, "direct", served)
    challenge(admin, "direct", challenger, "shadow", percent=30)
    made = deploy(admin, "direct", challenger, reason="skip the trial")
    assert (made["model"], made["challenger"]) == (challenger, None)
    r = predict(admin, "direct", [SETOSA])
    assert (r.json()["model_version"], r.headers[VARIANT]) == (challenger, "production")
    # the former model may challenge in turn (a rollback waiting in the wings)
    back = challenge(admin, "direct", served, "canary", percent=5)
    assert (back["model"], back["challenger"]["model"]) == (challenger, served)
    # other tests count on the challenger being served nowhere
    assert admin.delete(url("direct")).status_code == 204


def test_a_challenger_is_not_archived_under_its_deployment(
    admin: httpx.Client, versions: dict[str, int]
) -> None:
    challenger = versions["challenger"]
    deploy(admin, "guarded", versions["served"])
    challenge(admin, "guarded", challenger, "shadow")
    was = stage(admin, challenger)
    for to in ("archived", "candidate"):
        r = admin.post(f"/projects/duel/models/{challenger}/stage", json={"stage": to})
        problem = assert_problem(r, 409, field="stage", code="conflict")
        assert "challenger on" in problem["detail"] and "guarded" in problem["detail"]
    assert stage(admin, challenger) == was
    assert admin.get(url("guarded")).json()["challenger"]["model"] == challenger


# --- no request fails while challengers come and go ----------------------------------------


def test_no_request_fails_while_a_challenger_is_set_promoted_and_rolled_back(
    server: LiveServer, admin: httpx.Client, versions: dict[str, int]
) -> None:
    """Four clients predict without pause until the last change is made and 20 more
    requests are answered: every change happens while requests are in flight."""
    served, challenger = versions["served"], versions["challenger"]
    deploy(admin, "busy", served)
    lock, stop = threading.Lock(), threading.Event()
    results: list[tuple[int, int | None, str]] = []  # status, model_version, variant
    errors: list[BaseException] = []

    def load() -> None:
        with client(server, server.admin_key) as http:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    r = http.post(url("busy", "/predict"), json=[SETOSA, VIRGINICA][: 1 + i % 2])
                    version = r.json().get("model_version") if r.status_code == 200 else None
                    seen = (r.status_code, version, r.headers.get(VARIANT, ""))
                except Exception as exc:  # a transport error is a failed request too
                    with lock:
                        errors.append(exc)
                    continue
                with lock:
                    results.append(seen)

    def done() -> int:
        with lock:
            return len(results) + len(errors)

    def after(n: int) -> None:
        wait_for(f"{n} answered requests", lambda: done() >= n, timeout=60)

    workers = [threading.Thread(target=load) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        after(20)
        challenge(admin, "busy", challenger, "canary", percent=50)
        after(60)
        challenge(admin, "busy", challenger, "shadow")
        after(90)
        challenge(admin, "busy", challenger, "canary", percent=30)
        after(120)
        r = admin.post(url("busy", "/promote"))  # the body is optional
        assert r.status_code == 200 and r.json()["model"] == challenger, r.text
        promoted_at = done()
        after(promoted_at + 40)
        rolled = deploy(admin, "busy", served, reason="roll back")
        assert (rolled["model"], rolled["challenger"]) == (served, None)
        after(done() + 30)
        challenge(admin, "busy", challenger, "shadow")
        after(done() + 20)
        assert admin.delete(url("busy", "/challenger")).status_code == 200
        after(done() + 20)
    finally:
        stop.set()
        for worker in workers:
            worker.join(60)
    assert not errors, errors[:3]
    assert len(results) >= 200
    statuses = Counter(status for status, _, _ in results)
    assert statuses == {200: len(results)}, statuses
    assert {version for _, version, _ in results} <= {served, challenger}
    assert {variant for _, _, variant in results} <= {"production", "canary"}
    # at most 4 requests were in flight at the promotion: the 36 after it met v2
    assert (challenger, "production") in {(v, variant) for _, v, variant in results}
    final = admin.get(url("busy")).json()
    assert (final["model"], final["challenger"]) == (served, None)
    server.app.state.shadows.wait()
    assert server.app.state.shadows.failed == 0
