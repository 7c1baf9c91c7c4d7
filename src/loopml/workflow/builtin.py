"""Built-in tasks any runner has: ``serialize_image``, ``confidence_filter`` and ``notify``.

The tasks that need a server (``predict``) are added by the server; see
:mod:`loopml.api.workflow_host`.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import fsspec
import httpx

from loopml.core.errors import InvalidInput, StatesError
from loopml.workflow.tasks import DEFAULT_TASKS, TaskContext

MAX_IMAGE_BYTES = 16 * 1024 * 1024
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
    protocol = url.split("://", 1)[0] if "://" in url else "file"
    if protocol in _LOCAL and not getattr(context.services, "allow_local_files", True):
        raise InvalidInput(
            f"{url!r} is a file on the server; workflows on a server read images from URLs "
            "(s3://, https://, …)",
            field="url",
        )
    try:
        with fsspec.open(url, "rb") as handle:
            raw = handle.read(MAX_IMAGE_BYTES + 1)
    except FileNotFoundError:
        raise StatesError("loopml.ImageNotFound", f"no image at {url}") from None
    if len(raw) > MAX_IMAGE_BYTES:
        raise InvalidInput(f"{url} is larger than {MAX_IMAGE_BYTES} bytes", field="url")
    kind = next((t for magic, t in _MAGIC.items() if raw.startswith(magic)), None)
    if kind is None:
        raise InvalidInput(f"{url} is not a PNG or JPEG image", field="url")
    return {"image": base64.b64encode(raw).decode("ascii"), "content_type": kind, "url": url}


def confidence_filter(data: Any) -> Any:
    """Pass a prediction on only when it is confident enough; fail loudly otherwise.

    Input: ``{"threshold": 0.93, "prediction": {...}}`` where the prediction has a
    ``confidence`` (as a deployment answers) or ``probabilities``; ``predictions`` (a
    list) must all pass. Below the threshold it fails with ``ConfidenceThresholdNotMet``;
    otherwise the input comes out unchanged.
    """
    if not isinstance(data, dict):
        raise InvalidInput("confidence_filter takes an object with threshold and prediction",
                           field="input")
    threshold = data.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not (
        0 <= threshold <= 1
    ):
        raise InvalidInput(f"threshold must be a number from 0 to 1, not {threshold!r}",
                           field="threshold")
    if "predictions" in data:
        predictions = data["predictions"]
        if not isinstance(predictions, list) or not predictions:
            raise InvalidInput("predictions must be a non-empty list", field="predictions")
    elif "prediction" in data:
        predictions = [data["prediction"]]
    else:
        raise InvalidInput("give the prediction (or predictions) to filter",
                           field="prediction")
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
    raise InvalidInput(f"prediction {index} has neither confidence nor probabilities",
                       field="prediction")


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
    if not isinstance(headers, dict):
        raise InvalidInput("headers must be an object of strings", field="headers")
    try:
        response = httpx.post(data["url"], json=data.get("message"), headers=headers,
                              timeout=10.0)
    except httpx.HTTPError as exc:
        raise StatesError("loopml.NotifyFailed", f"{data['url']}: {exc}") from None
    if response.status_code >= 400:
        raise StatesError("loopml.NotifyFailed",
                          f"{data['url']} answered {response.status_code}: {response.text[:200]}")
    return {"status": response.status_code}


BUILTIN_TASKS: dict[str, Callable[..., Any]] = {
    "serialize_image": serialize_image,
    "confidence_filter": confidence_filter,
    "notify": notify,
}
for _name, _function in BUILTIN_TASKS.items():
    DEFAULT_TASKS.add(_name, _function)

