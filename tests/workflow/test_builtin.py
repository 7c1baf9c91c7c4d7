"""The built-in tasks: ``serialize_image`` (local files only where the host allows them,
S3 through moto's server), ``confidence_filter`` and ``notify`` (to a real HTTP server),
called directly and from a workflow that catches their errors."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from loopml.core.errors import InvalidInput, StatesError
from loopml.workflow import DEFAULT_TASKS, Runner, TaskContext, builtin, compile_definition
from loopml.workflow.builtin import confidence_filter, label_queue, notify, serialize_image

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(40))
JPEG = b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF" + bytes(30)


@dataclass(frozen=True)
class Services:
    allow_local_files: bool


class Bare:
    """Services of a host that does not say whether local files are allowed."""


def context(services: Any = None) -> TaskContext:
    return TaskContext("ex-1", "Serialize", 0, None, services)


def run(definition: dict[str, Any], data: Any, services: Any = None) -> Any:
    machine = compile_definition(definition, known_task=DEFAULT_TASKS.__contains__)
    return Runner(DEFAULT_TASKS, services=services).run(machine, data)


@pytest.fixture
def images(tmp_path: Path) -> Path:
    (tmp_path / "cat.png").write_bytes(PNG)
    (tmp_path / "dog.jpg").write_bytes(JPEG)
    (tmp_path / "notes.txt").write_text("GIF89a is not here either")
    (tmp_path / "anim.gif").write_bytes(b"GIF89a" + bytes(20))
    return tmp_path


# --- serialize_image -----------------------------------------------------------------


@pytest.mark.parametrize("services", [None, Services(allow_local_files=True)])
def test_a_local_image_is_read_where_the_host_allows_it(images: Path, services: Any) -> None:
    png = serialize_image({"url": str(images / "cat.png")}, context(services))
    assert png["content_type"] == "image/png"
    assert base64.b64decode(png["image"]) == PNG
    assert png["url"] == str(images / "cat.png")
    jpeg = serialize_image({"url": f"file://{images / 'dog.jpg'}"}, context(services))
    assert jpeg["content_type"] == "image/jpeg"
    assert base64.b64decode(jpeg["image"]) == JPEG


@pytest.mark.parametrize(
    "url",
    [
        "{dir}/cat.png",
        "file://{dir}/cat.png",
        "FILE://{dir}/cat.png",
        "simplecache::file://{dir}/cat.png",
        "blockcache::{dir}/cat.png",
    ],
)
@pytest.mark.parametrize("services", [Services(allow_local_files=False), Bare()])
def test_a_server_never_reads_its_own_files(images: Path, url: str, services: Any) -> None:
    with pytest.raises(InvalidInput, match="not a URL of a remote store") as refused:
        serialize_image({"url": url.format(dir=images)}, context(services))
    assert refused.value.field == "url"


def test_a_missing_image_fails_with_image_not_found(images: Path) -> None:
    with pytest.raises(StatesError) as missing:
        serialize_image({"url": str(images / "ghost.png")}, context())
    assert missing.value.error == "loopml.ImageNotFound"
    assert str(images / "ghost.png") in missing.value.cause


@pytest.mark.parametrize("name", ["notes.txt", "anim.gif"])
def test_only_png_and_jpeg_are_images(images: Path, name: str) -> None:
    with pytest.raises(InvalidInput, match="is not a PNG or JPEG image") as refused:
        serialize_image({"url": str(images / name)}, context())
    assert refused.value.field == "url"


def test_an_image_over_the_limit_is_refused(images: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(builtin, "MAX_IMAGE_BYTES", len(PNG) - 1)
    with pytest.raises(InvalidInput, match="larger than"):
        serialize_image({"url": str(images / "cat.png")}, context())
    monkeypatch.setattr(builtin, "MAX_IMAGE_BYTES", len(PNG))
    assert serialize_image({"url": str(images / "cat.png")}, context())["image"]


@pytest.mark.parametrize(
    "data", [None, "s3://b/k.png", {"uri": "s3://b/k.png"}, {"url": 5}, ["s3://b/k.png"]]
)
def test_serialize_image_takes_an_object_with_a_url(data: Any) -> None:
    with pytest.raises(InvalidInput, match=r'takes \{"url"') as refused:
        serialize_image(data, context())
    assert refused.value.field == "url"


def test_an_unknown_protocol_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match=r"cannot read nosuch://x\.png") as refused:
        serialize_image({"url": "nosuch://x.png"}, context(Services(allow_local_files=True)))
    assert refused.value.field == "url"
    with pytest.raises(InvalidInput, match=r"not a URL of a remote store"):
        serialize_image({"url": "nosuch://x.png"}, context(Services(allow_local_files=False)))


@pytest.mark.parametrize(
    "url", ["C://../../{dir}/cat.png", "blockcache::file://{dir}/cat.png", "FILE://{dir}/cat.png",
            "{dir}/cat.png", "memory://cat.png"],
)  # fmt: skip
def test_no_spelling_of_a_local_file_passes_a_server(images: Path, url: str) -> None:
    """fsspec reads a one-letter "drive" as a relative local path, and chains wrap files."""
    depth = "/".join([".."] * 12)
    url = url.replace("../..", depth).format(dir=images)
    with pytest.raises(InvalidInput, match="not a URL of a remote store"):
        serialize_image({"url": url}, context(Services(allow_local_files=False)))
    with pytest.raises(InvalidInput, match=r"folder on the server"):
        label_queue(
            {"image": base64.b64encode(PNG).decode(), "bucket": url.rsplit("/", 1)[0]},
            context(Services(allow_local_files=False)),
        )


@pytest.mark.s3
def test_an_image_on_s3_is_read_by_a_server(
    s3_storage: tuple[str, dict[str, Any]], s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    bucket = s3_storage[0].split("/")[2]
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    s3.put_object(Bucket=bucket, Key="in/cat.png", Body=PNG)
    server = Services(allow_local_files=False)

    found = serialize_image({"url": f"s3://{bucket}/in/cat.png"}, context(server))
    assert (found["content_type"], base64.b64decode(found["image"])) == ("image/png", PNG)
    with pytest.raises(StatesError) as missing:
        serialize_image({"url": f"s3://{bucket}/in/dog.png"}, context(server))
    assert missing.value.error == "loopml.ImageNotFound"

    # In a workflow, the missing image is an error a Catch can route.
    definition = {
        "StartAt": "Read",
        "States": {
            "Read": {
                "Type": "Task",
                "Resource": "loopml:task:serialize_image",
                "ResultSelector": {"type.$": "$.content_type"},
                "ResultPath": "$.image",
                "Catch": [
                    {
                        "ErrorEquals": ["loopml.ImageNotFound"],
                        "ResultPath": "$.error",
                        "Next": "Missing",
                    }
                ],
                "End": True,
            },
            "Missing": {"Type": "Pass", "Result": "no image", "ResultPath": "$.note", "End": True},
        },
    }
    ok = run(definition, {"url": f"s3://{bucket}/in/cat.png"}, server)
    assert (ok.status, ok.output["image"]) == ("SUCCEEDED", {"type": "image/png"})
    caught = run(definition, {"url": f"s3://{bucket}/in/dog.png"}, server)
    assert caught.status == "SUCCEEDED"
    assert caught.output["note"] == "no image"
    assert caught.output["error"]["Error"] == "loopml.ImageNotFound"


# --- label_queue ---------------------------------------------------------------------


def test_label_queue_writes_each_image_once_under_its_hash(tmp_path: Path) -> None:
    import hashlib

    bucket = tmp_path / "unknown"
    image = base64.b64encode(PNG).decode()
    first = label_queue({"image": image, "bucket": str(bucket)}, context())
    digest = hashlib.sha256(PNG).hexdigest()
    assert first == {"url": f"{bucket}/{digest}.png", "sha256": digest}
    assert (bucket / f"{digest}.png").read_bytes() == PNG
    again = label_queue({"image": image, "bucket": f"{bucket}/"}, context())
    assert again == first
    jpeg = label_queue({"image": base64.b64encode(JPEG).decode(), "bucket": str(bucket)}, context())
    assert jpeg["url"].endswith(".jpg")
    assert sorted(p.suffix for p in bucket.iterdir()) == [".jpg", ".png"]


@pytest.mark.parametrize("bucket", ["{dir}/q", "file://{dir}/q", "simplecache::file://{dir}/q"])
@pytest.mark.parametrize("services", [Services(allow_local_files=False), Bare()])
def test_label_queue_never_writes_a_servers_own_files(
    tmp_path: Path, bucket: str, services: Any
) -> None:
    data = {"image": base64.b64encode(PNG).decode(), "bucket": bucket.format(dir=tmp_path)}
    with pytest.raises(InvalidInput, match="is a folder on the server") as refused:
        label_queue(data, context(services))
    assert refused.value.field == "bucket"
    assert not (tmp_path / "q").exists()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"bucket": "/tmp/q"}, "image"),
        ({"image": "not base64!", "bucket": "/tmp/q"}, "image"),
        ({"image": base64.b64encode(b"GIF89a").decode(), "bucket": "/tmp/q"}, "image"),
        ({"image": base64.b64encode(PNG).decode(), "bucket": ""}, "bucket"),
    ],
)
def test_what_label_queue_cannot_queue_is_invalid_input(data: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as bad:
        label_queue(data, context())
    assert bad.value.field == field


# --- confidence_filter ---------------------------------------------------------------


def test_a_confident_prediction_passes_through_unchanged() -> None:
    data = {"threshold": 0.9, "prediction": {"label": "cat", "confidence": 0.95}, "id": 7}
    assert confidence_filter(data) == data
    at = {"threshold": 0.95, "prediction": {"label": "cat", "confidence": 0.95}}
    assert confidence_filter(at) == at  # the threshold itself is enough


def test_a_doubtful_prediction_fails_naming_the_numbers() -> None:
    with pytest.raises(StatesError) as doubt:
        confidence_filter({"threshold": 0.93, "prediction": {"label": "cat", "confidence": 0.81}})
    assert doubt.value.error == "ConfidenceThresholdNotMet"
    assert "0.8100" in doubt.value.cause and "0.93" in doubt.value.cause
    assert "'cat'" in doubt.value.cause


def test_probabilities_stand_in_for_a_missing_confidence() -> None:
    sure = {"threshold": 0.7, "prediction": {"probabilities": {"a": 0.2, "b": 0.8}}}
    assert confidence_filter(sure) == sure
    with pytest.raises(StatesError, match=r"0\.6000") as doubt:
        confidence_filter({"threshold": 0.7, "prediction": {"probabilities": {"a": 0.4, "b": 0.6}}})
    assert doubt.value.error == "ConfidenceThresholdNotMet"
    bare = {"threshold": 0.5, "prediction": [0.1, 0.9]}  # SageMaker's bare list
    assert confidence_filter(bare) == bare


def test_every_prediction_of_a_list_must_pass() -> None:
    good = {"label": "a", "confidence": 0.99}
    data = {"threshold": 0.9, "predictions": [good, good]}
    assert confidence_filter(data) == data
    with pytest.raises(StatesError, match=r"prediction 1 \('b'\) has confidence 0.5000") as doubt:
        confidence_filter(
            {"threshold": 0.9, "predictions": [good, {"label": "b", "confidence": 0.5}]}
        )
    assert doubt.value.error == "ConfidenceThresholdNotMet"


@pytest.mark.parametrize("threshold", [1.5, -0.1, "0.9", True, None])
def test_a_threshold_is_a_number_from_zero_to_one(threshold: Any) -> None:
    with pytest.raises(InvalidInput, match="threshold must be a number") as bad:
        confidence_filter({"threshold": threshold, "prediction": {"confidence": 1.0}})
    assert bad.value.field == "threshold"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ([0.9], "input"),
        ({"threshold": 0.5}, "prediction"),
        ({"threshold": 0.5, "predictions": []}, "predictions"),
        ({"threshold": 0.5, "predictions": {"confidence": 1}}, "predictions"),
        ({"threshold": 0.5, "prediction": {"label": "a"}}, "prediction"),
        ({"threshold": 0.5, "prediction": "sure"}, "prediction"),
    ],
)
def test_what_confidence_filter_cannot_read_is_invalid_input(data: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as bad:
        confidence_filter(data)
    assert bad.value.field == field


def test_a_workflow_routes_a_doubtful_prediction_with_catch() -> None:
    definition = {
        "StartAt": "Filter",
        "States": {
            "Filter": {
                "Type": "Task",
                "Resource": "loopml:task:confidence_filter",
                "Catch": [
                    {
                        "ErrorEquals": ["ConfidenceThresholdNotMet"],
                        "ResultPath": "$.why",
                        "Next": "Review",
                    }
                ],
                "Next": "Accept",
            },
            "Accept": {"Type": "Pass", "Result": "accepted", "ResultPath": "$.route", "End": True},
            "Review": {"Type": "Pass", "Result": "review", "ResultPath": "$.route", "End": True},
        },
    }
    sure = run(definition, {"threshold": 0.5, "prediction": {"confidence": 0.9}})
    assert (sure.status, sure.output["route"]) == ("SUCCEEDED", "accepted")
    doubt = run(definition, {"threshold": 0.95, "prediction": {"confidence": 0.9}})
    assert (doubt.status, doubt.output["route"]) == ("SUCCEEDED", "review")
    assert doubt.output["why"]["Error"] == "ConfidenceThresholdNotMet"
    bad = run(definition, {"threshold": 2, "prediction": {"confidence": 0.9}})
    assert (bad.status, bad.error) == ("FAILED", "InvalidInput")
    assert "threshold must be a number" in (bad.cause or "")


# --- notify --------------------------------------------------------------------------


@dataclass
class Hook:
    url: str
    received: list[dict[str, Any]]
    answer: list[int]


@pytest.fixture
def hook() -> Iterator[Hook]:
    """A webhook on 127.0.0.1 that records what is POSTed and answers ``answer[0]``."""
    state = Hook("", [], [200])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.received.append(
                {"path": self.path, "headers": dict(self.headers), "body": json.loads(body)}
            )
            self.send_response(state.answer[0])
            self.end_headers()
            self.wfile.write(b"queue full" if state.answer[0] >= 400 else b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_notify_posts_the_message_as_json(hook: Hook) -> None:
    message = {"text": "model v3 deployed", "accuracy": 0.97}
    answer = notify(
        {"url": hook.url + "/hooks/ml", "message": message, "headers": {"X-Token": "s3cret"}}
    )
    assert answer == {"status": 200}
    [seen] = hook.received
    assert seen["path"] == "/hooks/ml"
    assert seen["body"] == message
    assert seen["headers"]["X-Token"] == "s3cret"
    assert seen["headers"]["Content-Type"] == "application/json"


def test_an_error_answer_fails_with_notify_failed(hook: Hook) -> None:
    hook.answer[0] = 500
    with pytest.raises(StatesError) as failed:
        notify({"url": hook.url, "message": "hi"})
    assert failed.value.error == "loopml.NotifyFailed"
    assert "answered 500" in failed.value.cause and "queue full" in failed.value.cause
    assert [r["body"] for r in hook.received] == ["hi"]


def test_an_unreachable_webhook_fails_with_notify_failed(hook: Hook) -> None:
    from tests.conftest import free_port

    with pytest.raises(StatesError) as failed:
        notify({"url": f"http://127.0.0.1:{free_port()}/", "message": "hi"})
    assert failed.value.error == "loopml.NotifyFailed"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"url": "ftp://example.com/hook", "message": 1}, "url"),
        ({"url": "file:///etc/passwd"}, "url"),
        ({"message": "no url"}, "url"),
        ("https://example.com", "url"),
        ({"url": "https://example.com", "headers": ["X-A: b"]}, "headers"),
        ({"url": "https://example.com", "headers": {"X-Count": 3}}, "headers"),
    ],
)
def test_what_notify_cannot_send_is_invalid_input(data: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as bad:
        notify(data)
    assert bad.value.field == field


def test_a_workflow_catches_a_failed_notification(hook: Hook) -> None:
    hook.answer[0] = 503
    definition = {
        "StartAt": "Notify",
        "States": {
            "Notify": {
                "Type": "Task",
                "Resource": "loopml:task:notify",
                "Catch": [
                    {
                        "ErrorEquals": ["loopml.NotifyFailed"],
                        "ResultPath": "$.failed",
                        "Next": "Later",
                    }
                ],
                "End": True,
            },
            "Later": {"Type": "Pass", "End": True},
        },
    }
    result = run(definition, {"url": hook.url, "message": {"n": 1}})
    assert result.status == "SUCCEEDED"
    assert result.output["failed"]["Error"] == "loopml.NotifyFailed"
    assert "answered 503" in result.output["failed"]["Cause"]
    hook.answer[0] = 200
    assert run(definition, {"url": hook.url, "message": {"n": 2}}).output == {"status": 200}
    assert [r["body"] for r in hook.received] == [{"n": 1}, {"n": 2}]
