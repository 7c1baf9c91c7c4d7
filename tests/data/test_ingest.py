"""Ingest: a source becomes an immutable, numbered dataset version in a real database and
blob store. The same content gives back the same version, a change gives a new one that
says what changed, a failure leaves nothing behind, stored rows are checked on read, and
the frozen test split is kept apart from training however it is made."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from loopml.core.enums import TaskType
from loopml.core.errors import IntegrityError, InvalidInput, NotFound
from loopml.core.schemas import DatasetVersion
from loopml.data import load
from loopml.data.ingest import derive, ingest
from loopml.store import datasets, projects
from loopml.store.blobs import BlobStore
from loopml.store.db import Database

from .support import BICYCLE, MOTORCYCLE, cifar100_archive, image_folder, png

PROJECT = "demo"
LIMITS = {"max_bytes": 50_000_000, "max_expanded": 50_000_000}


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'meta' / 'loopml.db'}")
    database.upgrade()
    with database.session() as s:
        projects.create(s, PROJECT)
    yield database
    database.dispose()


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore((tmp_path / "blobs").as_uri())


def customers(n: int = 200, seed: int = 0, start: int = 0) -> pd.DataFrame:
    """Customers with an id, a group (household), a date, features and a churn label
    (about a quarter 'yes')."""
    rng = np.random.default_rng(seed)
    ids = np.arange(start, start + n)
    return pd.DataFrame(
        {
            "customer_id": ids,
            "household": [f"h{i // 4:03d}" for i in ids],
            "signup": pd.date_range("2023-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
            "age": rng.integers(18, 80, n),
            "spend": rng.gamma(2.0, 50.0, n).round(2),
            "plan": rng.choice(["basic", "plus", "pro"], n),
            "churn": np.where(np.arange(n) % 4 == 0, "yes", "no"),
        }
    )


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def run(db: Database, blobs: BlobStore, source: Path | str, name: str = "churn", **kw: Any):  # type: ignore[no-untyped-def]
    return ingest(db, blobs, PROJECT, name, str(source), **{**LIMITS, **kw})


def version_rows(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM dataset_versions")).scalar_one())


# --- versions --------------------------------------------------------------------------


def test_csv_becomes_version_1_with_schema_quality_and_split(
    sqlite_db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "src" / "customers.csv", customers())
    version, created = run(sqlite_db, blobs, source)
    assert created
    assert (version.project, version.dataset, version.number, version.parent) == (
        PROJECT,
        "churn",
        1,
        None,
    )
    assert version.ref == "churn@1"
    assert version.rows == 200
    assert version.source == str(source)
    assert version.changes == {"first": True}
    schema = version.data_schema
    assert (schema.target, schema.task) == ("churn", TaskType.binary)
    assert [f["name"] for f in version.manifest["files"]] == ["customers.csv"]
    assert version.manifest["columns"] == list(customers().columns)
    assert version.manifest["profile"]["age"]["min"] >= 18
    assert {f.check for f in version.quality} >= {"identifier"}
    assert version.split["method"] == "stratified"
    assert (version.split["train_rows"], version.split["test_rows"]) == (160, 40)

    rows = load.read_rows(blobs, version)
    assert rows.num_rows == 200
    assert rows.column("customer_id").to_pylist() == list(range(200))

    with sqlite_db.session() as s:
        assert datasets.get_version(s, PROJECT, "churn") == version
        dataset = datasets.get(s, PROJECT, "churn")
    assert dataset.versions == 1
    assert dataset.source == str(source)


def test_same_content_twice_is_the_same_version(
    sqlite_db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "src" / "customers.csv", customers())
    first, created = run(sqlite_db, blobs, source)
    # The same bytes under another path: content, not location, names a version.
    copy = write_csv(tmp_path / "elsewhere" / "customers.csv", customers())
    again, created_again = run(sqlite_db, blobs, copy)
    assert created and not created_again
    assert again == first
    assert version_rows(sqlite_db) == 1


def test_content_already_held_is_found_without_parsing_it(
    sqlite_db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    """Re-adding an unchanged (large) file costs its hash, not a second ingest."""
    source = write_csv(tmp_path / "customers.csv", customers())
    first, _ = run(sqlite_db, blobs, source)
    steps: list[str] = []
    again, created = run(sqlite_db, blobs, source, on_progress=lambda f, m: steps.append(m))
    assert (again, created) == (first, False)
    assert not any(m.startswith(("parsing", "checking", "storing")) for m in steps), steps
    assert steps[-1] == f"unchanged: {first.ref} already holds this content"
    # Another target is another version: that one is read and described.
    other, created = run(
        sqlite_db, blobs, source, target="plan", on_progress=lambda f, m: steps.append(m)
    )
    assert created and other.data_schema.target == "plan"
    assert any(m.startswith("parsing") for m in steps)


def test_new_file_in_the_folder_is_version_2_listing_it(
    sqlite_db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    folder = tmp_path / "src"
    write_csv(folder / "2023.csv", customers(100))
    first, _ = run(sqlite_db, blobs, folder)
    write_csv(folder / "2024.csv", customers(60, seed=1, start=100))
    second, created = run(sqlite_db, blobs, folder)
    assert created
    assert (second.number, second.parent, second.rows) == (2, 1, 160)
    assert second.changes["files_added"] == ["2024.csv"]
    assert second.changes["files_removed"] == []
    assert second.changes["files_changed"] == []
    assert (second.changes["rows_before"], second.changes["rows_after"]) == (100, 160)
    assert second.changes["same_data"] is False
    assert second.manifest["data_hash"] != first.manifest["data_hash"]
    # Rows in file-name order.
    ids = load.read_rows(blobs, second).column("customer_id").to_pylist()
    assert ids == list(range(160))
    with sqlite_db.session() as s:
        numbers = [v.number for v in datasets.list_versions(s, PROJECT, "churn")]
        assert numbers == [1, 2]
        assert datasets.get_version(s, PROJECT, "churn", 1) == first
        assert datasets.get_version(s, PROJECT, "churn").number == 2


def test_a_source_back_to_an_earlier_versions_content_makes_that_version_current(
    sqlite_db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    folder = tmp_path / "src"
    write_csv(folder / "a.csv", customers(50))
    first, _ = run(sqlite_db, blobs, folder)
    write_csv(folder / "b.csv", customers(30, start=50))
    second, _ = run(sqlite_db, blobs, folder)
    (folder / "b.csv").unlink()  # its rows must not stay in what "churn" means
    again, created = run(sqlite_db, blobs, folder)
    assert (again, created) == (first, False)
    with sqlite_db.session() as s:
        assert datasets.get_version(s, PROJECT, "churn") == first
        dataset = datasets.get(s, PROJECT, "churn")
        assert (dataset.versions, dataset.current) == (2, 1)
    assert load.frame(blobs, again)["customer_id"].tolist() == list(range(50))
    # A derived twin of the newest version found again leaves the current one alone.
    twin, made = derive(sqlite_db, blobs, second)
    assert (twin, made) == (second, False)
    with sqlite_db.session() as s:
        assert datasets.get_version(s, PROJECT, "churn") == first
    # The next change starts from the current version.
    write_csv(folder / "c.csv", customers(20, start=80))
    third, created = run(sqlite_db, blobs, folder)
    assert created and (third.number, third.parent) == (3, 1)
    assert third.changes["files_added"] == ["c.csv"]
    assert third.changes["files_removed"] == []
    with sqlite_db.session() as s:
        assert datasets.get(s, PROJECT, "churn").current == 3
    # Reading the unchanged source again leaves a version derived since current.
    relabelled, _ = derive(sqlite_db, blobs, third, target="plan", task="multiclass")
    assert run(sqlite_db, blobs, folder) == (third, False)
    with sqlite_db.session() as s:
        assert datasets.get_version(s, PROJECT, "churn") == relabelled


def test_a_column_of_a_text_kind_keeps_its_leading_zeros(
    sqlite_db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    source = tmp_path / "src" / "shops.csv"
    source.parent.mkdir(parents=True)
    source.write_text("shop,zip,sales\n" + "".join(f"s{i},{i:05d},{i * 3}\n" for i in range(40)))
    plain, _ = run(sqlite_db, blobs, source, name="numbers")
    assert load.frame(blobs, plain)["zip"].tolist()[:2] == [0, 1]  # what inference reads
    kept, _ = run(sqlite_db, blobs, source, name="codes", kinds={"zip": "categorical"})
    assert load.frame(blobs, kept)["zip"].tolist()[:2] == ["00000", "00001"]
    assert kept.data_schema.column("zip").kind.value == "categorical"  # type: ignore[union-attr]
    assert kept.manifest["data_hash"] != plain.manifest["data_hash"]  # other rows, other blob
    # The dataset's source reads the same way again.
    again, created = run(sqlite_db, blobs, source, name="codes", kinds={"zip": "categorical"})
    assert (again, created) == (kept, False)


def test_changed_file_and_removed_file_are_listed(
    sqlite_db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    folder = tmp_path / "src"
    write_csv(folder / "a.csv", customers(50))
    write_csv(folder / "b.csv", customers(50, start=50))
    run(sqlite_db, blobs, folder)
    write_csv(folder / "a.csv", customers(50, seed=7))
    (folder / "b.csv").unlink()
    version, _ = run(sqlite_db, blobs, folder)
    assert version.changes["files_changed"] == ["a.csv"]
    assert version.changes["files_removed"] == ["b.csv"]
    assert version.changes["files_added"] == []


def test_files_with_different_columns_are_refused(
    sqlite_db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    folder = tmp_path / "src"
    write_csv(folder / "a.csv", customers(30))
    write_csv(folder / "b.csv", customers(30).drop(columns=["plan"]))
    with pytest.raises(InvalidInput, match="must share their columns"):
        run(sqlite_db, blobs, folder)
    assert version_rows(sqlite_db) == 0


def test_files_whose_column_types_disagree_are_named(
    sqlite_db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    folder = tmp_path / "src"
    write_csv(folder / "a.csv", pd.DataFrame({"id": [1, 2], "when": [1, 2]}))
    write_csv(folder / "b.csv", pd.DataFrame({"id": [3, 4], "when": ["x", "y"]}))
    with pytest.raises(InvalidInput) as err:
        run(sqlite_db, blobs, folder)
    assert err.value.message.startswith("column 'when' is int64 in a.csv but string in b.csv")
    assert version_rows(sqlite_db) == 0


def test_malformed_file_leaves_no_version(
    sqlite_db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    source = tmp_path / "src" / "bad.csv"
    source.parent.mkdir()
    source.write_text("a,b,c\n1,2,3\n4,5,6,7\n")
    with pytest.raises(InvalidInput, match="line 3"):
        run(sqlite_db, blobs, source)
    assert version_rows(sqlite_db) == 0
    assert list(blobs.list("datasets")) == []
    # A failed first ingest does not even leave the dataset behind.
    with sqlite_db.session() as s, pytest.raises(NotFound, match="does not exist"):
        datasets.get_version(s, PROJECT, "churn")


def test_bad_override_leaves_no_version(
    sqlite_db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "src" / "customers.csv", customers())
    with pytest.raises(InvalidInput) as err:
        run(sqlite_db, blobs, source, target="plan", task="binary")
    assert err.value.field == "task"
    assert version_rows(sqlite_db) == 0


def test_unknown_read_option_is_refused_before_anything_is_read(
    sqlite_db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInput) as err:
        run(sqlite_db, blobs, tmp_path / "nowhere.csv", read={"sheet": "1"})
    assert err.value.field == "read"
    assert "sheet" in err.value.message


def test_tampered_rows_are_an_integrity_error(
    sqlite_db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "src" / "customers.csv", customers())
    version, _ = run(sqlite_db, blobs, source)
    key = version.manifest["table"]["key"]
    stored = blobs.get(key)
    blobs.put(key, stored[:-20] + bytes(20))
    with pytest.raises(IntegrityError, match="changed after it was written"):
        load.read_rows(blobs, version)
    with pytest.raises(IntegrityError):
        load.frame(blobs, version, "train")


# --- frozen test splits -------------------------------------------------------------


def parts(blobs: BlobStore, version: DatasetVersion) -> tuple[pd.DataFrame, pd.DataFrame]:
    return load.frame(blobs, version, "train"), load.frame(blobs, version, "test")


def test_stratified_split_keeps_class_shares_and_is_disjoint(
    sqlite_db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "src" / "customers.csv", customers(400))
    version, _ = run(sqlite_db, blobs, source, split={"method": "stratified", "test_size": 0.25})
    train, test = parts(blobs, version)
    assert (len(train), len(test)) == (300, 100)
    assert set(train["customer_id"]).isdisjoint(test["customer_id"])
    assert set(train["customer_id"]) | set(test["customer_id"]) == set(range(400))
    assert Counter(test["churn"]) == {"yes": 25, "no": 75}
    assert Counter(train["churn"]) == {"yes": 75, "no": 225}
    mask = load.test_mask(blobs, version)
    assert mask.sum() == 100
    # Re-reading gives the same split, and so does reading the version back from the db.
    _, again_test = parts(blobs, version)
    assert again_test["customer_id"].tolist() == test["customer_id"].tolist()
    with sqlite_db.session() as s:
        stored = datasets.get_version(s, PROJECT, "churn", 1)
    assert np.array_equal(load.test_mask(blobs, stored), mask)


def test_same_seed_same_split_other_seed_other_version(
    sqlite_db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "src" / "customers.csv", customers())
    first, _ = run(sqlite_db, blobs, source, split={"seed": 3})
    again, created = run(sqlite_db, blobs, source, split={"seed": 3})
    assert again == first and not created
    other, created = run(sqlite_db, blobs, source, split={"seed": 4})
    assert created and other.number == 2
    assert other.changes["same_data"] is True
    assert not np.array_equal(load.test_mask(blobs, first), load.test_mask(blobs, other))


def test_grouped_split_never_puts_a_group_on_both_sides(
    sqlite_db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "src" / "customers.csv", customers(400))
    version, _ = run(sqlite_db, blobs, source, split={"method": "grouped", "column": "household"})
    assert version.split["method"] == "grouped"
    train, test = parts(blobs, version)
    assert set(train["household"]).isdisjoint(test["household"])
    assert 0.15 <= len(test) / 400 <= 0.3
    assert len(train) + len(test) == 400


def test_time_split_puts_the_latest_rows_in_test(
    sqlite_db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    frame = customers(300).sample(frac=1.0, random_state=0)  # dates out of order
    source = write_csv(tmp_path / "src" / "customers.csv", frame)
    version, _ = run(
        sqlite_db, blobs, source, split={"method": "time", "column": "signup", "test_size": 0.1}
    )
    train, test = parts(blobs, version)
    assert len(test) == 30
    assert pd.to_datetime(test["signup"]).min() > pd.to_datetime(train["signup"]).max()
    latest = sorted(frame["signup"])[-30:]
    assert sorted(test["signup"].astype(str).str[:10]) == latest


def test_split_needing_a_missing_column_is_refused(
    sqlite_db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "src" / "customers.csv", customers())
    with pytest.raises(InvalidInput, match="needs a column"):
        run(sqlite_db, blobs, source, split={"method": "grouped"})
    with pytest.raises(InvalidInput, match="'nope' is not a column"):
        run(sqlite_db, blobs, source, split={"method": "grouped", "column": "nope"})
    assert version_rows(sqlite_db) == 0


def test_features_and_target_drop_identifiers(
    sqlite_db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "src" / "customers.csv", customers())
    version, _ = run(sqlite_db, blobs, source)
    X, y, target = load.features_and_target(load.frame(blobs, version, "train"), version)
    assert target == "churn"
    assert "churn" not in X.columns and "customer_id" not in X.columns
    assert len(X) == len(y) == 160
    assert set(y) == {"yes", "no"}


# --- derive ------------------------------------------------------------------------------


def test_derive_with_another_target_keeps_the_rows(
    sqlite_db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "src" / "customers.csv", customers())
    first, _ = run(sqlite_db, blobs, source)
    derived, created = derive(sqlite_db, blobs, first, target="plan", task="multiclass")
    assert created
    assert (derived.number, derived.parent) == (2, 1)
    assert derived.manifest["data_hash"] == first.manifest["data_hash"]
    assert derived.content_hash != first.content_hash
    assert (derived.data_schema.target, derived.data_schema.task) == ("plan", TaskType.multiclass)
    assert derived.changes["same_data"] is True
    assert derived.changes["target"] == "plan"
    assert load.read_rows(blobs, derived).equals(load.read_rows(blobs, first))
    # The parent still reads (its rows were not rewritten under another hash).
    assert load.read_rows(blobs, first).num_rows == 200
    # Deriving the same thing again finds the version already made.
    again, created_again = derive(sqlite_db, blobs, first, target="plan", task="multiclass")
    assert again == derived and not created_again


def test_derive_with_a_kind_override_changes_the_frame(
    sqlite_db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "src" / "customers.csv", customers())
    first, _ = run(sqlite_db, blobs, source)
    derived, _ = derive(sqlite_db, blobs, first, kinds={"age": "categorical"})
    age = derived.data_schema.column("age")
    assert age is not None and age.kind.value == "categorical" and age.inferred is not None
    values = load.frame(blobs, derived)["age"]
    assert all(isinstance(v, str) for v in values)
    assert derived.data_schema.target == "churn"  # unset arguments keep the parent's


def test_derive_with_only_a_new_target_infers_its_task(
    sqlite_db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "src" / "customers.csv", customers())
    first, _ = run(sqlite_db, blobs, source)
    derived, _ = derive(sqlite_db, blobs, first, target="plan")
    assert derived.data_schema.task is TaskType.multiclass


# --- images ------------------------------------------------------------------------------


def test_image_folder_stores_each_image_once(
    sqlite_db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    colours = [(i * 20, 255 - i * 20, 90) for i in range(12)]
    layout = {f"red/{i}.png": png(c) for i, c in enumerate(colours[:6])}
    layout |= {f"blue/{i}.png": png(c) for i, c in enumerate(colours[6:])}
    layout["blue/copy_of_0.png"] = layout["blue/0.png"]  # the same picture twice
    folder = image_folder(tmp_path / "pictures", layout)
    version, _ = run(sqlite_db, blobs, folder, name="colours", split={"method": "random"})
    assert version.rows == 13
    assert version.data_schema.column("image").kind.value == "image"  # type: ignore[union-attr]
    assert version.data_schema.target == "label"
    images = version.manifest["images"]
    assert images["count"] == 12
    stored = [b.key for b in blobs.list(images["prefix"])]
    assert len(stored) == 12
    rows = load.read_rows(blobs, version).to_pylist()
    for row in rows:
        key = f"{images['prefix']}/{row['image']}"
        assert blobs.get(key, sha256=row["image"]) == layout[row["file"]]
    # A second dataset in the project holding the same pictures adds no image blobs.
    run(sqlite_db, blobs, folder, name="colours-again")
    assert len(list(blobs.list(images["prefix"]))) == 12


def test_cifar_archive_with_classes_keeps_the_archive_split(
    sqlite_db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    train = [BICYCLE] * 12 + [MOTORCYCLE] * 10 + [0, 1, 2, 3]
    test = [BICYCLE] * 3 + [MOTORCYCLE] * 2 + [4]
    archive = cifar100_archive(tmp_path / "cifar-100-python.tar.gz", train, test)
    version, _ = run(
        sqlite_db, blobs, archive, name="bikes", read={"classes": "bicycle, motorcycle"}
    )
    assert version.rows == 27
    assert version.manifest["read"] == {"classes": ["bicycle", "motorcycle"]}
    assert version.split["method"] == "predefined"
    assert (version.split["train_rows"], version.split["test_rows"]) == (22, 5)
    train_rows, test_rows = parts(blobs, version)
    assert all(f.startswith("train/") for f in train_rows["file"])
    assert all(f.startswith("test/") for f in test_rows["file"])
    assert Counter(test_rows["label"]) == {"bicycle": 3, "motorcycle": 2}
    assert Counter(train_rows["label"]) == {"bicycle": 12, "motorcycle": 10}
    assert len(list(blobs.list(version.manifest["images"]["prefix"]))) == 27

    # A derived version keeps the archive's division.
    derived, _ = derive(sqlite_db, blobs, version, kinds={"file": "text"})
    assert derived.split["method"] == "predefined"
    assert np.array_equal(load.test_mask(blobs, derived), load.test_mask(blobs, version))


def test_classes_option_on_a_csv_is_refused(
    sqlite_db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "src" / "customers.csv", customers())
    with pytest.raises(InvalidInput, match="CIFAR archives only"):
        run(sqlite_db, blobs, source, read={"classes": ["bicycle"]})


# --- PostgreSQL ------------------------------------------------------------------------


@pytest.mark.postgres
def test_ingest_and_new_version_on_postgresql(
    postgres_url: str, blobs: BlobStore, tmp_path: Path
) -> None:
    db = Database(postgres_url)
    db.upgrade()
    try:
        with db.session() as s:
            projects.create(s, PROJECT)
        folder = tmp_path / "src"
        write_csv(folder / "2023.csv", customers(100))
        first, created = run(db, blobs, folder)
        again, created_again = run(db, blobs, folder)
        assert created and not created_again and again == first
        write_csv(folder / "2024.csv", customers(50, start=100))
        second, _ = run(db, blobs, folder)
        assert (second.number, second.parent, second.rows) == (2, 1, 150)
        assert second.changes["files_added"] == ["2024.csv"]
        with db.session() as s:
            stored = datasets.get_version(s, PROJECT, "churn", 2)
        assert stored == second
        assert stored.data_schema.target == "churn"
        assert load.read_rows(blobs, stored).num_rows == 150
        assert version_rows(db) == 2
    finally:
        db.dispose()


def test_derived_choices_and_the_same_choices_at_ingest_are_one_version(
    sqlite_db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "src" / "customers.csv", customers())
    first, _ = run(sqlite_db, blobs, source)
    derived, created = derive(sqlite_db, blobs, first, target="plan")
    assert created and derived.number == 2
    again, created = run(sqlite_db, blobs, source, target="plan")
    assert not created
    assert again.number == 2


def test_a_column_that_turns_to_text_late_in_a_large_csv_becomes_text(
    sqlite_db: Database, blobs: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopml.data import csvfile

    monkeypatch.setattr(csvfile, "_BLOCK_BYTES", 64 * 1024)  # Arrow parses 4 blocks
    rows = 25_000
    frame = pd.DataFrame({"code": [str(i) for i in range(rows)], "x": np.arange(rows) * 0.5})
    frame.loc[rows - 1, "code"] = "n/a-later"
    frame["y"] = np.where(np.arange(rows) % 2, "a", "b")
    version, _ = run(sqlite_db, blobs, write_csv(tmp_path / "src" / "late.csv", frame), target="y")
    assert version.rows == rows
    schema = version.data_schema
    assert schema.column("code").dtype == "string"  # only the column that changed
    assert schema.column("x").dtype == "double"
    assert load.frame(blobs, version)["code"].iloc[-1] == "n/a-later"


def test_large_csv_is_described_stored_compactly_and_read_back_unchanged(
    sqlite_db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    from loopml.data.stats import EXACT_ROWS

    n = EXACT_ROWS + 50_000
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        {
            "reading": rng.normal(20, 5, n),  # every value distinct: no common value
            "stars": rng.integers(1, 6, n) * 1.0,  # few distinct floats
            "visits": rng.integers(0, 50, n),
            "plan": rng.choice(["basic", "plus", "pro"], n),
            "churn": np.where(rng.random(n) < 0.3, "yes", "no"),
        }
    )
    frame.loc[::97, "reading"] = np.nan
    version, _ = run(sqlite_db, blobs, write_csv(tmp_path / "src" / "big.csv", frame))
    schema = version.data_schema
    reading = schema.column("reading")
    assert reading is not None and reading.unique_estimated
    exact = frame["reading"].nunique()
    assert abs(reading.unique - exact) <= 0.01 * exact  # type: ignore[operator]
    assert [(c.name, c.unique) for c in schema.columns if not c.unique_estimated] == [
        ("stars", 5), ("visits", 50), ("plan", 3), ("churn", 2),
    ]  # fmt: skip
    profile = version.manifest["profile"]["reading"]
    expected = frame["reading"].dropna().quantile([0.25, 0.5, 0.75]).tolist()
    assert [profile["quantiles"][q] for q in ("0.25", "0.5", "0.75")] == expected
    # Many-valued floats are stored as byte streams, the rest with dictionaries.
    meta = pq.ParquetFile(blobs.open(version.manifest["table"]["key"])).metadata
    encodings = {
        meta.schema.column(i).name: meta.row_group(0).column(i).encodings
        for i in range(meta.num_columns)
    }
    assert "BYTE_STREAM_SPLIT" in encodings["reading"]
    assert any("DICTIONARY" in e for e in encodings["stars"])
    back = load.frame(blobs, version)
    pd.testing.assert_frame_equal(
        back[frame.columns].reset_index(drop=True), frame, check_dtype=False
    )


def test_integers_beyond_float_precision_are_compared_digit_for_digit(
    sqlite_db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    # Nanosecond timestamps: two rows that differ in the last digit are not copies.
    base = 1_700_000_636_961_687_321
    frame = pd.DataFrame(
        {"event_ns": [base, base + 1, base + 2, base + 2], "amount": [1.5, 1.5, 2.0, 2.0]}
    )
    frame["label"] = ["a", "a", "b", "b"]
    version, _ = run(sqlite_db, blobs, write_csv(tmp_path / "src" / "ns.csv", frame))
    [copies] = [f for f in version.quality if f.check == "duplicate_rows"]
    assert copies.details["count"] == 1
    assert load.frame(blobs, version)["event_ns"].tolist() == frame["event_ns"].tolist()
