"""Quality gates: each one passes and fails with the numbers that decided it; the gate
settings a project may hold are checked before they are kept."""

from __future__ import annotations

from typing import Any

import pytest

from loopml.core.errors import InvalidInput
from loopml.registry.gates import check_gate_settings, check_gates


def model(**overrides: Any) -> dict[str, Any]:
    """A registered model's details as the registry keeps them (binary, roc_auc)."""
    details: dict[str, Any] = {
        "task": "binary",
        "metric": "roc_auc",
        "score": 0.91,
        "beats_baselines": True,
        "predict_seconds_per_1000": 0.25,
        "size_bytes": 120_000,
    }
    details.update(overrides)
    return details


def verdict(details: dict[str, Any], gates: dict[str, Any]) -> tuple[bool, str]:
    (result,) = check_gates(details, gates)
    assert result.gate == next(iter(gates))
    return result.passed, result.message


def test_no_gates_set_means_nothing_to_pass() -> None:
    assert check_gates(model(), {}) == []
    # auto_deploy names a deployment; it is not a gate
    assert check_gates(model(), {"auto_deploy": "live"}) == []


@pytest.mark.parametrize(
    ("score", "bound", "passed"),
    [(0.91, 0.9, True), (0.9, 0.9, True), (0.89, 0.9, False)],
)
def test_min_score_is_a_minimum_when_higher_is_better(
    score: float, bound: float, passed: bool
) -> None:
    ok, message = verdict(model(score=score), {"min_score": bound})
    assert ok is passed
    assert message == f"roc_auc {score:.4g} must be at least {bound:g}"


@pytest.mark.parametrize(
    ("task", "metric", "score", "bound", "passed"),
    [
        ("multiclass", "log_loss", 0.2, 0.3, True),
        ("multiclass", "log_loss", 0.45, 0.3, False),
        ("regression", "rmse", 1.5, 2.0, True),
        ("regression", "rmse", 2.5, 2.0, False),
        ("regression", "mae", 2.0, 2.0, True),
    ],
)
def test_min_score_is_a_maximum_when_lower_is_better(
    task: str, metric: str, score: float, bound: float, passed: bool
) -> None:
    details = model(task=task, metric=metric, score=score)
    ok, message = verdict(details, {"min_score": bound})
    assert ok is passed
    assert message == f"{metric} {score:.4g} must be at most {bound:g}"


def test_the_test_score_is_judged_when_there_is_one() -> None:
    # cross-validated well above the bar, the frozen test split below it: fails
    details = model(score=0.95, test_score=0.85)
    ok, message = verdict(details, {"min_score": 0.9})
    assert not ok
    assert "0.85 must be at least 0.9" in message
    # and the other way round: passes
    ok, message = verdict(model(score=0.85, test_score=0.95), {"min_score": 0.9})
    assert ok
    assert "0.95" in message


def test_a_model_without_a_score_fails_min_score() -> None:
    ok, message = verdict(model(score=None), {"min_score": 0.5})
    assert not ok
    assert message == "roc_auc none must be at least 0.5"


def test_beat_baselines() -> None:
    ok, message = verdict(model(beats_baselines=True), {"beat_baselines": True})
    assert ok
    assert message.startswith("beats the baselines")
    ok, message = verdict(model(beats_baselines=False), {"beat_baselines": True})
    assert not ok
    assert message.startswith("does not beat the baselines")
    # false means the gate is off
    assert check_gates(model(beats_baselines=False), {"beat_baselines": False}) == []


def test_max_predict_seconds_per_1000() -> None:
    ok, message = verdict(
        model(predict_seconds_per_1000=0.25), {"max_predict_seconds_per_1000": 0.5}
    )
    assert ok
    assert message == "predicts 1,000 rows in 0.25 s; the limit is 0.5 s"
    ok, message = verdict(
        model(predict_seconds_per_1000=1.75), {"max_predict_seconds_per_1000": 0.5}
    )
    assert not ok
    assert message == "predicts 1,000 rows in 1.75 s; the limit is 0.5 s"
    # not measured: cannot be shown to be fast enough
    ok, message = verdict(
        model(predict_seconds_per_1000=None), {"max_predict_seconds_per_1000": 0.5}
    )
    assert not ok
    assert "in none s" in message


def test_max_size_bytes() -> None:
    ok, message = verdict(model(size_bytes=120_000), {"max_size_bytes": 1_000_000})
    assert ok
    assert message == "120,000 bytes; the limit is 1,000,000"
    ok, message = verdict(model(size_bytes=2_500_000), {"max_size_bytes": 1_000_000})
    assert not ok
    assert message == "2,500,000 bytes; the limit is 1,000,000"


def test_every_gate_set_gives_one_result_and_each_is_judged_alone() -> None:
    gates = {
        "min_score": 0.8,
        "beat_baselines": True,
        "max_predict_seconds_per_1000": 0.1,
        "max_size_bytes": 10**6,
        "auto_deploy": "live",
    }
    results = check_gates(model(), gates)
    assert [r.gate for r in results] == [
        "min_score",
        "beat_baselines",
        "max_predict_seconds_per_1000",
        "max_size_bytes",
    ]
    assert {r.gate: r.passed for r in results} == {
        "min_score": True,
        "beat_baselines": True,
        "max_predict_seconds_per_1000": False,  # 0.25 s against 0.1 s
        "max_size_bytes": True,
    }


def test_gate_settings_are_kept_without_unset_ones() -> None:
    given = {
        "min_score": 0.8,
        "beat_baselines": True,
        "max_predict_seconds_per_1000": 2,
        "max_size_bytes": 5_000_000,
        "auto_deploy": "live",
    }
    assert check_gate_settings(given) == given
    assert check_gate_settings({"min_score": 0.8, "max_size_bytes": None}) == {"min_score": 0.8}
    assert check_gate_settings({}) == {}


def test_unknown_gate_names_are_refused_naming_them_and_the_known_ones() -> None:
    with pytest.raises(InvalidInput) as err:
        check_gate_settings({"min_score": 0.5, "min_accuracy": 0.9})
    assert err.value.field == "gates"
    assert "'min_accuracy'" in err.value.message
    for known in ("min_score", "beat_baselines", "max_size_bytes", "auto_deploy"):
        assert known in err.value.message


@pytest.mark.parametrize(
    "gates",
    [
        {"min_score": "0.9"},
        {"min_score": True},
        {"max_size_bytes": [1]},
        {"max_predict_seconds_per_1000": {"s": 1}},
    ],
)
def test_gates_that_are_not_numbers_are_refused(gates: dict[str, Any]) -> None:
    (name,) = gates
    with pytest.raises(InvalidInput) as err:
        check_gate_settings(gates)
    assert err.value.message == f"gate {name} must be a number"
    assert err.value.field == "gates"


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_beat_baselines_must_be_true_or_false(value: Any) -> None:
    if value is None:  # None means unset, like the other gates
        assert check_gate_settings({"beat_baselines": value}) == {}
        return
    with pytest.raises(InvalidInput) as err:
        check_gate_settings({"beat_baselines": value})
    assert "beat_baselines must be true or false" in err.value.message


@pytest.mark.parametrize("name", ["Not A Name", 5, True])
def test_auto_deploy_must_be_a_valid_deployment_name(name: Any) -> None:
    # a number is refused here, not kept to fail every later training at registration
    with pytest.raises(InvalidInput) as err:
        check_gate_settings({"auto_deploy": name})
    assert err.value.field == "gates.auto_deploy"
    assert "lowercase letters, digits and hyphens" in err.value.message
