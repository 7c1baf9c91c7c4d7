"""Challengers in the store: a second model version tried on a deployment (shadow or
canary), what the predict path is told is served, the checks that refuse a challenger,
and how deploying and stage changes treat it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from loopml.core.enums import ChallengerMode, Stage
from loopml.core.errors import Conflict, InvalidInput, NotFound
from loopml.core.schemas import Challenger
from loopml.store import deployments, projects, registry
from loopml.store.db import Database
from tests.registry.test_store import details, history, stages

SHADOW, CANARY = ChallengerMode.shadow, ChallengerMode.canary


@pytest.fixture
def sqlite_db(sqlite_url: str) -> Iterator[Database]:
    database = Database(sqlite_url)
    database.upgrade()
    yield database
    database.dispose()


def setup(db: Database, tasks: tuple[str, ...] = ("binary", "binary", "binary")) -> None:
    """Project "p" with one model version per task (v1, v2, ...); "live" serves v1."""
    with db.session() as s:
        projects.create(s, "p")
        for n, task in enumerate(tasks, start=1):
            registry.add_model(s, "p", details(n, task=task), training=f"job{n}", actor="t")
        deployments.deploy(s, "p", "live", 1)
        registry.set_stage(s, "p", 1, Stage.production, actor="t", reason="deployed")


def challenger(db: Database, name: str = "live") -> Challenger | None:
    with db.session() as s:
        return deployments.get_deployment(s, "p", name).challenger


def test_a_challenger_is_set_served_beside_the_model_replaced_and_cleared(db: Database) -> None:
    """On SQLite and on PostgreSQL."""
    setup(db)
    with db.session() as s:
        before = deployments.get_deployment(s, "p", "live")
        assert before.challenger is None
        nobody = deployments.served(s, "p", "live")
        assert (nobody.model.number, nobody.challenger) == (1, None)
        made = deployments.set_challenger(s, "p", "live", 2, SHADOW, 100)
    assert made.challenger == Challenger(model=2, mode=SHADOW, percent=100.0)
    assert made.model == 1  # the served model is unchanged
    assert made.updated_at >= before.updated_at
    with db.session() as s:
        served = deployments.served(s, "p", "live")
        assert served.deployment.challenger == made.challenger
        assert (served.model.number, served.model.stage) == (1, Stage.production)
        assert served.challenger is not None
        assert (served.challenger.number, served.challenger.project) == (2, "p")
        assert served.challenger.content_hash == f"{102:064x}"
        assert deployments.challenger_number(s, "p", "live") == 2
        assert [d.challenger for d in deployments.list_deployments(s, "p")] == [made.challenger]

    with db.session() as s:  # another challenger takes the slot, in another mode
        deployments.set_challenger(s, "p", "live", 3, CANARY, 12.5)
    assert challenger(db) == Challenger(model=3, mode=CANARY, percent=12.5)

    with db.session() as s:
        cleared = deployments.clear_challenger(s, "p", "live")
    assert cleared.challenger is None and cleared.model == 1
    with db.session() as s:
        assert deployments.served(s, "p", "live").challenger is None
        again = deployments.clear_challenger(s, "p", "live")  # nothing to clear: fine
        assert again.challenger is None and again.updated_at == cleared.updated_at
        with pytest.raises(Conflict) as err:
            deployments.challenger_number(s, "p", "live")
    assert err.value.field == "challenger"
    assert "no challenger" in err.value.message
    # nothing but the deployment's own fields changed: the stages are the registry's
    assert stages(db, "p") == {1: Stage.production, 2: Stage.candidate, 3: Stage.candidate}


def test_deleting_a_deployment_or_project_with_a_challenger(db: Database) -> None:
    setup(db)
    with db.session() as s:
        deployments.deploy(s, "p", "other", 1)
        deployments.set_challenger(s, "p", "live", 2, SHADOW, 50)
        deployments.set_challenger(s, "p", "other", 3, CANARY, 50)
    with db.session() as s:
        deployments.delete_deployment(s, "p", "live")
    with db.session() as s:
        assert [d.name for d in deployments.list_deployments(s, "p")] == ["other"]
        projects.delete(s, "p")
    with db.engine.connect() as conn:
        for table in ("model_versions", "deployments"):
            assert conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one() == 0


def test_the_served_model_cannot_be_its_own_challenger(sqlite_db: Database) -> None:
    setup(sqlite_db)
    with pytest.raises(Conflict) as err, sqlite_db.session() as s:
        deployments.set_challenger(s, "p", "live", 1, SHADOW, 100)
    assert err.value.field == "model"
    assert "already serves v1" in err.value.message
    assert challenger(sqlite_db) is None


def test_a_challenger_must_do_the_served_models_task(sqlite_db: Database) -> None:
    setup(sqlite_db, tasks=("binary", "regression"))
    with pytest.raises(InvalidInput) as err, sqlite_db.session() as s:
        deployments.set_challenger(s, "p", "live", 2, CANARY, 10)
    assert err.value.field == "model"
    assert "v2 is a regression model" in err.value.message
    assert "binary one (v1)" in err.value.message
    assert challenger(sqlite_db) is None


@pytest.mark.parametrize(
    ("mode", "percent", "allowed"),
    [
        (SHADOW, 100, True),
        (SHADOW, 0.5, True),
        (CANARY, 99.5, True),
        (CANARY, 99.995, True),
        (CANARY, 0.01, True),
        (CANARY, 100, False),  # a canary answering everything is a deploy
        (SHADOW, 0, False),
        (CANARY, 0, False),
        (SHADOW, -5, False),
        (SHADOW, 100.5, False),
        (CANARY, 150, False),
    ],
)
def test_the_percent_a_challenger_gets(
    sqlite_db: Database, mode: ChallengerMode, percent: float, allowed: bool
) -> None:
    setup(sqlite_db)
    if allowed:
        with sqlite_db.session() as s:
            made = deployments.set_challenger(s, "p", "live", 2, mode, percent)
        assert made.challenger == Challenger(model=2, mode=mode, percent=percent)
        return
    with pytest.raises(InvalidInput) as err, sqlite_db.session() as s:
        deployments.set_challenger(s, "p", "live", 2, mode, percent)
    assert err.value.field == "percent"
    assert mode.value in err.value.message
    assert challenger(sqlite_db) is None


def test_a_refused_challenger_leaves_the_one_there(sqlite_db: Database) -> None:
    setup(sqlite_db)
    with sqlite_db.session() as s:
        deployments.set_challenger(s, "p", "live", 2, SHADOW, 100)
    with pytest.raises(InvalidInput), sqlite_db.session() as s:
        deployments.set_challenger(s, "p", "live", 3, CANARY, 100)
    assert challenger(sqlite_db) == Challenger(model=2, mode=SHADOW, percent=100.0)


def test_missing_models_deployments_and_projects_are_not_found(sqlite_db: Database) -> None:
    setup(sqlite_db)
    calls = {
        "model": (lambda s: deployments.set_challenger(s, "p", "live", 7, SHADOW, 100), "model"),
        "set": (
            lambda s: deployments.set_challenger(s, "p", "ghost", 2, SHADOW, 100),
            "deployment",
        ),
        "clear": (lambda s: deployments.clear_challenger(s, "p", "ghost"), "deployment"),
        "number": (lambda s: deployments.challenger_number(s, "p", "ghost"), "deployment"),
        "served": (lambda s: deployments.served(s, "p", "ghost"), "deployment"),
        "project": (lambda s: deployments.served(s, "nowhere", "live"), "project"),
    }
    for what, (call, field) in calls.items():
        with pytest.raises(NotFound) as err, sqlite_db.session() as s:
            call(s)
        assert err.value.field == field, what
    assert challenger(sqlite_db) is None


def test_deploying_the_challenger_clears_it_and_deploying_another_keeps_it(
    sqlite_db: Database,
) -> None:
    setup(sqlite_db)
    with sqlite_db.session() as s:
        deployments.deploy(s, "p", "other", 1)
        deployments.set_challenger(s, "p", "live", 2, CANARY, 30)
        deployments.set_challenger(s, "p", "other", 2, SHADOW, 100)
    with sqlite_db.session() as s:  # a rollback to v3 keeps the trial going
        kept, _ = deployments.deploy(s, "p", "live", 3)
    assert (kept.model, kept.challenger) == (3, Challenger(model=2, mode=CANARY, percent=30.0))
    with sqlite_db.session() as s:  # the challenger won: it is served, the slot is empty
        won, _ = deployments.deploy(s, "p", "live", 2)
        assert (won.model, won.challenger) == (2, None)
        with pytest.raises(Conflict):
            deployments.challenger_number(s, "p", "live")
    # only the deployment it was deployed on lost its challenger
    assert challenger(sqlite_db, "other") == Challenger(model=2, mode=SHADOW, percent=100.0)


@pytest.mark.parametrize("stage", [Stage.candidate, Stage.archived])
def test_a_challenger_is_not_demoted_under_its_deployment(
    sqlite_db: Database, stage: Stage
) -> None:
    setup(sqlite_db)
    with sqlite_db.session() as s:
        registry.set_stage(s, "p", 2, Stage.staging, actor="ann", reason="try it")
        deployments.set_challenger(s, "p", "live", 2, SHADOW, 100)
    with pytest.raises(Conflict) as err, sqlite_db.session() as s:
        registry.set_stage(s, "p", 2, stage, actor="bob")
    assert err.value.field == "stage"
    assert "challenger on live" in err.value.message
    assert stages(sqlite_db, "p")[2] is Stage.staging
    with sqlite_db.session() as s:  # once removed, it may go
        deployments.clear_challenger(s, "p", "live")
        registry.set_stage(s, "p", 2, stage, actor="bob", reason="lost")
    assert history(sqlite_db, "p", 2)[-1] == (Stage.staging, stage, "bob", "lost")


def test_a_new_production_model_does_not_archive_a_challenger(sqlite_db: Database) -> None:
    setup(sqlite_db)
    with sqlite_db.session() as s:
        # v2 is in production (it was served elsewhere once) and challenges live
        registry.set_stage(s, "p", 2, Stage.production, actor="ann")
        deployments.set_challenger(s, "p", "live", 2, SHADOW, 100)
    with sqlite_db.session() as s:
        # the challenger may move between staging and production
        registry.set_stage(s, "p", 2, Stage.staging, actor="ann", reason="not yet")
        registry.set_stage(s, "p", 2, Stage.production, actor="ann", reason="ready")
    with sqlite_db.session() as s:
        deployments.deploy(s, "p", "live", 3)
        registry.set_stage(s, "p", 3, Stage.production, actor="bob", reason="v3 is better")
    # v1 (no longer served) is archived; v2, still the challenger, stays in production
    assert stages(sqlite_db, "p") == {
        1: Stage.archived,
        2: Stage.production,
        3: Stage.production,
    }
    assert history(sqlite_db, "p", 1)[-1] == (
        Stage.production,
        Stage.archived,
        "bob",
        "replaced by v3",
    )


def test_deploying_a_model_of_another_task_clears_the_challenger(sqlite_db: Database) -> None:
    setup(sqlite_db, ("binary", "binary", "regression"))
    with sqlite_db.session() as s:
        deployments.set_challenger(s, "p", "live", 2, CANARY, 50)
        same_task = deployments.deploy(s, "p", "live", 1)[0]
        assert same_task.challenger is not None  # the same model again keeps it
        moved = deployments.deploy(s, "p", "live", 3)[0]  # a regressor now serves
    assert moved.challenger is None  # a binary canary cannot share a regressor's traffic
