"""Projects: the unit of ownership, named in URLs."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from loopml.core.errors import AlreadyExists, InvalidInput, NotFound
from loopml.store import projects
from loopml.store.db import Database


def _count(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM projects")).scalar_one())


def test_create_get_list_update(db: Database) -> None:
    with db.session() as s:
        created = projects.create(s, "bikes", "bicycles vs motorcycles")
        projects.create(s, "churn")
    assert created.name == "bikes"
    assert created.description == "bicycles vs motorcycles"
    assert created.id

    with db.session() as s:
        got = projects.get(s, "bikes")
        assert got == created
        assert [p.name for p in projects.list_all(s)] == ["bikes", "churn"]
        assert projects.get(s, "churn").description == ""

    with db.session() as s:
        updated = projects.update(s, "bikes", "CIFAR-100 subset")
    assert updated.description == "CIFAR-100 subset"
    assert updated.id == created.id
    assert updated.created_at == created.created_at
    with db.session() as s:
        assert projects.get(s, "bikes").description == "CIFAR-100 subset"


def test_names_at_the_limits_are_accepted(db: Database) -> None:
    with db.session() as s:
        projects.create(s, "a")
        projects.create(s, "0-9")
        projects.create(s, "x" * 63)
    with db.session() as s:
        assert {p.name for p in projects.list_all(s)} == {"a", "0-9", "x" * 63}


def test_duplicate_name_is_already_exists_naming_the_field(db: Database) -> None:
    with db.session() as s:
        projects.create(s, "dup", "first")
    with pytest.raises(AlreadyExists) as err, db.session() as s:
        projects.create(s, "dup", "second")
    assert err.value.field == "name"
    assert "dup" in err.value.message
    with db.session() as s:
        assert projects.get(s, "dup").description == "first"
    assert _count(db) == 1


@pytest.mark.parametrize(
    "name",
    ["Bikes", "two words", "-leading", "trailing-", "x" * 64, "", "under_score", "dot.name"],
)
def test_invalid_names_are_rejected_and_nothing_is_stored(db: Database, name: str) -> None:
    with pytest.raises(InvalidInput) as err, db.session() as s:
        projects.create(s, name)
    assert err.value.field == "name"
    assert _count(db) == 0


def test_losing_a_race_to_create_the_same_name_is_already_exists(db: Database) -> None:
    # Another request creates the project between this one's check and its insert.
    def create_meanwhile(session: Session, *_: object) -> None:
        with db.session() as other:
            projects.create(other, "contested", "winner")

    with pytest.raises(AlreadyExists) as err, db.session() as s:
        event.listen(s, "before_flush", create_meanwhile, once=True)
        projects.create(s, "contested", "loser")
    assert err.value.field == "name"
    with db.session() as s:
        assert projects.get(s, "contested").description == "winner"
    assert _count(db) == 1


def test_unknown_project_is_not_found_naming_the_project(db: Database) -> None:
    for call in (
        lambda s: projects.get(s, "ghost"),
        lambda s: projects.update(s, "ghost", "boo"),
        lambda s: projects.delete(s, "ghost"),
    ):
        with pytest.raises(NotFound) as err, db.session() as s:
            call(s)
        assert err.value.field == "project"
        assert "ghost" in err.value.message
    assert _count(db) == 0


def test_list_filtered_by_names(db: Database) -> None:
    with db.session() as s:
        for name in ("c", "a", "b", "d"):
            projects.create(s, name)
    with db.session() as s:
        assert [p.name for p in projects.list_all(s, names={"d", "a", "missing"})] == ["a", "d"]
        assert projects.list_all(s, names=set()) == []
        assert [p.name for p in projects.list_all(s)] == ["a", "b", "c", "d"]


def test_delete_removes_the_project(db: Database) -> None:
    with db.session() as s:
        projects.create(s, "gone")
        projects.create(s, "stays")
    with db.session() as s:
        projects.delete(s, "gone")
    with db.session() as s:
        assert [p.name for p in projects.list_all(s)] == ["stays"]
        with pytest.raises(NotFound):
            projects.get(s, "gone")
    # The name is free again.
    with db.session() as s:
        projects.create(s, "gone")


def test_ids_sort_in_creation_order(db: Database) -> None:
    # Ids are documented to sort by creation time, even for ids made in the same millisecond.
    with db.session() as s:
        made = [projects.create(s, f"p{i:03d}").id for i in range(100)]
    assert len(set(made)) == len(made)
    assert sorted(made) == made
