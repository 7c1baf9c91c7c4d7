"""``/projects/{p}/datasets`` on a live server with its worker: uploads and ingests become
numbered versions, re-syncs add versions only for new content, and a version's quality,
derived versions, rows and trainings on its frozen test split."""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from loopml.core.enums import JobState
from loopml.core.schemas import Job
from loopml.sdk import Client
from loopml.store.blobs import BlobStore
from tests.api.support import assert_problem, client, serve
from tests.conftest import LiveServer

PROJECT = "shop"
COLUMNS = ["customer", "region", "age", "spend", "plan", "churned"]


def customers_csv(rows: int = 60, seed: int = 0, start: int = 0, tenure: bool = False) -> bytes:
    """A small churn table: a unique id, six regions, and a target that ``spend`` predicts
    (so quality reports a leakage warning and an identifier note)."""
    rng = random.Random(seed)
    header = COLUMNS + (["tenure"] if tenure else [])
    lines = [",".join(header)]
    for i in range(start, start + rows):
        spend = round(rng.uniform(0, 100), 2)
        values = [
            f"c{i:04d}",
            f"r{i % 6}",
            str(20 + i % 40),
            str(spend),
            "pro" if i % 3 else "basic",
            "yes" if spend > 50 else "no",
        ]
        lines.append(",".join(values + ([str(i % 12)] if tenure else [])))
    return ("\n".join(lines) + "\n").encode()


def parse_csv(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode())))


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> Iterator[httpx.Client]:
    with client(server, server.admin_key) as http:
        assert http.post("/projects", json={"name": PROJECT}).status_code == 201
        yield http


@pytest.fixture(scope="module")
def maintainer(server: LiveServer, admin: httpx.Client) -> Iterator[httpx.Client]:
    r = admin.post("/keys", json={"name": "shop-maintainer", "roles": {PROJECT: "maintainer"}})
    assert r.status_code == 201, r.text
    with client(server, r.json()["secret"]) as http:
        yield http


@pytest.fixture(scope="module")
def sdk(server: LiveServer) -> Iterator[Client]:
    with Client(server.url, server.admin_key) as c:
        yield c


def upload(
    http: httpx.Client,
    name: str,
    files: list[tuple[str, bytes]],
    options: dict[str, Any] | None = None,
) -> httpx.Response:
    parts = [("files", (filename, data, "text/csv")) for filename, data in files]
    return http.post(
        f"/projects/{PROJECT}/datasets/{name}/uploads",
        files=parts,
        data={"options": json.dumps(options or {})},
    )


def finish(sdk: Client, response: httpx.Response) -> Job:
    """The ``data.ingest`` job a 202 answer started, once it has ended."""
    assert response.status_code == 202, response.text
    job = Job.model_validate(response.json())
    assert job.kind == "data.ingest"
    assert job.project == PROJECT
    return sdk.jobs.wait(PROJECT, job.id, timeout=60, poll=0.1)


def succeeded(sdk: Client, response: httpx.Response) -> dict[str, Any]:
    job = finish(sdk, response)
    assert job.state is JobState.succeeded, job.error
    return dict(job.result or {})


def version(http: httpx.Client, name: str, number: int | str = "latest") -> dict[str, Any]:
    r = http.get(f"/projects/{PROJECT}/datasets/{name}/versions/{number}")
    assert r.status_code == 200, r.text
    return dict(r.json())


@pytest.fixture(scope="module")
def churn(admin: httpx.Client, sdk: Client) -> dict[str, Any]:
    """Dataset ``churn``: one uploaded CSV with target ``churned``, version 1."""
    r = upload(admin, "churn", [("customers.csv", customers_csv())], {"target": "churned"})
    result = succeeded(sdk, r)
    assert result["version"] == 1
    return version(admin, "churn", 1)


# --- uploads -------------------------------------------------------------------------


