"""The OpenAPI document of one deployment, built from its model's training schema.

The platform's own document can only say "a list of objects"; this one names every
input column with its type and every class the model can answer, so that client
generators and API consoles know what to send and what comes back.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

from loopml.core.enums import TaskType
from loopml.core.schemas import Deployment, ModelVersion

_KIND_SCHEMA: dict[str, dict[str, Any]] = {
    "numeric": {"type": ["number", "null"]},
    "boolean": {"type": ["boolean", "string", "null"]},
    "datetime": {"type": ["string", "null"], "format": "date-time"},
    "categorical": {"type": ["string", "number", "boolean", "null"]},
    "text": {"type": ["string", "null"]},
    "image": {
        "type": ["string", "null"],
        "contentEncoding": "base64",
        "contentMediaType": "image/*",
    },
}


def record_schema(version: ModelVersion) -> dict[str, Any]:
    """JSON Schema of one input record: the model's columns, all optional (a missing
    column is a missing value); other keys are ignored."""
    properties = {}
    for column in version.inputs:
        kind = str(column.get("kind", ""))
        if kind not in _KIND_SCHEMA:  # columns the model dropped (ids, constants) are ignored
            continue
        properties[str(column["name"])] = {
            **_KIND_SCHEMA[kind],
            "description": f"{kind}; null or absent is a missing value",
        }
    return {"type": "object", "properties": properties, "additionalProperties": True}


def prediction_schema(version: ModelVersion, deployment: Deployment) -> dict[str, Any]:
    """JSON Schema of one answered row."""
    common: dict[str, Any] = {
        "prediction_id": {"type": "string", "description": "Quote it to send feedback."},
        "model_version": {"type": "integer"},
    }
    if version.task is TaskType.regression:
        return {
            "type": "object",
            "properties": {**common, "value": {"type": "number"}},
            "required": ["prediction_id", "value", "model_version"],
        }
    classes = [str(c) for c in version.classes or []]
    labels = [*version.classes] if version.classes else []
    if deployment.confidence_threshold is not None:
        labels.append(deployment.fallback_label)
    return {
        "type": "object",
        "properties": {
            **common,
            "label": {"enum": labels},
            "probabilities": {
                "type": "object",
                "properties": {c: {"type": "number", "minimum": 0, "maximum": 1} for c in classes},
                "required": classes,
            },
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "abstained": {
                "type": "boolean",
                "description": "Confidence was below the deployment's threshold; label is "
                f"{deployment.fallback_label!r}.",
            },
        },
        "required": ["prediction_id", "label", "probabilities", "confidence", "abstained"],
    }


def _csv_header(names: Iterable[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(names)
    return out.getvalue()


def _image_bodies(version: ModelVersion) -> dict[str, Any]:
    """A model with one image column also takes the image itself as the body."""
    if sum(1 for c in version.inputs if c.get("kind") == "image") != 1:
        return {}
    binary = {"schema": {"type": "string", "format": "binary"}}
    files = {"type": "object", "properties": {"file": {"type": "array", "items": binary["schema"]}}}
    return {
        "image/png": binary,
        "image/jpeg": binary,
        "multipart/form-data": {"schema": files},
    }


def _wrapped(key: str, records: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {key: records}, "required": [key]}


def deployment_openapi(
    deployment: Deployment, version: ModelVersion, server_url: str
) -> dict[str, Any]:
    """An OpenAPI 3.1 document for ``deployment``'s predict endpoint and its alias."""
    records = {"type": "array", "items": {"$ref": "#/components/schemas/Record"}, "minItems": 1}
    used = [str(c["name"]) for c in version.inputs if c.get("kind") in _KIND_SCHEMA]
    example = {name: None for name in used[:3]}
    operation = {
        "summary": f"Predict with {deployment.project}/{deployment.name}",
        "security": [{"bearer": []}],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            records,
                            _wrapped("records", records),
                            _wrapped("instances", records),
                        ]
                    },
                    "example": [example],
                },
                "text/csv": {
                    "schema": {"type": "string"},
                    "example": _csv_header(example),
                },
                **_image_bodies(version),
            },
        },
        "responses": {
            "200": {
                "description": "One answer per record, in order.",
                "headers": {
                    "X-Loopml-Ignored-Columns": {
                        "description": "Columns sent that the model does not read.",
                        "schema": {"type": "string"},
                    },
                    "X-Loopml-Variant": {
                        "description": "Which model answered: production or canary.",
                        "schema": {"type": "string"},
                    },
                },
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Predictions"}}
                },
            },
            "401": {"description": "Missing or invalid API key."},
            "422": {"description": "A value of the wrong kind; the problem names row and column."},
        },
    }
    base = f"/api/v1/projects/{deployment.project}/deployments/{deployment.name}"
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{deployment.project}/{deployment.name}",
            "version": f"v{version.number}",
            "description": (
                f"Serves model v{version.number} ({version.task.value}, "
                f"{version.metric} {version.score if version.score is not None else 'n/a'})."
                " The schema follows the model's training data and changes when another "
                "version is deployed."
            ),
        },
        "servers": [{"url": server_url}],
        "paths": {
            f"{base}/predict": {"post": {**operation, "operationId": "predict"}},
            f"{base}/invocations": {"post": {**operation, "operationId": "invocations"}},
        },
        "components": {
            "schemas": {
                "Record": record_schema(version),
                "Prediction": prediction_schema(version, deployment),
                "Predictions": {
                    "type": "object",
                    "properties": {
                        "model_version": {"type": "integer"},
                        "predictions": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Prediction"},
                        },
                    },
                    "required": ["model_version", "predictions"],
                },
            },
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
