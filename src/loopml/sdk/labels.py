"""Labels on dataset items: list items, add, import, export, review and apply labels."""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from typing import Any

from loopml.core.schemas import Label
from loopml.sdk.resource import Resource


class Labels(Resource):
    def _path(self, project: str, dataset: str, rest: str = "") -> str:
        return f"/projects/{project}/datasets/{dataset}{rest}"

    def items(
        self,
        project: str,
        dataset: str,
        *,
        unlabelled: bool = False,
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[dict[str, Any]]:
        """Items of the latest version: ``item`` key, current ``value`` and ``test`` flag."""
        params = {"unlabelled": unlabelled, "limit": limit, "offset": offset}
        return self._call("GET", self._path(project, dataset, "/items"), list, params=params)

    def list(
        self,
        project: str,
        dataset: str,
        *,
        status: str | None = None,
        item: str | None = None,
        limit: int | None = None,
    ) -> builtins.list[Label]:
        """Labels, oldest first: the server's default (1,000) or ``limit`` (at most
        100,000) of them."""
        given = {"status": status, "item": item, "limit": limit}
        params = {k: v for k, v in given.items() if v is not None}
        return self._call(
            "GET", self._path(project, dataset, "/labels"), list[Label], params=params
        )

    def add(
        self,
        project: str,
        dataset: str,
        labels: Iterable[tuple[str, str]],
        *,
        source: str = "human",
    ) -> builtins.list[Label]:
        """Label items: ``[(item, value), ...]``."""
        body = {"labels": [{"item": i, "value": v} for i, v in labels], "source": source}
        return self._call("POST", self._path(project, dataset, "/labels"), list[Label], json=body)

    def import_file(
        self, project: str, dataset: str, data: bytes, format: str
    ) -> builtins.list[Label]:
        """Import a label file: ``csv`` (item,label), ``jsonl`` or ``label-studio``."""
        return self._call(
            "POST",
            self._path(project, dataset, "/labels/import"),
            list[Label],
            params={"format": format},
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )

    def export(
        self, project: str, dataset: str, format: str = "csv", status: str | None = None
    ) -> bytes:
        params = {"format": format, **({"status": status} if status else {})}
        return self._client.raw(
            "GET", self._path(project, dataset, "/labels/export"), params=params
        ).content

    def review(
        self, project: str, dataset: str, label_id: str, *, approve: bool, note: str = ""
    ) -> Label:
        body = {"approve": approve, "note": note}
        path = self._path(project, dataset, f"/labels/{label_id}/review")
        return self._call("POST", path, Label, json=body)

    def apply(self, project: str, dataset: str) -> dict[str, Any]:
        """Apply approved labels as a new version: ``{"version": ..., "created": ..., ...}``."""
        return self._call("POST", self._path(project, dataset, "/labels/apply"), dict)
