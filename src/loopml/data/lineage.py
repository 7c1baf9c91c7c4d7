"""What a dataset version changed against its parent: files, rows, columns, target."""

from __future__ import annotations

from typing import Any

from loopml.core.schemas import DatasetSchema, DatasetVersion


def changes(
    parent: DatasetVersion | None, manifest: dict[str, Any], rows: int, schema: DatasetSchema
) -> dict[str, Any]:
    """The version's ``changes``: files added, removed and changed, rows before and after,
    columns added and removed, whether the data is the same, a new target, labels."""
    if parent is None:
        return {"first": True}
    before = {f["name"]: f["sha256"] for f in parent.manifest.get("files", [])}
    after = {f["name"]: f["sha256"] for f in manifest["files"]}
    old_columns = set(parent.manifest.get("columns", []))
    new_columns = set(manifest["columns"])
    return {
        "files_added": sorted(set(after) - set(before)),
        "files_removed": sorted(set(before) - set(after)),
        "files_changed": sorted(n for n in set(after) & set(before) if after[n] != before[n]),
        "rows_before": parent.rows,
        "rows_after": rows,
        "columns_added": sorted(new_columns - old_columns),
        "columns_removed": sorted(old_columns - new_columns),
        "same_data": parent.manifest.get("data_hash") == manifest["data_hash"],
        "target": None if parent.data_schema.target == schema.target else schema.target,
        "labels": manifest.get("labels"),
    }
