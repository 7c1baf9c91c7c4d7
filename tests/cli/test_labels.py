"""``loopml data labels`` in local mode: list the items to label, add labels, see that
the local key may not approve its own, turn review off, apply, export and import."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import httpx
import pytest

from tests.api.test_labels import UNLABELLED, pets_csv
from tests.cli.test_cli import cli, ok, ok_json, remote
from tests.conftest import LiveServer


@pytest.fixture
def pets() -> str:
    """``farm/pets@1`` from a local CSV: pets ``pet000``... the first six unlabelled."""
    path = Path("pets.csv")
    path.write_bytes(pets_csv())
    ok("data", "add", str(path), "-p", "farm", "-n", "pets", "-t", "kind")
    return "farm/pets"


def test_label_review_and_apply_from_the_command_line(pets: str) -> None:
    todo = ok_json("data", "labels", "items", pets, "--unlabelled")
    assert [i["item"] for i in todo] == [f"pet{i:03d}" for i in range(UNLABELLED)]
    assert all(i["value"] is None for i in todo)
    shown = ok("data", "labels", "items", pets, "--limit", "8").stdout
    assert "pet000" in shown and "pet007" in shown and "pet008" not in shown

    added = ok_json("data", "labels", "add", pets, "pet000=cat", "pet001=dog")
    assert [(x["item"], x["value"], x["status"]) for x in added] == [
        ("pet000", "cat", "pending_review"),
        ("pet001", "dog", "pending_review"),
    ]
    assert "pet001" in ok("data", "labels", "list", pets).stdout

    # The local key made them: it may not approve them, and says so.
    refused = cli("data", "labels", "review", pets, "--approve")
    assert refused.exit_code == 1
    assert "left 2 pending label(s) made with this key" in refused.stderr
    assert "another key must review them" in refused.stderr
    assert "Traceback" not in refused.output
    statuses = ok_json("data", "labels", "list", pets)
    assert [x["status"] for x in statuses] == ["pending_review", "pending_review"]
    nothing = cli("data", "labels", "apply", pets)
    assert nothing.exit_code == 1 and "no approved labels to apply" in nothing.stderr

    project = ok_json("projects", "set", "farm", "--no-label-review")
    assert project["label_review"] is False
    made = ok_json("data", "labels", "add", pets, "pet002=dog", "pet003=cat")
    assert [(x["item"], x["status"]) for x in made] == [
        ("pet002", "approved"),
        ("pet003", "approved"),
    ]

    applied = ok("data", "labels", "apply", pets).stdout
    assert "new version: 2 labels applied, 2 rows changed" in applied
    assert "farm/pets@2" in applied
    left = ok_json("data", "labels", "items", pets, "--unlabelled")
    assert [i["item"] for i in left] == ["pet000", "pet001", "pet004", "pet005"]
    again = ok("data", "labels", "apply", pets).stdout
    assert "unchanged: the latest version already holds them" in again
    assert "farm/pets@3" not in again

    out = Path("labels.csv")  # in the test's own working directory
    wrote = ok("data", "labels", "export", pets, "--format", "csv", "-o", str(out))
    assert f"to {out}" in wrote.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [(r["item"], r["label"], r["status"]) for r in rows] == [
        ("pet000", "cat", "pending_review"),
        ("pet001", "dog", "pending_review"),
        ("pet002", "dog", "approved"),
        ("pet003", "cat", "approved"),
    ]


def test_import_a_label_file_and_bad_input(pets: str) -> None:
    Path("mine.csv").write_text("item,label\npet004,cat\npet005,dog\n")
    out = ok("data", "labels", "import", pets, "mine.csv")
    assert "imported 2 labels from mine.csv" in out.stdout
    listed = ok_json("data", "labels", "list", pets)
    assert [(x["item"], x["value"], x["source"]) for x in listed] == [
        ("pet004", "cat", "import"),
        ("pet005", "dog", "import"),
    ]

    Path("ghosts.csv").write_text("item,label\nghost,cat\n")
    bad = cli("data", "labels", "import", pets, "ghosts.csv")
    assert bad.exit_code == 2 and "ghost" in bad.stderr
    Path("labels.txt").write_text("item,label\npet004,cat\n")
    unknown = cli("data", "labels", "import", pets, "labels.txt")
    assert unknown.exit_code == 2 and "pass --format" in unknown.stderr
    ok("data", "labels", "import", pets, "labels.txt", "--format", "csv")

    wrong = cli("data", "labels", "add", pets, "pet004")
    assert wrong.exit_code == 2 and "expected ITEM=LABEL" in wrong.stderr
    parrot = cli("data", "labels", "add", pets, "pet004=parrot")
    assert parrot.exit_code == 2 and "'parrot' not among the classes" in parrot.stderr
    assert len(ok_json("data", "labels", "list", pets)) == 3


def test_reviewing_every_pending_label_leaves_only_the_reviewers_own(
    live_server: LiveServer,
) -> None:
    with httpx.Client(
        base_url=live_server.url + "/api/v1",
        headers={"Authorization": f"Bearer {live_server.admin_key}"},
        timeout=30,
    ) as admin:
        assert admin.post("/projects", json={"name": "farm"}).status_code == 201
        files = [("files", ("pets.csv", pets_csv(), "text/csv"))]
        up = admin.post(
            "/projects/farm/datasets/pets/uploads",
            params={"wait": 30},
            files=files,
            data={"options": '{"target": "kind"}'},
        )
        assert up.status_code == 200, up.text
        made = admin.post("/keys", json={"name": "farm-labeller", "roles": {"farm": "labeller"}})
        other = made.json()["secret"]
        add = "/projects/farm/datasets/pets/labels"
        assert labeller_post(live_server, other, add, "pet000", "cat") == 201
        assert labeller_post(live_server, other, add, "pet001", "dog") == 201
        mine = {"labels": [{"item": "pet002", "value": "dog"}]}  # the reviewer's own, between
        assert admin.post(add, json=mine).status_code == 201
        assert labeller_post(live_server, other, add, "pet003", "cat") == 201

    reviewed = cli(*remote(live_server, "data", "labels", "review", "farm/pets", "--approve"))
    assert reviewed.exit_code == 0, reviewed.output
    assert "left 1 pending label(s) made with this key" in reviewed.stderr
    listed = ok_json(*remote(live_server, "data", "labels", "list", "farm/pets"))
    assert {x["item"]: x["status"] for x in listed} == {
        "pet000": "approved", "pet001": "approved", "pet002": "pending_review",
        "pet003": "approved",
    }  # fmt: skip


def labeller_post(live: LiveServer, key: str, path: str, item: str, value: str) -> int:
    with httpx.Client(
        base_url=live.url + "/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as http:
        return http.post(path, json={"labels": [{"item": item, "value": value}]}).status_code
