"""``/projects/{p}/workflows/{w}/triggers`` on a live server: triggers created, replaced,
listed, read and deleted; bad specs refused as problems naming the field; local folders
only on a server that allows local files; and a dataset trigger starting an execution
when a new version is uploaded, through REST and the SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from loopml.core.errors import InvalidInput, NotFound
from loopml.sdk import Client
from tests.api.support import assert_problem, client, serve
from tests.conftest import LiveServer, wait_for

PROJECT = "triggered"
BASE = f"/projects/{PROJECT}/workflows"
ECHO = {"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server without local files; triggers are looked at on each heartbeat (0.2 s)."""
    with serve(tmp_path_factory, heartbeat_interval=0.2) as live:
        yield live


@pytest.fixture(scope="module")
def http(admin: httpx.Client) -> httpx.Client:
    """The admin client, once project "triggered" has workflow "echo"."""
    assert admin.post("/projects", json={"name": PROJECT}).status_code == 201
    r = admin.put(f"{BASE}/echo", json={"definition": ECHO})
    assert r.status_code == 201, r.text
    return admin


def put(http: httpx.Client, name: str, body: dict[str, Any], workflow: str = "echo") -> Any:
    return http.put(f"{BASE}/{workflow}/triggers/{name}", json=body)


def test_a_trigger_is_created_replaced_listed_read_and_deleted(http: httpx.Client) -> None:
    body = {"kind": "schedule", "cron": "0 3 * * *", "timezone": "Europe/Paris"}
    r = put(http, "nightly", {**body, "input": {"full": True}})
    assert r.status_code == 201, r.text
    made = r.json()
    assert (made["name"], made["workflow"], made["project"]) == ("nightly", "echo", PROJECT)
    assert made["kind"] == "schedule"
    assert made["spec"] == {"cron": "0 3 * * *", "timezone": "Europe/Paris"}
    assert made["input"] == {"full": True} and made["enabled"] is True
    assert made["fired"] == 0 and made["last_error"] is None
    assert made["due_at"].endswith(("T01:00:00Z", "T02:00:00Z"))  # 03:00 in Paris, in UTC

    r = put(http, "nightly", {**body, "enabled": False})
    assert r.status_code == 200, r.text
    assert (r.json()["id"], r.json()["enabled"], r.json()["input"]) == (made["id"], False, None)
    assert r.json()["due_at"] == made["due_at"]  # the same schedule: the same next time

    assert put(http, "on-orders", {"kind": "dataset", "dataset": "orders"}).status_code == 201
    listed = http.get(f"{BASE}/echo/triggers")
    assert listed.status_code == 200, listed.text
    assert [t["name"] for t in listed.json()] == ["nightly", "on-orders"]
    assert listed.json()[1]["spec"] == {"dataset": "orders", "every": 10.0}
    one = http.get(f"{BASE}/echo/triggers/nightly")
    assert one.status_code == 200 and one.json()["enabled"] is False

    for name in ("nightly", "on-orders"):
        assert http.delete(f"{BASE}/echo/triggers/{name}").status_code == 204
    assert_problem(http.delete(f"{BASE}/echo/triggers/nightly"), 404, field="trigger")
    assert_problem(http.get(f"{BASE}/echo/triggers/nightly"), 404, field="trigger")
    assert http.get(f"{BASE}/echo/triggers").json() == []


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"kind": "schedule", "cron": "61 * * * *"}, "cron", "'61'"),
        ({"kind": "schedule", "cron": "* * *"}, "cron", "3 fields"),
        ({"kind": "schedule", "cron": "0 0 30 2 *"}, "cron", "never fires"),
        ({"kind": "schedule"}, "cron", "cron"),
        ({"kind": "schedule", "cron": "@daily", "timezone": "Mars/Olympus"}, "timezone", "Mars"),
        ({"kind": "schedule", "cron": "@daily", "every": 5}, "every", "every"),
        ({"kind": "dataset", "dataset": "orders@3"}, "dataset", "new versions"),
        ({"kind": "dataset", "dataset": "orders", "every": 0}, "every", "at least 1"),
        ({"kind": "source", "url": "/srv/inbox"}, "url", "workflow_local_files"),
        ({"kind": "source", "url": "file:///srv/inbox"}, "url", "workflow_local_files"),
        ({"kind": "dataset", "dataset": "orders", "every": 1e12}, "every", "at most"),
        ({"kind": "dataset", "dataset": "orders", "input": [1, 2]}, "input", "object"),
        ({"kind": "schedule", "cron": "@daily", "input": "hello"}, "input", "object"),
        ({"kind": "webhook"}, "body.kind", None),
        ({"kind": "dataset", "dataset": "orders", "colour": "red"}, "body.colour", None),
    ],
)
def test_a_bad_trigger_is_a_problem_naming_the_field(
    http: httpx.Client, body: dict[str, Any], field: str, words: str | None
) -> None:
    problem = assert_problem(put(http, "bad", body), 422, field=field)
    if words:
        assert words in problem["detail"], problem
    assert_problem(http.get(f"{BASE}/echo/triggers/bad"), 404, field="trigger")


