"""The model registry and deployments: versions, stages, cards, deploy, predict."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any

from loopml.core.schemas import Deployment, Feedback, ModelVersion, StageChange
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
