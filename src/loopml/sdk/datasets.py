"""Datasets: ingest from a source or by upload, re-sync, read versions and their rows."""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from loopml.core.errors import InvalidInput
from loopml.core.schemas import Dataset, DatasetVersion, Job, QualityFinding
from loopml.sdk.resource import Resource

_OPTIONS = ("target", "task", "kinds", "split", "read", "description")


def _options(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k in _OPTIONS and v not in (None, {}, "")}


class Datasets(Resource):
    """Every method that makes a version returns the ``data.ingest`` job; wait for it
    with ``client.jobs.wait`` and read ``job.result["version"]``."""

    def list(self, project: str) -> builtins.list[Dataset]:
        return self._call("GET", f"/projects/{project}/datasets", list[Dataset])

    def get(self, project: str, name: str) -> Dataset:
        return self._call("GET", f"/projects/{project}/datasets/{name}", Dataset)

    def ingest(
        self,
        project: str,
        name: str,
        source: str,
        *,
        target: str | None = None,
        task: str | None = None,
        kinds: Mapping[str, str] | None = None,
        split: Mapping[str, Any] | None = None,
        read: Mapping[str, Any] | None = None,
        description: str = "",
    ) -> Job:
        """Have the server read ``source`` (``builtin:<name>``, a URL, or a server path)."""
        body = {"name": name, "source": source, **_options(locals())}
        return self._call("POST", f"/projects/{project}/datasets", Job, json=body)

    def upload(
        self,
        project: str,
        name: str,
        paths: Sequence[str | Path],
        *,
        target: str | None = None,
        task: str | None = None,
        kinds: Mapping[str, str] | None = None,
        split: Mapping[str, Any] | None = None,
        read: Mapping[str, Any] | None = None,
        description: str = "",
    ) -> Job:
        """Upload local files; a folder is sent file by file with its sub-folder names."""
        files = _expand(paths)
        if not files:
            shown = ", ".join(str(p) for p in paths) or "no paths"
            raise InvalidInput(
                f"nothing to upload: {shown} holds no files (hidden ones are skipped)",
                field="paths",
            )
        options = json.dumps(_options(locals()))
        with ExitStack() as stack:
            parts = [
                ("files", (name_, stack.enter_context(path.open("rb")), "application/octet-stream"))
                for name_, path in files
            ]
            return self._call(
                "POST",
                f"/projects/{project}/datasets/{name}/uploads",
                Job,
                files=parts,
                data={"options": options},
            )

    def sync(self, project: str, name: str) -> Job:
        """Re-read the dataset's source; unchanged content makes no new version."""
        return self._call("POST", f"/projects/{project}/datasets/{name}/sync", Job)

    def versions(self, project: str, name: str) -> builtins.list[DatasetVersion]:
        path = f"/projects/{project}/datasets/{name}/versions"
        return self._call("GET", path, list[DatasetVersion])

    def version(self, project: str, name: str, version: int | str = "latest") -> DatasetVersion:
        path = f"/projects/{project}/datasets/{name}/versions/{version}"
        return self._call("GET", path, DatasetVersion)

    def quality(
        self, project: str, name: str, version: int | str = "latest", severity: str | None = None
    ) -> builtins.list[QualityFinding]:
        path = f"/projects/{project}/datasets/{name}/versions/{version}/quality"
        params = {"severity": severity} if severity else {}
        return self._call("GET", path, list[QualityFinding], params=params)

    def derive(
        self,
        project: str,
        name: str,
        version: int | str = "latest",
        *,
        target: str | None = None,
        task: str | None = None,
        kinds: Mapping[str, str] | None = None,
        split: Mapping[str, Any] | None = None,
    ) -> DatasetVersion:
        """A version with the same rows and another target, task, kinds or test split."""
        body = _options(locals())
        path = f"/projects/{project}/datasets/{name}/versions/{version}/derive"
        return self._call("POST", path, DatasetVersion, json=body)

    def rows(
        self,
        project: str,
        name: str,
        version: int | str = "latest",
        *,
        part: str = "all",
        format: str = "csv",
        limit: int | None = None,
    ) -> bytes:
        """The rows (``part``: all, train or the frozen test split) as CSV, Parquet or JSON."""
        params: dict[str, Any] = {"part": part, "format": format}
        if limit is not None:
            params["limit"] = limit
        path = f"/projects/{project}/datasets/{name}/versions/{version}/rows"
        return self._client.raw("GET", path, params=params).content


def _expand(paths: Sequence[str | Path]) -> builtins.list[tuple[str, Path]]:
    files: builtins.list[tuple[str, Path]] = []
    for given in map(Path, paths):
        if given.is_dir():
            for path in sorted(p for p in given.rglob("*") if p.is_file()):
                relative = path.relative_to(given).as_posix()
                if not any(part.startswith(".") for part in relative.split("/")):
                    files.append((relative, path))
        else:
            files.append((given.name, given))
    return files
