"""Label files in and out: CSV, JSON Lines and Label Studio's JSON task format."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from loopml.core.enums import LabelStatus
from loopml.core.errors import InvalidInput
from loopml.core.schemas import Label

FORMATS = ("csv", "jsonl", "label-studio")
# The limits of a label sent as JSON (api.routers.labels), kept by files too.
MAX_LABELS = 100_000
MAX_ITEM = 200
MAX_VALUE = 10_000


def parse(data: bytes, fmt: str) -> list[tuple[str, str]]:
    """``(item, value)`` pairs from a label file."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the label file is not UTF-8 (byte {exc.start})", field="file") from exc
    if fmt not in FORMATS:
        raise InvalidInput(
            f"unknown label format {fmt!r}; use one of {', '.join(FORMATS)}", field="format"
        )
    try:
        pairs = {"csv": _parse_csv, "jsonl": _parse_jsonl, "label-studio": _parse_label_studio}[
            fmt
        ](text)
    except RecursionError as exc:
        raise InvalidInput("the label file nests JSON too deeply to read", field="file") from exc
    if len(pairs) > MAX_LABELS:
        raise InvalidInput(
            f"the label file holds {len(pairs):,} labels; at most {MAX_LABELS:,} at a time",
            field="file",
        )
    return pairs


def _pair(item: Any, value: Any, where: str) -> tuple[str, str]:
    if isinstance(value, dict | list) or isinstance(item, dict | list):
        raise InvalidInput(f"{where}: an item and its label are text or numbers", field="file")
    # Spreadsheets pad cells with spaces; item keys and classes never have them at the ends.
    item, value = str(item or "").strip(), str(value if value is not None else "").strip()
    if not item or not value:
        raise InvalidInput(f"{where}: needs both an item and a label value", field="file")
    if len(item) > MAX_ITEM or len(value) > MAX_VALUE:
        raise InvalidInput(
            f"{where}: an item key is at most {MAX_ITEM} characters and a label at most "
            f"{MAX_VALUE:,}",
            field="file",
        )
    return item, value


def _parse_csv(text: str) -> list[tuple[str, str]]:
    # strict: a quote that never closes is an error, not the rest of the file as a value.
    reader = csv.DictReader(io.StringIO(text), strict=True)
    try:
        fields = reader.fieldnames or []
        if "item" not in fields or not ({"label", "value"} & set(fields)):
            raise InvalidInput(
                f"a label CSV needs the columns item and label; it has {fields}", field="file"
            )
        key = "label" if "label" in fields else "value"
        return [_pair(row.get("item"), row.get(key), f"line {reader.line_num}") for row in reader]
    except csv.Error as exc:
        raise InvalidInput(f"line {reader.line_num}: not CSV: {exc}", field="file") from exc


def _parse_jsonl(text: str) -> list[tuple[str, str]]:
    pairs = []
    # Only a newline ends a line: U+2028 and its kind may sit inside a JSON string.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"line {number}: not JSON: {exc.msg}", field="file") from exc
        except ValueError as exc:  # an integer of more digits than Python converts
            raise InvalidInput(f"line {number}: {exc}", field="file") from exc
        if not isinstance(record, dict):
            raise InvalidInput(f"line {number}: expected an object", field="file")
        pairs.append(
            _pair(record.get("item"), record.get("label", record.get("value")), f"line {number}")
        )
    return pairs


def _parse_label_studio(text: str) -> list[tuple[str, str]]:
    try:
        tasks = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"not JSON at line {exc.lineno}: {exc.msg}", field="file") from exc
    except ValueError as exc:  # an integer of more digits than Python converts
        raise InvalidInput(f"not JSON loopml can read: {exc}", field="file") from exc
    if not isinstance(tasks, list):
        raise InvalidInput("a Label Studio export is a JSON array of tasks", field="file")
    pairs = []
    for index, task in enumerate(tasks):
        data = task.get("data") if isinstance(task, dict) else None
        item = data.get("item") if isinstance(data, dict) else None
        if item is None:
            raise InvalidInput(f"task {index} has no data.item (the loopml item key)", field="file")
        choice = _choice(task.get("annotations") or []) or _choice(task.get("predictions") or [])
        if choice is not None:
            pairs.append((str(item), choice))
    return pairs


def _choice(annotations: Sequence[Any]) -> str | None:
    """The label of the latest annotation that was not cancelled: its first choice, number
    or text (Label Studio's Choices, Number and TextArea tags)."""
    if not isinstance(annotations, list):
        return None
    for annotation in reversed(annotations):
        if not isinstance(annotation, dict) or annotation.get("was_cancelled"):
            continue
        results = annotation.get("result")
        for result in results if isinstance(results, list) else []:
            value = result.get("value") if isinstance(result, dict) else None
            if not isinstance(value, dict):
                continue
            for key in ("choices", "text"):
                given = value.get(key)
                if isinstance(given, list) and given and given[0] is not None:
                    return str(given[0])
            if isinstance(value.get("number"), int | float):
                return str(value["number"])
    return None


def export(labels: Sequence[Label], fmt: str, image_url: str | None = None) -> tuple[bytes, str]:
    """Labels as a file of ``fmt``; returns the bytes and their media type.

    For Label Studio, ``image_url`` (with ``{item}``) makes image items viewable.
    """
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["item", "label", "status", "source", "author", "created_at"])
        for label in labels:
            writer.writerow(
                [label.item, label.value, label.status.value, label.source.value, label.author,
                 label.created_at.isoformat()]
            )  # fmt: skip
        return buffer.getvalue().encode(), "text/csv; charset=utf-8"
    if fmt == "jsonl":
        lines = [label.model_dump_json(include=_EXPORTED) for label in labels]
        return ("\n".join(lines) + "\n").encode(), "application/x-ndjson"
    if fmt == "label-studio":
        by_item: dict[str, list[Label]] = {}
        for label in labels:
            by_item.setdefault(label.item, []).append(label)
        tasks = [_task(i, found, image_url) for i, found in enumerate(by_item.values(), start=1)]
        return json.dumps(tasks, indent=1).encode(), "application/json"
    raise InvalidInput(
        f"unknown label format {fmt!r}; use one of {', '.join(FORMATS)}", field="format"
    )


_EXPORTED = {"item", "value", "status", "source", "author", "created_at"}


def _task(number: int, labels: Sequence[Label], image_url: str | None) -> dict[str, Any]:
    """One task per item, an annotation per label. Label Studio takes an annotator only as
    its own user id or e-mail, so loopml's author and status go in the annotation's
    ``meta``; a rejected label is a cancelled annotation, which importing skips."""
    item = labels[0].item
    data: dict[str, Any] = {"item": item}
    if image_url is not None:
        data["image"] = image_url.format(item=item)
    return {
        "id": number,
        "data": data,
        "annotations": [
            {
                "created_at": label.created_at.isoformat(),
                "was_cancelled": label.status is LabelStatus.rejected,
                "meta": {"author": label.author, "status": label.status.value},
                "result": [
                    {
                        "from_name": "label",
                        "to_name": "image" if image_url else "item",
                        "type": "choices",
                        "value": {"choices": [label.value]},
                    }
                ],
            }
            for label in labels
        ],
    }
