"""Per-state overhead of the workflow engine, against calling the same functions in a loop.

Run: ``.venv/bin/pytest benchmarks/workflow --benchmark-only -p no:cacheprovider``.
Divide a chain's mean by its 101 states (100 and the final Succeed), and a Map's by its
1,000 iterations, to get the figures in docs/benchmarks.md.
"""

from __future__ import annotations

from typing import Any

import pytest

from loopml.store import projects
from loopml.store.db import Database
from loopml.workflow import Runner, TaskRegistry, compile_definition
from loopml.workflow.service import WorkflowService

STATES = 100
ITEMS = 1000


def add_one(data: dict[str, Any]) -> dict[str, Any]:
    return {"n": data["n"] + 1}


def chain(kind: str) -> dict[str, Any]:
    body: dict[str, Any] = (
        {"Type": "Task", "Resource": "loopml:task:add_one"} if kind == "task" else {"Type": "Pass"}
    )
    states = {f"S{i}": {**body, "Next": f"S{i + 1}"} for i in range(STATES)}
    states[f"S{STATES}"] = {"Type": "Succeed"}
    return {"StartAt": "S0", "States": states}


def mapping(concurrency: int) -> dict[str, Any]:
    inner = {"StartAt": "Add", "States": {
        "Add": {"Type": "Task", "Resource": "loopml:task:add_one", "End": True}}}  # fmt: skip
    return {"StartAt": "M", "States": {"M": {
        "Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": concurrency,
        "ItemProcessor": inner, "End": True}}}  # fmt: skip


@pytest.fixture(scope="module")
def tasks() -> TaskRegistry:
    registry = TaskRegistry()
    registry.add("add_one", add_one)
    return registry


def test_loop_of_100_calls(benchmark: Any) -> None:
    """The floor: the same function called 100 times in a Python loop."""

    def loop() -> dict[str, Any]:
        data = {"n": 0}
        for _ in range(STATES):
            data = add_one(data)
        return data

    assert benchmark(loop) == {"n": STATES}


@pytest.mark.parametrize("kind", ["pass", "task"])
def test_chain_of_100_states(benchmark: Any, tasks: TaskRegistry, kind: str) -> None:
    machine = compile_definition(chain(kind))
    runner = Runner(tasks)
    result = benchmark(runner.run, machine, {"n": 0})
    assert result.status == "SUCCEEDED"
    assert result.output == {"n": STATES if kind == "task" else 0}


def test_loop_of_1000_calls(benchmark: Any) -> None:
    items = [{"n": i} for i in range(ITEMS)]
    assert len(benchmark(lambda: [add_one(item) for item in items])) == ITEMS


@pytest.mark.parametrize("concurrency", [1, 0], ids=["one at a time", "40 threads"])
def test_map_of_1000_items(benchmark: Any, tasks: TaskRegistry, concurrency: int) -> None:
    machine = compile_definition(mapping(concurrency))
    runner = Runner(tasks)
    items = [{"n": i} for i in range(ITEMS)]
    result = benchmark.pedantic(runner.run, args=(machine, {"items": items}), rounds=5)
    assert result.status == "SUCCEEDED" and len(result.output) == ITEMS


@pytest.fixture(params=["sqlite", "postgres"])
def service(request: pytest.FixtureRequest, tasks: TaskRegistry) -> Any:
    url = request.getfixturevalue("postgres_url" if request.param == "postgres" else "sqlite_url")
    db = Database(url)
    db.upgrade()
    with db.session() as s:
        projects.create(s, "bench")
    workflows = WorkflowService(db, tasks=tasks)
    workflows.open()
    yield workflows
    workflows.close()
    db.dispose()


@pytest.mark.parametrize("type_", ["STANDARD", "EXPRESS"])
@pytest.mark.parametrize("kind", ["pass", "task"])
def test_recorded_chain_of_100_states(
    benchmark: Any, service: WorkflowService, kind: str, type_: str
) -> None:
    """The same chains run by the server's service: every event stored; a STANDARD
    workflow writes a checkpoint after each Task (after Pass states it waits for the next
    write), an EXPRESS one writes them with the events."""
    name = f"chain-{kind}-{type_.lower()}"
    service.save("bench", name, chain(kind), type_)

    def execute() -> str:
        execution = service.start("bench", name, {"n": 0})
        service.wait(execution.id)
        return execution.id

    benchmark.pedantic(execute, rounds=5)


def test_recorded_map_of_1000_items(benchmark: Any, service: WorkflowService) -> None:
    """The Map run by the server's service: its 4,000-odd events written as they come."""
    service.save("bench", "map", mapping(1))
    items = [{"n": i} for i in range(ITEMS)]

    def execute() -> str:
        execution = service.start("bench", "map", {"items": items})
        service.wait(execution.id)
        return execution.id

    benchmark.pedantic(execute, rounds=3)
