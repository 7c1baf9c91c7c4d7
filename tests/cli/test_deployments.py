"""``loopml deployments``: list and show, a challenger set and removed, promotion, the
deployment's OpenAPI document and batch predictions, in local mode on one home trained
once for the module, and against a live server with ``--url``."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from loopml.data.builtin import load_builtin
from loopml.sdk import Client
from tests.cli.test_cli import cli, ok, ok_json, remote
from tests.conftest import LiveServer

FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
CLASSES = ["setosa", "versicolor", "virginica"]
BASE = "/api/v1/projects/shop/deployments"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A home where iris was added as dataset "iris" (30% frozen test), trained twice:
    v1 deployed as "web", v2 a candidate. The directory and the test part's size."""
    where = tmp_path_factory.mktemp("cli-deployments")
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("LOOPML_") and name != "LOOPML_TEST_POSTGRES_URL":
                mp.delenv(name)
        mp.chdir(where)
        frame, _ = load_builtin("builtin:iris")
        frame.to_csv("iris.csv", index=False)
        ok("projects", "create", "shop")
        add = ["data", "add", "iris.csv", "-p", "shop", "-n", "iris", "-t", "target"]
        made = ok_json(*add, "--split", "random", "--test-size", "0.3")
        train = ["train", "-p", "shop", "-d", "iris", "--budget", "2"]
        ok(*train, "--deploy", "web")
        ok(*train)
    yield {"where": where, "test_rows": made["version"]["split"]["test_rows"]}


@pytest.fixture
def home(trained: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(trained["where"])
    return Path(trained["where"])


def test_list_and_show(home: Path) -> None:
    web = {d["name"]: d for d in ok_json("deployments", "list", "-p", "shop")}["web"]
    assert (web["model"], web["challenger"]) == (1, None)
    listed = ok("deployments", "list", "-p", "shop").stdout
    assert "deployments of shop" in listed and "web" in listed and "v1" in listed

    assert ok_json("deployments", "show", "shop/web") == web
    shown = ok("deployments", "show", "shop/web").stdout
    assert "shop/web" in shown
    assert f"POST {BASE}/web/predict" in shown
    assert "none" in shown  # no challenger


def test_schema_prints_the_deployments_openapi_document(home: Path) -> None:
    printed = ok("deployments", "schema", "shop/web").stdout
    doc = json.loads(printed)  # plain JSON, nothing else on stdout
    assert doc["openapi"] == "3.1.0"
    assert set(doc["paths"]) == {f"{BASE}/web/predict", f"{BASE}/web/invocations"}
    record = doc["components"]["schemas"]["Record"]["properties"]
    assert set(record) == set(FEATURES)
    label = doc["components"]["schemas"]["Prediction"]["properties"]["label"]
    assert label["enum"] == CLASSES


def test_batch_of_a_dataset_part_written_as_csv(home: Path, trained: dict[str, Any]) -> None:
    done = cli("deployments", "batch", "shop/web", "--dataset", "iris", "--part", "test",
               "--out", "test.csv")  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "running the queue of this home" in done.stderr  # no server: it works the queue
    rows = trained["test_rows"]
    said = " ".join(done.stdout.split())  # rich wraps at the terminal's width
    assert f"{rows:,} rows predicted by v1 (0 abstained)" in said
    assert "written to test.csv" in said
    written = pd.read_csv("test.csv")
    assert len(written) == rows
    assert written.columns[0] == "row" and "label" in written.columns
    assert {f"input_{f}" for f in FEATURES} <= set(written.columns)
    assert set(written["label"]) <= set(CLASSES)
    assert (written["label"] == written["input_target"]).mean() > 0.8

    answer = ok_json("deployments", "batch", "shop/web", "--dataset", "iris@1",
                     "--no-inputs", "--out", "all.parquet")  # fmt: skip
    assert (answer["rows"], answer["written"]) == (150, "all.parquet")
    assert answer["job"] and answer["output"]["key"].endswith(".parquet")
    every = pd.read_parquet("all.parquet")
    assert every["row"].tolist() == list(range(150))
    assert not [c for c in every.columns if c.startswith("input_")]
    by_row = written.set_index("row")["label"]
    assert (every.set_index("row").loc[by_row.index, "label"] == by_row).all()


def test_batch_of_a_file_that_cannot_be_predicted_exits_1(home: Path) -> None:
    pd.DataFrame({"petal width (cm)": [0.2, "wide"]}).to_csv("bad.csv", index=False)
    failed = cli("deployments", "batch", "shop/web", "--source", str(home / "bad.csv"))
    assert failed.exit_code == 1
    assert "batch failed" in failed.stdout
    assert "row 1: 'petal width (cm)' must be a number, got 'wide'" in failed.stdout
    assert "Traceback" not in failed.output
    neither = cli("deployments", "batch", "shop/web")
    assert neither.exit_code == 2
    assert "name either a dataset" in neither.stderr


def test_challenger_set_removed_set_again_and_promoted(home: Path) -> None:
    ok("deploy", "-p", "shop", "-m", "1", "-n", "trial")  # "web" stays as it is
    shadow = ok_json("deployments", "challenger", "shop/trial", "--model", "2", "--json")
    assert shadow["challenger"] == {**shadow["challenger"], "model": 2, "mode": "shadow"}
    assert shadow["challenger"]["percent"] == 100
    shown = ok("deployments", "show", "shop/trial").stdout
    assert "v2 (shadow, 100%)" in shown
    assert "v2 shadow" in ok("deployments", "list", "-p", "shop").stdout
    assert ok_json("models", "show", "2", "-p", "shop")["stage"] == "staging"

    removed = ok("deployments", "challenger", "shop/trial", "--remove").stdout
    assert "shop/trial" in removed and "v2 (" not in removed
    assert ok_json("deployments", "show", "shop/trial")["challenger"] is None

    canary = ok("deployments", "challenger", "shop/trial", "-m", "2", "--mode", "canary",
                "--percent", "20", "--reason", "try it")  # fmt: skip
    assert "v2 (canary, 20%)" in canary.stdout

    promoted = ok_json("deployments", "promote", "shop/trial", "--reason", "it won", "--json")
    assert (promoted["model"], promoted["challenger"]) == (2, None)
    assert ok_json("models", "show", "2", "-p", "shop")["stage"] == "production"
    card = ok("models", "card", "2", "-p", "shop").stdout
    assert "it won" in card
    # the schema follows the promoted model
    doc = json.loads(ok("deployments", "schema", "shop/trial").stdout)
    assert doc["info"]["version"] == "v2"

    # promoting with no challenger, or the served model as one, is refused
    refused = cli("deployments", "promote", "shop/trial")
    assert refused.exit_code in (1, 2)
    assert "challenger" in refused.stderr
    refused = cli("deployments", "challenger", "shop/trial", "-m", "2")
    assert refused.exit_code == 1
    assert "already serves v2" in refused.stderr


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["show", "shop"], 2, "'shop' is not PROJECT/DEPLOYMENT"),
        (["schema", "shop/"], 2, "'shop/' is not PROJECT/DEPLOYMENT"),
        (["promote", "shop/web/x"], 2, "'shop/web/x' is not PROJECT/DEPLOYMENT"),
        (["batch", "/web", "--dataset", "iris"], 2, "'/web' is not PROJECT/DEPLOYMENT"),
        (["show", "shop/nowhere"], 1, "no deployment 'nowhere'"),
        (["schema", "shop/nowhere"], 1, "no deployment 'nowhere'"),
        (["batch", "shop/nowhere", "--dataset", "iris"], 1, "no deployment 'nowhere'"),
        (["challenger", "shop/web"], 2, "give --model VERSION (or --remove)"),
        (["challenger", "shop/web", "-m", "9"], 1, "no model version 9"),
        (["show", "elsewhere/web"], 1, "elsewhere"),
    ],
)
def test_errors_name_what_is_wrong(home: Path, args: list[str], code: int, words: str) -> None:
    refused = cli("deployments", *args)
    assert refused.exit_code == code, refused.output
    assert words in refused.stderr
    assert "Traceback" not in refused.output


