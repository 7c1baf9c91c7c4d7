"""Sources: every way a dataset can arrive (a local file or folder, an upload, a built-in
dataset, any fsspec URL, plain HTTP) ends as local files with their names, sizes and
SHA-256, in name order, within the size cap."""

from __future__ import annotations

import functools
import hashlib
import io
import json
import socket
import ssl
import threading
import uuid
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import fsspec
import pytest
import trustme

from loopml.core.errors import InvalidInput, NotFound, PayloadTooLarge
from loopml.data.sources import describe, put_upload, stage
from loopml.store.blobs import BlobStore

CAP = 1_000_000


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def staging(tmp_path: Path) -> Path:
    folder = tmp_path / "staging"
    folder.mkdir()
    return folder


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore((tmp_path / "blobs").as_uri())


def test_describe_names_the_kind_of_source() -> None:
    assert describe("builtin:iris") == "builtin"
    assert describe("upload:uploads/abc") == "upload"
    assert describe("/data/x.csv") == "local"
    assert describe("file:///data/x.csv") == "local"
    assert describe("s3://bucket/x.csv") == "url"
    assert describe("https://example.org/x.csv") == "url"


# --- local files and folders ----------------------------------------------------


def test_local_file_is_read_in_place_with_its_hash(tmp_path: Path, staging: Path) -> None:
    data = b"a,b\n1,2\n"
    (tmp_path / "rows.csv").write_bytes(data)
    for source in (str(tmp_path / "rows.csv"), (tmp_path / "rows.csv").as_uri()):
        [staged] = stage(source, staging, max_bytes=CAP)
        assert staged.name == "rows.csv"
        assert staged.path == tmp_path / "rows.csv"
        assert staged.sha256 == sha(data)
        assert staged.size == len(data)
    assert not any(staging.iterdir())  # nothing copied


def test_local_folder_skips_hidden_files_and_sorts_by_name(tmp_path: Path, staging: Path) -> None:
    root = tmp_path / "ds"
    files = {
        "b.csv": b"x\n2\n",
        "a-c.csv": b"x\n1\n",
        "a/b.csv": b"x\n3\n",
        "z/deep/last.csv": b"x\n4\n",
        ".DS_Store": b"junk",
        ".git/config": b"junk",
        "_unknown/part.csv": b"x\n5\n",  # a folder named with "_" is data
        "_SUCCESS": b"",  # Spark's marker file is not
        "_temporary/0/part.csv": b"junk",
        "__MACOSX/b.csv": b"junk",
        "a/.hidden.csv": b"junk",
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    staged = stage(str(root), staging, max_bytes=CAP)
    # Name order, as uploads and URLs give it: "a-c.csv" < "a/b.csv".
    assert [f.name for f in staged] == [
        "_unknown/part.csv",
        "a-c.csv",
        "a/b.csv",
        "b.csv",
        "z/deep/last.csv",
    ]
    assert all(f.sha256 == sha(files[f.name]) for f in staged)
    assert all(f.path == root / f.name for f in staged)


def test_missing_path_is_not_found(tmp_path: Path, staging: Path) -> None:
    with pytest.raises(NotFound) as err:
        stage(str(tmp_path / "nowhere.csv"), staging, max_bytes=CAP)
    assert "nowhere.csv" in err.value.message
    assert err.value.field == "source"


def test_folder_of_only_hidden_files_is_refused(tmp_path: Path, staging: Path) -> None:
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / ".keep").write_bytes(b"")
    with pytest.raises(InvalidInput, match="holds no files"):
        stage(str(tmp_path / "ds"), staging, max_bytes=CAP)


def test_size_cap_counts_every_file_of_a_folder(tmp_path: Path, staging: Path) -> None:
    root = tmp_path / "ds"
    root.mkdir()
    for i in range(3):
        (root / f"{i}.csv").write_bytes(b"x" * 400)
    assert len(stage(str(root), staging, max_bytes=1200)) == 3
    with pytest.raises(PayloadTooLarge) as err:
        stage(str(root), staging, max_bytes=1199)
    assert "1,199 bytes" in err.value.message
    assert err.value.field == "source"


def test_progress_reports_bytes_so_far(tmp_path: Path, staging: Path) -> None:
    (tmp_path / "a.csv").write_bytes(b"x" * 10)
    seen: list[int] = []
    stage(str(tmp_path / "a.csv"), staging, max_bytes=CAP, on_progress=seen.append)
    assert seen == [10]


# --- uploads ------------------------------------------------------------------------


