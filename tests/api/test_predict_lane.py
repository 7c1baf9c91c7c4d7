"""The predict lane answers prediction requests before FastAPI routes them: whatever a
client sends, it must answer exactly as the documented route does (the same key checks,
answers, problems and headers), so the same requests go to one app with the lane and to
one built without it."""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from loopml.api import create_app
from loopml.api.predict_lane import PredictLane
from loopml.automl import AutoML
from loopml.cli.local import InProcessTransport
from loopml.core.enums import Role
from loopml.data.builtin import load_builtin
from loopml.home import open_home
from loopml.settings import Settings
from loopml.store import deployments, keys, projects, registry
from tests.conftest import make_settings

SETOSA = {
    "sepal length (cm)": 5.1,
    "sepal width (cm)": 3.5,
    "petal length (cm)": 1.4,
    "petal width (cm)": 0.2,
}
BASE = "/api/v1/projects/shop/deployments"


def _register(settings: Settings) -> dict[str, str]:
    """Iris deployed as "live" in project "shop"; the secrets of an admin key, a viewer of
    "shop" and a viewer of another project only."""
    frame, info = load_builtin("builtin:iris")
    X, y = frame.drop(columns=[info.target]), frame[info.target]
    model = AutoML(learners=["lightgbm"], time_budget=5, max_trials=2, seed=0, report=False)
    model.fit(X, y)
    home = open_home(settings)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.zip"
        digest = model.save(path)
        stored = home.blobs.put("models/shop/model.zip", path.read_bytes())
    assert model.classes_ is not None
    details = {
        "task": model.task_.value,
        "metric": model.metric_,
        "artifact": stored.key,
        "artifact_sha256": stored.sha256,
        "content_hash": digest,
        "size_bytes": stored.size,
        "classes": model.classes_.tolist(),
        "inputs": [{"name": name, "kind": "numeric"} for name in X.columns],
    }
    with home.db.session() as s:
        projects.create(s, "shop")
        projects.create(s, "other")
        version, _ = registry.add_model(s, "shop", details, training=None, actor="test")
        deployments.deploy(s, "shop", "live", version.number, capture_percent=100.0)
        secrets = {
            "admin": keys.create(s, "admin", global_role=Role.admin).secret,
            "viewer": keys.create(s, "viewer", project_roles={"shop": Role.viewer}).secret,
            "stranger": keys.create(s, "stranger", project_roles={"other": Role.admin}).secret,
        }
    home.close()
    return secrets


def _without_lane(settings: Settings) -> Any:
    app = create_app(settings, embedded_worker=False)
    app.user_middleware = [m for m in app.user_middleware if m.cls is not PredictLane]
    return app


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any, dict[str, str]]]:
    """A client of the app with the lane, one of the app without it (same home), and
    the key secrets."""
    settings = make_settings(tmp_path_factory.mktemp("lane") / "home", max_request_bytes=4096)
    secrets = _register(settings)
    lane_app = create_app(settings, embedded_worker=False)
    assert any(m.cls is PredictLane for m in lane_app.user_middleware)
    with _client(lane_app) as lane, _client(_without_lane(settings)) as route:
        yield lane, route, secrets


def _client(app: Any) -> httpx.Client:
    return httpx.Client(transport=InProcessTransport(app), base_url="http://loopml.test")


def _seen(response: Any) -> dict[str, Any]:
    """What a client sees of a response, less the parts that differ on every request."""
    try:
        body = response.json()
    except json.JSONDecodeError:
        body = response.text
    if isinstance(body, dict):
        for answer in body.get("predictions", []):
            answer.pop("prediction_id")
    headers = {
        k: v
        for k, v in response.headers.items()
        if k.lower() not in ("content-length", "date", "server")
    }
    return {"status": response.status_code, "headers": headers, "body": body}


def _both(pair: tuple[Any, Any, dict[str, str]], path: str, key: str | None, **kw: Any) -> dict:
    lane, route, secrets = pair
    headers = dict(kw.pop("headers", {}))
    if key is not None:
        headers["Authorization"] = f"Bearer {secrets.get(key, key)}"
    method = kw.pop("method", "POST")
    seen = [
        _seen(client.request(method, BASE + path, headers=headers, **kw))
        for client in (lane, route)
    ]
    assert seen[0] == seen[1]
    return seen[0]


def test_answers_are_the_routes(pair: tuple) -> None:
    other = {**SETOSA, "petal length (cm)": 5.8, "petal width (cm)": 2.2, "colour": "red"}
    seen = _both(pair, "/live/predict", "viewer", json=[SETOSA, other])
    assert seen["status"] == 200
    labels = [p["label"] for p in seen["body"]["predictions"]]
    assert labels[0] == "setosa" and labels[1] != "setosa"
    assert seen["headers"]["x-loopml-ignored-columns"] == "colour"
    assert _both(pair, "/live/invocations", "admin", json={"records": [SETOSA]})["status"] == 200
    assert _both(pair, "/live/predict", "admin", json={"instances": [SETOSA]})["status"] == 200


