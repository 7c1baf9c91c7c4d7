"""The blob store over fsspec, on a local folder and on S3 (moto's server)."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from loopml.core.errors import IntegrityError, InvalidInput, NotFound
from loopml.store.blobs import BlobStore


class Backend:
    """A blob store plus a way to look at (and tamper with) what it really stored."""

    def __init__(self, store: BlobStore, raw_keys: Any, raw_put: Any) -> None:
        self.store = store
        self.raw_keys = raw_keys  # () -> sorted keys actually stored under the root
        self.raw_put = raw_put  # (key, bytes) -> None, bypassing the store


def _file_backend(tmp_path: Path) -> Backend:
    root = tmp_path / "blobs"
    store = BlobStore(root.as_uri())

    def raw_keys() -> list[str]:
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())

    def raw_put(key: str, data: bytes) -> None:
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    return Backend(store, raw_keys, raw_put)


def _s3_backend(s3_endpoint: str, storage: tuple[str, dict[str, Any]]) -> Backend:
    import boto3

    url, options = storage
    bucket, prefix = url.removeprefix("s3://").split("/", 1)
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    store = BlobStore(url, options)

    def raw_keys() -> list[str]:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="")
        found = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
        assert all(k.startswith(prefix + "/") for k in found), found
        return sorted(k[len(prefix) + 1 :] for k in found)

    def raw_put(key: str, data: bytes) -> None:
        client.put_object(Bucket=bucket, Key=f"{prefix}/{key}", Body=data)

    return Backend(store, raw_keys, raw_put)


@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.s3)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "s3":
        return _s3_backend(
            request.getfixturevalue("s3_endpoint"), request.getfixturevalue("s3_storage")
        )
    return _file_backend(tmp_path)


@pytest.fixture
def store(backend: Backend) -> BlobStore:
    return backend.store


def test_put_get_round_trip(backend: Backend) -> None:
    store = backend.store
    data = os.urandom(4096) + b"\x00\xff"
    info = store.put("projects/p1/datasets/v1.parquet", data)
    assert info.key == "projects/p1/datasets/v1.parquet"
    assert info.size == len(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert store.get(info.key) == data
    assert store.get(info.key, sha256=info.sha256) == data
    assert store.exists(info.key)
    assert not store.exists("projects/p1/datasets/v2.parquet")
    # It really went where the store says it is (for s3: the moto server's bucket).
    assert backend.raw_keys() == ["projects/p1/datasets/v1.parquet"]


def test_empty_blob_and_replacing_a_blob(store: BlobStore) -> None:
    assert store.put("empty", b"").size == 0
    assert store.get("empty", sha256=hashlib.sha256(b"").hexdigest()) == b""
    store.put("k", b"first version")
    second = store.put("k", b"second")
    assert store.get("k", sha256=second.sha256) == b"second"
    assert [(b.key, b.size) for b in store.list()] == [("empty", 0), ("k", 6)]


def test_get_with_the_wrong_hash_is_an_integrity_error(store: BlobStore) -> None:
    store.put("a", b"content")
    with pytest.raises(IntegrityError) as err:
        store.get("a", sha256=hashlib.sha256(b"other").hexdigest())
    assert err.value.field == "key"


def test_content_changed_behind_the_stores_back_is_an_integrity_error(backend: Backend) -> None:
    info = backend.store.put("models/m1/model.pkl", b"the real model")
    backend.raw_put("models/m1/model.pkl", b"the real modeL")
    with pytest.raises(IntegrityError):
        backend.store.get("models/m1/model.pkl", sha256=info.sha256)
    assert backend.store.hash("models/m1/model.pkl") != info.sha256


def test_missing_key_is_not_found(store: BlobStore) -> None:
    store.put("there", b"x")
    for call in (
        lambda: store.get("missing"),
        lambda: store.get("dir/missing", sha256="0" * 64),
        lambda: store.open("missing"),
        lambda: store.hash("missing"),
    ):
        with pytest.raises(NotFound) as err:
            call()
        assert err.value.field == "key"


def test_streaming_with_open(backend: Backend) -> None:
    store = backend.store
    chunks = [os.urandom(700_000) for _ in range(4)]  # bigger than the hashing chunk
    with store.open("big/blob.bin", "wb") as fh:
        for chunk in chunks:
            fh.write(chunk)
    expected = b"".join(chunks)
    with store.open("big/blob.bin", "rb") as fh:
        first = fh.read(100)
        rest = fh.read()
    assert first + rest == expected
    assert store.hash("big/blob.bin") == hashlib.sha256(expected).hexdigest()
    assert store.get("big/blob.bin", sha256=hashlib.sha256(expected).hexdigest()) == expected
    assert backend.raw_keys() == ["big/blob.bin"]
    with pytest.raises(InvalidInput) as err:
        store.open("big/blob.bin", "r")
    assert err.value.field == "mode"


def test_hash_matches_what_put_reported(store: BlobStore) -> None:
    for key, data in [("h/one", b"one"), ("h/empty", b""), ("h/big", os.urandom(2_500_000))]:
        info = store.put(key, data)
        assert store.hash(key) == info.sha256 == hashlib.sha256(data).hexdigest()


def test_list_by_prefix_is_sorted_and_hides_partial_files(backend: Backend) -> None:
    store = backend.store
    for key in ["b/2", "a/sub/3", "ab/4", "a/1", "c", "a/sub/0"]:
        store.put(key, key.encode())
    # Leftovers of interrupted writes are not blobs.
    backend.raw_put("a/5.partial", b"half")
    backend.raw_put("zz.partial", b"half")

    assert [b.key for b in store.list()] == ["a/1", "a/sub/0", "a/sub/3", "ab/4", "b/2", "c"]
    assert [(b.key, b.size) for b in store.list("a")] == [
        ("a/1", 3),
        ("a/sub/0", 7),
        ("a/sub/3", 7),
    ]
    assert [b.key for b in store.list("a/")] == ["a/1", "a/sub/0", "a/sub/3"]
    assert [b.key for b in store.list("a/sub")] == ["a/sub/0", "a/sub/3"]
    assert list(store.list("nothing-here")) == []
    with pytest.raises(InvalidInput):
        list(store.list("../"))


def test_put_leaves_no_partial_files(backend: Backend) -> None:
    for i in range(3):
        backend.store.put(f"x/{i}", b"data" * i)
    assert backend.raw_keys() == ["x/0", "x/1", "x/2"]


def test_delete_is_idempotent(backend: Backend) -> None:
    store = backend.store
    store.put("d/gone", b"bye")
    store.put("d/kept", b"hi")
    store.delete("d/gone")
    store.delete("d/gone")
    store.delete("never/existed")
    assert not store.exists("d/gone")
    with pytest.raises(NotFound):
        store.get("d/gone")
    assert [b.key for b in store.list()] == ["d/kept"]
    assert backend.raw_keys() == ["d/kept"]


BAD_KEYS = [
    "../x",
    "../../etc/passwd",
    "/abs",
    "a//b",
    "",
    "a/./b",
    ".",
    "..",
    "a/..",
    "a/../../x",
    "a/",
    "a\\b",
    "a b",
    "a\nb",
    "~/x",
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_are_invalid(backend: Backend, key: str) -> None:
    store = backend.store
    for call in (
        lambda: store.put(key, b"evil"),
        lambda: store.get(key),
        lambda: store.open(key, "wb"),
        lambda: store.open(key, "rb"),
        lambda: store.exists(key),
        lambda: store.hash(key),
        lambda: store.delete(key),
    ):
        with pytest.raises(InvalidInput) as err:
            call()
        assert err.value.field == "key"
    assert backend.raw_keys() == []


def test_bad_keys_write_nothing_outside_the_root(tmp_path: Path) -> None:
    outside = tmp_path / "store-parent"
    root = outside / "blobs"
    store = BlobStore(root.as_uri())
    for key in BAD_KEYS:
        with pytest.raises(InvalidInput):
            store.put(key, b"evil")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    assert [p for p in outside.rglob("*")] == [root]


def test_keys_that_look_like_leftovers_are_refused(backend: Backend) -> None:
    # "<key>.partial" is where put() stages "<key>"; a blob by that name would be hidden
    # from list() and could be clobbered by a put of "<key>".
    store = backend.store
    with pytest.raises(InvalidInput):
        store.put("model.partial", b"x")
    store.put("model", b"y")
    assert backend.raw_keys() == ["model"]


def test_concurrent_puts_of_one_key_leave_one_whole_version(tmp_path: Path) -> None:
    store = BlobStore((tmp_path / "blobs").as_uri())
    versions = [bytes([i]) * 300_000 for i in range(8)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(versions))

    def writer(data: bytes) -> None:
        try:
            start.wait(30)
            for _ in range(10):
                store.put("shared/artifact.bin", data)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(v,)) for v in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert store.get("shared/artifact.bin") in versions
    assert [b.key for b in store.list()] == ["shared/artifact.bin"]
    assert [p.name for p in (tmp_path / "blobs" / "shared").iterdir()] == ["artifact.bin"]


@pytest.mark.s3
def test_s3_store_talks_to_the_configured_endpoint(
    s3_endpoint: str, s3_storage: tuple[str, dict[str, Any]]
) -> None:
    import boto3

    url, options = s3_storage
    bucket = url.removeprefix("s3://").split("/", 1)[0]
    store = BlobStore(url, options)
    info = store.put("hello/world.txt", b"hi from loopml")
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    body = client.get_object(Bucket=bucket, Key="loopml/hello/world.txt")["Body"].read()
    assert body == b"hi from loopml"
    assert hashlib.sha256(body).hexdigest() == info.sha256


def test_writer_hashes_what_it_writes_and_appears_whole_at_the_end(backend: Backend) -> None:
    store = backend.store
    parts = [b"PAR1", os.urandom(3 * 1024 * 1024 + 7), b"end"]
    with store.writer("tables/t.parquet") as out:
        for part in parts:
            out.write(part)
            assert not store.exists("tables/t.parquet")  # nothing half-written is visible
    whole = b"".join(parts)
    assert out.info.size == len(whole)
    assert out.info.sha256 == hashlib.sha256(whole).hexdigest()
    assert store.get("tables/t.parquet", sha256=out.info.sha256) == whole
    assert backend.raw_keys() == ["tables/t.parquet"]


def test_writer_that_fails_leaves_neither_blob_nor_partial_file(backend: Backend) -> None:
    store = backend.store
    store.put("tables/t.parquet", b"the old version")
    with (
        pytest.raises(RuntimeError, match="encoder broke"),
        store.writer("tables/t.parquet") as out,
    ):
        out.write(b"half a new vers")
        raise RuntimeError("encoder broke")
    assert store.get("tables/t.parquet") == b"the old version"  # what was stored is kept
    assert backend.raw_keys() == ["tables/t.parquet"]
