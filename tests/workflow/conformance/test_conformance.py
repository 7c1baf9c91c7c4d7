"""States Language conformance: each case in ``cases/*.json`` runs in loopml and in moto's
Step Functions interpreter (in-process, state machine execution enabled).

A case's ``spec`` is the result the States Language specification gives; loopml must
produce it. moto must produce it too, unless the case records a ``deviation``: then moto
must produce the recorded ``moto`` result instead, so that a fixed moto shows up as a
failure here. Where neither records a deviation, loopml and moto agree through ``spec``.
README.md lists the deviations.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loopml.core.errors import StatesError
from loopml.workflow import ExecutionResult, Runner, TaskRegistry, compile_definition

CASES_DIR = Path(__file__).parent / "cases"
REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/conformance"
QUEUE = "conformance"  # the queue the waitForTaskToken cases send to (and nobody reads)
# What moto's sts:GetCallerIdentity answers for its default account.
IDENTITY = {
    "UserId": "AKIAIOSFODNN7EXAMPLE",
    "Account": "123456789012",
    "Arn": "arn:aws:sts::123456789012:user/moto",
}
_SHAPE = re.compile(r"<(uuid|integer (-?\d+)\.\.(-?\d+))>")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def load_cases() -> list[dict[str, Any]]:
    """Every case of every file, in file order; names are unique across files."""
    cases: list[dict[str, Any]] = []
    for path in sorted(CASES_DIR.glob("*.json")):
        for case in json.loads(path.read_text(encoding="utf-8")):
            case["group"] = path.stem
            cases.append(case)
    names = [case["name"] for case in cases]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    assert not duplicates, f"case names used twice: {duplicates}"
    return cases


CASES = load_cases()


def _params(loopml: bool) -> list[Any]:
    params = []
    for case in CASES:
        marks = []
        if loopml and "xfail" in case:
            # A known loopml bug in a module this suite does not own; strict, so a fix shows.
            marks.append(pytest.mark.xfail(reason=case["xfail"], strict=True))
        params.append(pytest.param(case, id=case["name"], marks=marks))
    return params


# --- loopml -------------------------------------------------------------------------


def _tasks() -> TaskRegistry:
    """The loopml tasks a case's ``translate`` names, each doing what moto's resource does."""
    tasks = TaskRegistry()

    @tasks.task("missing_function")
    def missing_function(data: Any) -> Any:
        """moto's ``lambda:invoke`` of a function that does not exist fails so, every time."""
        raise StatesError(
            "Lambda.ResourceNotFoundException", "Function not found: missing-function"
        )

    @tasks.task("caller_identity")
    def caller_identity(data: Any) -> Any:
        """moto's ``aws-sdk:sts:getCallerIdentity``: a constant for its default account."""
        return dict(IDENTITY)

    @tasks.task("never_answers")
    def never_answers(data: Any) -> Any:
        """A ``.waitForTaskToken`` call nobody answers: it outlives ``TimeoutSeconds: 1``."""
        threading.Event().wait(5)

    return tasks


