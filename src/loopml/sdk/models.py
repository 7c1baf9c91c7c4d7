"""The model registry and deployments: versions, stages, cards, deploy, predict."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any

from loopml.core.schemas import Deployment, Feedback, Job, ModelVersion, StageChange
from loopml.sdk.resource import Resource


class Models(Resource):
    def list(self, project: str, *, stage: str | None = None) -> builtins.list[ModelVersion]:
        params = {"stage": stage} if stage else {}
        return self._call("GET", f"/projects/{project}/models", list[ModelVersion], params=params)

    def get(self, project: str, number: int) -> ModelVersion:
        return self._call("GET", f"/projects/{project}/models/{number}", ModelVersion)

    def history(self, project: str, number: int) -> builtins.list[StageChange]:
        path = f"/projects/{project}/models/{number}/history"
        return self._call("GET", path, list[StageChange])

    def set_stage(self, project: str, number: int, stage: str, reason: str = "") -> ModelVersion:
        body = {"stage": stage, "reason": reason}
        path = f"/projects/{project}/models/{number}/stage"
        return self._call("POST", path, ModelVersion, json=body)

    def card(self, project: str, number: int) -> str:
        """The model card, in Markdown."""
        return self._client.raw("GET", f"/projects/{project}/models/{number}/card").text


class Deployments(Resource):
    def list(self, project: str) -> builtins.list[Deployment]:
        return self._call("GET", f"/projects/{project}/deployments", list[Deployment])

    def get(self, project: str, name: str) -> Deployment:
        return self._call("GET", f"/projects/{project}/deployments/{name}", Deployment)

    def deploy(
        self,
        project: str,
        name: str,
        model: int,
        *,
        confidence_threshold: float | None = None,
        fallback_label: str | None = None,
        capture_percent: float | None = None,
        reason: str = "",
    ) -> Deployment:
        """Serve model version ``model`` as ``name`` (created or switched)."""
        given = {
            "model": model,
            "confidence_threshold": confidence_threshold,
            "fallback_label": fallback_label,
            "capture_percent": capture_percent,
            "reason": reason,
        }
        body = {k: v for k, v in given.items() if v is not None}
        return self._call("PUT", f"/projects/{project}/deployments/{name}", Deployment, json=body)

    def delete(self, project: str, name: str) -> None:
        self._client.raw("DELETE", f"/projects/{project}/deployments/{name}")

    def set_challenger(
        self,
        project: str,
        name: str,
        model: int,
        *,
        mode: str,
        percent: float = 100.0,
        reason: str = "",
    ) -> Deployment:
        """Try model version ``model`` on ``name``: ``mode`` "shadow" (a copy of
        ``percent`` % of the traffic, answers captured only) or "canary" (answers
        ``percent`` % of the requests)."""
        body = {"model": model, "mode": mode, "percent": percent, "reason": reason}
        path = f"/projects/{project}/deployments/{name}/challenger"
        return self._call("PUT", path, Deployment, json=body)

    def clear_challenger(self, project: str, name: str) -> Deployment:
        path = f"/projects/{project}/deployments/{name}/challenger"
        return self._call("DELETE", path, Deployment)

    def promote(self, project: str, name: str, reason: str = "") -> Deployment:
        """Serve the challenger in place of the current model."""
        path = f"/projects/{project}/deployments/{name}/promote"
        return self._call("POST", path, Deployment, json={"reason": reason})

    def openapi(self, project: str, name: str) -> dict[str, Any]:
        """The deployment's own OpenAPI document (its inputs and classes)."""
        path = f"/projects/{project}/deployments/{name}/openapi.json"
        return dict(self._call("GET", path, dict))

    def batch_predict(
        self,
        project: str,
        name: str,
        *,
        dataset: str | None = None,
        source: str | None = None,
        part: str = "all",
        include_inputs: bool = True,
    ) -> Job:
        """Queue a batch prediction of a dataset version (``name@3``) or a source."""
        given = {"dataset": dataset, "source": source, "part": part,
                 "include_inputs": include_inputs}  # fmt: skip
        body = {k: v for k, v in given.items() if v is not None}
        path = f"/projects/{project}/deployments/{name}/batch-predictions"
        return self._call("POST", path, Job, json=body)

    def batch_predictions(self, project: str, name: str) -> builtins.list[Job]:
        path = f"/projects/{project}/deployments/{name}/batch-predictions"
        return self._call("GET", path, list[Job])

    def batch_output(self, project: str, name: str, job_id: str, format: str = "parquet") -> bytes:
        """The file a finished batch prediction wrote (Parquet, or CSV)."""
        path = f"/projects/{project}/deployments/{name}/batch-predictions/{job_id}/output"
        return self._client.raw("GET", path, params={"format": format}).content

    def predict(
        self, project: str, name: str, records: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]:
        """Predictions for ``records``: ``{"model_version": n, "predictions": [...]}``."""
        path = f"/projects/{project}/deployments/{name}/predict"
        # Anything but a mapping goes as it is: the server names the record that is wrong.
        rows = [dict(r) if isinstance(r, Mapping) else r for r in records]
        return dict(self._call("POST", path, dict, json=rows))

    def predict_csv(self, project: str, name: str, csv: bytes) -> dict[str, Any]:
        path = f"/projects/{project}/deployments/{name}/predict"
        headers = {"Content-Type": "text/csv"}
        return dict(self._call("POST", path, dict, content=csv, headers=headers))

    def predict_image(
        self, project: str, name: str, image: bytes, content_type: str = "image/png"
    ) -> dict[str, Any]:
        """The prediction for one image sent as it is (PNG or JPEG bytes)."""
        path = f"/projects/{project}/deployments/{name}/predict"
        headers = {"Content-Type": content_type}
        return dict(self._call("POST", path, dict, content=image, headers=headers))

    def feedback(self, project: str, name: str, prediction_id: str, label: Any) -> Feedback:
        """Tell the true label of a prediction."""
        path = f"/projects/{project}/deployments/{name}/predictions/{prediction_id}/feedback"
        return self._call("POST", path, Feedback, json={"label": str(label)})

    def list_feedback(self, project: str, name: str) -> builtins.list[Feedback]:
        path = f"/projects/{project}/deployments/{name}/feedback"
        return self._call("GET", path, list[Feedback])

    def captures(
        self, project: str, name: str, *, since: str | None = None, limit: int = 1000
    ) -> builtins.list[dict[str, Any]]:
        """Captured predictions in SageMaker's capture format, oldest first."""
        params: dict[str, Any] = {"limit": limit, **({"since": since} if since else {})}
        path = f"/projects/{project}/deployments/{name}/captures"
        return self._call("GET", path, list, params=params)
