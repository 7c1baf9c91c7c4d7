"""Blob store: one interface over fsspec (``file://``, ``s3://``, ``gs://``, ...).

Keys are relative, slash-separated paths (``projects/p1/datasets/abc.parquet``).
Content written with :meth:`BlobStore.put` can be checked against its SHA-256 on read.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import posixpath
import re
import uuid
from collections.abc import Iterator
from typing import IO, Any

import fsspec

from loopml.core.errors import IntegrityError, InvalidInput, NotFound, StorageError
from loopml.core.schemas import BlobInfo

_KEY_RE = re.compile(r"^[A-Za-z0-9._=-]+(/[A-Za-z0-9._=-]+)*$")
_CHUNK = 1024 * 1024
# Suffix of the temporary files put() writes before renaming; never a key of its own.
_PARTIAL = ".partial"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_key(key: str) -> str:
    if not _KEY_RE.match(key) or any(part in (".", "..") for part in key.split("/")):
        raise InvalidInput(
            f"blob key {key!r} is not a relative path of letters, digits and ._=-", field="key"
        )
    if key.endswith(_PARTIAL):
        raise InvalidInput(
            f"blob key {key!r} ends with {_PARTIAL!r}, which is reserved for unfinished writes",
            field="key",
        )
    return key


class BlobStore:
    """Store and read blobs under one root URL.

    Parameters
    ----------
    url : str
        Root of the store, e.g. ``file:///srv/loopml/blobs`` or ``s3://bucket/prefix``.
    storage_options : dict, optional
        Passed to fsspec (credentials, ``endpoint_url`` for S3-compatible servers ...).
    """

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        self.url = url.rstrip("/")
        self.storage_options = dict(storage_options or {})
        try:
            self.fs, root = fsspec.core.url_to_fs(self.url, **self.storage_options)
        except (ImportError, ValueError) as exc:
            raise StorageError(f"cannot open blob store {url!r}: {exc}") from exc
        self.root = root.rstrip("/")
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        if "file" in protocols:
            self.fs.makedirs(self.root, exist_ok=True)

    def _path(self, key: str) -> str:
        return posixpath.join(self.root, _check_key(key))

    def put(self, key: str, data: bytes) -> BlobInfo:
        """Write ``data`` at ``key`` (replacing what was there) and return its size and hash."""
        return self.put_file(key, io.BytesIO(data))

    def put_file(self, key: str, source: str | os.PathLike[str] | IO[bytes]) -> BlobInfo:
        """Copy a local file (a path or an open binary file) to ``key`` in chunks."""
        reader: IO[bytes] = (
            open(source, "rb")  # noqa: SIM115
            if isinstance(source, str | os.PathLike)
            else source
        )
        with reader, self.writer(key) as out:
            while chunk := reader.read(_CHUNK):
                out.write(chunk)
        return out.info

    @contextlib.contextmanager
    def writer(self, key: str) -> Iterator[BlobWriter]:
        """A binary file to write the blob at ``key`` into, hashed as it is written.

        The blob appears whole when the block ends (it is written under a temporary name,
        then moved), and not at all when the block raises; ``info`` then holds its size
        and hash.
        """
        target = self._path(key)
        parent = posixpath.dirname(target)
        # The temporary name is unique so that concurrent writes of one key never share it.
        tmp = f"{target}.{uuid.uuid4().hex}{_PARTIAL}"
        try:
            if parent:
                self.fs.makedirs(parent, exist_ok=True)
            try:
                with self.fs.open(tmp, "wb") as raw:
                    out = BlobWriter(key, raw)
                    yield out
                self.fs.mv(tmp, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    self.fs.rm(tmp)
                raise
        except OSError as exc:
            raise StorageError(f"cannot write blob {key!r}: {exc}") from exc
        out.done = BlobInfo(key=key, size=out.size, sha256=out.digest.hexdigest())

    def get(self, key: str, *, sha256: str | None = None) -> bytes:
        """Read the blob at ``key``; when ``sha256`` is given, refuse content that differs."""
        path = self._path(key)
        try:
            with self.fs.open(path, "rb") as fh:
                data: bytes = fh.read()
        except FileNotFoundError as exc:
            raise NotFound(f"blob {key!r} does not exist", field="key") from exc
        except OSError as exc:
            raise StorageError(f"cannot read blob {key!r}: {exc}") from exc
        if sha256 is not None and sha256_bytes(data) != sha256:
            raise IntegrityError(
                f"blob {key!r} has content hash {sha256_bytes(data)[:12]}..., "
                f"expected {sha256[:12]}...: it was changed after it was written",
                field="key",
            )
        return data

    def open(self, key: str, mode: str = "rb") -> IO[bytes]:
        """Open a blob as a file object (for streaming large content)."""
        if mode not in ("rb", "wb"):
            raise InvalidInput("mode must be 'rb' or 'wb'", field="mode")
        path = self._path(key)
        if mode == "wb":
            self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
        elif not self.exists(key):
            raise NotFound(f"blob {key!r} does not exist", field="key")
        return self.fs.open(path, mode)

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self._path(key)))

    def hash(self, key: str) -> str:
        """SHA-256 of a stored blob, read in chunks."""
        digest = hashlib.sha256()
        with self.open(key) as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        """Every blob whose key starts with the folder ``prefix``, in key order."""
        base = self._path(prefix.strip("/")) if prefix.strip("/") else self.root
        try:
            found = self.fs.find(base, detail=True)
        except FileNotFoundError:
            return
        for path, info in sorted(found.items()):
            key = path[len(self.root) :].lstrip("/") if path.startswith(self.root) else path
            if key.endswith(_PARTIAL):
                continue
            yield BlobInfo(key=key, size=int(info.get("size") or 0))

    def delete(self, key: str) -> None:
        """Remove a blob; a key that is already gone is not an error."""
        path = self._path(key)
        try:
            self.fs.rm(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StorageError(f"cannot delete blob {key!r}: {exc}") from exc


class BlobWriter(io.RawIOBase):
    """What :meth:`BlobStore.writer` yields: a binary file that hashes what it writes."""

    def __init__(self, key: str, raw: IO[bytes]) -> None:
        self.key = key
        self.raw = raw
        self.digest = hashlib.sha256()
        self.size = 0
        self.done: BlobInfo | None = None

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.digest.update(view)
        self.raw.write(view)
        self.size += len(view)
        return len(view)

    def tell(self) -> int:
        return self.size

    @property
    def info(self) -> BlobInfo:
        """Size and hash of the blob, once its ``writer`` block has ended."""
        if self.done is None:
            raise StorageError(f"blob {self.key!r} is still being written")
        return self.done