def test_an_upload_becomes_version_1_with_schema_target_split_and_quality(
    admin: httpx.Client, churn: dict[str, Any]
) -> None:
    assert churn["number"] == 1 and churn["parent"] is None
    assert churn["dataset"] == "churn" and churn["project"] == PROJECT
    assert churn["rows"] == 60
    assert churn["changes"] == {"first": True}
    schema = churn["data_schema"]
    assert [c["name"] for c in schema["columns"]] == COLUMNS
    assert schema["target"] == "churned" and schema["task"] == "binary"
    kinds = {c["name"]: c["kind"] for c in schema["columns"]}
    assert kinds["customer"] == "identifier"
    assert kinds["region"] == "categorical"
    assert kinds["spend"] == "numeric"
    checks = {(f["check"], f["column"]) for f in churn["quality"]}
    assert ("target_leakage", "spend") in checks
    assert ("identifier", "customer") in checks
    split = churn["split"]
    assert split["method"] == "stratified"  # classification: the test side keeps the mix
    assert (split["train_rows"], split["test_rows"]) == (48, 12)
    assert [f["name"] for f in churn["manifest"]["files"]] == ["customers.csv"]

    assert version(admin, "churn", "1") == churn
    latest = version(admin, "churn", "latest")  # other tests may derive versions from it
    assert latest["number"] == len(admin.get(f"/projects/{PROJECT}/datasets/churn/versions").json())
    dataset = admin.get(f"/projects/{PROJECT}/datasets/churn").json()
    assert dataset["versions"] == latest["number"]
    assert dataset["source"] is None  # uploads leave nothing to re-sync
    listed = admin.get(f"/projects/{PROJECT}/datasets").json()
    assert "churn" in [d["name"] for d in listed]


def test_uploading_the_same_file_again_makes_no_new_version(
    admin: httpx.Client, sdk: Client
) -> None:
    files = [("same.csv", customers_csv(seed=3))]
    first = succeeded(sdk, upload(admin, "repeat", files, {"target": "churned"}))
    again = succeeded(sdk, upload(admin, "repeat", files, {"target": "churned"}))
    assert first["created"] is True and again["created"] is False
    assert again["version"] == first["version"] == 1
    assert again["content_hash"] == first["content_hash"]
    versions = admin.get(f"/projects/{PROJECT}/datasets/repeat/versions").json()
    assert [v["number"] for v in versions] == [1]


def test_a_different_upload_makes_version_2_with_its_parent_and_changes(
    admin: httpx.Client, sdk: Client
) -> None:
    options = {"target": "churned"}
    succeeded(sdk, upload(admin, "grows", [("data.csv", customers_csv(rows=40))], options))
    bigger = customers_csv(rows=50, tenure=True)
    result = succeeded(sdk, upload(admin, "grows", [("data.csv", bigger)], options))
    assert result["created"] is True and result["version"] == 2
    second = version(admin, "grows", 2)
    assert second["parent"] == 1
    changes = second["changes"]
    assert changes["files_changed"] == ["data.csv"]
    assert changes["files_added"] == [] and changes["files_removed"] == []
    assert (changes["rows_before"], changes["rows_after"]) == (40, 50)
    assert changes["columns_added"] == ["tenure"]
    assert changes["same_data"] is False
    assert version(admin, "grows")["number"] == 2
    assert version(admin, "grows", 1)["rows"] == 40  # versions never change
    versions = admin.get(f"/projects/{PROJECT}/datasets/grows/versions").json()
    assert [(v["number"], v["rows"]) for v in versions] == [(1, 40), (2, 50)]


