"""What a source's staged files become: one table (and, for images, the images), read
with the options the caller gave and checked to agree with each other."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from loopml.core.errors import InvalidInput
from loopml.data.cifar import is_cifar, read_cifar
from loopml.data.images import ImageSet, image_folder, is_image
from loopml.data.sources import StagedFile
from loopml.data.tabular import check_table, read_table, tabular_format

READ_OPTIONS = ("format", "delimiter", "decimal", "encoding", "header", "classes")
_TEXT_KINDS = ("categorical", "identifier", "text")


def with_text_columns(
    read: dict[str, Any], kinds: dict[str, str], files: list[StagedFile]
) -> dict[str, Any]:
    """``read`` with the CSV columns of a text kind, which are read as text (the zip code
    00037 is not 37): how the files were read, so part of what names the rows. Other
    formats keep their own types, and their rows' names do not change."""
    text_columns = sorted(c for c, k in kinds.items() if k in _TEXT_KINDS)
    csv = any((read.get("format") or tabular_format(f.name)) in ("csv", "tsv") for f in files)
    return {**read, "text_columns": text_columns} if text_columns and csv else read


def check_read(read: dict[str, Any]) -> dict[str, Any]:
    unknown = set(read) - set(READ_OPTIONS)
    if unknown:
        raise InvalidInput(
            f"unknown read options {sorted(unknown)}; known: {', '.join(READ_OPTIONS)}",
            field="read",
        )
    classes = read.get("classes")
    if isinstance(classes, str):
        read = {**read, "classes": [c.strip() for c in classes.split(",") if c.strip()]}
    return {k: v for k, v in sorted(read.items()) if v is not None}


def holds_images(files: list[StagedFile]) -> bool:
    """Whether the files are images (or a CIFAR archive) rather than tables, as
    :func:`_read` will read them."""
    if len(files) == 1 and not is_image(files[0].name) and is_cifar(files[0].path):
        return True
    return bool(files) and all(is_image(f.name) for f in files)


def read_files(
    files: list[StagedFile], read: dict[str, Any], max_expanded: int
) -> tuple[pa.Table, ImageSet | None]:
    if len(files) == 1 and not is_image(files[0].name) and is_cifar(files[0].path):
        images = read_cifar(
            files[0].path, files[0].name, classes=read.get("classes"), max_expanded=max_expanded
        )
        return images.table, images
    if read.get("classes"):
        raise InvalidInput("the 'classes' option applies to CIFAR archives only", field="read")
    pictures = [f for f in files if is_image(f.name)]
    if pictures and len(pictures) == len(files):
        images = image_folder(pictures)
        return images.table, images
    tables = []
    for f in files:
        if not read.get("format") and tabular_format(f.name) is None:
            raise InvalidInput(
                f"{f.name}: neither a table (csv, tsv, parquet, json, jsonl, feather) nor an "
                "image (png, jpeg); a source holds tables or images, not both",
                field="source",
            )
        tables.append(read_table(f.path, f.name, read, max_expanded=max_expanded))
    if len(tables) == 1:
        return tables[0], None
    first = tables[0].column_names
    for f, t in zip(files, tables, strict=False):
        if set(t.column_names) != set(first):
            raise InvalidInput(
                f"{f.name} has columns {t.column_names}, {files[0].name} has {first}: the files "
                "of one dataset must share their columns",
                field="source",
            )
    try:
        table = pa.concat_tables([t.select(first) for t in tables], promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise _disagreement(files, tables, first) from exc
    return check_table(table, "the source"), None


def _disagreement(
    files: list[StagedFile], tables: list[pa.Table], columns: list[str]
) -> InvalidInput:
    """The first column whose type two files disagree on, named with both files."""
    for column in columns:
        types = [t.schema.field(column).type for t in tables]
        for f, kind in zip(files[1:], types[1:], strict=True):
            try:
                pa.unify_schemas(
                    [pa.schema([(column, types[0])]), pa.schema([(column, kind)])],
                    promote_options="permissive",
                )
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                return InvalidInput(
                    f"column {column!r} is {types[0]} in {files[0].name} but {kind} in "
                    f"{f.name}: the files of one dataset must agree on their columns' types",
                    field="source",
                    column=column,
                )
    return InvalidInput("the files' column types do not agree", field="source")
