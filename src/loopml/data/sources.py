"""Sources: where a dataset's files come from, all behind one interface.

:func:`stage` turns a source string into local files with their SHA-256, whatever the
source is: a local file or folder, any fsspec URL (``s3://``, ``gs://``, ``https://`` ...),
files uploaded to the blob store, or a built-in dataset. Remote files are copied to a
staging folder with a size cap; local files are read where they are.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any

import fsspec

from loopml.core.errors import InvalidInput, NotFound, PayloadTooLarge
from loopml.data.builtin import is_builtin, load_builtin
from loopml.store.blobs import BlobStore

UPLOAD = "upload:"
# Short names for public archives, read from their URL like any other (online only).
ALIASES = {
    "cifar:10": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    "cifar:100": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
}
_CHUNK = 1024 * 1024

Progress = Callable[[int], None]
"""Called with the number of bytes staged so far."""


@dataclass(frozen=True)
class StagedFile:
    """One file of a source: its name within the source, a local path and its hash.

    A local file is read where it is and hashed in the background, while it is parsed;
    ``sha256`` waits for the hash.
    """

    name: str
    path: Path
    digest: str | Future[str]
    size: int

    @property
    def sha256(self) -> str:
        return self.digest if isinstance(self.digest, str) else self.digest.result()


def describe(source: str) -> str:
    """What kind of source a string names (for messages and the dataset record)."""
    if is_builtin(source):
        return "builtin"
    if source in ALIASES:
        return "url"
    if source.startswith(UPLOAD):
        return "upload"
    return "url" if "://" in source and not source.startswith("file://") else "local"


def stage(
    source: str,
    into: Path,
    *,
    max_bytes: int,
    blobs: BlobStore | None = None,
    storage_options: dict[str, Any] | None = None,
    on_progress: Progress | None = None,
) -> list[StagedFile]:
    """Every file of ``source``, sorted by name, available locally.

    Parameters
    ----------
    source : str
        ``builtin:<name>``, ``upload:<blob prefix>``, a local path or ``file://`` URL,
        or any other fsspec URL.
    into : Path
        A folder for copies of remote files (the caller removes it).
    max_bytes : int
        The most bytes a source may hold in all; more is a :class:`PayloadTooLarge`.
    """
    source = ALIASES.get(source, source)
    kind = describe(source)
    progress = _Counter(max_bytes, source, on_progress)
    if kind == "builtin":
        frame, info = load_builtin(source)
        path = into / f"{info.name}.csv"
        frame.to_csv(path, index=False)
        return _local_files([(path, path.name)], progress)
    if kind == "upload":
        if blobs is None:
            raise InvalidInput("uploads need the blob store", field="source")
        return _stage_uploads(blobs, source.removeprefix(UPLOAD), into, progress)
    if kind == "local":
        return _stage_local(Path(source.removeprefix("file://")).expanduser(), progress)
    return _stage_url(source, into, storage_options or {}, progress)


class _Counter:
    def __init__(self, cap: int, source: str, callback: Progress | None) -> None:
        self.cap, self.source, self.callback, self.total = cap, source, callback, 0

    def add(self, n: int) -> None:
        self.total += n
        if self.total > self.cap:
            raise PayloadTooLarge(
                f"{self.source} holds more than the {self.cap:,} bytes a dataset may have "
                "(setting max_upload_bytes)",
                field="source",
            )
        if self.callback is not None:
            self.callback(self.total)


def _hash_copy(reader: IO[bytes], writer: IO[bytes] | None, progress: _Counter) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    while chunk := reader.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
        progress.add(len(chunk))
        if writer is not None:
            writer.write(chunk)
    return digest.hexdigest(), size


def _local_files(files: list[tuple[Path, str]], progress: _Counter) -> list[StagedFile]:
    """Files read in place: sizes checked against the cap now, hashes made one after
    another on one background thread."""
    sizes = [path.stat().st_size for path, _ in files]
    for size in sizes:
        progress.add(size)
    hasher = ThreadPoolExecutor(1)
    staged = [
        StagedFile(name=name, path=path, digest=hasher.submit(_hash_file, path), size=size)
        for (path, name), size in zip(files, sizes, strict=True)
    ]
    hasher.shutdown(wait=False)  # the thread ends when the last hash is done
    return staged


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    buffer = bytearray(_CHUNK)  # one buffer reused: no fresh memory for every chunk
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as fh:
        while size := fh.readinto(buffer):
            digest.update(view[:size])
    return digest.hexdigest()


_TOOL_FILES = ("_SUCCESS", "_committed_", "_started_", "_metadata", "_common_metadata")


def _visible(relative: str) -> bool:
    """Skip hidden entries, macOS archive debris and the marker files Spark and Hadoop
    leave beside their output (``_SUCCESS``); a folder named ``_unknown`` is data."""
    parts = relative.split("/")
    if any(p.startswith(".") or p in ("__MACOSX", "_temporary") for p in parts):
        return False
    return not parts[-1].startswith(_TOOL_FILES)


def _stage_local(path: Path, progress: _Counter) -> list[StagedFile]:
    if not path.exists():
        raise NotFound(f"{path} does not exist", field="source")
    if path.is_file():
        return _local_files([(path, path.name)], progress)
    # Sorted by name (``a-c.csv`` before ``a/b.csv``) as uploads and URLs are, not by path
    # parts, so that one folder gives the same order (and version) however it arrives.
    names = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
    files = [n for n in names if _visible(n)]
    if not files:
        raise InvalidInput(f"folder {path} holds no files", field="source")
    inside = path.resolve()
    for name in files:
        # A link may point anywhere the server can read: only within the folder is data.
        if not (path / name).resolve().is_relative_to(inside):
            raise InvalidInput(
                f"{path / name} links to {(path / name).resolve()}, outside the folder "
                f"{path}; a folder's files must be inside it",
                field="source",
            )
    return _local_files([(path / n, n) for n in files], progress)


def put_upload(blobs: BlobStore, prefix: str, files: list[tuple[str, IO[bytes]]]) -> str:
    """Store uploaded files under ``prefix`` for an ingest job; returns the source string.

    File names (which may hold folders: ``cats/1.png``) are kept in a list beside the
    content, so that any name a user's files have survives the blob store's key rules.
    """
    names = [_safe_name(name) for name, _ in files]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InvalidInput(
            f"two uploaded files are named {twice[0]!r}; the files of an upload need "
            "distinct names",
            field="files",
        )
    folders = {"/".join(n.split("/")[:i]) for n in names for i in range(1, n.count("/") + 1)}
    both = sorted(folders.intersection(names))
    if both:
        raise InvalidInput(
            f"upload name {both[0]!r} is both a file and the folder of another file",
            field="files",
        )
    for i, (_, reader) in enumerate(files):
        blobs.put_file(f"{prefix}/files/{i}", reader)
    blobs.put(f"{prefix}/names.json", json.dumps(names).encode())
    return UPLOAD + prefix


def _safe_name(name: str) -> str:
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or ".." in parts or name.startswith("/"):
        raise InvalidInput(f"upload name {name!r} is not a relative file name", field="files")
    return "/".join(parts)


def _stage_uploads(
    blobs: BlobStore, prefix: str, into: Path, progress: _Counter
) -> list[StagedFile]:
    try:
        names = json.loads(blobs.get(f"{prefix}/names.json"))
    except NotFound:
        raise NotFound(f"upload {prefix!r} does not exist", field="source") from None
    staged = [
        _copy(partial(blobs.open, f"{prefix}/files/{i}"), _safe_name(name), into, progress)
        for i, name in enumerate(names)
    ]
    return sorted(staged, key=lambda f: f.name)


def _copy(opener: Callable[[], IO[bytes]], name: str, into: Path, progress: _Counter) -> StagedFile:
    target = into / "files" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    with opener() as reader, target.open("wb") as writer:
        sha, size = _hash_copy(reader, writer, progress)
    return StagedFile(name=name, path=target, digest=sha, size=size)


def _unreached(missing: FileNotFoundError) -> BaseException | None:
    """What fsspec's HTTP file system reports as a missing file when it was not one: a
    refused connection, an untrusted certificate, an answer other than 404."""
    cause = _cause(missing)
    while cause is not None:
        if isinstance(cause, OSError) and not isinstance(cause, FileNotFoundError):
            return cause
        if getattr(cause, "status", 404) != 404:  # aiohttp's ClientResponseError
            return cause
        cause = _cause(cause)
    return None


def _cause(error: BaseException) -> BaseException | None:
    if error.__cause__ is not None:
        return error.__cause__
    return None if error.__suppress_context__ else error.__context__


def _stage_url(
    url: str, into: Path, options: dict[str, Any], progress: _Counter
) -> list[StagedFile]:
    try:
        fs, root = fsspec.core.url_to_fs(url, **options)
    except (ImportError, ValueError) as exc:
        raise InvalidInput(f"cannot open {url!r}: {exc}", field="source") from exc
    try:
        is_dir = fs.isdir(root)
        paths = sorted(fs.find(root)) if is_dir else [root]
        if not is_dir:
            # Not ``exists``: it says False for a server it cannot reach or trust too.
            fs.info(root)
    except FileNotFoundError as exc:
        if (failure := _unreached(exc)) is not None:
            raise InvalidInput(f"cannot read {url}: {failure}", field="source") from exc
        raise NotFound(f"{url} does not exist", field="source") from exc
    except OSError as exc:
        raise InvalidInput(f"cannot read {url}: {exc}", field="source") from exc
    staged = []
    for path in paths:
        name = path[len(root) :].lstrip("/") if is_dir else posixpath.basename(path.rstrip("/"))
        name = name or "data"
        if not _visible(name):
            continue
        try:
            staged.append(_copy(partial(fs.open, path, "rb"), name, into, progress))
        except OSError as exc:
            raise InvalidInput(f"cannot read {url}/{name}: {exc}", field="source") from exc
    if not staged:
        raise InvalidInput(f"{url} holds no files", field="source")
    return staged
