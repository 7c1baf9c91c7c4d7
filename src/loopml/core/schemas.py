"""Entities passed between layers and returned by the REST API.

Stores return these plain objects, never ORM rows, so that nothing above ``store``
depends on how a thing is persisted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from loopml.core.enums import (
    ChallengerMode,
    ColumnKind,
    JobState,
    LabelSource,
    LabelStatus,
    Role,
    Severity,
    Stage,
    TaskType,
)


class Entity(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)


class Project(Entity):
    id: str
    name: str
    description: str = ""
    label_review: bool = Field(
        default=True, description="Labels wait for a reviewer's approval before training."
    )
    gates: dict[str, Any] = Field(
        default_factory=dict,
        description="Quality gates a model must pass to be deployed automatically.",
    )
    created_at: datetime


class ApiKey(Entity):
    """An API key as others may see it: never the secret, never its hash."""

    id: str
    name: str
    prefix: str = Field(description="First characters of the key, to recognise it.")
    global_role: Role | None = Field(
        default=None, description="Role in every project (admin keys have admin here)."
    )
    project_roles: dict[str, Role] = Field(
        default_factory=dict, description="Role per project name."
    )
    created_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    def role_in(self, project: str | None) -> Role | None:
        """The strongest role this key holds in ``project`` (or globally when None)."""
        roles = [r for r in (self.global_role, self.project_roles.get(project or "")) if r]
        return max(roles, key=lambda r: r.rank) if roles else None


class NewApiKey(BaseModel):
    """A freshly created key: the only time the secret is ever shown."""

    key: ApiKey
    secret: str


class Job(Entity):
    id: str
    project: str | None = None
    kind: str
    params: dict[str, Any] = Field(default_factory=dict)
    state: JobState
    progress: float = 0.0
    message: str = ""
    result: Any = None
    error: str | None = None
    problem: dict[str, Any] | None = Field(
        default=None,
        description="A failure the caller can fix, whole: its type, message, field and "
        "details (a malformed CSV's line and column).",
    )
    attempts: int = 0
    max_attempts: int = 1
    worker: str | None = None
    cancel_requested: bool = False
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None


class JobLogLine(Entity):
    seq: int
    at: datetime
    level: str
    message: str


class BlobInfo(Entity):
    key: str
    size: int
    sha256: str | None = None


class ColumnSchema(BaseModel):
    """One column of a dataset version: what it holds and how training treats it."""

    model_config = ConfigDict(frozen=True)

    name: str
    kind: ColumnKind
    dtype: str = Field(description="Storage type (int64, double, string, timestamp[s] ...).")
    missing: int = 0
    unique: int | None = Field(default=None, description="Distinct non-missing values.")
    unique_estimated: bool = Field(
        default=False,
        description="Whether ``unique`` is an estimate (typically within 0.2%): a large column "
        "of many distinct numbers is not sorted to count them.",
    )
    inferred: ColumnKind | None = Field(
        default=None, description="What inference said, when the user overrode the kind."
    )


class DatasetSchema(BaseModel):
    model_config = ConfigDict(frozen=True)

    columns: list[ColumnSchema]
    target: str | None = None
    task: TaskType | None = None
    suggested_target: str | None = None
    suggested_task: TaskType | None = None

    def column(self, name: str) -> ColumnSchema | None:
        return next((c for c in self.columns if c.name == name), None)


class QualityFinding(BaseModel):
    """One data-quality check that found something, with a message a person can act on."""

    model_config = ConfigDict(frozen=True)

    check: str
    severity: Severity
    message: str
    column: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class Dataset(Entity):
    id: str
    project: str
    name: str
    description: str = ""
    source: str | None = Field(default=None, description="Where re-syncs read from.")
    options: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    versions: int = 0
    current: int | None = Field(
        default=None,
        description="The version the dataset's name alone means: the newest, or an earlier "
        "one whose content the source holds again.",
    )


class DatasetVersion(Entity):
    """An immutable snapshot of a dataset: rows (and images) plus what is known about them."""

    id: str
    project: str
    dataset: str
    number: int
    content_hash: str
    parent: int | None = None
    rows: int
    source: str | None = None
    data_schema: DatasetSchema
    quality: list[QualityFinding] = Field(default_factory=list)
    split: dict[str, Any] = Field(default_factory=dict)
    changes: dict[str, Any] = Field(default_factory=dict)
    manifest: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime

    @property
    def ref(self) -> str:
        return f"{self.dataset}@{self.number}"


class Label(Entity):
    """A label on one item (a row or an image) of a dataset."""

    id: str
    project: str
    dataset: str
    item: str = Field(description="The row's key or the image's SHA-256.")
    value: str
    source: LabelSource
    status: LabelStatus
    author: str = Field(description="The name of the key that made the label.")
    author_key: str = Field(description="The id of that key.")
    created_at: datetime
    reviewer: str | None = None
    reviewed_at: datetime | None = None
    note: str = ""
    applied_in: int | None = Field(
        default=None, description="The dataset version that first included this label."
    )


class GateResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    gate: str
    passed: bool
    message: str


class ModelVersion(Entity):
    """A trained model in the registry: its artifact, where it came from, how good it is."""

    id: str
    project: str
    number: int
    stage: Stage
    task: TaskType
    metric: str
    score: float | None = Field(default=None, description="Cross-validated, best first.")
    test_score: float | None = Field(default=None, description="On the frozen test split.")
    beats_baselines: bool = False
    training: str | None = Field(default=None, description="The training job it came from.")
    dataset: str | None = Field(default=None, description="The dataset version it saw.")
    artifact: str
    artifact_sha256: str
    content_hash: str
    size_bytes: int
    predict_seconds_per_1000: float | None = None
    classes: list[Any] | None = None
    inputs: list[dict[str, Any]] = Field(
        default_factory=list, description="The columns it reads: name and kind."
    )
    params: dict[str, Any] = Field(default_factory=dict)
    gates: list[GateResult] = Field(default_factory=list)
    reference_profile: str | None = Field(
        default=None, description="Blob key of the profile monitoring compares traffic with."
    )
    created_at: datetime

    @property
    def ref(self) -> str:
        return f"v{self.number}"


class StageChange(Entity):
    model: int
    from_stage: Stage | None
    to_stage: Stage
    actor: str
    reason: str = ""
    at: datetime


class Challenger(Entity):
    """A model version tried on a deployment's traffic beside the one it serves."""

    model: int = Field(description="The challenger's model version number.")
    mode: ChallengerMode
    percent: float = Field(
        description="canary: share of requests it answers; shadow: share it sees a copy of."
    )