def test_upload_keeps_names_with_sub_folders(blobs: BlobStore, staging: Path) -> None:
    files = {
        "dogs/1.png": b"dog one",
        "cats/1.png": b"cat one",
        "cats/2.png": b"cat two",
        "odd name (copy) #1.csv": b"a\n1\n",
    }
    source = put_upload(blobs, "uploads/u1", [(n, io.BytesIO(d)) for n, d in files.items()])
    assert source == "upload:uploads/u1"
    staged = stage(source, staging, max_bytes=CAP, blobs=blobs)
    assert [f.name for f in staged] == sorted(files)
    for f in staged:
        assert f.path.read_bytes() == files[f.name]
        assert f.sha256 == sha(files[f.name])
        assert f.path.is_relative_to(staging)


def test_upload_names_are_normalised(blobs: BlobStore, staging: Path) -> None:
    source = put_upload(blobs, "uploads/u2", [("./cats\\x.png", io.BytesIO(b"x"))])
    [staged] = stage(source, staging, max_bytes=CAP, blobs=blobs)
    assert staged.name == "cats/x.png"


@pytest.mark.parametrize("name", ["../x", "cats/../../x", "/etc/passwd", "", "./"])
def test_upload_name_escaping_its_folder_is_refused(blobs: BlobStore, name: str) -> None:
    with pytest.raises(InvalidInput) as err:
        put_upload(blobs, "uploads/bad", [(name, io.BytesIO(b"x"))])
    assert err.value.field == "files"
    assert not blobs.exists("uploads/bad/names.json")


def test_tampered_upload_name_list_is_refused_when_staged(
    blobs: BlobStore, staging: Path, tmp_path: Path
) -> None:
    source = put_upload(blobs, "uploads/u3", [("ok.csv", io.BytesIO(b"a\n1\n"))])
    blobs.put("uploads/u3/names.json", json.dumps(["../evil.csv"]).encode())
    with pytest.raises(InvalidInput, match="not a relative file name"):
        stage(source, staging, max_bytes=CAP, blobs=blobs)
    assert not (tmp_path / "evil.csv").exists()
    assert not (staging / "evil.csv").exists()


def test_upload_over_the_cap_is_payload_too_large(blobs: BlobStore, staging: Path) -> None:
    source = put_upload(blobs, "uploads/big", [("big.csv", io.BytesIO(b"x" * 2048))])
    with pytest.raises(PayloadTooLarge):
        stage(source, staging, max_bytes=2047, blobs=blobs)


def test_unknown_upload_is_not_found(blobs: BlobStore, staging: Path) -> None:
    with pytest.raises(NotFound, match="upload 'uploads/none' does not exist"):
        stage("upload:uploads/none", staging, max_bytes=CAP, blobs=blobs)


def test_upload_without_a_blob_store_is_refused(staging: Path) -> None:
    with pytest.raises(InvalidInput, match="blob store"):
        stage("upload:uploads/u1", staging, max_bytes=CAP)


# --- built-in datasets ---------------------------------------------------------------


def test_builtin_is_written_as_a_csv(staging: Path) -> None:
    [staged] = stage("builtin:iris", staging, max_bytes=CAP)
    assert staged.name == "iris.csv"
    lines = staged.path.read_text().splitlines()
    assert len(lines) == 151
    assert lines[0].endswith(",target")
    assert staged.sha256 == sha(staged.path.read_bytes())


def test_unknown_builtin_is_invalid(staging: Path) -> None:
    with pytest.raises(InvalidInput, match="builtin:iris"):
        stage("builtin:nope", staging, max_bytes=CAP)


# --- fsspec URLs ---------------------------------------------------------------------


@pytest.fixture
def memory_root() -> Iterator[str]:
    fs = fsspec.filesystem("memory")
    root = f"/test-{uuid.uuid4().hex[:8]}"
    fs.pipe(f"{root}/ds/a.csv", b"a\n1\n")
    fs.pipe(f"{root}/ds/sub/b.csv", b"a\n2\n")
    fs.pipe(f"{root}/ds/.hidden", b"junk")
    yield root
    fs.rm(root, recursive=True)


def test_memory_url_folder_is_copied_with_names(memory_root: str, staging: Path) -> None:
    for url in (f"memory://{memory_root}/ds", f"memory://{memory_root}/ds/"):
        staged = stage(url, staging, max_bytes=CAP)
        assert [f.name for f in staged] == ["a.csv", "sub/b.csv"]
        assert [f.path.read_bytes() for f in staged] == [b"a\n1\n", b"a\n2\n"]
        assert all(f.path.is_relative_to(staging) for f in staged)
        assert staged[1].sha256 == sha(b"a\n2\n")


def test_memory_url_single_file(memory_root: str, staging: Path) -> None:
    [staged] = stage(f"memory://{memory_root}/ds/sub/b.csv", staging, max_bytes=CAP)
    assert staged.name == "b.csv"
    assert staged.size == 4


def test_memory_url_missing_is_not_found(memory_root: str, staging: Path) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        stage(f"memory://{memory_root}/nope.csv", staging, max_bytes=CAP)