def test_a_malformed_csv_fails_the_job_naming_the_line_and_leaves_no_version(
    admin: httpx.Client, sdk: Client
) -> None:
    broken = b"a,b\n1,2\n3,4\n5,6,7\n8,9\n"
    job = finish(sdk, upload(admin, "broken", [("broken.csv", broken)]))
    assert job.state is JobState.failed
    assert "broken.csv" in str(job.error) and "line 4" in str(job.error)
    # A failed first ingest leaves nothing behind: no version, not even the dataset.
    for path in ("", "/versions", "/versions/latest"):
        r = admin.get(f"/projects/{PROJECT}/datasets/broken{path}")
        assert "'broken' does not exist" in assert_problem(r, 404, code="not-found")["detail"]
    assert "broken" not in [d["name"] for d in admin.get(f"/projects/{PROJECT}/datasets").json()]

    # Into a dataset that has versions: they stay as they were.
    succeeded(sdk, upload(admin, "sturdy", [("good.csv", customers_csv(rows=10))]))
    job = finish(sdk, upload(admin, "sturdy", [("good.csv", broken)]))
    assert job.state is JobState.failed and "line 4" in str(job.error)
    versions = admin.get(f"/projects/{PROJECT}/datasets/sturdy/versions").json()
    assert [(v["number"], v["rows"]) for v in versions] == [(1, 10)]


def test_an_ingest_that_waits_answers_bad_data_with_a_422_and_good_data_with_its_version(
    admin: httpx.Client,
) -> None:
    def send(name: str, data: bytes, wait: float) -> httpx.Response:
        return admin.post(
            f"/projects/{PROJECT}/datasets/{name}/uploads",
            params={"wait": wait},
            files=[("files", (f"{name}.csv", data, "text/csv"))],
            data={"options": "{}"},
        )

    broken = send("waited", b"a,b\n1,2\n3,4\n5,6,7\n8,9\n", 30)
    problem = assert_problem(broken, 422, field="source", code="invalid-input")
    assert "waited.csv: line 4 has 3 fields" in problem["detail"]
    assert problem["line"] == 4  # as the same error raised in the request would say
    assert "(job " in problem["detail"]  # whose log tells more
    failed = admin.get(f"/projects/{PROJECT}/jobs").json()
    kept = next(j["problem"] for j in failed if j["state"] == "failed" and j["problem"])
    assert kept["type"] == "InvalidInput" and kept["field"] == "source"
    assert kept["details"]["line"] == 4
    good = send("waited", customers_csv(rows=10), 30)
    assert good.status_code == 200, good.text
    assert good.json()["state"] == "succeeded"
    assert good.json()["result"]["ref"] == "waited@1"
    assert send("later", customers_csv(rows=10), 0).status_code == 202  # not waited for
    assert_problem(send("waited", b"", 61), 422)  # at most a minute


def test_bad_upload_options_are_422_naming_the_option(admin: httpx.Client) -> None:
    r = upload(admin, "opts", [("x.csv", customers_csv(rows=5))], {"split": {"method": "magic"}})
    problem = assert_problem(r, 422, field="options.split.method")
    assert "magic" in problem["detail"] or "random" in problem["detail"]
    r = admin.post(
        f"/projects/{PROJECT}/datasets/opts/uploads",
        files=[("files", ("x.csv", b"a\n1\n", "text/csv"))],
        data={"options": "{not json"},
    )
    assert_problem(r, 422)


def test_refused_uploads_are_not_kept(server: LiveServer, admin: httpx.Client) -> None:
    assert admin.post("/projects", json={"name": "refusals"}).status_code == 201
    data = customers_csv(rows=5)
    r = admin.post(
        "/projects/refusals/datasets/Bad_Name/uploads", files=[("files", ("x.csv", data))]
    )
    assert "not a valid name" in assert_problem(r, 422, field="name")["detail"]
    r = admin.post(
        "/projects/refusals/datasets/ok/uploads",
        files=[("files", ("x.csv", data)), ("files", ("../escape.csv", data))],
    )
    assert "'../escape.csv'" in assert_problem(r, 422, field="files")["detail"]
    # Two files of one name would be staged over each other, keeping one file's rows twice.
    r = admin.post(
        "/projects/refusals/datasets/ok/uploads",
        files=[("files", ("jan/x.csv", data)), ("files", ("jan//./x.csv", data[:40]))],
    )
    assert "two uploaded files are named" in assert_problem(r, 422, field="files")["detail"]
    r = admin.post("/projects/ghost/datasets/ok/uploads", files=[("files", ("x.csv", data))])
    assert_problem(r, 404, code="not-found")
    blobs = BlobStore(server.settings.resolved_storage_url)
    for project in ("refusals", "ghost"):
        assert list(blobs.list(f"uploads/{project}/")) == []
    assert admin.get("/projects/refusals/datasets").json() == []


