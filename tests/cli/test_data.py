"""``loopml data``: add a local file as a dataset version (locally, working the home's own
queue, or by upload to a server), then list, show, split, check and export it."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from tests.api.test_datasets import customers_csv
from tests.cli.test_cli import cli, ok, ok_json, remote
from tests.conftest import LiveServer
from tests.data.support import cifar100_archive
from tests.data.test_images_cifar import TEST, TRAIN


@pytest.fixture
def customers() -> Path:
    """``customers.csv`` in the working directory (the test's own tmp folder)."""
    path = Path("customers.csv")
    path.write_bytes(customers_csv())
    return path


def rows_of(body: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body)))


def test_add_a_local_csv_without_a_server(customers: Path) -> None:
    out = ok("data", "add", str(customers), "-p", "shop", "--target", "churned")
    assert "created project shop" in out.stderr
    assert "running the queue of this home" in out.stderr  # no server: it works the queue
    assert "shop/customers@1" in out.stdout  # named after the file
    assert "60" in out.stdout and "churned (binary)" in out.stdout
    assert "48 train / 12 frozen test" in out.stdout
    assert "target_leakage" in out.stdout  # the main findings are shown
    assert "shop" in [p["name"] for p in ok_json("projects", "list")]

    again = ok("data", "add", str(customers), "-p", "shop", "--target", "churned")
    assert "unchanged: shop/customers@1 already holds this content" in again.stdout
    assert "customers@2" not in again.stdout

    customers.write_bytes(customers_csv(rows=70))
    grown = ok_json("data", "add", str(customers), "-p", "shop", "-n", "customers", "-t", "churned")
    assert grown["created"] is True
    assert (grown["version"]["number"], grown["version"]["rows"]) == (2, 70)
    assert grown["version"]["changes"]["files_changed"] == ["customers.csv"]


def test_add_with_options_as_json(customers: Path) -> None:
    args = ["data", "add", str(customers), "-p", "shop", "--name", "churn", "-t", "churned"]
    made = ok_json(*args, "--kind", "age=categorical", "--split", "random", "--test-size", "0.25")
    version = made["version"]
    assert made["created"] is True
    assert version["dataset"] == "churn" and version["number"] == 1
    kinds = {c["name"]: c["kind"] for c in version["data_schema"]["columns"]}
    assert kinds["age"] == "categorical"
    assert version["split"]["method"] == "random" and version["split"]["test_rows"] == 15


def test_data_commands_against_a_server_upload_and_read(
    live_server: LiveServer, customers: Path, tmp_path: Path
) -> None:
    add = ["data", "add", str(customers), "-p", "shop", "-n", "churn", "-t", "churned", "--json"]
    made = json.loads(ok(*remote(live_server, *add)).stdout)
    assert made["created"] is True
    assert made["version"]["source"].startswith("upload:")  # sent, not read by the server

    listed = ok(*remote(live_server, "data", "list", "-p", "shop")).stdout
    assert "churn" in listed and "(uploads)" in listed
    assert [d["name"] for d in ok_json(*remote(live_server, "data", "list", "-p", "shop"))] == [
        "churn"
    ]

    shown = ok(*remote(live_server, "data", "show", "shop/churn@1")).stdout
    assert "shop/churn@1" in shown
    for column in ("customer", "region", "spend", "identifier"):
        assert column in shown
    assert ok_json(*remote(live_server, "data", "show", "shop/churn")) == made["version"]

    quality = ok_json(*remote(live_server, "data", "quality", "shop/churn@1"))
    assert quality == made["version"]["quality"]
    warnings = ok_json(
        *remote(live_server, "data", "quality", "shop/churn@1", "--severity", "warning")
    )
    assert {f["severity"] for f in warnings} == {"warning"}
    assert (
        "no findings"
        in ok(*remote(live_server, "data", "quality", "shop/churn", "--severity", "error")).stdout
    )

    split = ["data", "split", "shop/churn@1", "--method", "random", "--test-size", "0.3"]
    derived = ok_json(*remote(live_server, *split))
    assert derived["number"] == 2 and derived["parent"] == 1
    assert derived["split"]["method"] == "random"
    assert (derived["split"]["train_rows"], derived["split"]["test_rows"]) == (42, 18)
    assert "shop/churn@2" in ok(*remote(live_server, *split)).stdout  # same split: same version

    versions = ok(*remote(live_server, "data", "versions", "shop/churn")).stdout
    assert "first version" in versions and "stratified" in versions and "random" in versions
    assert "2 (current)" in versions and "1 (current)" not in versions
    numbers = [v["number"] for v in ok_json(*remote(live_server, "data", "versions", "shop/churn"))]
    assert numbers == [1, 2]

    out = tmp_path / "test.csv"
    wrote = ok(
        *remote(live_server, "data", "rows", "shop/churn@2", "--part", "test", "-o", str(out))
    )
    assert f"to {out}" in wrote.stderr
    test_rows = rows_of(out.read_text())
    assert len(test_rows) == 18
    train = rows_of(
        ok(*remote(live_server, "data", "rows", "shop/churn@2", "--part", "train")).stdout
    )
    assert len(train) == 42
    assert {r["customer"] for r in test_rows}.isdisjoint(r["customer"] for r in train)


