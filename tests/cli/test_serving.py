"""``loopml train --deploy``, ``loopml models``, ``loopml deploy`` and ``loopml predict``
in local mode: one home, trained once for the module, read and changed by each test."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_cli import cli, ok, ok_json

FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.8, 2.2], [5.9, 3.0, 4.2, 1.5]]
LABELS = ["setosa", "virginica", "versicolor"]


def rows_csv(rows: list[list[object]] = ROWS, header: list[str] = FEATURES) -> str:
    return "\n".join([",".join(header), *(",".join(map(str, r)) for r in rows)]) + "\n"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A home in its own directory where ``loopml train --deploy web`` ran (local mode);
    the directory and what the training printed."""
    where = tmp_path_factory.mktemp("cli-serving")
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("LOOPML_") and name != "LOOPML_TEST_POSTGRES_URL":
                mp.delenv(name)
        mp.chdir(where)
        ok("projects", "create", "shop")
        args = ["train", "-p", "shop", "-d", "builtin:iris", "--budget", "2", "--deploy", "web"]
        printed = ok(*args).stdout
    yield where, printed


@pytest.fixture
def home(trained: tuple[Path, str], monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test's commands on the trained home."""
    monkeypatch.chdir(trained[0])
    (trained[0] / "rows.csv").write_text(rows_csv())
    return trained[0]


def test_train_with_deploy_says_the_model_version_and_where_it_went(
    trained: tuple[Path, str],
) -> None:
    printed = trained[1]
    assert "model version" in printed and "v1" in printed
    assert "deployed to" in printed and "web" in printed
    assert "none set" in printed  # the project has no gates


def test_models_list_show_and_card(home: Path) -> None:
    (model,) = ok_json("models", "list", "-p", "shop")
    assert (model["number"], model["stage"], model["metric"]) == (1, "production", "log_loss")
    listed = ok("models", "list", "-p", "shop").stdout
    assert "models of shop" in listed
    assert "v1" in listed and "production" in listed and "builtin:iris" in listed
    assert f"{model['score']:.4f}" in listed

    shown = ok("models", "show", "1", "-p", "shop").stdout
    # (rich may cut the hash to the terminal's width)
    assert "shop model v1" in shown and model["content_hash"][:16] in shown

    card = ok("models", "card", "1", "-p", "shop").stdout
    assert card.startswith("# shop model v1\n")
    assert f"{model['score']:.4f} cross-validated" in card
    assert "passed the gates; deployed to web" in card


def test_predict_a_csv_file(home: Path) -> None:
    out = ok("predict", "shop/web", "rows.csv").stdout
    assert "shop/web (model v1)" in out
    for label in LABELS:
        assert label in out


def test_predict_json_output_and_json_files(home: Path) -> None:
    answer = json.loads(ok("predict", "shop/web", "rows.csv", "--json").stdout)
    assert answer["model_version"] == 1
    assert [p["label"] for p in answer["predictions"]] == LABELS
    for p in answer["predictions"]:
        assert p["confidence"] == pytest.approx(p["probabilities"][p["label"]])

    records = [dict(zip(FEATURES, r, strict=True)) for r in ROWS]
    Path("rows.json").write_text(json.dumps(records))
    from_json = json.loads(ok("predict", "shop/web", "rows.json", "--json").stdout)
    assert [p["label"] for p in from_json["predictions"]] == LABELS
    for got, want in zip(from_json["predictions"], answer["predictions"], strict=True):
        assert got["probabilities"] == pytest.approx(want["probabilities"])


@pytest.mark.parametrize("shape", ["records", "instances"])
def test_predict_json_files_in_the_shapes_the_api_takes(home: Path, shape: str) -> None:
    records = [dict(zip(FEATURES, r, strict=True)) for r in ROWS]
    Path("wrapped.json").write_text(json.dumps({shape: records}))
    answer = json.loads(ok("predict", "shop/web", "wrapped.json", "--json").stdout)
    assert [p["label"] for p in answer["predictions"]] == LABELS


def test_predict_a_bad_value_exits_2_naming_record_and_column(home: Path) -> None:
    bad = [ROWS[0], [6.7, "three", 5.8, 2.2]]
    Path("bad.csv").write_text(rows_csv(bad))
    refused = cli("predict", "shop/web", "bad.csv")
    assert refused.exit_code == 2
    assert "line 3: 'sepal width (cm)' must be a number, got 'three'" in refused.stderr
    assert "Traceback" not in refused.output


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["predict", "shop", "rows.csv"], "'shop' is not PROJECT/DEPLOYMENT"),
        (["predict", "shop/nowhere", "rows.csv"], "no deployment 'nowhere'"),
    ],
)
def test_predict_names_what_is_wrong(home: Path, args: list[str], words: str) -> None:
    refused = cli(*args)
    assert refused.exit_code in (1, 2)
    assert words in refused.stderr


def test_predict_a_json_file_that_is_not_records_exits_2(home: Path) -> None:
    Path("broken.json").write_text("[{")
    refused = cli("predict", "shop/web", "broken.json")
    assert refused.exit_code == 2
    assert "broken.json is not JSON" in refused.stderr
    Path("numbers.json").write_text("[1, 2]")
    refused = cli("predict", "shop/web", "numbers.json")
    assert refused.exit_code == 2
    assert "record 0 is not an object" in refused.stderr
    Path("object.json").write_text('{"rows": []}')
    refused = cli("predict", "shop/web", "object.json")
    assert refused.exit_code == 2
    assert 'object.json: give a list of records, {"records": [...]}' in refused.stderr
    assert "Traceback" not in refused.output


def test_deploy_a_model_under_another_name_with_a_threshold(home: Path) -> None:
    out = ok("deploy", "-p", "shop", "-m", "1", "-n", "cautious", "--confidence-threshold", "0.999")
    assert "shop/cautious serves model v1" in out.stdout
    assert "/api/v1/projects/shop/deployments/cautious/predict" in out.stdout
    made = ok_json("deploy", "-p", "shop", "-m", "1", "-n", "cautious", "--fallback-label", "ask")
    # the threshold set before is kept
    assert (made["model"], made["confidence_threshold"], made["fallback_label"]) == (
        1,
        0.999,
        "ask",
    )
    answer = json.loads(ok("predict", "shop/cautious", "rows.csv", "--json").stdout)
    for p in answer["predictions"]:
        assert p["abstained"] is (p["confidence"] < 0.999)
        assert (p["label"] == "ask") is p["abstained"]
    refused = cli("deploy", "-p", "shop", "-m", "7", "-n", "cautious")
    assert refused.exit_code == 1
    assert "no model version 7" in refused.stderr


def test_models_stage_keeps_a_served_model_in_production(home: Path) -> None:
    refused = cli("models", "stage", "1", "staging", "-p", "shop", "--reason", "re-check")
    assert refused.exit_code == 1
    assert re.search(
        r"v1 is served by (cautious, )?web; deploy another version there first", refused.stderr
    )
    assert ok_json("models", "show", "1", "-p", "shop")["stage"] == "production"
    card = ok("models", "card", "1", "-p", "shop").stdout
    assert "| candidate → production |" in card and "deployed to web" in card
    refused = cli("models", "stage", "1", "retired", "-p", "shop")
    assert refused.exit_code == 2
    assert "'candidate', 'staging', 'production' or 'archived'" in refused.stderr
