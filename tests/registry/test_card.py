"""The model card: one Markdown page whose tables hold whatever people wrote."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from loopml.core.enums import Stage
from loopml.core.schemas import GateResult, ModelVersion, StageChange
from loopml.registry.card import model_card

AT = datetime(2026, 11, 28, 9, 30, tzinfo=timezone.utc)


def version(**overrides: object) -> ModelVersion:
    values: dict[str, object] = {
        "id": "m1",
        "project": "churn",
        "number": 3,
        "stage": Stage.candidate,
        "task": "binary",
        "metric": "roc_auc",
        "score": 0.87654,
        "test_score": 0.8512,
        "beats_baselines": True,
        "dataset": "customers@2",
        "training": "job7",
        "artifact": "models/churn/job7/model.zip",
        "artifact_sha256": "a" * 64,
        "content_hash": "c" * 64,
        "size_bytes": 1_234_567,
        "predict_seconds_per_1000": 0.0421,
        "classes": ["no", "yes"],
        "inputs": [{"name": "tenure", "kind": "numeric"}, {"name": "plan", "kind": "categorical"}],
        "created_at": AT,
    }
    values.update(overrides)
    return ModelVersion.model_validate(values)


def change(reason: str, actor: str = "ann") -> StageChange:
    return StageChange(
        model=3, from_stage=Stage.candidate, to_stage=Stage.staging, actor=actor, reason=reason,
        at=AT,
    )  # fmt: skip


def test_the_card_tells_scores_artifact_inputs_gates_and_history() -> None:
    gates = [
        GateResult(gate="min_score", passed=True, message="roc_auc 0.8512 must be at least 0.8"),
        GateResult(gate="max_size_bytes", passed=False, message="1,234,567 bytes; the limit is 1"),
    ]
    card = model_card(version(gates=gates), [change("looks good")])
    assert card.startswith("# churn model v3\n")
    assert "**Score:** 0.8765 cross-validated, 0.8512 on the frozen test split" in card
    assert "beats them by more than the fold-to-fold noise" in card
    assert "customers@2 (training job7)" in card
    assert "1,234,567 bytes" in card and "c" * 64 in card
    assert "0.0421 s per 1,000 rows" in card
    assert "**Classes:** no, yes" in card
    assert "| tenure | numeric |" in card and "| plan | categorical |" in card
    assert "| min_score | passed | roc_auc 0.8512 must be at least 0.8 |" in card
    assert "| max_size_bytes | **failed** | 1,234,567 bytes; the limit is 1 |" in card
    assert "| 2026-11-28 09:30 | candidate → staging | ann | looks good |" in card


def test_missing_scores_and_no_gates_are_said_plainly() -> None:
    card = model_card(version(score=None, test_score=None, gates=[], beats_baselines=False), [])
    assert "**Score:** - cross-validated, - on the frozen test split" in card
    assert "does not beat them" in card
    assert "Quality gates" not in card


def test_pipes_and_line_breaks_in_free_text_stay_inside_their_cell() -> None:
    odd = version(inputs=[{"name": "a|b", "kind": "numeric"}])
    card = model_card(odd, [change("faster | smaller\nand cheaper", actor="key|1")])
    history = card.split("## History")[1].strip().splitlines()
    assert len(history) == 3  # header, rule, one row: the reason did not split the row
    row = history[2]
    assert len(re.findall(r"(?<!\\)\|", row)) == 5  # four cells: when, stage, by, why
    assert "faster \\| smaller and cheaper" in row
    assert "key\\|1" in row
    assert "| a\\|b | numeric |" in card
