"""``loopml train`` runs an AutoML job on a live server and stores a loadable model."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from loopml.automl import AutoML
from loopml.data.builtin import load_builtin
from loopml.sdk import Client
from loopml.store.blobs import BlobStore
from tests.cli.test_cli import cli, ok, remote
from tests.conftest import LiveServer


@pytest.fixture
def trained(live_server: LiveServer) -> tuple[LiveServer, dict]:
    ok(*remote(live_server, "projects", "create", "flowers"))
    args = ["train", "-p", "flowers", "-d", "builtin:iris", "--budget", "4", "--json"]
    job = json.loads(ok(*remote(live_server, *args)).stdout)
    return live_server, job


def test_train_stores_a_model_that_loads_and_predicts(trained: tuple[LiveServer, dict]) -> None:
    server, job = trained
    assert job["state"] == "succeeded", job
    result = job["result"]
    assert result["task"] == "multiclass"
    assert result["metric"] == "log_loss"
    assert result["target"] == "target"
    # The best model fast enough to serve; a slower one may outrank it, marked so.
    servable = [r["model"] for r in result["leaderboard"] if not r["over_prediction_budget"]]
    assert servable[0] == "ensemble"
    assert result["trials"] >= 3  # two baselines and at least one searched model
    blobs = BlobStore(server.settings.resolved_storage_url)
    data = blobs.get(result["artifacts"]["model"], sha256=result["model"]["sha256"])
    path = server.settings.home / "downloaded.zip"
    path.write_bytes(data)
    model = AutoML.load(path, expected_hash=result["model"]["content_hash"])
    frame, _ = load_builtin("builtin:iris")
    accuracy = (model.predict(frame.drop(columns="target")) == frame["target"]).mean()
    assert accuracy > 0.9
    report = json.loads(blobs.get(result["artifacts"]["report"]))
    assert report["metrics"]["log_loss"]["value"] == pytest.approx(result["score"])
    trials = blobs.get(result["artifacts"]["trials"]).splitlines()
    assert len(trials) == result["trials"]


def test_train_shows_progress_then_the_leaderboard(live_server: LiveServer) -> None:
    ok(*remote(live_server, "projects", "create", "tumours"))
    args = ["train", "-p", "tumours", "-d", "builtin:breast_cancer", "--budget", "3"]
    out = ok(*remote(live_server, *args))
    assert "automl.train" in out.stderr  # the progress bar
    assert "leaderboard (roc_auc, cross-validated)" in out.stdout
    assert "baseline_linear" in out.stdout or "beat" in out.stdout
    assert "models/tumours/" in out.stdout


def test_train_on_an_unknown_dataset_is_refused_naming_the_known_ones(
    live_server: LiveServer,
) -> None:
    ok(*remote(live_server, "projects", "create", "p"))
    refused = cli(*remote(live_server, "train", "-p", "p", "-d", "builtin:nope"))
    assert refused.exit_code == 2
    assert "unknown dataset 'builtin:nope'" in refused.stderr
    assert "builtin:breast_cancer" in refused.stderr


def test_train_with_a_missing_target_column_fails_naming_it(live_server: LiveServer) -> None:
    ok(*remote(live_server, "projects", "create", "p"))
    args = ["train", "-p", "p", "-d", "builtin:iris", "-t", "colour", "--json"]
    failed = cli(*remote(live_server, *args))
    assert failed.exit_code == 1
    assert "no column 'colour'" in json.loads(failed.stdout)["error"]


def test_train_refuses_a_cost_matrix_that_is_not_json(live_server: LiveServer) -> None:
    args = ["train", "-p", "p", "-d", "builtin:iris", "--cost-matrix", "fp=1"]
    refused = cli(*remote(live_server, *args))
    assert refused.exit_code == 2
    assert "--cost-matrix is not JSON" in refused.stderr


def test_train_without_a_server_works_the_local_queue(tmp_path: Path) -> None:
    ok("projects", "create", "local")
    args = ["train", "-p", "local", "-d", "builtin:wine", "--budget", "2", "--html", "r.html"]
    out = ok(*args, "--json")
    job = json.loads(out.stdout)
    assert job["state"] == "succeeded", job
    assert "running the queue of this home" in out.stderr
    assert "confusion matrix" in Path("r.html").read_text()


def test_train_no_wait_returns_at_once_and_the_job_reports_its_search(
    live_server: LiveServer,
) -> None:
    ok(*remote(live_server, "projects", "create", "quick"))
    args = ["train", "-p", "quick", "-d", "builtin:breast_cancer", "--budget", "4"]
    started = json.loads(
        ok(*remote(live_server, *args, "--metric", "accuracy", "--no-wait", "--json")).stdout
    )
    assert started["state"] in ("queued", "running")
    client = Client(live_server.url, api_key=live_server.admin_key)
    seen: set[str] = set()
    while (job := client.jobs.get("quick", started["id"])).state.value in ("queued", "running"):
        seen.add(job.message or "")
        time.sleep(0.05)
    # While it ran: trials done, the best score so far and the time left.
    progress = re.compile(r"^\d+ trials, best (none yet|\d\.\d{4} \(\w+\)), \d+ s left$")
    assert any(progress.match(m) for m in seen), seen
    done = json.loads(
        ok(*remote(live_server, "jobs", "wait", "quick", started["id"], "--json")).stdout
    )
    assert done["state"] == "succeeded", done
    assert done["result"]["metric"] == "accuracy"