def test_csv_and_missing_values_are_the_routes(pair: tuple) -> None:
    body = ",".join(SETOSA) + "\n" + ",".join(str(v) for v in SETOSA.values()) + "\n5.0,,,\n"
    seen = _both(
        pair, "/live/predict", "viewer", content=body, headers={"Content-Type": "text/csv"}
    )
    assert seen["status"] == 200 and len(seen["body"]["predictions"]) == 2


@pytest.mark.parametrize(
    ("key", "status"),
    [(None, 401), ("lml_00000000_not-a-key", 401), ("stranger", 403), ("viewer", 200)],
)
def test_keys_are_checked_as_the_route_checks_them(pair: tuple, key: str, status: int) -> None:
    seen = _both(pair, "/live/predict", key, json=[SETOSA])
    assert seen["status"] == status
    if status == 401:
        assert seen["headers"]["www-authenticate"] == "Bearer"
        assert seen["body"]["field"] == "Authorization"


@pytest.mark.parametrize(
    ("path", "kw", "status"),
    [
        ("/live/predict", {"json": [{**SETOSA, "sepal width (cm)": "wide"}]}, 422),
        ("/live/predict", {"json": []}, 422),
        ("/live/predict", {"content": b"[{", "headers": {"Content-Type": "application/json"}}, 422),
        ("/live/predict", {"content": b"x", "headers": {"Content-Type": "text/xml"}}, 422),
        ("/live/predict", {"json": [SETOSA] * 200}, 413),
        ("/gone/predict", {"json": [SETOSA]}, 404),
        ("/live/predict", {"method": "GET"}, 405),
    ],
)
def test_bad_requests_are_the_routes_problems(
    pair: tuple, path: str, kw: dict[str, Any], status: int
) -> None:
    seen = _both(pair, path, "viewer", **kw)
    assert seen["status"] == status
    assert seen["headers"]["content-type"] == "application/problem+json"
    assert seen["body"]["instance"] == BASE + path


@pytest.mark.parametrize("which", [0, 1], ids=["lane", "route"])
def test_requests_sent_at_once_each_get_their_own_rows_answers(pair: tuple, which: int) -> None:
    """Requests that reach the server together are predicted in batches: each must still
    get exactly the answers its own rows get when sent alone."""
    client, secrets = pair[which], pair[2]
    headers = {"Authorization": f"Bearer {secrets['viewer']}"}
    frame, info = load_builtin("builtin:iris")
    table = frame.drop(columns=[info.target]).to_dict(orient="records")
    # 24 requests of 1 to 3 rows, no row in two requests, every class among them.
    bodies = [[table[(i * 37 + j * 53) % len(table)] for j in range(1 + i % 3)] for i in range(24)]
    alone = []
    for body in bodies:
        response = client.post(BASE + "/live/predict", json=body, headers=headers)
        assert response.status_code == 200, response.text
        alone.append(response.json()["predictions"])
    start = threading.Barrier(12)  # each wave of twelve is sent at once

    def send(body: list[dict[str, float]]) -> Any:
        start.wait(timeout=60)
        return client.post(BASE + "/live/predict", json=body, headers=headers)

    with ThreadPoolExecutor(12) as pool:  # every request is sent, even if one fails
        sent = [pool.submit(send, body) for body in bodies]
        responses = [future.result() for future in sent]
    ids = []
    for body, response, expected in zip(bodies, responses, alone, strict=True):
        assert response.status_code == 200, response.text
        got = response.json()["predictions"]
        assert len(got) == len(body) == len(expected)
        for mine, theirs in zip(got, expected, strict=True):
            assert mine["label"] == theirs["label"]
            assert mine["probabilities"].keys() == theirs["probabilities"].keys()
            for name, p in theirs["probabilities"].items():
                assert mine["probabilities"][name] == pytest.approx(p, rel=0, abs=1e-9)
            ids.append(mine["prediction_id"])
    assert len(set(ids)) == len(ids) == sum(len(body) for body in bodies)
    labels = {p["label"] for answers in alone for p in answers}
    assert labels == {"setosa", "versicolor", "virginica"}


def test_the_cli_s_in_process_app_predicts_as_the_local_admin(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home")
    _register(settings)
    app = create_app(settings, embedded_worker=False, trusted_local=True)
    with _client(app) as local:
        response = local.post(BASE + "/live/predict", json=[SETOSA])  # no key at all
    assert response.status_code == 200, response.text
    assert response.json()["predictions"][0]["label"] == "setosa"
