"""Quality gates: what a model must show before it is deployed without a person.

A project sets any of: ``min_score`` (of the training's metric; for metrics where lower
is better, a maximum), ``beat_baselines`` (by more than the fold-to-fold noise),
``max_predict_seconds_per_1000`` and ``max_size_bytes``. Gates that are not set pass.
``auto_deploy`` names the deployment that every passing training goes to.
"""

from __future__ import annotations

from typing import Any

from loopml.automl.metrics import get_metric
from loopml.core.enums import TaskType
from loopml.core.errors import InvalidInput
from loopml.core.ids import check_name
from loopml.core.schemas import GateResult

GATES = ("min_score", "beat_baselines", "max_predict_seconds_per_1000", "max_size_bytes")
SETTINGS = (*GATES, "auto_deploy")


def check_gate_settings(gates: dict[str, Any]) -> dict[str, Any]:
    unknown = set(gates) - set(SETTINGS)
    if unknown:
        raise InvalidInput(
            f"unknown gates {sorted(unknown)}; there are: {', '.join(SETTINGS)}", field="gates"
        )
    if gates.get("auto_deploy") is not None:
        check_name(gates["auto_deploy"], field="gates.auto_deploy")
    for name in ("min_score", "max_predict_seconds_per_1000", "max_size_bytes"):
        value = gates.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise InvalidInput(f"gate {name} must be a number", field="gates")
    if gates.get("beat_baselines") is not None and not isinstance(gates["beat_baselines"], bool):
        raise InvalidInput("gate beat_baselines must be true or false", field="gates")
    return {k: v for k, v in gates.items() if v is not None}


def check_gates(model: dict[str, Any], gates: dict[str, Any]) -> list[GateResult]:
    """Each gate set, passed or failed with the numbers that decided it.

    The score judged is the frozen-test score when there is one, else the cross-validated.
    """
    results = []
    score = model.get("test_score", model.get("score"))
    if "min_score" in gates:
        metric = get_metric(model["metric"], TaskType(model["task"]))
        bound = float(gates["min_score"])
        word = "at least" if metric.greater_is_better else "at most"
        ok = score is not None and (score >= bound if metric.greater_is_better else score <= bound)
        results.append(
            GateResult(
                gate="min_score",
                passed=ok,
                message=f"{model['metric']} {_num(score)} must be {word} {bound:g}",
            )
        )
    if gates.get("beat_baselines"):
        ok = bool(model.get("beats_baselines"))
        results.append(
            GateResult(
                gate="beat_baselines",
                passed=ok,
                message="beats the baselines by more than the fold-to-fold noise"
                if ok
                else "does not beat the baselines by more than the fold-to-fold noise",
            )
        )
    if "max_predict_seconds_per_1000" in gates:
        took = model.get("predict_seconds_per_1000")
        bound = float(gates["max_predict_seconds_per_1000"])
        results.append(
            GateResult(
                gate="max_predict_seconds_per_1000",
                passed=took is not None and took <= bound,
                message=f"predicts 1,000 rows in {_num(took)} s; the limit is {bound:g} s",
            )
        )
    if "max_size_bytes" in gates:
        size = int(model.get("size_bytes") or 0)
        bound = float(gates["max_size_bytes"])
        results.append(
            GateResult(
                gate="max_size_bytes",
                passed=size <= bound,
                message=f"{size:,} bytes; the limit is {bound:,.0f}",
            )
        )
    return results


def _num(value: Any) -> str:
    return "none" if value is None else f"{value:.4g}"