def test_memory_url_over_the_cap(memory_root: str, staging: Path) -> None:
    with pytest.raises(PayloadTooLarge):
        stage(f"memory://{memory_root}/ds", staging, max_bytes=7)


def test_unknown_protocol_is_invalid(staging: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot open"):
        stage("nosuchproto://bucket/x.csv", staging, max_bytes=CAP)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on a loopback port, serving a folder."""
    folder = tmp_path / "www"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", folder
    server.shutdown()
    server.server_close()
    thread.join(10)


@pytest.fixture
def https_root(tmp_path: Path) -> Iterator[tuple[str, Path, trustme.CA]]:
    """A real HTTPS server on a loopback port, its certificate signed by a test CA."""
    authority = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    folder = tmp_path / "www"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", folder, authority
    server.shutdown()
    server.server_close()
    thread.join(10)


def test_https_url_is_downloaded_from_a_server_the_client_trusts(
    https_root: tuple[str, Path, trustme.CA], staging: Path
) -> None:
    base, folder, authority = https_root
    data = b"id,name\n" + b"".join(b"%d,row %d\n" % (i, i) for i in range(1000))
    (folder / "rows.csv").write_bytes(data)
    trusting = ssl.create_default_context()
    authority.configure_trust(trusting)
    [staged] = stage(f"{base}/rows.csv", staging, max_bytes=CAP, storage_options={"ssl": trusting})
    assert staged.path.read_bytes() == data
    assert staged.sha256 == sha(data)
    # A certificate the client does not trust: refused, saying why.
    with pytest.raises(InvalidInput, match="certificate"):
        stage(f"{base}/rows.csv", staging, max_bytes=CAP)


def test_http_url_is_downloaded(http_root: tuple[str, Path], staging: Path) -> None:
    base, folder = http_root
    data = b"id,name\n" + b"".join(b"%d,row %d\n" % (i, i) for i in range(1000))
    (folder / "rows.csv").write_bytes(data)
    [staged] = stage(f"{base}/rows.csv", staging, max_bytes=CAP)
    assert staged.name == "rows.csv"
    assert staged.path.is_relative_to(staging)
    assert staged.path.read_bytes() == data
    assert staged.sha256 == sha(data)
    assert staged.size == len(data)


def test_http_missing_file_is_not_found(http_root: tuple[str, Path], staging: Path) -> None:
    base, _ = http_root
    with pytest.raises(NotFound):
        stage(f"{base}/missing.csv", staging, max_bytes=CAP)


def test_http_download_over_the_cap(http_root: tuple[str, Path], staging: Path) -> None:
    base, folder = http_root
    (folder / "big.csv").write_bytes(b"x" * 5000)
    with pytest.raises(PayloadTooLarge):
        stage(f"{base}/big.csv", staging, max_bytes=4999)


def test_a_server_that_cannot_be_reached_is_not_called_a_missing_file(staging: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on once this closes
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(InvalidInput, match=f"cannot read http://127.0.0.1:{port}/rows.csv"):
        stage(f"http://127.0.0.1:{port}/rows.csv", staging, max_bytes=CAP)


def test_a_link_out_of_a_local_folder_is_refused(tmp_path: Path, staging: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.csv").write_text("a\n1\n")
    (tmp_path / "secret.csv").write_text("a\n9\n")
    (folder / "b.csv").symlink_to(tmp_path / "secret.csv")
    with pytest.raises(InvalidInput) as err:
        stage(str(folder), staging, max_bytes=CAP)
    assert f"{folder / 'b.csv'} links to {tmp_path / 'secret.csv'}, outside the folder" in (
        err.value.message
    )
    (folder / "b.csv").unlink()
    (folder / "c.csv").symlink_to(folder / "a.csv")  # a link within the folder is data
    assert [f.name for f in stage(str(folder), staging, max_bytes=CAP)] == ["a.csv", "c.csv"]


def test_an_upload_name_that_is_also_a_folder_is_refused(blobs: BlobStore) -> None:
    files = [("a", io.BytesIO(b"x")), ("a/b.csv", io.BytesIO(b"a\n1\n"))]
    with pytest.raises(InvalidInput, match="'a' is both a file and the folder of another"):
        put_upload(blobs, "uploads/both", files)
    assert not list(blobs.list("uploads/both/"))  # nothing stored


def test_two_upload_names_that_are_one_file_are_refused(blobs: BlobStore) -> None:
    files = [("a.csv", io.BytesIO(b"a\n1\n")), ("./a.csv", io.BytesIO(b"a\n2\n"))]
    with pytest.raises(InvalidInput, match=r"two uploaded files are named 'a\.csv'"):
        put_upload(blobs, "uploads/twice", files)
