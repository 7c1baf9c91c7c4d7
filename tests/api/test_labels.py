"""Labels on a live server with its worker: a labeller labels, a maintainer (another key)
approves and applies them as a new version; label files are imported from the request
body and exported, with Label Studio tasks linking images to the server."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from loopml.core.enums import JobState
from loopml.core.schemas import Job
from loopml.sdk import Client
from tests.api.support import assert_problem, client
from tests.conftest import LiveServer
from tests.data.support import png

PROJECT = "farm"
ROWS, UNLABELLED = 30, 6


def pets_csv() -> bytes:
    """Pets ``pet000``... (an identifier column): the first six without a kind."""
    lines = ["pet,weight,colour,kind"]
    for i in range(ROWS):
        kind = "" if i < UNLABELLED else ("cat" if i % 2 else "dog")
        lines.append(f"pet{i:03d},{2 + i * 1.25},{('black', 'white', 'ginger')[i % 3]},{kind}")
    return ("\n".join(lines) + "\n").encode()


PICTURES = {f"{i}.png": png((i * 60, 100, 250 - i * 60)) for i in range(3)}


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> Iterator[httpx.Client]:
    with client(server, server.admin_key) as http:
        assert http.post("/projects", json={"name": PROJECT}).status_code == 201
        yield http


@pytest.fixture(scope="module")
def sdk(server: LiveServer) -> Iterator[Client]:
    with Client(server.url, server.admin_key) as c:
        yield c


def keyed(server: LiveServer, admin: httpx.Client, role: str) -> Iterator[httpx.Client]:
    r = admin.post("/keys", json={"name": f"farm-{role}", "roles": {PROJECT: role}})
    assert r.status_code == 201, r.text
    with client(server, r.json()["secret"]) as http:
        yield http


@pytest.fixture(scope="module")
def viewer(server: LiveServer, admin: httpx.Client) -> Iterator[httpx.Client]:
    yield from keyed(server, admin, "viewer")


@pytest.fixture(scope="module")
def labeller(server: LiveServer, admin: httpx.Client) -> Iterator[httpx.Client]:
    yield from keyed(server, admin, "labeller")


@pytest.fixture(scope="module")
def maintainer(server: LiveServer, admin: httpx.Client) -> Iterator[httpx.Client]:
    yield from keyed(server, admin, "maintainer")


def dataset(admin: httpx.Client, sdk: Client, name: str, files: dict[str, bytes]) -> str:
    """Upload ``files`` as dataset ``name`` (target ``kind`` for a table) and wait for it."""
    options = {} if all(n.endswith(".png") for n in files) else {"target": "kind"}
    r = admin.post(
        f"/projects/{PROJECT}/datasets/{name}/uploads",
        files=[("files", (n, data, "application/octet-stream")) for n, data in files.items()],
        data={"options": json.dumps(options)},
    )
    assert r.status_code == 202, r.text
    job = sdk.jobs.wait(PROJECT, Job.model_validate(r.json()).id, timeout=60, poll=0.1)
    assert job.state is JobState.succeeded, job.error
    return f"/projects/{PROJECT}/datasets/{name}"


def pets(admin: httpx.Client, sdk: Client, name: str) -> str:
    return dataset(admin, sdk, name, {"pets.csv": pets_csv()})


def add(http: httpx.Client, path: str, *pairs: tuple[str, str]) -> httpx.Response:
    return http.post(f"{path}/labels", json={"labels": [{"item": i, "value": v} for i, v in pairs]})


def labelled(http: httpx.Client, path: str, *pairs: tuple[str, str]) -> list[dict[str, Any]]:
    r = add(http, path, *pairs)
    assert r.status_code == 201, r.text
    return list(r.json())


def items(http: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    r = http.get(f"{path}/items", params=params)
    assert r.status_code == 200, r.text
    return list(r.json())


def import_file(http: httpx.Client, path: str, data: bytes, fmt: str) -> httpx.Response:
    return http.post(
        f"{path}/labels/import",
        params={"format": fmt},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )


def test_a_labeller_labels_a_maintainer_approves_and_apply_makes_a_version(
    admin: httpx.Client,
    sdk: Client,
    viewer: httpx.Client,
    labeller: httpx.Client,
    maintainer: httpx.Client,
) -> None:
    path = pets(admin, sdk, "pets")
    todo = items(labeller, path, unlabelled="true")
    assert [i["item"] for i in todo] == [f"pet{i:03d}" for i in range(UNLABELLED)]
    assert {i["value"] for i in todo} == {None}
    every = items(labeller, path)
    assert len(every) == ROWS and every[UNLABELLED]["value"] == "dog"
    first = admin.get(f"{path}/versions/1").json()
    assert sum(i["test"] for i in every) == first["split"]["test_rows"] > 0

    made = labelled(labeller, path, ("pet000", "cat"), ("pet001", "dog"))
    assert [(x["item"], x["value"], x["status"]) for x in made] == [
        ("pet000", "cat", "pending_review"),
        ("pet001", "dog", "pending_review"),
    ]
    assert {x["author"] for x in made} == {"farm-labeller"}
    detail = assert_problem(maintainer.post(f"{path}/labels/apply"), 409, code="conflict")
    assert "no approved labels" in detail["detail"]

    for x in made:
        r = maintainer.post(f"{path}/labels/{x['id']}/review", json={"approve": True, "note": "ok"})
        assert r.status_code == 200, r.text
        assert (r.json()["status"], r.json()["reviewer"]) == ("approved", "farm-maintainer")
        assert r.json()["note"] == "ok"

    r = maintainer.post(f"{path}/labels/apply")
    assert r.status_code == 201, r.text
    applied = r.json()
    assert applied["created"] is True
    assert (applied["labels"], applied["changed"], applied["missing_items"]) == (2, 2, 0)
    assert (applied["version"]["number"], applied["version"]["parent"]) == (2, 1)
    assert [i["test"] for i in items(viewer, path)] == [i["test"] for i in every]
    assert admin.get(f"{path}/versions/latest").json()["number"] == 2
    assert [i["item"] for i in items(viewer, path, unlabelled=True)] == [
        f"pet{i:03d}" for i in range(2, UNLABELLED)
    ]
    values = {i["item"]: i["value"] for i in items(labeller, path)}
    assert (values["pet000"], values["pet001"]) == ("cat", "dog")
    listed = labeller.get(f"{path}/labels", params={"status": "approved"}).json()
    assert [(x["item"], x["applied_in"]) for x in listed] == [("pet000", 2), ("pet001", 2)]

    again = maintainer.post(f"{path}/labels/apply")
    assert again.status_code == 200, again.text
    assert again.json()["created"] is False and again.json()["version"]["number"] == 2
    versions = admin.get(f"{path}/versions").json()
    assert [v["number"] for v in versions] == [1, 2]


def test_roles_a_viewer_cannot_label_and_a_labeller_cannot_review_or_apply(
    admin: httpx.Client,
    sdk: Client,
    viewer: httpx.Client,
    labeller: httpx.Client,
    maintainer: httpx.Client,
) -> None:
    path = pets(admin, sdk, "roles")
    assert len(items(viewer, path, unlabelled=True)) == UNLABELLED  # a viewer may look
    problem = assert_problem(add(viewer, path, ("pet000", "cat")), 403, code="forbidden")
    assert "needs 'labeller'" in problem["detail"]
    r = import_file(viewer, path, b"item,label\npet000,cat\n", "csv")
    assert_problem(r, 403, code="forbidden")

    (made,) = labelled(labeller, path, ("pet000", "cat"))
    r = labeller.post(f"{path}/labels/{made['id']}/review", json={"approve": True})
    assert "needs 'maintainer'" in assert_problem(r, 403, code="forbidden")["detail"]
    r = labeller.post(f"{path}/labels/apply")
    assert "needs 'maintainer'" in assert_problem(r, 403, code="forbidden")["detail"]
    assert labeller.get(f"{path}/labels").json()[0]["status"] == "pending_review"
    assert admin.get(f"{path}/versions/latest").json()["number"] == 1
    assert (
        maintainer.post(f"{path}/labels/{made['id']}/review", json={"approve": False}).json()[
            "status"
        ]
        == "rejected"
    )


def test_a_key_cannot_review_its_own_labels(
    admin: httpx.Client, sdk: Client, maintainer: httpx.Client
) -> None:
    path = pets(admin, sdk, "own")
    (made,) = labelled(maintainer, path, ("pet002", "dog"))
    r = maintainer.post(f"{path}/labels/{made['id']}/review", json={"approve": True})
    problem = assert_problem(r, 409, field="label_id", code="conflict")
    assert "farm-maintainer" in problem["detail"]
    assert "another key must review it" in problem["detail"]
    r = admin.post(f"{path}/labels/{made['id']}/review", json={"approve": True})
    assert r.status_code == 200 and r.json()["status"] == "approved", r.text
    r = admin.post(f"{path}/labels/{made['id']}/review", json={"approve": False})
    assert "already approved" in assert_problem(r, 409, code="conflict")["detail"]
    assert_problem(admin.post(f"{path}/labels/nope/review", json={"approve": True}), 404)


def test_bad_labels_are_422_naming_the_item_or_the_value(
    admin: httpx.Client, sdk: Client, labeller: httpx.Client
) -> None:
    path = pets(admin, sdk, "checked")
    problem = assert_problem(add(labeller, path, ("pet000", "cat"), ("pet999", "dog")), 422, "item")
    assert "pet999" in problem["detail"] and "1 item(s) are not in checked@1" in problem["detail"]
    problem = assert_problem(add(labeller, path, ("pet000", "parrot")), 422, "value")
    assert "'parrot' not among the classes of 'kind'" in problem["detail"]
    assert labeller.get(f"{path}/labels").json() == []  # nothing of a refused batch kept
    assert_problem(labeller.post(f"{path}/labels", json={"labels": []}), 422)


def test_import_csv_and_label_studio_from_the_request_body(
    admin: httpx.Client, sdk: Client, labeller: httpx.Client, maintainer: httpx.Client
) -> None:
    path = pets(admin, sdk, "imported")
    r = import_file(labeller, path, b"item,label\npet000,cat\npet001,dog\n", "csv")
    assert r.status_code == 201, r.text
    assert [(x["item"], x["value"], x["source"]) for x in r.json()] == [
        ("pet000", "cat", "import"),
        ("pet001", "dog", "import"),
    ]
    dog = [{"result": [{"value": {"choices": ["dog"]}}]}]
    cat = [{"result": [{"value": {"choices": ["cat"]}}]}]
    tasks = [
        {"data": {"item": "pet002"}, "annotations": dog},
        {"data": {"item": "pet003"}, "predictions": cat},  # a model's guess, not annotated
    ]
    r = import_file(labeller, path, json.dumps(tasks).encode(), "label-studio")
    assert r.status_code == 201, r.text
    assert [(x["item"], x["value"]) for x in r.json()] == [("pet002", "dog"), ("pet003", "cat")]
    assert len(labeller.get(f"{path}/labels", params={"status": "pending_review"}).json()) == 4

    r = import_file(labeller, path, b"item,label\npet004,cat\npet005,\n", "csv")
    assert "line 3" in assert_problem(r, 422, field="file")["detail"]
    r = import_file(labeller, path, b"item,label\nghost,cat\n", "csv")
    assert "ghost" in assert_problem(r, 422, field="item")["detail"]
    r = import_file(labeller, path, json.dumps([{"data": {}}]).encode(), "label-studio")
    assert "task 0" in assert_problem(r, 422, field="file")["detail"]
    assert_problem(import_file(labeller, path, b"item,label\n", "xml"), 422)
    assert len(labeller.get(f"{path}/labels").json()) == 4

    # Exported, the labels read back; only the approved ones with ?status=approved.
    first = labeller.get(f"{path}/labels").json()[0]
    maintainer.post(f"{path}/labels/{first['id']}/review", json={"approve": True})
    r = labeller.get(f"{path}/labels/export", params={"format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="farm-imported-labels.csv"' in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(x["item"], x["label"]) for x in rows] == [
        ("pet000", "cat"),
        ("pet001", "dog"),
        ("pet002", "dog"),
        ("pet003", "cat"),
    ]
    r = labeller.get(f"{path}/labels/export", params={"format": "jsonl", "status": "approved"})
    assert [json.loads(line)["item"] for line in r.text.splitlines()] == ["pet000"]


def test_label_studio_export_of_images_links_each_to_its_image(
    server: LiveServer,
    admin: httpx.Client,
    sdk: Client,
    viewer: httpx.Client,
    labeller: httpx.Client,
) -> None:
    path = dataset(admin, sdk, "pictures", PICTURES)
    hashes = {hashlib.sha256(data).hexdigest(): data for data in PICTURES.values()}
    todo = items(viewer, path, unlabelled=True)
    assert sorted(i["item"] for i in todo) == sorted(hashes)
    labelled(labeller, path, *[(sha, f"colour{n % 2}") for n, sha in enumerate(hashes)])

    r = viewer.get(f"{path}/labels/export", params={"format": "label-studio"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    tasks = r.json()
    assert [t["data"]["item"] for t in tasks] == list(hashes)
    for t in tasks:
        url = t["data"]["image"]
        assert url == f"{server.url}/api/v1{path}/images/{t['data']['item']}"
        image = viewer.get(url)
        assert image.status_code == 200, image.text
        assert image.headers["content-type"] == "image/png"
        assert image.content == hashes[t["data"]["item"]]
        assert httpx.get(url).status_code == 401  # images need a key too

    # The export, relabelled in Label Studio, imports back.
    for t in tasks:
        t["annotations"].append({"result": [{"value": {"choices": ["colour1"]}}]})
    r = import_file(labeller, path, json.dumps(tasks).encode(), "label-studio")
    assert r.status_code == 201, r.text
    assert {x["value"] for x in r.json()} == {"colour1"}

    unknown = "0" * 64
    assert_problem(viewer.get(f"{path}/images/{unknown}"), 404)
    assert_problem(viewer.get(f"{path}/images/not-a-hash"), 404, field="sha256")


def test_labels_from_a_model_or_from_feedback_keep_their_source_and_await_review(
    admin: httpx.Client, sdk: Client, labeller: httpx.Client
) -> None:
    path = pets(admin, sdk, "pets-sources")
    for source, item in (("model", "pet000"), ("feedback", "pet001")):
        body = {"labels": [{"item": item, "value": "cat"}], "source": source}
        r = labeller.post(f"{path}/labels", json=body)
        assert r.status_code == 201, r.text
        [made] = r.json()
        assert (made["item"], made["source"], made["status"]) == (item, source, "pending_review")
    listed = labeller.get(f"{path}/labels").json()
    assert sorted((x["item"], x["source"]) for x in listed) == [
        ("pet000", "model"),
        ("pet001", "feedback"),
    ]
    body = {"labels": [{"item": "pet002", "value": "cat"}], "source": "oracle"}
    assert_problem(labeller.post(f"{path}/labels", json=body), 422)
