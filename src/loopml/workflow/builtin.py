"""Built-in tasks any runner has: ``serialize_image``, ``confidence_filter``, ``notify``
and ``label_queue``.

The tasks that need a server (``predict``) are added by the server; see
:mod:`loopml.api.workflow_host`.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

import fsspec
import httpx

from loopml.core.errors import InvalidInput, StatesError
from loopml.workflow.tasks import DEFAULT_TASKS, TaskContext

MAX_IMAGE_BYTES = 16 * 1024 * 1024
REMOTE_PROTOCOLS = frozenset(
    {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "http", "https", "hf"}
)
_LOCAL = ("file", "local")
_MAGIC = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg"}


def serialize_image(data: Any, context: TaskContext) -> dict[str, Any]:
    """Read an image and return it as base64, ready for a deployment.

    Input: ``{"url": "s3://bucket/key.png"}`` (any fsspec URL; a local path only where
    the runner allows local files: the CLI does, a server does not). Output:
    ``{"image": <base64>, "content_type": "image/png", "url": ...}``.
    """
    if not isinstance(data, dict) or not isinstance(data.get("url"), str):
        raise InvalidInput('serialize_image takes {"url": "<image URL>"}', field="url")
    url: str = data["url"]
    if _reads_local_files(url) and not _local_files_allowed(context):
        raise InvalidInput(
            f"{url!r} is not a URL of a remote store ({', '.join(sorted(REMOTE_PROTOCOLS))})"
            "; workflows on a server read no local files",
            field="url",
        )
    try:
        with fsspec.open(url, "rb") as handle:
            raw = handle.read(MAX_IMAGE_BYTES + 1)
    except FileNotFoundError:
        raise StatesError("loopml.ImageNotFound", f"no image at {url}") from None
    except (ValueError, ImportError) as exc:  # an unknown protocol, or its package missing
        raise InvalidInput(f"cannot read {url}: {exc}", field="url") from None
    if len(raw) > MAX_IMAGE_BYTES:
        raise InvalidInput(f"{url} is larger than {MAX_IMAGE_BYTES} bytes", field="url")
    kind = next((t for magic, t in _MAGIC.items() if raw.startswith(magic)), None)
    if kind is None:
        raise InvalidInput(f"{url} is not a PNG or JPEG image", field="url")
    return {"image": base64.b64encode(raw).decode("ascii"), "content_type": kind, "url": url}


def _local_files_allowed(context: TaskContext) -> bool:
    # Only a bare runner (no services) or a host that says so may touch local files: a
    # host that does not say (a server) must not hand its files to workflow authors.
    if context.services is None:
        return True
    return getattr(context.services, "allow_local_files", False) is True


def _reads_local_files(url: str) -> bool:
    """Whether a URL may reach the machine's own files: anything but a plain URL of a
    known remote store. An allowlist, because fsspec reads more as local than its
    ``file://``: a chain (``simplecache::file:///x``) or a one-letter "drive" (``C://..``)."""
    return not is_remote_url(url)


def is_remote_url(url: str) -> bool:
    """A plain (unchained) URL of a remote store or web server."""
    if "::" in url or "://" not in url:
        return False
    return url.split("://", 1)[0].lower() in REMOTE_PROTOCOLS


def confidence_filter(data: Any) -> Any:
    """Pass a prediction on only when it is confident enough; fail loudly otherwise.

    Input: ``{"threshold": 0.93, "prediction": {...}}`` where the prediction has a
    ``confidence`` (as a deployment answers) or ``probabilities``; ``predictions`` (a
    list) must all pass. Below the threshold it fails with ``ConfidenceThresholdNotMet``;
    otherwise the input comes out unchanged.
    """
    if not isinstance(data, dict):
        raise InvalidInput(
            "confidence_filter takes an object with threshold and prediction", field="input"
        )
    threshold = data.get("threshold")
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, int | float)
        or not (0 <= threshold <= 1)
    ):
        raise InvalidInput(
            f"threshold must be a number from 0 to 1, not {threshold!r}", field="threshold"
        )
    if "predictions" in data:
        predictions = data["predictions"]
        if not isinstance(predictions, list) or not predictions:
            raise InvalidInput("predictions must be a non-empty list", field="predictions")
    elif "prediction" in data:
        predictions = [data["prediction"]]
    else:
        raise InvalidInput("give the prediction (or predictions) to filter", field="prediction")
    for i, prediction in enumerate(predictions):
        confidence = _confidence(prediction, i)
        if confidence < threshold:
            label = prediction.get("label") if isinstance(prediction, dict) else None
            what = f" ({label!r})" if label is not None else ""
            raise StatesError(
                "ConfidenceThresholdNotMet",
                f"prediction {i}{what} has confidence {confidence:.4f}, below the threshold "
                f"{threshold}",
            )
    return data