def test_uploads_have_their_own_size_cap(tmp_path_factory: pytest.TempPathFactory) -> None:
    with (
        serve(
            tmp_path_factory, embedded_worker=False, max_request_bytes=1024, max_upload_bytes=8192
        ) as capped,
        client(capped, capped.admin_key) as http,
    ):
        assert http.post("/projects", json={"name": PROJECT}).status_code == 201
        too_big = customers_csv(rows=400)
        assert len(too_big) > 8192
        problem = assert_problem(
            upload(http, "big", [("big.csv", too_big)]), 413, field="body", code="payload-too-large"
        )
        assert "8192 bytes" in problem["detail"]
        # Larger than any other request may be, yet within the upload cap: accepted.
        fits = customers_csv(rows=60)
        assert 1024 < len(fits) < 8000
        accepted = upload(http, "big", [("fits.csv", fits)])
        assert accepted.status_code == 202, accepted.text
        jobs = http.get(f"/projects/{PROJECT}/jobs").json()
        assert [j["id"] for j in jobs] == [accepted.json()["id"]]  # the refused one left none
        description = {"name": "p2", "description": "x" * 2000}
        assert_problem(http.post("/projects", json=description), 413)


# --- sources the server reads ------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "{folder}",
        "{folder}/part-1.csv",
        "file://{folder}/part-1.csv",
        "local://{folder}/part-1.csv",
        "simplecache::file://{folder}/part-1.csv",
        "blockcache::local://{folder}/part-1.csv",
        "simplecache::{folder}/part-1.csv",
    ],
)
def test_a_maintainer_may_not_have_the_server_read_its_own_files(
    maintainer: httpx.Client, tmp_path: Path, source: str
) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "part-1.csv").write_bytes(customers_csv(rows=10))
    body = {"name": "server-files", "source": source.format(folder=folder)}
    r = maintainer.post(f"/projects/{PROJECT}/datasets", json=body)
    problem = assert_problem(r, 403, field="source", code="forbidden")
    assert "only admin keys may have the server read its own files" in problem["detail"]
    assert_problem(maintainer.get(f"/projects/{PROJECT}/datasets/server-files"), 404)


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("http://127.0.0.1:9/x.csv", "'127.0.0.1' is not a public address"),
        ("https://localhost/x.csv", "'localhost' is not a public address"),
        ("http://169.254.169.254/latest/meta-data", "not a public address"),
        ("memory://x.csv", "only admin keys"),
        ("ftp://example.org/x.csv", "only admin keys"),
    ],
)
def test_a_maintainer_may_not_have_the_server_fetch_from_its_network(
    maintainer: httpx.Client, source: str, words: str
) -> None:
    r = maintainer.post(f"/projects/{PROJECT}/datasets", json={"name": "probe", "source": source})
    assert words in assert_problem(r, 403, field="source", code="forbidden")["detail"]


def test_an_upload_source_cannot_be_named_directly(admin: httpx.Client) -> None:
    body = {"name": "sneaky", "source": "upload:uploads/other-project/0123"}
    r = admin.post(f"/projects/{PROJECT}/datasets", json=body)
    assert "/uploads route" in assert_problem(r, 422, field="source")["detail"]