def translate(definition: dict[str, Any], patches: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``definition`` with each state named in ``patches`` (at any depth) patched:
    a field set to ``null`` is removed, any other replaces the state's own."""
    definition = copy.deepcopy(definition)

    def walk(machine: dict[str, Any]) -> None:
        for name, state in machine["States"].items():
            for key, value in patches.get(name, {}).items():
                if value is None:
                    state.pop(key, None)
                else:
                    state[key] = value
            inner = [*state.get("Branches", []), state.get("Iterator"), state.get("ItemProcessor")]
            for nested in filter(None, inner):
                walk(nested)

    walk(definition)
    return definition


def run_loopml(case: dict[str, Any]) -> dict[str, Any]:
    tasks = _tasks()
    definition = translate(case["definition"], case.get("translate", {}))
    machine = compile_definition(definition, known_task=tasks.__contains__)
    result: ExecutionResult = Runner(tasks).run(machine, case["input"])
    return outcome(result.status, result.output, result.error, result.cause)


# --- moto ---------------------------------------------------------------------------


class MotoStepFunctions:
    """State machines in moto's Step Functions backend, run by its interpreter thread."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def run(self, case: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        machine = self.client.create_state_machine(
            name=case["name"], definition=json.dumps(case["definition"]), roleArn=ROLE
        )["stateMachineArn"]
        execution = self.client.start_execution(
            stateMachineArn=machine, input=json.dumps(case["input"])
        )["executionArn"]
        deadline = time.monotonic() + timeout
        while True:
            found = self.client.describe_execution(executionArn=execution)
            if found["status"] != "RUNNING":
                break
            assert time.monotonic() < deadline, f"moto still runs {case['name']} after {timeout}s"
            time.sleep(0.01)
        return outcome(found["status"], _moto_output(found), found.get("error"), found.get("cause"))


def _moto_output(described: dict[str, Any]) -> Any:
    # moto's DescribeExecution hands a string output back without JSON-encoding it, and
    # leaves out a null output (README.md, "The harness").
    if "output" not in described:
        return None
    try:
        return json.loads(described["output"])
    except ValueError:
        return described["output"]


@pytest.fixture(scope="module")
def moto_sfn() -> Iterator[MotoStepFunctions]:
    """One moto context for the module: state machines are named after their cases."""
    try:
        import boto3
        from moto import mock_aws
        from moto.stepfunctions.parser.asl.parse.asl_parser import (  # noqa: F401
            AmazonStateLanguageParser,
        )
    except ImportError as exc:
        pytest.skip(
            f"moto's Step Functions interpreter cannot be imported ({exc}); "
            "pip install 'loopml[dev]' (moto[stepfunctions] brings antlr4 and jsonpath-ng)"
        )
    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            env.setenv(name, "testing")
        env.setenv("AWS_DEFAULT_REGION", REGION)
        with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
            boto3.client("sqs", region_name=REGION).create_queue(QueueName=QUEUE)
            yield MotoStepFunctions(boto3.client("stepfunctions", region_name=REGION))


# --- comparing ----------------------------------------------------------------------


def outcome(status: str, output: Any, error: str | None, cause: str | None) -> dict[str, Any]:
    """What a case records of an execution: the output when it succeeded, else the error."""
    if status == "SUCCEEDED":
        return {"status": status, "output": output}
    return {"status": status, "error": error, "cause": cause}


def like(actual: Any, expected: Any) -> bool:
    """JSON equality (``true`` is not ``1``), where ``"<uuid>"`` and ``"<integer a..b>"``
    in ``expected`` stand for any value of that shape."""
    if isinstance(expected, str) and (shape := _SHAPE.fullmatch(expected)):
        if shape.group(1) == "uuid":
            return isinstance(actual, str) and _UUID.fullmatch(actual) is not None
        low, high = int(shape.group(2)), int(shape.group(3))
        return type(actual) is int and low <= actual <= high
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and actual.keys() == expected.keys()
            and all(like(actual[key], expected[key]) for key in expected)
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(like(a, e) for a, e in zip(actual, expected, strict=True))
        )
    if isinstance(expected, bool) or isinstance(actual, bool):
        return actual is expected
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return actual == expected  # one JSON number: 2 and 2.0 alike
    return type(actual) is type(expected) and actual == expected


def check(engine: str, actual: dict[str, Any], expected: dict[str, Any]) -> None:
    """``actual`` matches ``expected`` in status and in each of output, error and cause
    that ``expected`` names (a cause is recorded only where the definition sets it)."""
    keys = ["status", *(key for key in ("output", "error", "cause") if key in expected)]
    assert all(like(actual.get(key), expected[key]) for key in keys), (
        f"{engine} gave {json.dumps(actual)}, the case expects {json.dumps(expected)}"
    )


# --- the tests ----------------------------------------------------------------------


@pytest.mark.parametrize("case", _params(loopml=True))
def test_loopml_gives_the_spec_result(case: dict[str, Any]) -> None:
    check("loopml", run_loopml(case), case["spec"])


@pytest.mark.parametrize("case", _params(loopml=False))
def test_moto_gives_the_spec_or_its_recorded_deviation(
    case: dict[str, Any], moto_sfn: MotoStepFunctions
) -> None:
    check("moto", moto_sfn.run(case), case.get("moto", case["spec"]))


def test_every_case_is_well_formed() -> None:
    allowed = {"name", "group", "deviation", "definition", "input", "translate", "spec", "moto"}
    for case in CASES:
        assert set(case) <= allowed | {"xfail"}, f"{case['name']}: {set(case) - allowed}"
        assert ("deviation" in case) == ("moto" in case), f"{case['name']}: deviation and moto"
        assert case["spec"]["status"] in ("SUCCEEDED", "FAILED", "TIMED_OUT"), case["name"]
