"""Clients that wait on ingests (``?wait=``) wait on the server's event loop: however many
wait, the routes that run on the server's threads still answer at once."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from loopml.api.routers import ingest as ingest_routes
from loopml.core.schemas import Job
from loopml.home import Home
from tests.api.support import client, serve

PROJECT = "queue"
# More than the 40 threads that Starlette runs synchronous routes on.
WAITING = 45


def test_clients_waiting_on_ingests_leave_the_other_routes_free(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # No worker: every ingest stays queued, so each waiting client waits its whole 8 s.
    with (
        serve(tmp_path_factory, embedded_worker=False) as server,
        client(server, server.admin_key) as admin,
        httpx.Client(
            base_url=server.url + "/api/v1",
            headers={"Authorization": f"Bearer {server.admin_key}"},
            timeout=60,
            limits=httpx.Limits(max_connections=WAITING + 5),
        ) as many,
        ThreadPoolExecutor(WAITING) as pool,
    ):
        assert admin.post("/projects", json={"name": PROJECT}).status_code == 201
        waits = [
            pool.submit(
                many.post,
                f"/projects/{PROJECT}/datasets",
                params={"wait": 8},
                json={"name": f"d{i}", "source": "builtin:penguins"},
            )
            for i in range(WAITING)
        ]
        queued = 0
        deadline = time.monotonic() + 30
        while queued < WAITING and time.monotonic() < deadline:
            queued = len(admin.get(f"/projects/{PROJECT}/jobs").json())
        project = admin.get(f"/projects/{PROJECT}")
        still_waiting = sum(not w.done() for w in waits)
        answers = [w.result() for w in waits]
    assert queued == WAITING
    assert project.status_code == 200 and project.json()["name"] == PROJECT
    # Every client was still waiting when the other routes answered.
    assert still_waiting == WAITING
    assert [a.status_code for a in answers] == [202] * WAITING
    assert {a.json()["state"] for a in answers} == {"queued"}


def test_a_client_that_stops_waiting_is_no_longer_waited_for(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    looks: list[str] = []
    real = ingest_routes._job

    def look(home: Home, job_id: str) -> Job:
        looks.append(job_id)
        return real(home, job_id)

    monkeypatch.setattr(ingest_routes, "_job", look)
    with (
        serve(tmp_path_factory, embedded_worker=False) as server,
        client(server, server.admin_key) as admin,
    ):
        assert admin.post("/projects", json={"name": PROJECT}).status_code == 201
        with pytest.raises(httpx.ReadTimeout):  # the client gives up, closing its connection
            admin.post(
                f"/projects/{PROJECT}/datasets",
                params={"wait": 30},
                json={"name": "gone", "source": "builtin:penguins"},
                timeout=1,
            )
        time.sleep(0.6)  # the server's next look (every 0.2 s) finds nobody waiting
        after_leaving = len(looks)
        time.sleep(1)
        assert len(looks) == after_leaving > 0
