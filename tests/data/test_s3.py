"""Datasets from an S3 prefix and versions stored in S3, against moto's S3 server over
HTTP: new objects under the prefix make a new version, unchanged ones do not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fsspec
import pytest

from loopml.data.ingest import ingest
from loopml.data.load import frame
from loopml.data.sources import ALIASES, describe
from loopml.store import projects
from loopml.store.blobs import BlobStore
from loopml.store.db import Database

LIMITS = {"max_bytes": 10**8, "max_expanded": 10**8}


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'loopml.db'}")
    database.upgrade()
    with database.session() as s:
        projects.create(s, "shop")
    return database


def put(url: str, options: dict[str, Any], text: str) -> None:
    with fsspec.open(url, "wb", **options) as fh:
        fh.write(text.encode())


def test_an_s3_prefix_is_versioned_and_resynced(
    db: Database, s3_storage: tuple[str, dict[str, Any]]
) -> None:
    root, options = s3_storage
    blobs = BlobStore(root + "/blobs", options)  # versions are stored in S3 as well
    prefix = root + "/exports"
    put(f"{prefix}/day1.csv", options, "user,spend,churned\nu1,10,yes\nu2,3,no\nu3,7,no\n")
    put(f"{prefix}/day2.csv", options, "user,spend,churned\nu4,1,yes\nu5,8,no\n")

    def run() -> Any:
        return ingest(
            db, blobs, "shop", "events", prefix, storage_options=options, target="churned", **LIMITS
        )

    first, created = run()
    assert created and first.rows == 5
    assert [f["name"] for f in first.manifest["files"]] == ["day1.csv", "day2.csv"]
    assert sorted(frame(blobs, first)["user"]) == ["u1", "u2", "u3", "u4", "u5"]
    assert blobs.exists(first.manifest["table"]["key"])

    same, created = run()
    assert not created and same.number == 1

    put(f"{prefix}/day3.csv", options, "user,spend,churned\nu6,2,yes\n")
    second, created = run()
    assert created and second.number == 2 and second.parent == 1
    assert second.changes["files_added"] == ["day3.csv"]
    assert (second.changes["rows_before"], second.changes["rows_after"]) == (5, 6)


def test_cifar_aliases_name_the_published_archives() -> None:
    assert ALIASES["cifar:100"].endswith("/cifar-100-python.tar.gz")
    assert ALIASES["cifar:10"].endswith("/cifar-10-python.tar.gz")
    assert describe("cifar:100") == "url"
