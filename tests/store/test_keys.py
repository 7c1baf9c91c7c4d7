"""API keys: shown once, stored hashed, revocable, with roles per project."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from loopml.core.enums import Role
from loopml.core.errors import InvalidInput, NotFound, Unauthenticated
from loopml.store import keys, projects
from loopml.store.db import Database
from loopml.store.models import ApiKeyRow, utcnow


@pytest.fixture
def two_projects(db: Database) -> Database:
    with db.session() as s:
        projects.create(s, "alpha")
        projects.create(s, "beta")
    return db


def test_create_returns_the_secret_once(db: Database) -> None:
    with db.session() as s:
        new = keys.create(s, "ci")
    assert new.secret.startswith(new.key.prefix + "_")
    assert new.key.prefix.startswith("lml_")
    assert new.key.name == "ci"
    assert new.key.revoked_at is None
    assert new.key.last_used_at is None
    # No later read ever hands the secret (or its hash) back.
    with db.session() as s:
        for key in (keys.get(s, new.key.id), *keys.list_all(s)):
            dumped = key.model_dump_json()
            assert new.secret not in dumped
            assert "hash" not in dumped
    # Two keys never share a secret.
    with db.session() as s:
        assert keys.create(s, "ci").secret != new.secret


def test_database_never_holds_the_secret_in_clear(db: Database) -> None:
    with db.session() as s:
        secrets_made = [keys.create(s, f"k{i}", global_role=Role.admin).secret for i in range(5)]
    with db.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM api_keys")).all()
    assert len(rows) == 5
    stored = " ".join(str(value) for row in rows for value in row)
    for secret in secrets_made:
        random_part = secret.split("_", 2)[2]
        assert len(random_part) >= 24
        assert secret not in stored
        assert random_part not in stored


def test_authenticate_returns_the_key(db: Database) -> None:
    with db.session() as s:
        new = keys.create(s, "ci", global_role=Role.viewer)
        other = keys.create(s, "other")
    with db.session() as s:
        assert keys.authenticate(s, new.secret).id == new.key.id
        assert keys.authenticate(s, other.secret).id == other.key.id


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(
            lambda secret: secret[:-1] + ("A" if secret[-1] != "A" else "B"), id="last-char"
        ),
        pytest.param(lambda secret: secret + "x", id="extra-char"),
        pytest.param(lambda secret: secret.rsplit("_", 1)[0] + "_" + "a" * 32, id="other-secret"),
        pytest.param(lambda secret: secret[:13] + secret[13:].swapcase(), id="swapcase"),
    ],
)
def test_wrong_secret_with_the_right_prefix_is_unauthenticated(db: Database, mangle) -> None:
    with db.session() as s:
        new = keys.create(s, "ci", global_role=Role.admin)
    wrong = mangle(new.secret)
    assert wrong != new.secret
    assert wrong.startswith(new.key.prefix + "_")
    with pytest.raises(Unauthenticated) as err, db.session() as s:
        keys.authenticate(s, wrong)
    assert err.value.field == "Authorization"
    with db.session() as s:
        assert keys.get(s, new.key.id).last_used_at is None


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "lml_",
        "lml",
        "lml__",
        "lml_deadbeef",
        "Bearer lml_x_y",
        "nope_deadbeef_secret",
        "___",
        " ",
    ],
)
def test_malformed_keys_are_unauthenticated(db: Database, secret: str) -> None:
    with db.session() as s:
        keys.create(s, "ci", global_role=Role.admin)
    with pytest.raises(Unauthenticated), db.session() as s:
        keys.authenticate(s, secret)


def test_revoked_key_is_unauthenticated(db: Database) -> None:
    with db.session() as s:
        new = keys.create(s, "leaked", global_role=Role.admin)
        keep = keys.create(s, "keep", global_role=Role.admin)
    with db.session() as s:
        revoked = keys.revoke(s, new.key.id)
    assert revoked.revoked_at is not None
    with pytest.raises(Unauthenticated) as err, db.session() as s:
        keys.authenticate(s, new.secret)
    assert "revoked" in err.value.message
    # Revoking twice keeps the first time; other keys still work.
    with db.session() as s:
        assert keys.revoke(s, new.key.id).revoked_at == revoked.revoked_at
        assert keys.authenticate(s, keep.secret).id == keep.key.id
        assert [k.id for k in keys.list_all(s, include_revoked=False)] == [keep.key.id]
        assert [k.id for k in keys.list_all(s)] == [new.key.id, keep.key.id]


def test_unknown_key_id_is_not_found(db: Database) -> None:
    for call in (
        lambda s: keys.get(s, "nope"),
        lambda s: keys.revoke(s, "nope"),
        lambda s: keys.set_role(s, "nope", "alpha", Role.viewer),
    ):
        with pytest.raises(NotFound) as err, db.session() as s:
            call(s)
        assert err.value.field == "key_id"


@pytest.mark.parametrize("name", ["", "x" * 201])
def test_bad_key_names_are_invalid_and_nothing_is_stored(db: Database, name: str) -> None:
    with pytest.raises(InvalidInput) as err, db.session() as s:
        keys.create(s, name)
    assert err.value.field == "name"
    with db.session() as s:
        assert keys.list_all(s) == []


def test_roles_per_project_at_creation(two_projects: Database) -> None:
    db = two_projects
    with db.session() as s:
        new = keys.create(
            s, "labeller", project_roles={"alpha": Role.labeller, "beta": Role.viewer}
        )
    assert new.key.global_role is None
    assert new.key.project_roles == {"alpha": Role.labeller, "beta": Role.viewer}
    with db.session() as s:
        key = keys.authenticate(s, new.secret)
    assert key.project_roles == {"alpha": Role.labeller, "beta": Role.viewer}
    assert key.role_in("alpha") is Role.labeller
    assert key.role_in("beta") is Role.viewer
    assert key.role_in("gamma") is None
    assert key.role_in(None) is None


def test_creating_a_key_for_an_unknown_project_stores_nothing(two_projects: Database) -> None:
    db = two_projects
    with pytest.raises(NotFound) as err, db.session() as s:
        keys.create(s, "bad", project_roles={"alpha": Role.viewer, "ghost": Role.viewer})
    assert err.value.field == "project"
    with db.session() as s:
        assert keys.list_all(s) == []
    with db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM project_roles")).scalar() == 0


def test_role_in_takes_the_stronger_of_global_and_project_role(two_projects: Database) -> None:
    db = two_projects
    with db.session() as s:
        admin = keys.create(
            s, "admin", global_role=Role.admin, project_roles={"alpha": Role.viewer}
        )
        viewer = keys.create(
            s, "v", global_role=Role.viewer, project_roles={"alpha": Role.maintainer}
        )
    # A global admin stays admin in a project where it also has a weaker role.
    assert admin.key.role_in("alpha") is Role.admin
    assert admin.key.role_in("beta") is Role.admin
    assert admin.key.role_in(None) is Role.admin
    # A project role stronger than the global one wins in that project only.
    assert viewer.key.role_in("alpha") is Role.maintainer
    assert viewer.key.role_in("beta") is Role.viewer
    assert viewer.key.role_in(None) is Role.viewer


def test_set_role_grants_changes_and_removes(two_projects: Database) -> None:
    db = two_projects
    with db.session() as s:
        new = keys.create(s, "k")
    key_id = new.key.id
    with db.session() as s:
        assert keys.set_role(s, key_id, "alpha", Role.viewer).project_roles == {
            "alpha": Role.viewer
        }
    with db.session() as s:
        assert keys.get(s, key_id).role_in("alpha") is Role.viewer
        changed = keys.set_role(s, key_id, "alpha", Role.maintainer)
    assert changed.project_roles == {"alpha": Role.maintainer}
    with db.session() as s:
        keys.set_role(s, key_id, "beta", Role.labeller)
    with db.session() as s:
        assert keys.authenticate(s, new.secret).project_roles == {
            "alpha": Role.maintainer,
            "beta": Role.labeller,
        }
        removed = keys.set_role(s, key_id, "alpha", None)
    assert removed.project_roles == {"beta": Role.labeller}
    with db.session() as s:
        assert keys.get(s, key_id).role_in("alpha") is None
        # Removing a role the key does not have is fine.
        assert keys.set_role(s, key_id, "alpha", None).project_roles == {"beta": Role.labeller}
    with pytest.raises(NotFound) as err, db.session() as s:
        keys.set_role(s, key_id, "ghost", Role.viewer)
    assert err.value.field == "project"


def test_project_roles_go_when_the_project_goes(two_projects: Database) -> None:
    db = two_projects
    with db.session() as s:
        new = keys.create(s, "k", project_roles={"alpha": Role.admin, "beta": Role.viewer})
    with db.session() as s:
        projects.delete(s, "alpha")
    with db.session() as s:
        projects.create(s, "alpha")  # a new project with the old name grants nothing
    with db.session() as s:
        assert keys.get(s, new.key.id).project_roles == {"beta": Role.viewer}


def test_count_admins_ignores_revoked_and_non_admin_keys(two_projects: Database) -> None:
    db = two_projects
    with db.session() as s:
        assert keys.count_admins(s) == 0
        a1 = keys.create(s, "a1", global_role=Role.admin)
        keys.create(s, "a2", global_role=Role.admin)
        keys.create(s, "m", global_role=Role.maintainer)
        keys.create(s, "project-admin", project_roles={"alpha": Role.admin})
    with db.session() as s:
        assert keys.count_admins(s) == 2
        keys.revoke(s, a1.key.id)
    with db.session() as s:
        assert keys.count_admins(s) == 1


def test_authenticate_records_last_use(db: Database) -> None:
    with db.session() as s:
        new = keys.create(s, "k")
    before = utcnow()
    with db.session() as s:
        first = keys.authenticate(s, new.secret).last_used_at
    assert first is not None
    assert before - timedelta(seconds=1) <= first <= utcnow() + timedelta(seconds=1)
    with db.session() as s:
        assert keys.get(s, new.key.id).last_used_at == first
    # Pretend the last use was long ago: the next use records a new time.
    long_ago = first - timedelta(days=3)
    with db.session() as s:
        row = s.get(ApiKeyRow, new.key.id)
        assert row is not None
        row.last_used_at = long_ago
    with db.session() as s:
        assert keys.get(s, new.key.id).last_used_at == long_ago
        keys.authenticate(s, new.secret)
    with db.session() as s:
        again = keys.get(s, new.key.id).last_used_at
    assert again is not None and again >= first
