"""``/projects/{p}/trainings``: checked requests, a real training on a live server with its
worker, and the training's leaderboard, report, trials and model over HTTP and the SDK."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from loopml.automl import AutoML
from loopml.core.errors import Conflict, NotFound
from loopml.data.builtin import load_builtin
from loopml.sdk import Client
from tests.api.support import assert_problem, client, serve
from tests.conftest import LiveServer


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> Iterator[httpx.Client]:
    with client(server, server.admin_key) as http:
        assert http.post("/projects", json={"name": "flowers"}).status_code == 201
        yield http


@pytest.fixture(scope="module")
def sdk(server: LiveServer) -> Iterator[Client]:
    with Client(server.url, server.admin_key) as c:
        yield c


@pytest.fixture(scope="module")
def finished(sdk: Client, admin: httpx.Client) -> dict[str, Any]:
    job = sdk.trainings.start("flowers", "builtin:iris", time_budget=3, seed=1)
    done = sdk.trainings.wait("flowers", job.id, timeout=120)
    assert done.state.value == "succeeded", done.error
    return done.model_dump(mode="json")


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"dataset": "builtin:nope"}, "body.dataset", "unknown dataset 'builtin:nope'"),
        (
            {"dataset": "s3://bucket/x.csv"},
            "body.dataset",
            "add sources as datasets first",
        ),
        ({"dataset": "s3://bucket/x.csv"}, "body.dataset", "Built-in datasets: builtin:"),
        ({"dataset": "churn@0"}, "body.dataset", "neither a dataset of the project"),
        ({"dataset": "builtin:iris", "metric": "bogus"}, "body.metric", "unknown metric"),
        (
            {"dataset": "builtin:iris", "task": "regression", "metric": "roc_auc"},
            "body",
            "does not apply to a regression task",
        ),
        ({"dataset": "builtin:iris", "time_budget": 0}, "body.time_budget", "greater than 0"),
        ({"dataset": "builtin:iris", "budget": 5}, "body.budget", "Extra inputs"),
        (
            {"dataset": "builtin:iris", "cost_matrix": {"fp": 1}},
            "body.cost_matrix",
            "needs both 'fp' and 'fn'",
        ),
        (
            {"dataset": "builtin:iris", "confidence_threshold": 1.5},
            "body.confidence_threshold",
            "less than 1",
        ),
    ],
)
def test_bad_requests_are_422_naming_the_field(
    admin: httpx.Client, body: dict[str, Any], field: str, words: str
) -> None:
    r = admin.post("/projects/flowers/trainings", json=body)
    problem = assert_problem(r, 422)
    assert words in r.text, problem
    assert any(e["field"] == field for e in problem["errors"]), problem


def test_a_training_in_an_unknown_project_is_404(admin: httpx.Client) -> None:
    r = admin.post("/projects/ghost/trainings", json={"dataset": "builtin:iris"})
    assert_problem(r, 404, code="not-found")


def _first_servable(board: list[dict[str, Any]]) -> str:
    """The best model fast enough to serve; under load a forest may predict too slowly
    for the ensemble to take it, and then outranks the ensemble, marked as such."""
    return str(next(r["model"] for r in board if not r["over_prediction_budget"]))


def test_training_summary_names_its_artifacts(finished: dict[str, Any]) -> None:
    result = finished["result"]
    assert finished["kind"] == "automl.train"
    assert finished["progress"] == 1.0
    assert result["task"] == "multiclass"
    assert result["metric"] == "log_loss"
    assert set(result["artifacts"]) == {
        "model", "report", "report_html", "leaderboard", "trials", "reference_profile",
    }  # fmt: skip
    assert _first_servable(result["leaderboard"]) == "ensemble"


def test_leaderboard_has_the_ensemble_first_and_both_baselines(
    sdk: Client, finished: dict[str, Any]
) -> None:
    board = sdk.trainings.leaderboard("flowers", finished["id"])
    models = [row["model"] for row in board]
    assert _first_servable(board) == "ensemble"
    assert {"baseline_prior", "baseline_linear"} <= set(models)
    scores = [row["score"] for row in board if row["status"] == "ok"]
    assert scores == sorted(scores)  # log loss: lower is better, best first
    prior = next(r for r in board if r["model"] == "baseline_prior")
    assert board[0]["score"] < prior["score"]


def test_report_and_trials(sdk: Client, finished: dict[str, Any]) -> None:
    report = sdk.trainings.report("flowers", finished["id"])
    log_loss = report["metrics"]["log_loss"]
    assert log_loss["ci_low"] <= log_loss["value"] <= log_loss["ci_high"]
    matrix = report["confusion_matrix"]
    assert sorted(matrix["labels"]) == ["setosa", "versicolor", "virginica"]
    assert sum(map(sum, matrix["matrix"])) == 150
    features = [f["feature"] for f in report["permutation_importance"]["features"]]
    assert set(features) == {
        "sepal length (cm)",
        "sepal width (cm)",
        "petal length (cm)",
        "petal width (cm)",
    }
    trials = sdk.trainings.trials("flowers", finished["id"])
    assert len(trials) == finished["result"]["trials"]
    assert {t["learner"] for t in trials} >= {"prior", "linear"}
    assert all({"learner", "params", "fold_scores", "status"} <= set(t) for t in trials)


def test_model_downloads_verified_and_predicts(
    sdk: Client, finished: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "model.zip"
    digest = sdk.trainings.download_model("flowers", finished["id"], str(path))
    assert digest == finished["result"]["model"]["content_hash"]
    model = AutoML.load(path, expected_hash=digest)
    frame, _ = load_builtin("builtin:iris")
    accuracy = (model.predict(frame.drop(columns="target")) == frame["target"]).mean()
    assert accuracy > 0.9


def test_trainings_list_holds_only_trainings(sdk: Client, finished: dict[str, Any]) -> None:
    other = sdk.jobs.submit("flowers", "selfcheck")
    listed = [job.id for job in sdk.trainings.list("flowers")]
    assert finished["id"] in listed
    assert other.id not in listed
    with pytest.raises(NotFound) as err:
        sdk.trainings.get("flowers", other.id)
    assert err.value.field == "training_id"


def test_artifacts_of_an_unfinished_training_are_409(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    with (
        serve(tmp_path_factory, embedded_worker=False) as idle,
        Client(idle.url, idle.admin_key) as c,
    ):
        c.projects.create("p")
        job = c.trainings.start("p", "builtin:iris", time_budget=1)
        assert c.trainings.get("p", job.id).state.value == "queued"
        for read in (c.trainings.leaderboard, c.trainings.report, c.trainings.trials):
            with pytest.raises(Conflict) as err:
                read("p", job.id)
            assert "queued" in str(err.value)
            assert err.value.status == 409  # type: ignore[attr-defined]


def test_the_html_report_is_one_page_with_its_plots(sdk: Client, finished: dict[str, Any]) -> None:
    page = sdk.trainings.report_html("flowers", finished["id"])
    assert page.startswith("<!doctype html>")
    # Self-contained: nothing to fetch, nothing to run.
    assert "<script" not in page and "<link" not in page and 'src="http' not in page
    for title in ("confusion matrix", "calibration", "permutation importance", "Leaderboard"):
        assert title in page
    assert page.count("<svg") >= 4
    assert "setosa" in page and "baseline_prior" in page