def test_an_admin_ingests_a_server_folder_and_sync_adds_only_new_content(
    admin: httpx.Client, maintainer: httpx.Client, sdk: Client, tmp_path: Path
) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "part-1.csv").write_bytes(customers_csv(rows=30))
    body = {"name": "exports", "source": str(folder), "target": "churned"}
    first = succeeded(sdk, admin.post(f"/projects/{PROJECT}/datasets", json=body))
    assert (first["version"], first["rows"], first["created"]) == (1, 30, True)
    dataset = admin.get(f"/projects/{PROJECT}/datasets/exports").json()
    assert dataset["source"] == str(folder)

    (folder / "part-2.csv").write_bytes(customers_csv(rows=20, start=30, seed=1))
    sync = f"/projects/{PROJECT}/datasets/exports/sync"
    second = succeeded(sdk, maintainer.post(sync))  # re-reading what an admin chose is fine
    assert (second["version"], second["rows"], second["created"]) == (2, 50, True)
    made = version(admin, "exports", 2)
    assert made["changes"]["files_added"] == ["part-2.csv"]
    assert made["parent"] == 1
    assert made["data_schema"]["target"] == "churned"  # the ingest's options are kept

    again = succeeded(sdk, admin.post(sync))
    assert (again["version"], again["created"]) == (2, False)
    versions = admin.get(f"/projects/{PROJECT}/datasets/exports/versions").json()
    assert [v["number"] for v in versions] == [1, 2]


def test_a_builtin_source_is_read_by_the_server(maintainer: httpx.Client, sdk: Client) -> None:
    body = {"name": "iris", "source": "builtin:iris"}
    result = succeeded(sdk, maintainer.post(f"/projects/{PROJECT}/datasets", json=body))
    made = version(maintainer, "iris", result["version"])
    assert made["rows"] == 150
    assert made["data_schema"]["target"] == "target"


def test_an_uploaded_dataset_has_no_source_to_sync(
    admin: httpx.Client, churn: dict[str, Any]
) -> None:
    r = admin.post(f"/projects/{PROJECT}/datasets/churn/sync")
    assert "upload again" in assert_problem(r, 422, field="name")["detail"]


# --- reading versions ---------------------------------------------------------------------


def test_quality_findings_filter_by_severity(admin: httpx.Client, churn: dict[str, Any]) -> None:
    path = f"/projects/{PROJECT}/datasets/churn/versions/1/quality"
    everything = admin.get(path).json()
    assert everything == churn["quality"]
    order = {"error": 0, "warning": 1, "info": 2}
    assert [order[f["severity"]] for f in everything] == sorted(
        order[f["severity"]] for f in everything
    )
    warnings = admin.get(path, params={"severity": "warning"}).json()
    infos = admin.get(path, params={"severity": "info"}).json()
    assert warnings and {f["severity"] for f in warnings} == {"warning"}
    assert infos and {f["severity"] for f in infos} == {"info"}
    assert "target_leakage" in {f["check"] for f in warnings}
    assert "identifier" in {f["check"] for f in infos}
    assert admin.get(path, params={"severity": "error"}).json() == []
    assert len(warnings) + len(infos) == len(everything)
    assert_problem(admin.get(path, params={"severity": "fatal"}), 422, field="query.severity")


