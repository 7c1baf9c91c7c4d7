"""The label store at the library level: items keep their keys from version to version,
labels are checked against the latest version's items and classes, reviewed by another
key, and the approved ones become a new version that keeps its parent's test split."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loopml.core.enums import LabelSource, LabelStatus, TaskType
from loopml.core.errors import Conflict, InvalidInput
from loopml.core.schemas import DatasetVersion, Label
from loopml.data import load
from loopml.data.ingest import ingest
from loopml.labels.items import item_keys
from loopml.labels.service import add_labels, apply_labels
from loopml.store import datasets, labels, projects
from loopml.store.blobs import BlobStore
from loopml.store.db import Database
from tests.data.support import image_folder, png

PROJECT = "farm"
LIMITS: dict[str, Any] = {"max_bytes": 50_000_000, "max_expanded": 50_000_000}
UNLABELLED = 6  # the first rows of pets() have no kind


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'meta' / 'loopml.db'}")
    database.upgrade()
    with database.session() as s:
        projects.create(s, PROJECT)
    yield database
    database.dispose()


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore((tmp_path / "blobs").as_uri())


def pets(n: int = 30, ids: bool = False) -> pd.DataFrame:
    """Pets with a weight, a colour and a kind (cat or dog), the first rows unlabelled;
    with ``ids`` a ``pet_id`` column names each row."""
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(
        {
            "weight": rng.uniform(2, 40, n).round(3),
            "colour": rng.choice(["black", "white", "ginger"], n),
            "kind": ["cat" if i % 2 else "dog" for i in range(n)],
        }
    )
    frame.loc[: UNLABELLED - 1, "kind"] = None
    if ids:
        frame.insert(0, "pet_id", [f"pet{i:03d}" for i in range(n)])
    return frame


def add_csv(
    db: Database, blobs: BlobStore, tmp_path: Path, frame: pd.DataFrame, name: str = "pets"
) -> DatasetVersion:
    path = tmp_path / "src" / f"{name}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    version, _ = ingest(db, blobs, PROJECT, name, str(path), target="kind", **LIMITS)
    return version


def keys_of(blobs: BlobStore, version: DatasetVersion) -> list[str]:
    return list(item_keys(load.read_rows(blobs, version), version.data_schema))


def column(blobs: BlobStore, version: DatasetVersion, name: str) -> list[Any]:
    return list(load.read_rows(blobs, version).column(name).to_pylist())


def label(
    db: Database,
    blobs: BlobStore,
    pairs: list[tuple[str, str]],
    key: str = "key-labeller",
    name: str = "pets",
) -> list[Label]:
    return add_labels(db, blobs, PROJECT, name, pairs, author=key, author_key=key)


def review(db: Database, label_id: str, approve: bool = True, key: str = "key-maintainer") -> Label:
    with db.session() as s:
        return labels.review(
            s, PROJECT, "pets", label_id, approve=approve, reviewer=key, reviewer_key=key
        )


def stored(db: Database, name: str = "pets", **filters: Any) -> list[Label]:
    with db.session() as s:
        return labels.list_labels(s, PROJECT, name, **filters)


def review_off(db: Database) -> None:
    with db.session() as s:
        projects.update(s, PROJECT, label_review=False)


# --- items -------------------------------------------------------------------------------


def test_rows_without_an_id_column_are_keyed_by_their_features_not_their_label(
    db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    first = add_csv(db, blobs, tmp_path, pets())
    keys = keys_of(blobs, first)
    assert len(set(keys)) == len(keys) == 30
    assert all(k.startswith("row-") and len(k) == len("row-") + 16 for k in keys)
    assert keys_of(blobs, first) == keys  # the same on every read

    review_off(db)
    label(db, blobs, [(keys[0], "cat"), (keys[1], "dog")])
    second, created, _ = apply_labels(db, blobs, PROJECT, "pets")
    assert created and second.number == 2
    assert column(blobs, second, "kind")[:2] == ["cat", "dog"]
    assert keys_of(blobs, second) == keys  # labelling a row does not change its key

    # A source whose targets differ keeps the keys; a changed feature changes that row's.
    relabelled = pets()
    relabelled.loc[:, "kind"] = "cat"
    assert keys_of(blobs, add_csv(db, blobs, tmp_path, relabelled)) == keys
    heavier = pets()
    heavier.loc[3, "weight"] += 1
    changed = keys_of(blobs, add_csv(db, blobs, tmp_path, heavier))
    assert changed[3] != keys[3]
    assert changed[:3] + changed[4:] == keys[:3] + keys[4:]


def test_an_identifier_column_gives_the_keys_in_every_version(
    db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    first = add_csv(db, blobs, tmp_path, pets(ids=True))
    assert first.data_schema.column("pet_id").kind.value == "identifier"  # type: ignore[union-attr]
    assert keys_of(blobs, first) == [f"pet{i:03d}" for i in range(30)]

    review_off(db)
    label(db, blobs, [("pet000", "dog")])
    second, _, _ = apply_labels(db, blobs, PROJECT, "pets")
    assert keys_of(blobs, second) == [f"pet{i:03d}" for i in range(30)]
    assert column(blobs, second, "kind")[0] == "dog"


def test_an_image_folders_items_are_the_images_sha256(
    db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    layout = {f"{i}.png": png((i * 40, 90, 200 - i * 30)) for i in range(5)}
    folder = image_folder(tmp_path / "pictures", layout)
    version, _ = ingest(db, blobs, PROJECT, "pictures", str(folder), **LIMITS)
    files = column(blobs, version, "file")
    expected = [hashlib.sha256(layout[f]).hexdigest() for f in files]
    assert keys_of(blobs, version) == expected


# --- adding labels -------------------------------------------------------------------------


def test_labels_on_items_not_in_the_latest_version_are_refused_naming_them(
    db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    keys = keys_of(blobs, add_csv(db, blobs, tmp_path, pets()))
    pairs = [(keys[0], "cat"), ("row-0000000000000000", "dog"), ("pet999", "cat")]
    with pytest.raises(InvalidInput) as caught:
        label(db, blobs, pairs)
    assert caught.value.field == "item"
    assert "2 item(s) are not in pets@1" in caught.value.message
    assert "row-0000000000000000" in caught.value.message and "pet999" in caught.value.message
    assert keys[0] not in caught.value.message
    assert stored(db) == []  # nothing of a refused batch is kept


def test_many_unknown_items_are_counted_and_the_list_shortened(
    db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    add_csv(db, blobs, tmp_path, pets())
    with pytest.raises(InvalidInput, match=r"^12 item\(s\) are not in pets@1: nope0, .* \.\.\.$"):
        label(db, blobs, [(f"nope{i}", "cat") for i in range(12)])


def test_values_outside_the_targets_classes_are_refused_listing_them(
    db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    keys = keys_of(blobs, add_csv(db, blobs, tmp_path, pets()))
    with pytest.raises(InvalidInput) as caught:
        label(db, blobs, [(keys[0], "cat"), (keys[1], "hamster"), (keys[2], "Dog")])
    message = caught.value.message
    assert caught.value.field == "value"
    assert "'Dog', 'hamster' not among the classes of 'kind'" in message
    assert message.endswith("cat, dog")  # the classes a label may take
    assert stored(db) == []
    assert [x.value for x in label(db, blobs, [(keys[0], "cat"), (keys[1], "dog")])] == [
        "cat",
        "dog",
    ]


def test_regression_labels_must_be_finite_numbers(
    db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    frame = pd.DataFrame({"size": np.arange(30) * 1.5, "price": np.linspace(1, 9, 30).round(2)})
    frame.loc[:2, "price"] = None
    path = tmp_path / "prices.csv"
    frame.to_csv(path, index=False)
    version, _ = ingest(db, blobs, PROJECT, "prices", str(path), target="price", **LIMITS)
    assert version.data_schema.task is TaskType.regression
    keys = keys_of(blobs, version)
    for bad in ("cheap", "nan", "inf"):
        with pytest.raises(InvalidInput, match=f"regression labels must be numbers; got '{bad}'"):
            label(db, blobs, [(keys[0], "2.5"), (keys[1], bad)], name="prices")
    review_off(db)
    label(db, blobs, [(keys[0], "2.5"), (keys[1], "1e1")], name="prices")
    second, _, counts = apply_labels(db, blobs, PROJECT, "prices")
    assert column(blobs, second, "price")[:3] == [2.5, 10.0, None]  # numbers, not text
    assert counts == {"labels": 2, "changed": 2, "missing_items": 0, "skipped": 0}


def test_a_fractional_label_on_a_whole_number_target_is_kept_not_truncated(
    db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    frame = pd.DataFrame({"size": np.arange(30) * 1.5, "age": np.arange(30) % 17 + 20})
    path = tmp_path / "ages.csv"
    frame.to_csv(path, index=False)
    options = {"target": "age", "task": "regression", **LIMITS}
    version, _ = ingest(db, blobs, PROJECT, "ages", str(path), **options)
    keys = keys_of(blobs, version)
    review_off(db)
    label(db, blobs, [(keys[0], "31")], name="ages")
    second, _, _ = apply_labels(db, blobs, PROJECT, "ages")
    assert column(blobs, second, "age")[:2] == [31, 21]
    assert load.read_rows(blobs, second).column("age").type == "int64"  # whole: still integers
    label(db, blobs, [(keys[1], "30.5")], name="ages")
    third, _, _ = apply_labels(db, blobs, PROJECT, "ages")
    assert column(blobs, third, "age")[:3] == [31.0, 30.5, 22.0]


def test_a_dataset_without_a_target_cannot_be_labelled(
    db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    # An identifier and free text: no column a target could be.
    frame = pd.DataFrame(
        {"code": [f"k{i:03d}" for i in range(25)], "note": ["a long note of several words"] * 25}
    )
    path = tmp_path / "notes.csv"
    frame.to_csv(path, index=False)
    version, _ = ingest(db, blobs, PROJECT, "notes", str(path), **LIMITS)
    assert version.data_schema.target is None
    with pytest.raises(InvalidInput, match="notes@1 has no target column to label"):
        label(db, blobs, [("k001", "x")], name="notes")


def test_with_review_on_labels_wait_and_with_it_off_they_are_approved(
    db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    keys = keys_of(blobs, add_csv(db, blobs, tmp_path, pets()))
    (pending,) = label(db, blobs, [(keys[0], "cat")])
    assert pending.status is LabelStatus.pending_review
    assert pending.reviewer is None and pending.source is LabelSource.human
    assert (pending.author, pending.author_key) == ("key-labeller", "key-labeller")

    review_off(db)
    (approved,) = label(db, blobs, [(keys[1], "dog")])
    assert approved.status is LabelStatus.approved
    assert approved.reviewer == "key-labeller" and approved.reviewed_at is not None
    assert [(x.item, x.status) for x in stored(db)] == [
        (keys[0], LabelStatus.pending_review),
        (keys[1], LabelStatus.approved),
    ]


# --- review --------------------------------------------------------------------------------


def test_no_key_reviews_its_own_labels(db: Database, blobs: BlobStore, tmp_path: Path) -> None:
    keys = keys_of(blobs, add_csv(db, blobs, tmp_path, pets()))
    (made,) = add_labels(
        db, blobs, PROJECT, "pets", [(keys[0], "cat")], author="alice", author_key="k1"
    )
    with db.session() as s, pytest.raises(Conflict, match="another key must review it"):
        # The key, not its name, decides: a renamed key is still the author.
        labels.review(
            s, PROJECT, "pets", made.id, approve=True, reviewer="alice-renamed", reviewer_key="k1"
        )
    assert stored(db)[0].status is LabelStatus.pending_review

    with db.session() as s:
        done = labels.review(
            s, PROJECT, "pets", made.id, approve=True, reviewer="alice", reviewer_key="k2"
        )
    assert done.status is LabelStatus.approved
    assert done.reviewer == "alice" and done.reviewed_at is not None


def test_a_label_is_reviewed_once(db: Database, blobs: BlobStore, tmp_path: Path) -> None:
    keys = keys_of(blobs, add_csv(db, blobs, tmp_path, pets()))
    first, second = label(db, blobs, [(keys[0], "cat"), (keys[1], "dog")])
    assert review(db, first.id, approve=True).status is LabelStatus.approved
    rejected = review(db, second.id, approve=False)
    assert rejected.status is LabelStatus.rejected
    with pytest.raises(Conflict, match=f"label {first.id} was already approved"):
        review(db, first.id, approve=False, key="another-maintainer")
    with pytest.raises(Conflict, match=f"label {second.id} was already rejected"):
        review(db, second.id, approve=True, key="another-maintainer")
    assert [x.status for x in stored(db)] == [LabelStatus.approved, LabelStatus.rejected]


# --- applying ------------------------------------------------------------------------------


def test_apply_makes_a_version_holding_the_newest_approved_label_of_each_item(
    db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    first = add_csv(db, blobs, tmp_path, pets())
    keys = keys_of(blobs, first)
    kinds = column(blobs, first, "kind")
    assert kinds[:UNLABELLED] == [None] * UNLABELLED
    old, new, refused, other, relabel = label(
        db,
        blobs,
        [(keys[0], "cat"), (keys[0], "dog"), (keys[1], "cat"), (keys[2], "dog"), (keys[7], "dog")],
    )
    assert kinds[7] == "cat"  # a labelled row relabelled
    for made in (old, new, other, relabel):
        review(db, made.id)
    review(db, refused.id, approve=False)
    (pending,) = label(db, blobs, [(keys[3], "cat")])  # not reviewed: not applied

    second, created, counts = apply_labels(db, blobs, PROJECT, "pets")
    assert created and (second.number, second.parent, second.rows) == (2, 1, 30)
    after = column(blobs, second, "kind")
    assert after[:4] == ["dog", None, "dog", None]  # newest wins, rejected and pending ignored
    assert after[7] == "dog"
    assert after[4:7] + after[8:] == kinds[4:7] + kinds[8:]
    assert counts == {"labels": 3, "changed": 3, "missing_items": 0, "skipped": 0}
    assert second.manifest["labels"] == {**counts, "from_version": 1}
    assert second.changes["rows_before"] == second.changes["rows_after"] == 30
    assert second.changes["same_data"] is False
    assert second.data_schema.target == "kind" and second.data_schema.task is TaskType.binary
    with db.session() as s:
        assert datasets.get_version(s, PROJECT, "pets").number == 2

    applied = {x.id: x.applied_in for x in stored(db)}
    assert applied[new.id] == applied[other.id] == applied[relabel.id] == 2
    assert applied[old.id] is None  # replaced by a newer label before it was applied
    assert applied[refused.id] is None and applied[pending.id] is None
    assert [x.id for x in stored(db, unapplied=True)] == [old.id, refused.id, pending.id]

    # No row moves between training and test.
    before_test = load.test_mask(blobs, first)
    assert before_test.any() and not before_test.all()
    assert np.array_equal(load.test_mask(blobs, second), before_test)
    assert second.split["test_rows"] == first.split["test_rows"]


def test_applying_again_with_nothing_new_makes_no_version(
    db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    first = add_csv(db, blobs, tmp_path, pets())
    keys = keys_of(blobs, first)
    review_off(db)
    label(db, blobs, [(keys[0], "cat")])
    second, created, _ = apply_labels(db, blobs, PROJECT, "pets")
    assert created and second.number == 2

    again, created, counts = apply_labels(db, blobs, PROJECT, "pets")
    assert not created and again == second
    assert counts == {"labels": 1, "changed": 0, "missing_items": 0, "skipped": 0}
    with db.session() as s:
        assert [v.number for v in datasets.list_versions(s, PROJECT, "pets")] == [1, 2]

    # A new label makes version 3, which still keeps the first version's test split.
    label(db, blobs, [(keys[1], "dog")])
    third, created, counts = apply_labels(db, blobs, PROJECT, "pets")
    assert created and (third.number, third.parent) == (3, 2)
    assert column(blobs, third, "kind")[:2] == ["cat", "dog"]
    assert counts["labels"] == 2 and counts["changed"] == 1
    assert np.array_equal(load.test_mask(blobs, third), load.test_mask(blobs, first))


def test_labels_whose_item_is_gone_are_counted_as_missing(
    db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    keys = keys_of(blobs, add_csv(db, blobs, tmp_path, pets(ids=True)))
    review_off(db)
    label(db, blobs, [(keys[0], "cat"), (keys[29], "dog")])
    shorter = add_csv(db, blobs, tmp_path, pets(ids=True).iloc[:29])  # pet029 is gone
    assert shorter.number == 2
    third, created, counts = apply_labels(db, blobs, PROJECT, "pets")
    assert created and third.rows == 29
    assert counts == {"labels": 1, "changed": 1, "missing_items": 1, "skipped": 0}
    assert column(blobs, third, "kind")[0] == "cat"


def test_apply_without_approved_labels_is_a_conflict(
    db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    keys = keys_of(blobs, add_csv(db, blobs, tmp_path, pets()))
    with pytest.raises(Conflict, match="farm/pets has no approved labels to apply"):
        apply_labels(db, blobs, PROJECT, "pets")
    _, second = label(db, blobs, [(keys[0], "cat"), (keys[1], "dog")])
    review(db, second.id, approve=False)  # one pending, one rejected
    with pytest.raises(Conflict, match="no approved labels"):
        apply_labels(db, blobs, PROJECT, "pets")
    with db.session() as s:
        assert [v.number for v in datasets.list_versions(s, PROJECT, "pets")] == [1]


def test_an_unlabelled_image_folder_labelled_and_applied_becomes_a_binary_task(
    db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    layout = {f"{i}.png": png((i * 25, 120, 250 - i * 25)) for i in range(10)}
    folder = image_folder(tmp_path / "pictures", layout)
    first, _ = ingest(db, blobs, PROJECT, "pictures", str(folder), **LIMITS)
    assert first.data_schema.target == "label" and first.data_schema.task is None
    assert column(blobs, first, "label") == [None] * 10
    keys = keys_of(blobs, first)

    review_off(db)
    pairs = [(key, "warm" if i % 2 else "cool") for i, key in enumerate(keys)]
    label(db, blobs, pairs, name="pictures")
    second, created, counts = apply_labels(db, blobs, PROJECT, "pictures")
    assert created and counts == {"labels": 10, "changed": 10, "missing_items": 0, "skipped": 0}
    assert second.data_schema.task is TaskType.binary
    assert second.data_schema.column("image").kind.value == "image"  # type: ignore[union-attr]
    assert column(blobs, second, "label") == [value for _, value in pairs]
    assert keys_of(blobs, second) == keys
    assert second.manifest["images"] == first.manifest["images"]  # the same stored images
    assert np.array_equal(load.test_mask(blobs, second), load.test_mask(blobs, first))


def test_a_yes_no_target_takes_the_words_people_write(
    db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    frame = pets().assign(kind=[None] * 3 + [True, False] * 13 + [True])
    version = add_csv(db, blobs, tmp_path, frame, name="flags")
    keys = keys_of(blobs, version)
    made = add_labels(
        db, blobs, PROJECT, "flags", [(keys[0], " Yes"), (keys[1], "no"), (keys[2], "TRUE")],
        author="k", author_key="k",
    )  # fmt: skip
    assert len(made) == 3
    with pytest.raises(InvalidInput, match="'maybe': a yes/no target takes true or false"):
        add_labels(db, blobs, PROJECT, "flags", [(keys[0], "maybe")], author="k", author_key="k")
    review_off(db)
    with db.session() as s:
        for made_label in made:
            labels.review(
                s, PROJECT, "flags", made_label.id, approve=True, reviewer="r", reviewer_key="r"
            )
    applied, created, _ = apply_labels(db, blobs, PROJECT, "flags")
    assert created
    assert column(blobs, applied, "kind")[:3] == [True, False, True]


# --- labels the version cannot hold ------------------------------------------------------


def test_a_label_made_for_an_earlier_target_is_skipped_when_applied(
    db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    review_off(db)
    first = add_csv(db, blobs, tmp_path, pets(ids=True))
    label(db, blobs, [("pet000", "cat")])
    # The source's target turns into a number: "cat" no longer fits it.
    frame = pets(ids=True)
    frame["kind"] = np.arange(len(frame)) * 0.5
    second = add_csv(db, blobs, tmp_path, frame)
    assert second.number == first.number + 1
    label(db, blobs, [("pet001", "7.5")])
    made, created, counts = apply_labels(db, blobs, PROJECT, "pets")
    assert created and counts["skipped"] == 1 and counts["labels"] == 1
    assert column(blobs, made, "kind")[:2] == [0.0, 7.5]  # pet000 kept its value
    again, created_again, _ = apply_labels(db, blobs, PROJECT, "pets")  # no error next time
    assert (again, created_again) == (made, False)


def test_a_number_beyond_64_bits_on_a_whole_number_target_is_kept_as_a_float(
    db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    frame = pd.DataFrame({"size": np.arange(30) * 1.5, "age": np.arange(30) % 17 + 20})
    path = tmp_path / "ages.csv"
    frame.to_csv(path, index=False)
    version, _ = ingest(db, blobs, PROJECT, "ages", str(path), target="age", **LIMITS)
    assert version.data_schema.task is TaskType.regression
    review_off(db)
    label(db, blobs, [(keys_of(blobs, version)[0], "1e20")], name="ages")
    made, _, _ = apply_labels(db, blobs, PROJECT, "ages")
    assert column(blobs, made, "age")[0] == 1e20


def test_a_binary_target_stored_as_numbers_takes_only_its_classes(
    db: Database, blobs: BlobStore, tmp_path: Path
) -> None:
    frame = pd.DataFrame({"size": np.arange(40) * 1.5, "sold": [i % 2 for i in range(40)]})
    frame["sold"] = frame["sold"].astype(float)
    frame.loc[:3, "sold"] = None  # gaps make the 0/1 column a float one
    path = tmp_path / "sales.csv"
    frame.to_csv(path, index=False)
    version, _ = ingest(db, blobs, PROJECT, "sales", str(path), target="sold", **LIMITS)
    assert version.data_schema.task is TaskType.binary
    keys = keys_of(blobs, version)
    for bad in ("42", "-3.7", "yes"):
        with pytest.raises(InvalidInput, match="not among the classes of 'sold': 0, 1"):
            label(db, blobs, [(keys[0], bad)], name="sales")
    review_off(db)
    label(db, blobs, [(keys[0], "1"), (keys[1], "0.0")], name="sales")
    made, _, _ = apply_labels(db, blobs, PROJECT, "sales")
    assert column(blobs, made, "sold")[:2] == [1.0, 0.0]
    assert made.data_schema.task is TaskType.binary