class Deployment(Entity):
    """A named endpoint serving one model version."""

    id: str
    project: str
    name: str
    model: int = Field(description="The model version number served.")
    confidence_threshold: float | None = Field(
        default=None, description="Below it a prediction abstains."
    )
    fallback_label: str = "unknown"
    capture_percent: float = Field(
        default=100.0, description="Share of predicted rows captured (0-100)."
    )
    challenger: Challenger | None = Field(
        default=None, description="A second model meeting the traffic beside the served one."
    )
    created_at: datetime
    updated_at: datetime


class Feedback(Entity):
    """The true label of a prediction, told afterwards."""

    prediction_id: str
    deployment: str
    label: str
    author: str
    at: datetime


class Workflow(Entity):
    """A named state machine (Amazon States Language) in a project."""

    id: str
    project: str
    name: str
    definition: dict[str, Any]
    revision: int = Field(description="Counts up each time the definition is replaced.")
    type: str = Field(
        default="STANDARD",
        description="STANDARD: a durable checkpoint after each Task, Parallel, Map and Wait "
        "(a resumed execution never runs one twice); EXPRESS: checkpoints are written with "
        "the events, about once a second (faster; after a crash a Task may run again).",
    )
    created_at: datetime
    updated_at: datetime


class WorkflowExecution(Entity):
    """One run of a workflow: its input, status and, once it ends, output or error."""

    id: str
    project: str
    workflow: str
    name: str
    revision: int = Field(description="The workflow revision the execution runs.")
    type: str = Field(default="STANDARD", description="The workflow's type when it started.")
    status: str = Field(description="RUNNING, SUCCEEDED, FAILED, TIMED_OUT or ABORTED.")
    input: Any = None
    output: Any = None
    error: str | None = None
    cause: str | None = None
    trigger: str = Field(default="manual", description="manual, schedule or the event.")
    started_by: str = ""
    started_at: datetime
    stopped_at: datetime | None = None
    events: int = Field(default=0, description="Events in the execution's history so far.")


class WorkflowTrigger(Entity):
    """What starts a workflow by itself: a schedule, a new dataset version, a new file,
    a new monitoring alert."""

    id: str
    project: str
    workflow: str
    name: str
    kind: str = Field(description="schedule, dataset, source or alert.")
    spec: dict[str, Any] = Field(
        description='schedule: {"cron", "timezone"}; dataset: {"dataset"}; '
        'source: {"url", "every"} (seconds between looks); alert: {"deployment", "rule", '
        '"severity", "every"} (each new alert at least that severe).'
    )
    input: Any = Field(default=None, description="Merged into each execution's input.")
    enabled: bool = True
    due_at: datetime = Field(description="When it next fires (schedule) or looks.")
    fired: int = 0
    last_fired_at: datetime | None = None
    last_error: str | None = None
    created_at: datetime
