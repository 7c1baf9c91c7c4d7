"""Label files: CSV (item,label), JSON Lines and Label Studio's JSON tasks read into
``(item, value)`` pairs, exported so that reading an export gives its labels back, and
malformed files refused naming the line or task."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from typing import Any

import pytest

from loopml.core.enums import LabelSource, LabelStatus
from loopml.core.errors import InvalidInput
from loopml.core.schemas import Label
from loopml.labels.formats import FORMATS, export, parse

SHA = "ab" * 32


def made(item: str, value: str, number: int = 0, **extra: Any) -> Label:
    fields: dict[str, Any] = {
        "id": f"id{number}",
        "project": "farm",
        "dataset": "pets",
        "item": item,
        "value": value,
        "source": LabelSource.human,
        "status": LabelStatus.approved,
        "author": "alice",
        "author_key": "k1",
        "created_at": datetime(2026, 1, 2, 3, 4, number, tzinfo=timezone.utc),
    }
    return Label(**{**fields, **extra})


def task(item: Any = "i1", **parts: Any) -> dict[str, Any]:
    return {"id": 1, "data": {"item": item, "image": "http://x/1.png"}, **parts}


def annotation(choice: str, cancelled: bool = False) -> dict[str, Any]:
    return {
        "was_cancelled": cancelled,
        "result": [{"type": "choices", "value": {"choices": [choice]}}],
    }


def studio(*tasks: Any) -> bytes:
    return json.dumps(list(tasks)).encode()


def refused(data: bytes, fmt: str) -> str:
    with pytest.raises(InvalidInput) as caught:
        parse(data, fmt)
    return caught.value.message


# --- CSV -----------------------------------------------------------------------------------


def test_csv_with_item_and_label_columns() -> None:
    data = b"item,label\nrow-1,cat\npet002,dog\n"
    assert parse(data, "csv") == [("row-1", "cat"), ("pet002", "dog")]


def test_csv_may_name_the_label_value_keep_other_columns_and_start_with_a_bom() -> None:
    data = '\ufeffnote,value,item\nfine,"big, fluffy",p1\n,cat,p2\n'.encode()
    assert parse(data, "csv") == [("p1", "big, fluffy"), ("p2", "cat")]


def test_csv_without_the_columns_is_refused_listing_its_columns() -> None:
    message = refused(b"id,class\n1,cat\n", "csv")
    assert "needs the columns item and label" in message and "['id', 'class']" in message
    assert "needs the columns" in refused(b"item,comment\n1,cat\n", "csv")


def test_a_csv_row_without_a_value_is_refused_naming_its_line() -> None:
    message = refused(b"item,label\nrow-1,cat\nrow-2,\nrow-3,dog\n", "csv")
    assert message == "line 3: needs both an item and a label value"
    assert refused(b"item,label\nrow-1,cat\n,dog\n", "csv").startswith("line 3:")


# --- JSON Lines ----------------------------------------------------------------------------


def test_jsonl_takes_label_or_value_skipping_blank_lines() -> None:
    data = b'{"item": "a", "label": "cat"}\n\n{"item": "b", "value": 3.5}\n'
    data += b'{"item": 7, "label": 0}\n'
    assert parse(data, "jsonl") == [("a", "cat"), ("b", "3.5"), ("7", "0")]


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("{not json", "line 2: not JSON"),
        ('["a", "cat"]', "line 2: expected an object"),
        ('{"item": "b"}', "line 2: needs both an item and a label value"),
        ('{"label": "cat"}', "line 2: needs both an item and a label value"),
    ],
)
def test_a_bad_jsonl_line_is_refused_naming_it(line: str, error: str) -> None:
    data = ('{"item": "a", "label": "cat"}\n' + line + "\n").encode()
    assert refused(data, "jsonl").startswith(error)


# --- Label Studio --------------------------------------------------------------------------


def test_label_studio_takes_the_latest_annotation_that_was_not_cancelled() -> None:
    data = studio(
        task("i1", annotations=[annotation("cat"), annotation("dog")]),
        task("i2", annotations=[annotation("cat"), annotation("dog", cancelled=True)]),
        task("i3", annotations=[annotation("cat", cancelled=True)]),  # nothing left
    )
    assert parse(data, "label-studio") == [("i1", "dog"), ("i2", "cat")]


def test_label_studio_falls_back_to_predictions_and_skips_unlabelled_tasks() -> None:
    data = studio(
        task("i1", predictions=[annotation("cat")]),
        task("i2", annotations=[annotation("dog")], predictions=[annotation("cat")]),
        task("i3", annotations=[annotation("dog", True)], predictions=[annotation("cat")]),
        task("i4", annotations=[], predictions=[]),
        task("i5"),
        task("i6", annotations=[{"result": [{"type": "rectanglelabels", "value": {}}]}]),
    )
    assert parse(data, "label-studio") == [("i1", "cat"), ("i2", "dog"), ("i3", "cat")]


def test_a_label_studio_task_without_an_item_is_refused_naming_it() -> None:
    data = studio(task("i1", annotations=[annotation("cat")]), {"id": 9, "data": {"image": "x"}})
    message = refused(data, "label-studio")
    assert message.startswith("task 1 has no data.item")
    assert "task 0 has no data.item" in refused(studio({"annotations": []}), "label-studio")


def test_malformed_label_studio_tasks_are_refused_or_skipped_not_a_crash() -> None:
    assert refused(studio(task("i1"), {"data": "i2"}), "label-studio").startswith(
        "task 1 has no data.item"
    )
    assert refused(studio("i1"), "label-studio").startswith("task 0 has no data.item")
    odd = studio(
        task("i1", annotations=[{"result": ["cat"]}]),
        task("i2", annotations=[{"result": [{"value": {"choices": "cat"}}]}]),  # not a list
        task("i3", annotations=[{"result": {"value": {}}}], predictions=[annotation("dog")]),
        task("i4", annotations=7),
        task("i5", annotations=[annotation("cat")]),
    )
    assert parse(odd, "label-studio") == [("i3", "dog"), ("i5", "cat")]


def test_a_label_studio_file_that_is_not_a_json_array_is_refused() -> None:
    assert refused(b'[\n{"id": 1,\n}]', "label-studio").startswith("not JSON at line 3")
    assert "JSON array of tasks" in refused(b'{"id": 1}', "label-studio")


# --- any format ----------------------------------------------------------------------------


def test_unknown_formats_and_non_utf8_files_are_refused() -> None:
    with pytest.raises(InvalidInput, match="unknown label format 'xml'") as caught:
        parse(b"item,label\n", "xml")
    assert caught.value.field == "format"
    assert "csv, jsonl, label-studio" in caught.value.message
    with pytest.raises(InvalidInput, match="unknown label format 'xml'"):
        export([made("a", "cat")], "xml")
    assert "not UTF-8 (byte 11)" in refused(b"item,label\n\xff,cat\n", "csv")


# --- export --------------------------------------------------------------------------------

LABELS = [
    made("row-00000000000000aa", "cat", 1),
    made(SHA, 'big, "fluffy" dog', 2),
    made("pet003", "3.25", 3, status=LabelStatus.pending_review),
    made("row-00000000000000aa", "dog", 4),  # an item labelled twice
]


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_export_reads_back_as_the_same_labels(fmt: str) -> None:
    data, media = export(LABELS, fmt)
    assert media.split(";")[0] in ("text/csv", "application/x-ndjson", "application/json")
    if fmt == "label-studio":  # a task per item: its latest label is the one read back
        latest = {x.item: x.value for x in LABELS}
        assert parse(data, fmt) == list(latest.items())
    else:
        assert parse(data, fmt) == [(x.item, x.value) for x in LABELS]


def test_a_label_studio_export_is_a_task_per_item_that_label_studio_imports() -> None:
    rejected = made("pet009", "cat", 5, status=LabelStatus.rejected)
    tasks = json.loads(export([*LABELS, rejected], "label-studio")[0])
    assert [t["data"]["item"] for t in tasks] == ["row-00000000000000aa", SHA, "pet003", "pet009"]
    twice = tasks[0]["annotations"]
    assert [a["result"][0]["value"]["choices"] for a in twice] == [["cat"], ["dog"]]
    # Label Studio refuses an annotator that is not one of its user ids or e-mails.
    assert all("completed_by" not in a for t in tasks for a in t["annotations"])
    assert twice[0]["meta"] == {"author": "alice", "status": "approved"}
    assert tasks[3]["annotations"][0]["was_cancelled"] is True
    assert ("pet009", "cat") not in parse(json.dumps(tasks).encode(), "label-studio")


@pytest.mark.parametrize(
    ("result", "value"),
    [({"number": 4.5}, "4.5"), ({"text": ["tabby, grey"]}, "tabby, grey")],
    ids=["number", "text"],
)
def test_label_studio_numbers_and_text_are_read(result: dict[str, Any], value: str) -> None:
    task = {"data": {"item": "pet001"}, "annotations": [{"result": [{"value": result}]}]}
    assert parse(json.dumps([task]).encode(), "label-studio") == [("pet001", value)]


@pytest.mark.parametrize(
    ("data", "fmt", "says"),
    [
        (b'item,label\npet001,"cat\npet002,dog\n', "csv", "not CSV"),
        (b'{"item": "pet001", "label": ' + b"9" * 5000 + b"}\n", "jsonl", "line 1"),
        (b"[" * 5000 + b"]" * 5000, "label-studio", "nests JSON too deeply"),
        (b'{"item": "pet001", "label": {"x": 1}}\n', "jsonl", "text or numbers"),
        (b"item,label\npet001," + b"a" * 10_001 + b"\n", "csv", "at most 10,000"),
    ],
    ids=["unclosed-quote", "huge-integer", "deep", "object-label", "long-label"],
)
def test_malformed_label_files_are_refused_by_name(data: bytes, fmt: str, says: str) -> None:
    assert says in refused(data, fmt)


def test_a_jsonl_label_may_hold_a_line_separator() -> None:
    data, _ = export([made("pet001", "one\u2028two", 1)], "jsonl")
    assert parse(data, "jsonl") == [("pet001", "one\u2028two")]


def test_csv_export_has_a_header_and_one_row_per_label() -> None:
    data, media = export(LABELS, "csv")
    assert media == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    assert list(rows[0]) == ["item", "label", "status", "source", "author", "created_at"]
    assert [r["status"] for r in rows] == ["approved", "approved", "pending_review", "approved"]
    assert rows[0]["author"] == "alice" and rows[0]["created_at"] == "2026-01-02T03:04:01+00:00"
    assert rows[1]["label"] == 'big, "fluffy" dog'


def test_jsonl_export_has_one_object_per_line() -> None:
    data, _ = export(LABELS, "jsonl")
    records = [json.loads(line) for line in data.decode().splitlines()]
    assert len(records) == 4
    assert set(records[0]) == {"item", "value", "status", "source", "author", "created_at"}
    assert records[2]["status"] == "pending_review"


def test_label_studio_export_links_images_when_given_their_url() -> None:
    data, media = export(LABELS[:2], "label-studio", image_url="http://h/images/{item}")
    assert media == "application/json"
    tasks = json.loads(data)
    assert [t["id"] for t in tasks] == [1, 2]
    assert tasks[1]["data"] == {"item": SHA, "image": f"http://h/images/{SHA}"}
    (result,) = tasks[1]["annotations"][0]["result"]
    assert result["value"] == {"choices": ['big, "fluffy" dog']}
    assert result["to_name"] == "image"
    plain = json.loads(export(LABELS[:1], "label-studio")[0])
    assert plain[0]["data"] == {"item": "row-00000000000000aa"}