def _confidence(prediction: Any, index: int) -> float:
    if isinstance(prediction, dict):
        if isinstance(prediction.get("confidence"), int | float):
            return float(prediction["confidence"])
        probabilities = prediction.get("probabilities")
        if isinstance(probabilities, dict) and probabilities:
            return float(max(probabilities.values()))
    if isinstance(prediction, list) and prediction:  # SageMaker's bare inference list
        return float(max(prediction))
    raise InvalidInput(
        f"prediction {index} has neither confidence nor probabilities", field="prediction"
    )


def notify(data: Any) -> dict[str, Any]:
    """POST a JSON message to a webhook.

    Input: ``{"url": "https://…", "message": <any JSON>, "headers": {...}}``. A status
    of 400 or more, or no answer within 10 s, fails with ``loopml.NotifyFailed``.
    """
    if not isinstance(data, dict) or not isinstance(data.get("url"), str):
        raise InvalidInput('notify takes {"url": "https://…", "message": ...}', field="url")
    if not data["url"].startswith(("http://", "https://")):
        raise InvalidInput("the webhook URL must be http:// or https://", field="url")
    headers = data.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise InvalidInput("headers must be an object of strings", field="headers")
    try:
        response = httpx.post(data["url"], json=data.get("message"), headers=headers, timeout=10.0)
    except httpx.HTTPError as exc:
        raise StatesError("loopml.NotifyFailed", f"{data['url']}: {exc}") from None
    if response.status_code >= 400:
        raise StatesError(
            "loopml.NotifyFailed",
            f"{data['url']} answered {response.status_code}: {response.text[:200]}",
        )
    return {"status": response.status_code}


def label_queue(data: Any, context: TaskContext) -> dict[str, Any]:
    """Put an image in a bucket of images waiting for a label.

    Input: ``{"image": <base64>, "bucket": "s3://bucket/unknown"}`` (a local folder
    only where the runner allows local files). The image is written as
    ``<bucket>/<sha256>.png`` (or ``.jpg``), so the same image is queued once. Ingest the
    bucket as a dataset (``loopml data add``) and re-sync it: each new image arrives as an
    unlabelled item in the labelling queue. Output: ``{"url": ..., "sha256": ...}``.
    """
    if not isinstance(data, dict) or not isinstance(data.get("image"), str):
        raise InvalidInput(
            'label_queue takes {"image": <base64>, "bucket": "<URL>"}', field="image"
        )
    bucket = data.get("bucket")
    if not isinstance(bucket, str) or not bucket:
        raise InvalidInput("name the bucket (a folder or URL) the image goes to", field="bucket")
    if _reads_local_files(bucket) and not _local_files_allowed(context):
        raise InvalidInput(
            f"{bucket!r} is a folder on the server; a server writes to URLs (s3://, …)",
            field="bucket",
        )
    try:
        raw = base64.b64decode(data["image"], validate=True)
    except ValueError:
        raise InvalidInput("image is not base64", field="image") from None
    kind = next((t for magic, t in _MAGIC.items() if raw.startswith(magic)), None)
    if kind is None:
        raise InvalidInput("image is not a PNG or JPEG image", field="image")
    digest = hashlib.sha256(raw).hexdigest()
    url = f"{bucket.rstrip('/')}/{digest}.{'png' if kind == 'image/png' else 'jpg'}"
    fs, path = fsspec.core.url_to_fs(url)
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    if not fs.exists(path):
        with fs.open(path, "wb") as handle:
            handle.write(raw)
    return {"url": url, "sha256": digest}


BUILTIN_TASKS: dict[str, Callable[..., Any]] = {
    "serialize_image": serialize_image,
    "confidence_filter": confidence_filter,
    "notify": notify,
    "label_queue": label_queue,
}
for _name, _function in BUILTIN_TASKS.items():
    DEFAULT_TASKS.add(_name, _function)
