"""A failed job keeps the caller's error whole, so that it can be raised again as it was;
errors that are not the caller's are kept as text only."""

from __future__ import annotations

from datetime import UTC, datetime

from loopml.core.enums import JobState
from loopml.core.errors import InvalidInput, LoopmlError, NotFound, StorageError
from loopml.core.schemas import Job
from loopml.jobs.failures import callers_error, problem, recorded


def failed(error: BaseException | None = None, text: str | None = None) -> Job:
    return Job(
        id="j1",
        kind="data.ingest",
        state=JobState.failed,
        error=text if error is None else recorded(error),
        problem=None if error is None else problem(error),
        created_at=datetime.now(UTC),
    )


def test_a_callers_error_is_raised_again_with_its_field_and_details() -> None:
    error = InvalidInput("a.csv: line 4 has 3 fields", field="source", line=4, column=None)
    again = callers_error(failed(error))
    assert isinstance(again, InvalidInput)
    assert again.message == "a.csv: line 4 has 3 fields (job j1)"
    assert again.field == "source"
    assert again.extra == {"line": 4, "column": None}


def test_details_that_json_cannot_keep_are_left_out() -> None:
    error = NotFound("no such file", field="source", path=object(), size=3)
    assert problem(error) == {
        "type": "NotFound", "message": "no such file", "field": "source", "details": {"size": 3},
    }  # fmt: skip


def test_errors_that_are_not_the_callers_stay_a_failed_job() -> None:
    assert problem(StorageError("the disk is full")) is None
    assert problem(ValueError("boom")) is None
    assert callers_error(failed(StorageError("the disk is full"))) is None

    class Conflict(LoopmlError):  # another library's error of a caller's name
        pass

    assert problem(Conflict("duplicate key")) is None


def test_only_the_kept_record_is_trusted_not_an_errors_text() -> None:
    # Another library's Conflict, or a job recorded before problems were kept: text only.
    assert callers_error(failed(text="Conflict: duplicate key value")) is None
    assert callers_error(failed(text="NotFound: gs://bucket/secret/path 404")) is None


def test_details_json_cannot_keep_strictly_are_left_out() -> None:
    error = InvalidInput("too far", field="x", limit=float("inf"), nan=float("nan"), step=0.5)
    assert problem(error)["details"] == {"step": 0.5}  # type: ignore[index]