def test_derive_a_grouped_split_keeps_each_group_on_one_side(
    admin: httpx.Client, churn: dict[str, Any]
) -> None:
    path = f"/projects/{PROJECT}/datasets/churn/versions/1/derive"
    body = {"split": {"method": "grouped", "column": "region", "test_size": 0.3}}
    r = admin.post(path, json=body)
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["number"] > 1 and made["rows"] == 60
    assert made["split"]["method"] == "grouped" and made["split"]["column"] == "region"
    assert made["data_schema"]["target"] == "churned"  # kept from the parent
    assert made["content_hash"] != churn["content_hash"]

    rows = f"/projects/{PROJECT}/datasets/churn/versions/{made['number']}/rows"
    test = parse_csv(admin.get(rows, params={"part": "test"}).content)
    train = parse_csv(admin.get(rows, params={"part": "train"}).content)
    assert len(test) == made["split"]["test_rows"] > 0
    assert {r["region"] for r in test}.isdisjoint({r["region"] for r in train})

    same = admin.post(path, json=body)
    assert same.status_code == 200, same.text
    assert same.json()["number"] == made["number"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"target": "nope"}, "target", "no column named 'nope'"),
        ({"split": {"method": "grouped", "column": "colour"}}, "split", "'colour'"),
        ({"split": {"method": "grouped"}}, "split", "needs a column"),
        ({"kinds": {"age": "colour"}}, "body.kinds.age", "Input should be"),
    ],
)
def test_derive_with_a_bad_choice_is_422_naming_the_field(
    admin: httpx.Client, churn: dict[str, Any], body: dict[str, Any], field: str, words: str
) -> None:
    before = admin.get(f"/projects/{PROJECT}/datasets/churn").json()["versions"]
    r = admin.post(f"/projects/{PROJECT}/datasets/churn/versions/1/derive", json=body)
    problem = assert_problem(r, 422)
    assert words in r.text, problem
    fields = {problem.get("field")} | {e["field"] for e in problem.get("errors") or []}
    assert field in fields, problem
    assert admin.get(f"/projects/{PROJECT}/datasets/churn").json()["versions"] == before


def _read(body: bytes, fmt: str) -> list[dict[str, Any]]:
    if fmt == "csv":
        return parse_csv(body)
    if fmt == "parquet":
        return pq.read_table(io.BytesIO(body)).to_pylist()
    return list(json.loads(body))


@pytest.mark.parametrize(
    ("fmt", "media"),
    [
        ("csv", "text/csv"),
        ("parquet", "application/vnd.apache.parquet"),
        ("json", "application/json"),
    ],
)
def test_rows_test_and_train_parts_are_disjoint_and_make_up_all(
    admin: httpx.Client, churn: dict[str, Any], fmt: str, media: str
) -> None:
    path = f"/projects/{PROJECT}/datasets/churn/versions/1/rows"

    def part(name: str) -> list[dict[str, Any]]:
        r = admin.get(path, params={"part": name, "format": fmt})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith(media)
        assert f'filename="{PROJECT}-churn-1-{name}.{fmt}"' in r.headers["content-disposition"]
        return _read(r.content, fmt)

    everything, test, train = part("all"), part("test"), part("train")
    ids = {name: [r["customer"] for r in rows] for name, rows in
           (("all", everything), ("test", test), ("train", train))}  # fmt: skip
    assert len(ids["test"]) == churn["split"]["test_rows"] == 12
    assert len(ids["train"]) == churn["split"]["train_rows"] == 48
    assert set(ids["test"]).isdisjoint(ids["train"])
    assert (
        sorted(ids["test"] + ids["train"])
        == sorted(ids["all"])
        == sorted(r["customer"] for r in parse_csv(customers_csv()))
    )
    assert set(everything[0]) == set(COLUMNS)
    assert {r["churned"] for r in test} == {"yes", "no"}  # stratified: both classes held out
    limited = admin.get(path, params={"format": fmt, "limit": 5})
    assert len(_read(limited.content, fmt)) == 5


def test_rows_refuse_an_unknown_part_or_format(admin: httpx.Client, churn: dict[str, Any]) -> None:
    path = f"/projects/{PROJECT}/datasets/churn/versions/1/rows"
    assert_problem(admin.get(path, params={"part": "validation"}), 422, field="query.part")
    assert_problem(admin.get(path, params={"format": "xlsx"}), 422, field="query.format")
    assert_problem(admin.get(path, params={"limit": 0}), 422, field="query.limit")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/datasets/nope"),
        ("GET", "/datasets/nope/versions"),
        ("GET", "/datasets/nope/versions/1"),
        ("GET", "/datasets/nope/versions/latest/quality"),
        ("GET", "/datasets/nope/versions/latest/rows"),
        ("POST", "/datasets/nope/sync"),
        ("POST", "/datasets/nope/versions/1/derive"),
    ],
)
def test_an_unknown_dataset_is_404_naming_it(admin: httpx.Client, method: str, path: str) -> None:
    kwargs: dict[str, Any] = {"json": {}} if method == "POST" and "derive" in path else {}
    r = admin.request(method, f"/projects/{PROJECT}{path}", **kwargs)
    problem = assert_problem(r, 404, code="not-found")
    assert "'nope'" in problem["detail"]