@pytest.mark.parametrize("name", ["Nightly", "night_ly", "x" * 64, "-nightly"])
def test_a_bad_trigger_name_is_a_problem_naming_the_trigger(http: httpx.Client, name: str) -> None:
    r = put(http, name, {"kind": "schedule", "cron": "@daily"})
    assert "not a valid name" in assert_problem(r, 422, field="trigger")["detail"]


def test_an_every_of_nan_or_infinity_is_refused(http: httpx.Client) -> None:
    for value in ("NaN", "Infinity"):
        body = f'{{"kind": "dataset", "dataset": "orders", "every": {value}}}'
        r = http.put(f"{BASE}/echo/triggers/odd", content=body,
                     headers={"content-type": "application/json"})  # fmt: skip
        assert_problem(r, 422, field="every")


def test_a_deleted_workflow_takes_its_triggers_along(http: httpx.Client) -> None:
    assert http.put(f"{BASE}/brief", json={"definition": ECHO}).status_code == 201
    assert put(http, "soon", {"kind": "schedule", "cron": "@daily"}, "brief").status_code == 201
    assert http.delete(f"{BASE}/brief").status_code == 204
    assert http.put(f"{BASE}/brief", json={"definition": ECHO}).status_code == 201
    assert http.get(f"{BASE}/brief/triggers").json() == []
    assert_problem(http.get(f"{BASE}/brief/triggers/soon"), 404, field="trigger")


def test_a_source_that_cannot_be_listed_is_refused_naming_the_url(http: httpx.Client) -> None:
    problem = assert_problem(put(http, "odd", {"kind": "source", "url": "nosuch://in/"}), 422)
    assert problem["field"] == "url" and "nosuch" in problem["detail"]


def test_an_unknown_workflow_or_project_is_404(http: httpx.Client) -> None:
    body = {"kind": "schedule", "cron": "@daily"}
    assert_problem(put(http, "t", body, workflow="ghost"), 404, field="name")
    assert_problem(http.get(f"{BASE}/ghost/triggers"), 404, field="name")
    assert_problem(http.get(f"{BASE}/ghost/triggers/t"), 404)
    assert_problem(http.delete(f"{BASE}/ghost/triggers/t"), 404)
    assert_problem(http.put("/projects/nowhere/workflows/echo/triggers/t", json=body), 404)


def test_a_viewer_reads_triggers_but_never_sets_them(
    server: LiveServer, http: httpx.Client
) -> None:
    r = http.post("/keys", json={"name": "trigger-viewer", "roles": {PROJECT: "viewer"}})
    assert r.status_code == 201, r.text
    with client(server, r.json()["secret"]) as viewer:
        assert viewer.get(f"{BASE}/echo/triggers").status_code == 200
        refused = put(viewer, "sneaky", {"kind": "schedule", "cron": "@daily"})
        assert refused.status_code == 403
    assert_problem(http.get(f"{BASE}/echo/triggers/sneaky"), 404)


