"""Configuration: one object, read from ``LOOPML_*`` environment variables or ``loopml.toml``.

Nothing is read at import time; callers build a :class:`Settings` and pass it down.
Environment variables win over the TOML file, which wins over the defaults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class Settings(BaseSettings):
    """loopml's settings.

    Parameters
    ----------
    home : Path
        Directory holding the embedded database, blobs and the admin key file.
    database_url : str, optional
        SQLAlchemy URL of the metadata database; SQLite in ``home`` when unset.
    storage_url : str, optional
        fsspec URL of the blob store; ``file://<home>/blobs`` when unset.
    executor : str
        ``local`` (worker processes on this machine) or ``ray://host:port`` / ``ray:auto``.
    """

    model_config = SettingsConfigDict(env_prefix="LOOPML_", extra="forbid")

    home: Path = Path(".loopml")
    database_url: str | None = None
    storage_url: str | None = None
    executor: str = "local"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    embedded_worker: bool = True
    worker_concurrency: int = Field(default=2, ge=1)
    poll_interval: float = Field(default=0.5, gt=0, description="Seconds between queue polls.")
    heartbeat_interval: float = Field(default=5.0, gt=0)
    heartbeat_timeout: float = Field(
        default=30.0, gt=0, description="A running job silent this long is re-queued or failed."
    )
    max_request_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    max_upload_bytes: int = Field(
        default=4 * 1024**3, gt=0, description="Largest dataset upload or download."
    )
    max_expanded_bytes: int = Field(
        default=16 * 1024**3, gt=0, description="Largest archive content once unpacked."
    )
    capture_flush_seconds: float = Field(
        default=1.0, gt=0, description="How often captured predictions are written."
    )
    workflow_threads: int = Field(
        default=8, ge=1, le=256, description="Workflow executions a server runs at once."
    )
    workflow_task_modules: list[str] = Field(
        default_factory=list,
        description="Python modules the server imports at start; the functions they "
        "register with @loopml.workflow.task are what workflows may call.",
    )
    workflow_local_files: bool = Field(
        default=False,
        description="Let workflow tasks on this server read and write the server's own "
        "files (serialize_image, label_queue). Off: anyone who may save a workflow could "
        "reach them. The CLI without --url always may: it runs as the files' owner.",
    )
    vision_backbone: Path | None = Field(
        default=None,
        description="A local file of pretrained ResNet weights (timm's model.safetensors or "
        "a .pth state dict): trainings of image data on this server search it as the "
        "backbone learner. Nothing is downloaded.",
    )
    opentelemetry: bool = Field(
        default=False,
        description="Send FastAPI's OpenTelemetry traces and metrics to the providers the "
        "process has configured. Off by default: asking whether any is configured costs "
        "every request a few microseconds, a few percent of a prediction's time.",
    )
    lookup_cache_seconds: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="How long the server trusts a verified API key or a deployment it looked "
        "up; changes made through the server apply at once, others (another process, a "
        "job) within this time. 0 looks both up on every request.",
    )
    job_kinds: dict[str, str] = Field(
        default_factory=dict,
        description="Extra job kinds, name -> 'package.module:function'.",
    )
    storage_options: dict[str, Any] = Field(
        default_factory=dict, description="Extra fsspec options (e.g. endpoint_url for S3)."
    )

    @field_validator("executor")
    @classmethod
    def _check_executor(cls, value: str) -> str:
        if value != "local" and not value.startswith("ray:"):
            raise ValueError("executor must be 'local', 'ray:auto' or 'ray://host:port'")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get("LOOPML_CONFIG", "loopml.toml"))
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_file),
        )

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home.resolve() / 'loopml.db'}"

    @property
    def resolved_storage_url(self) -> str:
        return self.storage_url or (self.home.resolve() / "blobs").as_uri()

    @property
    def admin_key_path(self) -> Path:
        return self.home / "admin.key"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"
