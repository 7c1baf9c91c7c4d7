"""``client.datasets``: uploads (folders file by file, with their class sub-folders),
server-side ingests, versions, quality, derived versions and rows, as typed results."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from loopml.core import errors
from loopml.core.enums import JobState
from loopml.core.schemas import Dataset, DatasetVersion, Job, QualityFinding
from loopml.sdk import Client
from tests.api.support import serve
from tests.api.test_datasets import customers_csv, parse_csv
from tests.conftest import LiveServer

PROJECT = "sdk-data"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve(tmp_path_factory) as live:
        yield live


@pytest.fixture(scope="module")
def sdk(server: LiveServer) -> Iterator[Client]:
    with Client(server.url, server.admin_key) as c:
        c.projects.create(PROJECT)
        yield c


def ingested(sdk: Client, job: Job) -> DatasetVersion:
    """The version a ``data.ingest`` job made (or found), once the job has ended."""
    assert isinstance(job, Job) and job.kind == "data.ingest"
    done = sdk.jobs.wait(PROJECT, job.id, timeout=60, poll=0.1)
    assert done.state is JobState.succeeded, done.error
    assert done.result is not None
    name = done.result["dataset"]
    return sdk.datasets.version(PROJECT, name, done.result["version"])


@pytest.fixture(scope="module")
def iris(sdk: Client) -> DatasetVersion:
    job = sdk.datasets.ingest(
        PROJECT, "iris", "builtin:iris", split={"method": "random", "test_size": 0.25}
    )
    return ingested(sdk, job)


def picture(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (6, 4), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def test_upload_a_folder_of_images_keeps_the_class_folders_as_labels(
    sdk: Client, tmp_path: Path
) -> None:
    pets = tmp_path / "pets"
    expected = {}
    for label, base in (("cat", (200, 0, 0)), ("dog", (0, 0, 200))):
        (pets / label).mkdir(parents=True)
        for i in range(3):
            (pets / label / f"{i}.png").write_bytes(picture((base[0], 40 * i, base[2])))
            expected[f"{label}/{i}.png"] = label
    (pets / ".DS_Store").write_bytes(b"\0junk")  # hidden: never sent
    (pets / "cat" / ".thumbs").mkdir()
    (pets / "cat" / ".thumbs" / "0.png").write_bytes(picture((1, 2, 3)))

    made = ingested(sdk, sdk.datasets.upload(PROJECT, "pets", [pets], target="label"))
    assert made.rows == 6
    assert sorted(f["name"] for f in made.manifest["files"]) == sorted(expected)
    assert made.manifest["images"]["count"] == 6
    assert made.manifest["images"]["sizes"] == {"6x4": 6}
    schema = made.data_schema
    assert schema.target == "label"
    kinds = {c.name: c.kind.value for c in schema.columns}
    assert kinds["image"] == "image"
    rows = json.loads(sdk.datasets.rows(PROJECT, "pets", made.number, format="json"))
    assert {r["file"]: r["label"] for r in rows} == expected


def test_upload_files_given_one_by_one_and_options(sdk: Client, tmp_path: Path) -> None:
    first, second = tmp_path / "jan.csv", tmp_path / "feb.csv"
    first.write_bytes(customers_csv(rows=20))
    second.write_bytes(customers_csv(rows=20, start=20, seed=1))
    job = sdk.datasets.upload(
        PROJECT,
        "months",
        [str(first), second],
        target="churned",
        kinds={"age": "categorical"},
        split={"method": "grouped", "column": "region", "test_size": 0.3},
        description="two months",
    )
    made = ingested(sdk, job)
    assert made.rows == 40
    assert [f["name"] for f in made.manifest["files"]] == ["feb.csv", "jan.csv"]
    age = made.data_schema.column("age")
    assert age is not None and age.kind.value == "categorical" and age.inferred is not None
    assert made.split["method"] == "grouped" and made.split["column"] == "region"
    dataset = sdk.datasets.get(PROJECT, "months")
    assert isinstance(dataset, Dataset)
    assert dataset.description == "two months" and dataset.versions == 1


def test_ingest_versions_and_version(sdk: Client, iris: DatasetVersion) -> None:
    assert isinstance(iris, DatasetVersion)
    assert iris.rows == 150 and iris.data_schema.target == "target"
    assert iris.split["method"] == "random"
    assert iris.split["test_rows"] == round(150 * 0.25)
    assert sdk.datasets.version(PROJECT, "iris", iris.number) == iris
    versions = sdk.datasets.versions(PROJECT, "iris")
    assert all(isinstance(v, DatasetVersion) for v in versions)
    assert iris in versions
    numbers = [v.number for v in versions]
    assert numbers == sorted(numbers)
    assert sdk.datasets.version(PROJECT, "iris").number == numbers[-1]  # latest, by default
    assert "iris" in [d.name for d in sdk.datasets.list(PROJECT)]

    # Same source, same options: the sync finds the version that already holds them.
    job = sdk.datasets.sync(PROJECT, "iris")
    assert ingested(sdk, job) == iris
    assert (sdk.jobs.get(PROJECT, job.id).result or {})["created"] is False
    assert [v.number for v in sdk.datasets.versions(PROJECT, "iris")] == numbers


def test_quality_is_typed_and_filters(sdk: Client, tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_bytes(customers_csv())
    made = ingested(sdk, sdk.datasets.upload(PROJECT, "churn", [path], target="churned"))
    found = sdk.datasets.quality(PROJECT, "churn", made.number)
    assert found and all(isinstance(f, QualityFinding) for f in found)
    assert found == made.quality
    warnings = sdk.datasets.quality(PROJECT, "churn", severity="warning")
    assert {f.severity.value for f in warnings} == {"warning"}
    assert ("target_leakage", "spend") in {(f.check, f.column) for f in warnings}
    assert len(warnings) < len(found)


def test_derive_makes_a_version_with_another_target_and_task(
    sdk: Client, iris: DatasetVersion
) -> None:
    made = sdk.datasets.derive(
        PROJECT, "iris", iris.number, target="petal width (cm)", task="regression"
    )
    assert isinstance(made, DatasetVersion)
    assert made.number > iris.number and made.rows == iris.rows
    assert made.data_schema.target == "petal width (cm)"
    assert made.data_schema.task is not None and made.data_schema.task.value == "regression"
    assert made.split["method"] == "random"  # the parent's split options are kept
    assert made.changes["same_data"] is True and made.changes["target"] == "petal width (cm)"
    same = sdk.datasets.derive(
        PROJECT, "iris", iris.number, target="petal width (cm)", task="regression"
    )
    assert same.number == made.number

    with pytest.raises(errors.InvalidInput) as raised:
        sdk.datasets.derive(PROJECT, "iris", iris.number, target="colour")
    assert raised.value.field == "target"
    assert "'colour'" in str(raised.value)


def test_rows_in_every_format_and_part(sdk: Client, iris: DatasetVersion) -> None:
    csv_all = parse_csv(sdk.datasets.rows(PROJECT, "iris", iris.number))
    assert len(csv_all) == 150
    test = pq.read_table(
        io.BytesIO(sdk.datasets.rows(PROJECT, "iris", iris.number, part="test", format="parquet"))
    )
    train = json.loads(sdk.datasets.rows(PROJECT, "iris", iris.number, part="train", format="json"))
    assert test.num_rows == iris.split["test_rows"]
    assert len(train) == iris.split["train_rows"]
    assert test.num_rows + len(train) == 150
    assert set(test.column_names) == set(csv_all[0]) == set(train[0])
    assert len(parse_csv(sdk.datasets.rows(PROJECT, "iris", iris.number, limit=7))) == 7


def test_errors_come_back_as_core_errors(
    server: LiveServer, sdk: Client, iris: DatasetVersion, tmp_path: Path
) -> None:
    with pytest.raises(errors.NotFound) as missing:
        sdk.datasets.version(PROJECT, "nope")
    assert "'nope'" in str(missing.value)
    with pytest.raises(errors.NotFound) as no_version:
        sdk.datasets.rows(PROJECT, "iris", 99)
    assert no_version.value.field == "version"
    with Client(server.url) as anonymous, pytest.raises(errors.Unauthenticated):
        anonymous.datasets.list(PROJECT)
    path = tmp_path / "x.csv"
    path.write_bytes(customers_csv(rows=5))
    with pytest.raises(errors.InvalidInput) as bad:
        sdk.datasets.upload(PROJECT, "x", [path], split={"method": "magic"})
    assert bad.value.field == "options.split.method"
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / ".hidden").write_bytes(b"x")
    with pytest.raises(errors.InvalidInput) as nothing:
        sdk.datasets.upload(PROJECT, "x", [empty])
    assert f"nothing to upload: {empty} holds no files" in str(nothing.value)
    with pytest.raises(FileNotFoundError):
        sdk.datasets.upload(PROJECT, "x", [tmp_path / "missing.csv"])