# --- against a server --------------------------------------------------------------


@pytest.fixture
def remote_deployment(live_server: LiveServer) -> LiveServer:
    with Client(live_server.url, live_server.admin_key) as sdk:
        sdk.projects.create("shop")
        job = sdk.trainings.start("shop", "builtin:iris", time_budget=2, max_trials=2, seed=0,
                                  deploy="web")  # fmt: skip
        done = sdk.trainings.wait("shop", job.id, timeout=120)
        assert done.state.value == "succeeded", done.error
    return live_server


def test_remote_list_schema_and_batch_with_a_progress_bar(
    remote_deployment: LiveServer, tmp_path: Path
) -> None:
    live = remote_deployment
    (web,) = ok_json(*remote(live, "deployments", "list", "-p", "shop"))
    assert web["name"] == "web"
    doc = json.loads(ok(*remote(live, "deployments", "schema", "shop/web")).stdout)
    assert doc["servers"] == [{"url": live.url}]
    assert set(doc["components"]["schemas"]["Record"]["properties"]) == set(FEATURES)

    out = tmp_path / "answers.csv"
    done = ok(*remote(live, "deployments", "batch", "shop/web", "--source", "builtin:iris",
                      "-o", str(out)))  # fmt: skip
    assert "serving.batch_predict" in done.stderr and "100%" in done.stderr  # the bar
    assert "running the queue" not in done.stderr  # the server's worker ran it
    assert "150 rows predicted by v1" in " ".join(done.stdout.split())
    assert len(pd.read_csv(out)) == 150

    with Client(live.url, live.admin_key) as sdk:
        viewer = sdk.keys.create("look", roles={"shop": "viewer"})
    refused = cli(*remote(live, "deployments", "batch", "shop/web", "--source", "builtin:iris",
                          key=viewer.secret))  # fmt: skip
    assert refused.exit_code == 1
    assert "maintainer" in refused.stderr or "role" in refused.stderr