def test_unknown_or_malformed_versions(admin: httpx.Client, churn: dict[str, Any]) -> None:
    r = admin.get(f"/projects/{PROJECT}/datasets/churn/versions/99")
    assert "has no version 99" in assert_problem(r, 404, field="version")["detail"]
    r = admin.get(f"/projects/{PROJECT}/datasets/churn/versions/two")
    assert "'two'" in assert_problem(r, 422, field="version")["detail"]


def test_datasets_of_an_unknown_project_are_404(admin: httpx.Client) -> None:
    assert_problem(admin.get("/projects/ghost/datasets"), 404, code="not-found")
    body = {"name": "iris", "source": "builtin:iris"}
    assert_problem(admin.post("/projects/ghost/datasets", json=body), 404, code="not-found")


# --- training on a dataset version -----------------------------------------------------------


def test_a_training_on_a_dataset_pins_its_version_and_scores_the_test_split(
    admin: httpx.Client, sdk: Client, churn: dict[str, Any]
) -> None:
    pinned = version(admin, "churn")  # the latest: other tests may have derived versions
    latest = pinned["number"]
    body = {"dataset": "churn", "time_budget": 2, "max_trials": 2}
    r = admin.post(f"/projects/{PROJECT}/trainings", json=body)
    assert r.status_code == 202, r.text
    assert r.json()["params"]["dataset"] == f"churn@{latest}"
    done = sdk.trainings.wait(PROJECT, r.json()["id"], timeout=120, poll=0.2)
    assert done.state is JobState.succeeded, done.error
    result = done.result or {}
    assert result["dataset"] == f"churn@{latest}"
    assert result["target"] == "churned" and result["task"] == "binary"
    assert isinstance(result["test_score"], float)
    report = admin.get(f"/projects/{PROJECT}/trainings/{done.id}/report").json()
    test = report["test"]
    assert test["evaluation"] == "held-out data"
    assert test["metrics"][result["metric"]]["value"] == pytest.approx(result["test_score"])
    # Scored on exactly the frozen test rows of the pinned version, fitted on the others.
    assert sum(map(sum, test["confusion_matrix"]["matrix"])) == pinned["split"]["test_rows"]
    assert report["n_rows"] == pinned["split"]["train_rows"]


def test_a_training_on_a_given_version_pins_that_version(
    admin: httpx.Client, churn: dict[str, Any]
) -> None:
    body = {"dataset": "churn@1", "time_budget": 1, "max_trials": 1}
    r = admin.post(f"/projects/{PROJECT}/trainings", json=body)
    assert r.status_code == 202, r.text
    assert r.json()["params"]["dataset"] == "churn@1"
    admin.post(f"/projects/{PROJECT}/jobs/{r.json()['id']}/cancel")


@pytest.mark.parametrize(
    ("dataset", "words"),
    [("nope", "dataset 'nope' does not exist"), ("churn@99", "has no version 99")],
)
def test_a_training_on_an_unknown_dataset_or_version_is_404(
    admin: httpx.Client, churn: dict[str, Any], dataset: str, words: str
) -> None:
    r = admin.post(f"/projects/{PROJECT}/trainings", json={"dataset": dataset})
    assert words in assert_problem(r, 404, code="not-found")["detail"]


def test_a_training_on_a_url_says_to_add_it_as_a_dataset_first(admin: httpx.Client) -> None:
    r = admin.post(f"/projects/{PROJECT}/trainings", json={"dataset": "s3://x/y.csv"})
    problem = assert_problem(r, 422)
    assert any(e["field"] == "body.dataset" for e in problem["errors"]), problem
    assert "add sources as datasets first" in r.text
    assert "builtin:iris" in r.text
