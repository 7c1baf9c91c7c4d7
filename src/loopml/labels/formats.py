"""Label files in and out: CSV, JSON Lines and Label Studio's JSON task format."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from loopml.core.errors import InvalidInput
from loopml.core.schemas import Label

FORMATS = ("csv", "jsonl", "label-studio")


def parse(data: bytes, fmt: str) -> list[tuple[str, str]]:
    """``(item, value)`` pairs from a label file."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the label file is not UTF-8 (byte {exc.start})", field="file") from exc
    if fmt == "csv":
        return _parse_csv(text)
    if fmt == "jsonl":
        return _parse_jsonl(text)
    if fmt == "label-studio":
        return _parse_label_studio(text)
    raise InvalidInput(
        f"unknown label format {fmt!r}; use one of {', '.join(FORMATS)}", field="format"
    )


def _pair(item: Any, value: Any, where: str) -> tuple[str, str]:
    # Spreadsheets pad cells with spaces; item keys and classes never have them at the ends.
    item, value = str(item or "").strip(), str(value if value is not None else "").strip()
    if not item or not value:
        raise InvalidInput(f"{where}: needs both an item and a label value", field="file")
    return item, value


def _parse_csv(text: str) -> list[tuple[str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    fields = reader.fieldnames or []
    if "item" not in fields or not ({"label", "value"} & set(fields)):
        raise InvalidInput(
            f"a label CSV needs the columns item and label; it has {fields}", field="file"
        )
    key = "label" if "label" in fields else "value"
    return [_pair(row.get("item"), row.get(key), f"line {reader.line_num}") for row in reader]


def _parse_jsonl(text: str) -> list[tuple[str, str]]:
    pairs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"line {number}: not JSON: {exc.msg}", field="file") from exc
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
    """The first choice of the latest annotation that was not cancelled."""
    if not isinstance(annotations, list):
        return None
    for annotation in reversed(annotations):
        if not isinstance(annotation, dict) or annotation.get("was_cancelled"):
            continue
        results = annotation.get("result")
        for result in results if isinstance(results, list) else []:
            value = result.get("value") if isinstance(result, dict) else None
            choices = value.get("choices") if isinstance(value, dict) else None
            if isinstance(choices, list) and choices:
                return str(choices[0])
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
        tasks = [_task(i, label, image_url) for i, label in enumerate(labels, start=1)]
        return json.dumps(tasks, indent=1).encode(), "application/json"
    raise InvalidInput(
        f"unknown label format {fmt!r}; use one of {', '.join(FORMATS)}", field="format"
    )


_EXPORTED = {"item", "value", "status", "source", "author", "created_at"}


def _task(number: int, label: Label, image_url: str | None) -> dict[str, Any]:
    data: dict[str, Any] = {"item": label.item}
    if image_url is not None:
        data["image"] = image_url.format(item=label.item)
    return {
        "id": number,
        "data": data,
        "annotations": [
            {
                "completed_by": label.author,
                "created_at": label.created_at.isoformat(),
                "result": [
                    {
                        "from_name": "label",
                        "to_name": "image" if image_url else "item",
                        "type": "choices",
                        "value": {"choices": [label.value]},
                    }
                ],
            }
        ],
    }