def test_add_with_no_upload_has_the_server_read_the_path(
    live_server: LiveServer, customers: Path
) -> None:
    args = ["data", "add", str(customers), "-p", "shop", "--no-upload", "--json"]
    made = json.loads(ok(*remote(live_server, *args)).stdout)
    assert made["version"]["source"] == str(customers.resolve())
    synced = ok_json(*remote(live_server, "data", "sync", "shop/customers"))
    assert synced["created"] is False and synced["version"]["number"] == 1


@pytest.mark.parametrize("ref", ["nope", "shop/", "shop/churn@two", "a/b/c"])
def test_a_malformed_reference_exits_2_showing_the_form(ref: str) -> None:
    result = cli("data", "show", ref)
    assert result.exit_code == 2
    assert f"{ref!r} is not PROJECT/NAME or PROJECT/NAME@VERSION" in result.stderr
    assert "Traceback" not in result.output


def test_a_missing_file_exits_2_naming_it() -> None:
    result = cli("data", "add", "missing.csv", "-p", "shop")
    assert result.exit_code == 2
    assert "missing.csv does not exist" in result.stderr
    assert "Traceback" not in result.output


def test_an_unknown_dataset_exits_1_naming_it() -> None:
    ok("projects", "create", "shop")
    result = cli("data", "show", "shop/ghost")
    assert result.exit_code == 1
    assert "dataset 'ghost' does not exist in project 'shop'" in result.stderr


def test_a_malformed_csv_fails_the_add_naming_the_line() -> None:
    Path("broken.csv").write_bytes(b"a,b\n1,2\n3,4\n5,6,7\n")
    result = cli("data", "add", "broken.csv", "-p", "shop")
    assert result.exit_code == 1
    assert "ingest failed" in result.stdout and "line 4" in result.stdout


def test_train_on_an_added_dataset_reports_its_test_score(customers: Path) -> None:
    ok("data", "add", str(customers), "-p", "shop", "-n", "churn", "-t", "churned")
    out = ok("train", "-p", "shop", "-d", "churn", "--budget", "2")
    assert "churn@1" in out.stdout
    line = next(line for line in out.stdout.splitlines() if "test score" in line)
    assert "(frozen test split)" in line
    assert "roc_auc" in line or "log_loss" in line


def test_add_a_cifar_archive_keeping_the_classes_named(tmp_path: Path) -> None:
    archive = cifar100_archive(tmp_path / "cifar-100-python.tar.gz", TRAIN, TEST)
    out = ok(
        "data", "add", str(archive), "-p", "zoo", "-n", "bikes", "--classes", "bicycle,motorcycle"
    )
    assert "zoo/bikes@1" in out.stdout
    assert re.search(r"data\.ingest .* 100% .* done", out.stderr)  # the ingest's progress bar
    version = ok_json("data", "show", "zoo/bikes")
    assert version["rows"] == 12  # 9 training and 3 test images of the two classes
    assert version["split"]["method"] == "predefined"  # the archive's own test part
    assert version["split"]["test_rows"] == 3
    refused = cli("data", "add", str(archive), "-p", "zoo", "-n", "none", "--classes", "dragon")
    assert refused.exit_code != 0
    assert "dragon" in refused.stderr + refused.stdout
