"""Serving without a server: request rows checked against a model's inputs, answers with
labels, probabilities and abstentions, and the cache that loads each model once."""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loopml.automl import AutoML
from loopml.core.enums import Stage
from loopml.core.errors import IntegrityError, InvalidInput
from loopml.core.schemas import Deployment, ModelVersion
from loopml.serving.models import ModelCache
from loopml.serving.predict import MAX_ROWS, answer, check_rows
from loopml.store.blobs import BlobStore

NOW = datetime(2026, 11, 28, tzinfo=timezone.utc)
FAST: dict[str, Any] = {
    "time_budget": 2.0,
    "seed": 0,
    "n_jobs": 1,
    "n_folds": 3,
    "report": False,
}


def reviews(n: int = 200, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """A numeric, a categorical and a free-text column; the label depends on all three."""
    rng = np.random.default_rng(seed)
    amount = rng.normal(size=n)
    colour = rng.choice(["red", "green", "blue"], n)
    good = rng.random(n) < 0.5
    words = ["ok", "fine", "later", "maybe", "soon", "today", "here", "there"]
    comment = [
        " ".join([*rng.choice(words, 3), "excellent" if g else "awful", *rng.choice(words, 2)])
        for g in good
    ]
    y = np.where((amount + (colour == "red") + 2 * good - 1.5) > 0, "yes", "no")
    return pd.DataFrame({"amount": amount, "colour": colour, "comment": comment}), y


@dataclass
class Fitted:
    model: AutoML
    version: ModelVersion
    X: pd.DataFrame


def register(model: AutoML, blobs: BlobStore, key: str, number: int = 1) -> ModelVersion:
    """Save ``model`` to ``blobs`` and describe it as the registry would."""
    path = Path(blobs.root) / f"{key}.tmp.zip"
    digest = model.save(path)
    stored = blobs.put(f"models/{key}/model.zip", path.read_bytes())
    kinds = {c.name: c.kind for c in model.schema_.columns}
    return ModelVersion(
        id=f"id{number}",
        project="p",
        number=number,
        stage=Stage.production,
        task=model.task_,
        metric=model.metric_,
        artifact=f"models/{key}/model.zip",
        artifact_sha256=stored.sha256,
        content_hash=digest,
        size_bytes=stored.size,
        classes=None if model.classes_ is None else model.classes_.tolist(),
        inputs=[
            {"name": str(n), "kind": kinds.get(str(n), "ignored")} for n in model.feature_names_in_
        ],
        created_at=NOW,
    )


def deployment(threshold: float | None = None, fallback: str = "unknown") -> Deployment:
    return Deployment(
        id="d",
        project="p",
        name="live",
        model=1,
        confidence_threshold=threshold,
        fallback_label=fallback,
        created_at=NOW,
        updated_at=NOW,
    )


@pytest.fixture(scope="module")
def blobs(tmp_path_factory: pytest.TempPathFactory) -> BlobStore:
    return BlobStore(f"file://{tmp_path_factory.mktemp('blobs')}")


@pytest.fixture(scope="module")
def classifier(blobs: BlobStore) -> Fitted:
    X, y = reviews()
    model = AutoML(**FAST, max_trials=2).fit(X, y)
    return Fitted(model, register(model, blobs, "classifier"), X)


@pytest.fixture(scope="module")
def regressor(blobs: BlobStore) -> Fitted:
    X, _ = reviews(seed=1)
    y = 3 * X["amount"].to_numpy() + (X["colour"] == "red") + 1
    model = AutoML(**FAST, max_trials=1, learners=["linear"]).fit(X[["amount", "colour"]], y)
    return Fitted(model, register(model, blobs, "regressor", number=2), X)


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [dict(r) for r in frame.to_dict(orient="records")]


# --- checking rows -----------------------------------------------------------------


def test_the_fitted_model_reads_a_numeric_a_categorical_and_a_text_column(
    classifier: Fitted,
) -> None:
    assert classifier.version.inputs == [
        {"name": "amount", "kind": "numeric"},
        {"name": "colour", "kind": "categorical"},
        {"name": "comment", "kind": "text"},
    ]


@pytest.mark.parametrize("body", [None, {}, {"amount": 1}, [], "amount=1"])
def test_rows_must_be_a_non_empty_list(classifier: Fitted, body: Any) -> None:
    with pytest.raises(InvalidInput) as err:
        check_rows(body, classifier.version)
    assert err.value.field == "records"
    assert "non-empty list of records" in err.value.message


def test_a_record_that_is_not_an_object_is_named(classifier: Fitted) -> None:
    with pytest.raises(InvalidInput) as err:
        check_rows([{"amount": 1}, [1, "red", "ok"]], classifier.version)
    assert err.value.message == "record 1 is not an object"
    assert err.value.field == "records[1]"


@pytest.mark.parametrize("value", ["lots", True, False, [1.5], {"value": 1}, "1,5"], ids=repr)
def test_a_value_that_is_not_a_number_is_refused_naming_record_and_column(
    classifier: Fitted, value: Any
) -> None:
    rows = [{"amount": 1.0}, {"amount": 2}, {"amount": value, "colour": "red"}]
    with pytest.raises(InvalidInput) as err:
        check_rows(rows, classifier.version)
    assert err.value.message == f"record 2: 'amount' must be a number, got {value!r}"
    assert err.value.field == "records[2].amount"
    assert err.value.extra == {"row": 2, "column": "amount"}


def test_nested_values_in_other_columns_are_refused(classifier: Fitted) -> None:
    with pytest.raises(InvalidInput) as err:
        check_rows([{"colour": "red"}, {"colour": ["red", "blue"]}], classifier.version)
    assert err.value.field == "records[1].colour"
    assert "record 1: 'colour' holds a nested value" in err.value.message


def test_numeric_strings_are_numbers_and_blanks_are_missing(classifier: Fitted) -> None:
    given = ["1.5", " 2 ", "-3e2", 7, 0.25, "", None, "nan", "inf"]
    rows = check_rows([{"amount": v} for v in given], classifier.version)
    got = list(rows.frame["amount"])
    assert got[:5] == [1.5, 2.0, -300.0, 7.0, 0.25]
    assert all(pd.isna(v) for v in got[5:])  # empty, null, NaN and infinity: missing


@pytest.mark.parametrize("huge", [10**400, -(10**400)], ids=["positive", "negative"])
def test_an_integer_too_large_for_a_float_is_a_missing_value(classifier: Fitted, huge: int) -> None:
    rows = check_rows(
        [{"amount": 1.5}, {"amount": huge, "colour": "red"}, {"amount": 2}], classifier.version
    )
    assert rows.frame["amount"] == [1.5, None, 2.0]
    assert rows.frame["colour"] == [None, "red", None]
    # and it is answered as a row without the value
    with_huge = answer(classifier.model, rows, classifier.version, deployment())
    plain = predicted(classifier, [{"amount": 1.5}, {"colour": "red"}, {"amount": 2}], deployment())
    assert [p["probabilities"] for p in with_huge] == [p["probabilities"] for p in plain]


def test_json_floats_pass_through_unchanged(classifier: Fitted) -> None:
    given = [0.1, -2.5, 1e-300, 3.0e38, 123456789.123456789, -0.0]
    rows = check_rows(json.loads(json.dumps([{"amount": v} for v in given])), classifier.version)
    got = rows.frame["amount"]
    assert got == given
    assert all(type(v) is float for v in got)
    assert math.copysign(1.0, got[-1]) == -1.0  # the very same values, sign of zero too


def test_non_finite_json_floats_answer_as_missing_values(classifier: Fitted) -> None:
    """Python's json reads NaN and Infinity: the model takes them as missing, as null."""
    odd = json.loads('[{"amount": NaN}, {"amount": Infinity}, {"amount": -Infinity}]')
    missing = [{"amount": None}] * 3
    got = predicted(classifier, odd, deployment())
    want = predicted(classifier, missing, deployment())
    assert [p["probabilities"] for p in got] == [p["probabilities"] for p in want]


@pytest.mark.parametrize("value", ["lots", "12,5", "1e400x", "0x10"], ids=repr)
def test_a_string_that_is_no_number_is_refused_among_floats_and_huge_ints(
    classifier: Fitted, value: str
) -> None:
    rows = [{"amount": 0.5}, {"amount": 10**400}, {"amount": 7}, {"amount": value}]
    with pytest.raises(InvalidInput) as err:
        check_rows(rows, classifier.version)
    assert err.value.message == f"record 3: 'amount' must be a number, got {value!r}"
    assert err.value.field == "records[3].amount"
    assert err.value.extra == {"row": 3, "column": "amount"}
    # from a CSV file, the line is named
    with pytest.raises(InvalidInput) as err:
        check_rows(rows, classifier.version, first_line=2)
    assert err.value.message.startswith("line 5: 'amount' must be a number")


def test_unknown_columns_are_ignored_and_reported(classifier: Fitted) -> None:
    rows = check_rows(
        [
            {"amount": 1, "colour": "red", "comment": "fine", "customer_id": 7},
            {"amount": 2, "Colour": "blue", "zz": None},
        ],
        classifier.version,
    )
    assert rows.ignored == ["Colour", "customer_id", "zz"]
    assert list(rows.frame.keys()) == ["amount", "colour", "comment"]
    assert rows.frame["colour"][0] == "red"
    assert pd.isna(rows.frame["colour"][1])  # "Colour" is another column


def test_too_many_rows_are_refused(classifier: Fitted) -> None:
    with pytest.raises(InvalidInput) as err:
        check_rows([{}] * (MAX_ROWS + 1), classifier.version)
    assert "at most 100,000 records" in err.value.message


# --- answering ---------------------------------------------------------------------


def predicted(fitted: Fitted, rows: list[dict[str, Any]], dep: Deployment) -> list[dict]:
    return answer(fitted.model, check_rows(rows, fitted.version), fitted.version, dep)


def test_answers_are_the_models_predictions_with_their_probabilities(
    classifier: Fitted,
) -> None:
    X = classifier.X.head(40)
    out = predicted(classifier, records(X), deployment())
    assert len(out) == 40
    assert [p["label"] for p in out] == classifier.model.predict(X).tolist()
    expected = classifier.model.predict_proba(X)
    for p, proba in zip(out, expected, strict=True):
        assert set(p) == {
            "prediction_id",
            "label",
            "probabilities",
            "confidence",
            "abstained",
            "model_version",
        }
        assert p["probabilities"] == pytest.approx({"no": proba[0], "yes": proba[1]})
        assert p["confidence"] == pytest.approx(p["probabilities"][p["label"]])
        assert p["abstained"] is False
        assert p["model_version"] == 1
    assert len({p["prediction_id"] for p in out}) == 40


def test_string_numbers_predict_like_numbers(classifier: Fitted) -> None:
    X = classifier.X.head(10)
    as_text = [{**r, "amount": repr(r["amount"])} for r in records(X)]
    numbers = predicted(classifier, records(X), deployment())
    strings = predicted(classifier, as_text, deployment())
    assert [p["probabilities"] for p in strings] == [p["probabilities"] for p in numbers]


def test_missing_columns_are_predicted_as_missing_values(classifier: Fitted) -> None:
    out = predicted(
        classifier,
        [{}, {"colour": "red"}, {"amount": 2.5}, {"comment": "excellent excellent"}],
        deployment(),
    )
    assert len(out) == 4
    for p in out:
        assert p["label"] in ("no", "yes")
        assert sum(p["probabilities"].values()) == pytest.approx(1.0)
    # what is given still counts: a large amount makes "yes" likelier than nothing at all
    assert out[2]["probabilities"]["yes"] > out[0]["probabilities"]["yes"]


def test_below_the_confidence_threshold_a_row_abstains_with_the_fallback_label(
    classifier: Fitted,
) -> None:
    rows = records(classifier.X.head(60))
    plain = predicted(classifier, rows, deployment())
    confidences = sorted(p["confidence"] for p in plain)
    limit = float(np.median(confidences))
    assert confidences[0] < limit < 1  # some rows above it, some below
    careful = predicted(classifier, rows, deployment(limit, fallback="ask a person"))
    abstained = 0
    for before, after in zip(plain, careful, strict=True):
        if before["confidence"] < limit:
            abstained += 1
            assert after["abstained"] is True
            assert after["label"] == "ask a person"
        else:
            assert after["abstained"] is False
            assert after["label"] == before["label"]
        # the probabilities and confidence are still told
        assert after["confidence"] == pytest.approx(before["confidence"])
        assert after["probabilities"] == pytest.approx(before["probabilities"])
    assert 0 < abstained < 60


def test_regression_answers_a_value(regressor: Fitted) -> None:
    X = regressor.X[["amount", "colour"]].head(5)
    out = predicted(regressor, records(X), deployment(threshold=0.9))
    expected = regressor.model.predict(X)
    assert [p["value"] for p in out] == pytest.approx(expected.tolist())
    for p in out:
        assert set(p) == {"prediction_id", "value", "model_version"}
        assert p["model_version"] == 2
    # the fit is good: 3 * amount + 1 (+1 for red) within a little
    truth = 3 * X["amount"] + (X["colour"] == "red") + 1
    assert np.abs(np.array([p["value"] for p in out]) - truth).max() < 0.5


# --- the model cache ---------------------------------------------------------------


class CountingBlobs(BlobStore):
    """A blob store that counts model reads (one per load)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.reads: list[str] = []
        self._count_lock = threading.Lock()

    def get(self, key: str, *, sha256: str | None = None) -> bytes:
        with self._count_lock:
            self.reads.append(key)
        return super().get(key, sha256=sha256)


@pytest.fixture
def counting(blobs: BlobStore) -> CountingBlobs:
    return CountingBlobs(blobs.url)


def test_a_model_is_loaded_once_and_then_served_from_memory(
    counting: CountingBlobs, classifier: Fitted
) -> None:
    cache = ModelCache(counting)
    first = cache.get(classifier.version)
    again = cache.get(classifier.version)
    # another version with the same content (e.g. re-registered) shares the loaded model
    twin = classifier.version.model_copy(update={"number": 9, "id": "twin"})
    assert cache.get(twin) is first is again
    assert counting.reads == [classifier.version.artifact]
    X = classifier.X.head(5)
    assert first.predict(X).tolist() == classifier.model.predict(X).tolist()


def test_requests_arriving_together_load_the_model_once(
    counting: CountingBlobs, classifier: Fitted
) -> None:
    cache = ModelCache(counting)
    start = threading.Barrier(8)
    got: list[AutoML] = []

    def request() -> None:
        start.wait()
        got.append(cache.get(classifier.version))

    threads = [threading.Thread(target=request) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(got) == 8
    assert all(m is got[0] for m in got)
    assert counting.reads == [classifier.version.artifact]


def test_a_tampered_artifact_is_refused(
    tmp_path: Path, blobs: BlobStore, classifier: Fitted, regressor: Fitted
) -> None:
    source = classifier.version
    store = BlobStore(f"file://{tmp_path}")  # a copy of the artifact, to tamper with
    data = bytearray(blobs.get(source.artifact))
    store.put(source.artifact, bytes(data))
    assert ModelCache(store).get(source).predict(classifier.X.head(2)).shape == (2,)

    # bytes changed after registration: the artifact's SHA-256 no longer matches
    data[len(data) // 2] ^= 0xFF
    store.put(source.artifact, bytes(data))
    cache = ModelCache(store)
    with pytest.raises(IntegrityError) as err:
        cache.get(source)
    assert "changed after it was written" in err.value.message

    # another model in its place, registered with its SHA-256: the content hash differs
    store.put(source.artifact, blobs.get(regressor.version.artifact))
    swapped = source.model_copy(update={"artifact_sha256": regressor.version.artifact_sha256})
    with pytest.raises(IntegrityError):
        cache.get(swapped)
    # a refused model is not kept: asking again checks again
    with pytest.raises(IntegrityError):
        cache.get(swapped)


def test_the_least_recently_used_model_is_evicted_past_keep(
    counting: CountingBlobs, classifier: Fitted, regressor: Fitted, blobs: BlobStore
) -> None:
    X, _ = reviews(seed=2)
    third = AutoML(**FAST, max_trials=1, learners=["linear"]).fit(X[["amount"]], X["amount"] * 2)
    versions = {
        "a": classifier.version,
        "b": regressor.version,
        "c": register(third, blobs, "third", number=3),
    }
    cache = ModelCache(counting, keep=2)

    def use(*names: str) -> None:
        for name in names:
            cache.get(versions[name])

    use("a", "b", "a")  # a is now the most recently used
    assert len(counting.reads) == 2
    use("c")  # evicts b, the least recently used
    assert len(counting.reads) == 3
    use("a", "c")
    assert len(counting.reads) == 3  # both still held
    use("b")  # was evicted: loaded again, evicting a
    assert counting.reads[-1] == versions["b"].artifact
    use("a")
    assert len(counting.reads) == 5
    assert counting.reads.count(versions["a"].artifact) == 2