def test_a_local_folder_is_watched_on_a_server_that_allows_local_files(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "old.csv").write_text("a\n1\n")
    with (
        serve(tmp_path_factory, workflow_local_files=True) as live,
        client(live, live.admin_key) as http,
    ):
        assert http.post("/projects", json={"name": PROJECT}).status_code == 201
        assert http.put(f"{BASE}/echo", json={"definition": ECHO}).status_code == 201
        r = put(http, "inbox", {"kind": "source", "url": str(inbox), "every": 1})
        assert r.status_code == 201, r.text
        (inbox / "sub").mkdir()
        (inbox / "sub" / "new.csv").write_text("a\n2\n")

        def fired() -> list[dict[str, Any]]:
            found = http.get(f"{BASE}/echo/executions").json()
            return [e for e in found if e["status"] == "SUCCEEDED"]

        (execution,) = wait_for("an execution for the new file", fired, timeout=20)
        assert execution["input"] == {"url": str(inbox / "sub" / "new.csv"), "trigger": "inbox"}
        assert execution["trigger"] == "source:inbox"


def csv(rows: int) -> bytes:
    return ("user,spend\n" + "".join(f"u{i},{i * 3}\n" for i in range(rows))).encode()


def upload(http: httpx.Client, dataset: str, data: bytes) -> None:
    """Upload ``data`` as a new version of ``dataset`` and wait for its ingest job."""
    r = http.post(
        f"/projects/{PROJECT}/datasets/{dataset}/uploads",
        files=[("files", ("data.csv", data, "text/csv"))],
        data={"options": json.dumps({})},
    )
    assert r.status_code == 202, r.text
    job = r.json()["id"]

    def done() -> dict[str, Any] | None:
        found = http.get(f"/projects/{PROJECT}/jobs/{job}").json()
        return found if found["state"] in ("succeeded", "failed", "cancelled") else None

    assert wait_for(f"ingest job {job}", done, timeout=60)["state"] == "succeeded"


def test_a_new_dataset_version_starts_the_workflow(server: LiveServer, http: httpx.Client) -> None:
    upload(http, "signups", csv(5))  # version 1, there before the trigger
    with Client(server.url, server.admin_key) as sdk:
        made = sdk.workflows.set_trigger(
            PROJECT, "echo", "on-signups", "dataset", dataset="signups", every=1,
            input={"notify": "ops"},
        )  # fmt: skip
        assert (made.kind, made.spec, made.fired) == (
            "dataset",
            {"dataset": "signups", "every": 1.0},
            0,
        )
        upload(http, "signups", csv(8))  # version 2

        def fired() -> list[Any]:
            found = sdk.workflows.executions(PROJECT, "echo")
            return [e for e in found if e.trigger == "dataset:on-signups"]

        (execution,) = wait_for("an execution for version 2", fired, timeout=20)
        assert execution.input == {
            "notify": "ops",
            "dataset": "signups@2",
            "trigger": "on-signups",
        }
        assert sdk.workflows.wait(PROJECT, "echo", execution.id, timeout=20).status == "SUCCEEDED"
        (listed,) = [t for t in sdk.workflows.triggers(PROJECT, "echo") if t.name == "on-signups"]
        assert listed.fired == 1 and listed.last_fired_at is not None
        assert len(fired()) == 1  # still one, several heartbeats later

        sdk.workflows.delete_trigger(PROJECT, "echo", "on-signups")
        with pytest.raises(NotFound):
            sdk.workflows.delete_trigger(PROJECT, "echo", "on-signups")
        with pytest.raises(InvalidInput) as err:
            sdk.workflows.set_trigger(PROJECT, "echo", "t", "schedule", cron="bad")
        assert err.value.field == "cron"
