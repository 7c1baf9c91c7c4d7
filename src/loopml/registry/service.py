"""Registering trained models, and deploying those that pass their project's gates."""

from __future__ import annotations

from typing import Any

from loopml.core.enums import Stage
from loopml.core.errors import AlreadyExists
from loopml.core.schemas import Deployment, ModelVersion
from loopml.registry.gates import check_gates
from loopml.store import deployments, projects, registry
from loopml.store.db import Database

# What a training's result holds that a model version keeps.
_KEPT = (
    "task", "metric", "score", "test_score", "beats_baselines", "dataset",
    "predict_seconds_per_1000", "classes", "inputs", "params", "reference_profile",
)  # fmt: skip


def register_training(
    db: Database,
    project: str,
    training: str,
    result: dict[str, Any],
    *,
    actor: str,
    deploy_to: str | None = None,
) -> tuple[ModelVersion, Deployment | None]:
    """Register a finished training's model and deploy it when it passes the gates.

    ``deploy_to`` (or the project's ``auto_deploy`` gate setting) names the deployment;
    a model that fails a gate stays a candidate and its gate results say which failed.
    """
    with db.session() as s:
        gates = projects.get(s, project).gates
    details = {k: result.get(k) for k in _KEPT if result.get(k) is not None}
    details.update(
        artifact=result["artifacts"]["model"],
        artifact_sha256=result["model"]["sha256"],
        content_hash=result["model"]["content_hash"],
        size_bytes=result["model"]["bytes"],
    )
    verdicts = check_gates(details, gates)
    details["gates"] = [v.model_dump() for v in verdicts]
    target = deploy_to or gates.get("auto_deploy")
    for attempt in range(3):
        try:
            with db.session() as s:
                version, _ = registry.add_model(s, project, details, training=training, actor=actor)
            break
        except AlreadyExists:  # another training of the project took the number: take the next
            if attempt == 2:
                raise
    if target is None or not all(v.passed for v in verdicts):
        return version, None
    with db.session() as s:
        deployment, _ = deployments.deploy(s, project, target, version.number)
        version = registry.set_stage(
            s, project, version.number, Stage.production, actor=actor,
            reason=f"passed the gates; deployed to {target}",
        )  # fmt: skip
    return version, deployment
