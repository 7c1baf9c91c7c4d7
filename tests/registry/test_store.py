"""The registry's store: model versions numbered per project, stages with their history,
one production model per project, and deployments that switch between versions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from loopml.core.enums import Stage
from loopml.core.errors import Conflict, InvalidInput, NotFound
from loopml.store import deployments, projects, registry
from loopml.store.db import Database


@pytest.fixture
def sqlite_db(sqlite_url: str) -> Iterator[Database]:
    database = Database(sqlite_url)
    database.upgrade()
    yield database
    database.dispose()


def details(n: int = 1, **overrides: Any) -> dict[str, Any]:
    """What a training hands the registry about its model."""
    found: dict[str, Any] = {
        "task": "binary",
        "metric": "roc_auc",
        "score": 0.8 + n / 100,
        "artifact": f"models/p/job{n}/model.zip",
        "artifact_sha256": f"{n:064x}",
        "content_hash": f"{n + 100:064x}",
        "size_bytes": 1000 * n,
        "inputs": [{"name": "a", "kind": "numeric"}],
    }
    found.update(overrides)
    return found


def add(db: Database, project: str, n: int, training: str | None = None) -> int:
    with db.session() as s:
        version, created = registry.add_model(
            s, project, details(n), training=training or f"job{n}", actor="tester"
        )
    assert created
    return version.number


def stages(db: Database, project: str) -> dict[int, Stage]:
    with db.session() as s:
        return {m.number: m.stage for m in registry.list_models(s, project)}


def history(db: Database, project: str, number: int) -> list[tuple[Any, ...]]:
    with db.session() as s:
        return [
            (c.from_stage, c.to_stage, c.actor, c.reason)
            for c in registry.stage_history(s, project, number)
        ]


def test_models_stages_and_deployments_end_to_end(db: Database) -> None:
    """The whole life of two versions, on SQLite and on PostgreSQL."""
    with db.session() as s:
        projects.create(s, "churn")
    assert add(db, "churn", 1) == 1
    assert add(db, "churn", 2) == 2

    with db.session() as s:
        registry.set_stage(s, "churn", 1, Stage.production, actor="ann", reason="first")
        deployment, created = deployments.deploy(s, "churn", "live", 1, confidence_threshold=0.7)
    assert created and deployment.model == 1
    with db.session() as s, pytest.raises(Conflict, match="v1 is served by live"):
        # A served model is not demoted under its deployment...
        registry.set_stage(s, "churn", 1, Stage.archived, actor="bob")
    with db.session() as s:
        # ...nor archived when another is promoted while it is still served.
        registry.set_stage(s, "churn", 2, Stage.staging, actor="bob", reason="try")
    with db.session() as s:
        deployment, created = deployments.deploy(s, "churn", "live", 2)
        registry.set_stage(s, "churn", 2, Stage.production, actor="bob", reason="better")
    assert not created
    assert (deployment.model, deployment.confidence_threshold) == (2, 0.7)

    assert stages(db, "churn") == {1: Stage.archived, 2: Stage.production}
    assert history(db, "churn", 1) == [
        (None, Stage.candidate, "tester", "registered"),
        (Stage.candidate, Stage.production, "ann", "first"),
        (Stage.production, Stage.archived, "bob", "replaced by v2"),
    ]
    with db.session() as s:
        assert [d.model for d in deployments.list_deployments(s, "churn")] == [2]
        deployments.delete_deployment(s, "churn", "live")
    with db.session() as s:
        assert deployments.list_deployments(s, "churn") == []
        # deleting the project takes its models, their history and deployments with it
        deployments.deploy(s, "churn", "again", 2)
    with db.session() as s:
        projects.delete(s, "churn")
    with db.engine.connect() as conn:
        for table in ("model_versions", "model_stage_changes", "deployments"):
            assert conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one() == 0


def test_versions_are_numbered_per_project(sqlite_db: Database) -> None:
    with sqlite_db.session() as s:
        projects.create(s, "alpha")
        projects.create(s, "beta")
    assert [add(sqlite_db, "alpha", n) for n in (1, 2)] == [1, 2]
    assert add(sqlite_db, "beta", 3) == 1
    assert add(sqlite_db, "alpha", 4) == 3
    with sqlite_db.session() as s:
        alpha = registry.list_models(s, "alpha")
        beta = registry.get_model(s, "beta", 1)
    assert [(m.number, m.training, m.project) for m in alpha] == [
        (1, "job1", "alpha"),
        (2, "job2", "alpha"),
        (3, "job4", "alpha"),
    ]
    assert all(m.stage is Stage.candidate for m in alpha)
    assert (beta.training, beta.content_hash, beta.size_bytes) == ("job3", f"{103:064x}", 3000)


def test_a_training_registers_once(sqlite_db: Database) -> None:
    with sqlite_db.session() as s:
        projects.create(s, "p")
        first, created = registry.add_model(s, "p", details(1), training="job1", actor="a")
    assert created
    with sqlite_db.session() as s:
        again, created = registry.add_model(s, "p", details(9), training="job1", actor="b")
    assert not created
    assert again.number == first.number == 1
    assert again.content_hash == first.content_hash  # the first registration stands
    with sqlite_db.session() as s:
        assert len(registry.list_models(s, "p")) == 1
        # models registered by hand (no training) each get a number
        a, _ = registry.add_model(s, "p", details(2), training=None, actor="a")
        b, _ = registry.add_model(s, "p", details(3), training=None, actor="a")
    assert (a.number, b.number) == (2, 3)


def test_stage_changes_keep_who_and_why(sqlite_db: Database) -> None:
    with sqlite_db.session() as s:
        projects.create(s, "p")
    add(sqlite_db, "p", 1)
    with sqlite_db.session() as s:
        moved = registry.set_stage(s, "p", 1, Stage.staging, actor="ann", reason="try it")
        assert moved.stage is Stage.staging
        # the same stage again records nothing
        registry.set_stage(s, "p", 1, Stage.staging, actor="bob", reason="again")
        registry.set_stage(s, "p", 1, Stage.archived, actor="bob", reason="too slow")
    assert history(sqlite_db, "p", 1) == [
        (None, Stage.candidate, "tester", "registered"),
        (Stage.candidate, Stage.staging, "ann", "try it"),
        (Stage.staging, Stage.archived, "bob", "too slow"),
    ]
    with sqlite_db.session() as s:
        changes = registry.stage_history(s, "p", 1)
    assert [c.model for c in changes] == [1, 1, 1]
    assert changes[0].at <= changes[1].at <= changes[2].at


def test_one_production_model_per_project(sqlite_db: Database) -> None:
    with sqlite_db.session() as s:
        projects.create(s, "alpha")
        projects.create(s, "beta")
    for n in (1, 2, 3):
        add(sqlite_db, "alpha", n)
    add(sqlite_db, "beta", 4)
    with sqlite_db.session() as s:
        registry.set_stage(s, "beta", 1, Stage.production, actor="x")
        registry.set_stage(s, "alpha", 1, Stage.production, actor="ann")
        registry.set_stage(s, "alpha", 2, Stage.staging, actor="ann")
    with sqlite_db.session() as s:
        registry.set_stage(s, "alpha", 3, Stage.production, actor="bob", reason="new data")
    # v1 was replaced and archived; v2 (staging) and the other project are untouched
    assert stages(sqlite_db, "alpha") == {
        1: Stage.archived,
        2: Stage.staging,
        3: Stage.production,
    }
    assert stages(sqlite_db, "beta") == {1: Stage.production}
    assert history(sqlite_db, "alpha", 1)[-1] == (
        Stage.production,
        Stage.archived,
        "bob",
        "replaced by v3",
    )
    with sqlite_db.session() as s:
        production = registry.list_models(s, "alpha", Stage.production)
        archived = registry.list_models(s, "alpha", Stage.archived)
    assert [m.number for m in production] == [3]
    assert [m.number for m in archived] == [1]


def test_deployments_switch_models_and_keep_their_options(sqlite_db: Database) -> None:
    with sqlite_db.session() as s:
        projects.create(s, "p")
    add(sqlite_db, "p", 1)
    add(sqlite_db, "p", 2)
    with sqlite_db.session() as s:
        made, created = deployments.deploy(
            s, "p", "live", 1, confidence_threshold=0.6, fallback_label="ask a person"
        )
    assert created
    assert (made.name, made.project, made.model) == ("live", "p", 1)
    assert (made.confidence_threshold, made.fallback_label) == (0.6, "ask a person")
    with sqlite_db.session() as s:
        switched, created = deployments.deploy(s, "p", "live", 2)
    assert not created
    assert switched.id == made.id
    assert switched.model == 2
    assert (switched.confidence_threshold, switched.fallback_label) == (0.6, "ask a person")
    assert switched.created_at == made.created_at
    assert switched.updated_at >= made.updated_at
    with sqlite_db.session() as s:
        other, created = deployments.deploy(s, "p", "shadow", 1)
        assert created
        assert other.fallback_label == "unknown"
        assert other.confidence_threshold is None
        assert [(d.name, d.model) for d in deployments.list_deployments(s, "p")] == [
            ("live", 2),
            ("shadow", 1),
        ]
        assert deployments.get_deployment(s, "p", "live").model == 2


def test_missing_models_deployments_and_projects_are_not_found(sqlite_db: Database) -> None:
    with sqlite_db.session() as s:
        projects.create(s, "p")
    add(sqlite_db, "p", 1)
    calls = {
        "model": lambda s: registry.get_model(s, "p", 7),
        "history": lambda s: registry.stage_history(s, "p", 7),
        "stage": lambda s: registry.set_stage(s, "p", 7, Stage.production, actor="a"),
        "deploy a missing model": lambda s: deployments.deploy(s, "p", "live", 7),
        "deployment": lambda s: deployments.get_deployment(s, "p", "ghost"),
        "delete": lambda s: deployments.delete_deployment(s, "p", "ghost"),
        "project": lambda s: registry.list_models(s, "ghost"),
    }
    for what, call in calls.items():
        with pytest.raises(NotFound) as err, sqlite_db.session() as s:
            call(s)
        message = err.value.message
        assert "7" in message or "ghost" in message, (what, message)
    with sqlite_db.session() as s:
        assert deployments.list_deployments(s, "p") == []  # the failed deploy made nothing


@pytest.mark.parametrize("threshold", [0.0, 1.0, 1.5, -0.1])
def test_a_confidence_threshold_outside_0_1_is_refused(
    sqlite_db: Database, threshold: float
) -> None:
    with sqlite_db.session() as s:
        projects.create(s, "p")
    add(sqlite_db, "p", 1)
    with pytest.raises(InvalidInput) as err, sqlite_db.session() as s:
        deployments.deploy(s, "p", "live", 1, confidence_threshold=threshold)
    assert err.value.field == "confidence_threshold"


def test_a_deployment_name_must_be_a_valid_name(sqlite_db: Database) -> None:
    with sqlite_db.session() as s:
        projects.create(s, "p")
    add(sqlite_db, "p", 1)
    with pytest.raises(InvalidInput) as err, sqlite_db.session() as s:
        deployments.deploy(s, "p", "Live Now", 1)
    assert "'Live Now' is not a valid name" in err.value.message
